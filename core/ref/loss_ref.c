/* References of the loss family: Gram matrix and mean errors. */
#include "loss_ref.h"

#include <math.h>

static double gram_scale (ref_shape xs, double scale) {
  return scale != 0 ? scale : 1.0 / ((double) xs.c * xs.h * xs.w);
}

void gram_ref_fwd (const double *x, ref_shape xs, double scale, double *y) {
  int64_t hw = (int64_t) xs.h * xs.w;
  scale = gram_scale (xs, scale);
  for (int32_t n = 0; n < xs.n; n++)
    for (int32_t i = 0; i < xs.c; i++)
      for (int32_t j = 0; j < xs.c; j++) {
        const double *xi = x + ref_at (xs, n, i, 0, 0), *xj = x + ref_at (xs, n, j, 0, 0);
        double s = 0;
        for (int64_t k = 0; k < hw; k++)
          s += xi[k] * xj[k];
        y[((int64_t) n * xs.c + i) * xs.c + j] = scale * s;
      }
}

void gram_ref_bwd (const double *x, ref_shape xs, double scale, const double *dy, double *dx) {
  int64_t hw = (int64_t) xs.h * xs.w;
  scale = gram_scale (xs, scale);
  for (int32_t n = 0; n < xs.n; n++) {
    const double *d = dy + (int64_t) n * xs.c * xs.c;
    for (int32_t i = 0; i < xs.c; i++) {
      double *dxi = dx + ref_at (xs, n, i, 0, 0);
      for (int64_t k = 0; k < hw; k++)
        dxi[k] = 0;
      for (int32_t j = 0; j < xs.c; j++) {
        double c = scale * (d[i * xs.c + j] + d[j * xs.c + i]);
        const double *xj = x + ref_at (xs, n, j, 0, 0);
        for (int64_t k = 0; k < hw; k++)
          dxi[k] += c * xj[k];
      }
    }
  }
}

double mean_abs_error_ref_fwd (const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += fabs (a[i] - b[i]);
  return s / (double) n;
}

double mean_squared_error_ref_fwd (const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += (a[i] - b[i]) * (a[i] - b[i]);
  return s / (double) n;
}

static double sign (double d) {
  return (d > 0) - (d < 0);
}

void mean_abs_error_ref_bwd (const double *a, const double *b, int64_t n, double dy, double *da, double *db) {
  for (int64_t i = 0; i < n; i++) {
    double g = dy * sign (a[i] - b[i]) / (double) n;
    if (da)
      da[i] = g;
    if (db)
      db[i] = -g;
  }
}

void mean_squared_error_ref_bwd (const double *a, const double *b, int64_t n, double dy, double *da, double *db) {
  for (int64_t i = 0; i < n; i++) {
    double g = dy * 2 * (a[i] - b[i]) / (double) n;
    if (da)
      da[i] = g;
    if (db)
      db[i] = -g;
  }
}
