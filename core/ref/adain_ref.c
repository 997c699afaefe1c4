/* References of the adain family, in double: plain loops over (n, c) planes (see adain_ref.h). */
#include "adain_ref.h"

#include <math.h>
#include <stdlib.h>

/* Per-plane (mean, unbiased var) of x (N,C,H,W) into stats (N,C,1,2). */
static void plane_stats (const double *x, ref_shape xs, double *stats) {
  int64_t m = (int64_t) xs.h * xs.w;
  for (int64_t p = 0; p < (int64_t) xs.n * xs.c; p++) {
    double mean = 0, ss = 0;
    for (int64_t k = 0; k < m; k++)
      mean += x[p * m + k];
    mean /= (double) m;
    for (int64_t k = 0; k < m; k++)
      ss += (x[p * m + k] - mean) * (x[p * m + k] - mean);
    stats[2 * p] = mean;
    stats[2 * p + 1] = ss / (double) (m - 1);
  }
}

void adain_apply_ref_fwd (const double *x, ref_shape xs, const double *cstats, const double *sstats, double eps,
                          double *y) {
  int64_t m = (int64_t) xs.h * xs.w;
  for (int64_t i = 0; i < ref_count (xs); i++) {
    int64_t p = i / m;
    y[i] = (x[i] - cstats[2 * p]) / sqrt (cstats[2 * p + 1] + eps) * sqrt (sstats[2 * p + 1] + eps) + sstats[2 * p];
  }
}

void adain_apply_ref_bwd (const double *x, ref_shape xs, const double *cstats, const double *sstats, double eps,
                          const double *dy, double *dx, double *dcstats, double *dsstats) {
  int64_t m = (int64_t) xs.h * xs.w;
  for (int64_t p = 0; p < (int64_t) xs.n * xs.c; p++) {
    double vx = cstats[2 * p + 1] + eps, r = 1.0 / sqrt (vx), t = sqrt (sstats[2 * p + 1] + eps);
    double sum_dy = 0, sum_dy_centered = 0;
    for (int64_t i = p * m; i < (p + 1) * m; i++) {
      double centered = x[i] - cstats[2 * p];
      sum_dy += dy[i];
      sum_dy_centered += dy[i] * centered;
      if (dx)
        dx[i] = dy[i] * t * r;
    }
    if (dcstats) {
      dcstats[2 * p] = -t * r * sum_dy;
      dcstats[2 * p + 1] = -0.5 * t * r / vx * sum_dy_centered;
    }
    if (dsstats) {
      dsstats[2 * p] = sum_dy;
      dsstats[2 * p + 1] = r * sum_dy_centered / (2 * t);
    }
  }
}

void adain_ref_fwd (const double *x, ref_shape xs, const double *s, ref_shape ss, double eps, double *y) {
  size_t n = (size_t) xs.n * xs.c * 2;
  double *cstats = malloc (n * sizeof *cstats), *sstats = malloc (n * sizeof *sstats);
  plane_stats (x, xs, cstats);
  plane_stats (s, ss, sstats);
  adain_apply_ref_fwd (x, xs, cstats, sstats, eps, y);
  free (cstats);
  free (sstats);
}

void adain_ref_bwd (const double *x, ref_shape xs, const double *s, ref_shape ss, double eps, const double *dy,
                    double *dx, double *ds) {
  size_t n = (size_t) xs.n * xs.c * 2;
  double *cstats = malloc (n * sizeof *cstats), *sstats = malloc (n * sizeof *sstats);
  plane_stats (x, xs, cstats);
  plane_stats (s, ss, sstats);
  int64_t m = (int64_t) xs.h * xs.w, ms = (int64_t) ss.h * ss.w;
  for (int64_t p = 0; p < (int64_t) xs.n * xs.c; p++) {
    double mean = cstats[2 * p], r = 1.0 / sqrt (cstats[2 * p + 1] + eps), t = sqrt (sstats[2 * p + 1] + eps);
    double sum_dy = 0, sum_dy_centered = 0;
    for (int64_t i = p * m; i < (p + 1) * m; i++) {
      sum_dy += dy[i];
      sum_dy_centered += dy[i] * (x[i] - mean);
    }
    for (int64_t i = p * m; i < (p + 1) * m && dx; i++)
      dx[i] = t * r * (dy[i] - sum_dy / (double) m - (x[i] - mean) * r * r * sum_dy_centered / (double) (m - 1));
    double dvar_s = r * sum_dy_centered / (2 * t);
    for (int64_t j = p * ms; j < (p + 1) * ms && ds; j++)
      ds[j] = sum_dy / (double) ms + dvar_s * 2.0 * (s[j] - sstats[2 * p]) / (double) (ms - 1);
  }
  free (cstats);
  free (sstats);
}
