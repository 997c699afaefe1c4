/* References of the norm family, in double: plain loops over rows of m elements (see norm_ref.h). */
#include "norm_ref.h"

#include <math.h>
#include <stdlib.h>

static int64_t row_size (ref_shape xs, int32_t groups) {
  return ref_count (xs) / ((int64_t) xs.n * groups);
}

/* Channel of element i (NCHW linear index). */
static int32_t channel_of (ref_shape xs, int64_t i) {
  return (int32_t) (i / ((int64_t) xs.h * xs.w) % xs.c);
}

void norm_stats_ref_fwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, double *stats) {
  int64_t m = row_size (xs, groups), rows = (int64_t) xs.n * groups;
  for (int64_t r = 0; r < rows; r++) {
    const double *row = x + r * m;
    double mean = 0, ss = 0;
    for (int64_t k = 0; k < m; k++)
      mean += row[k];
    mean /= (double) m;
    for (int64_t k = 0; k < m; k++)
      ss += (row[k] - mean) * (row[k] - mean);
    stats[2 * r] = mean;
    stats[2 * r + 1] = ss / (double) (unbiased ? m - 1 : m);
  }
}

void norm_stats_ref_bwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *dstats, double *dx) {
  int64_t m = row_size (xs, groups), rows = (int64_t) xs.n * groups;
  double *stats = malloc ((size_t) rows * 2 * sizeof *stats);
  norm_stats_ref_fwd (x, xs, groups, unbiased, stats);
  double d = (double) (unbiased ? m - 1 : m);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t k = 0; k < m; k++) {
      int64_t i = r * m + k;
      dx[i] = dstats[2 * r] / (double) m + dstats[2 * r + 1] * 2.0 * (x[i] - stats[2 * r]) / d;
    }
  free (stats);
}

void norm_apply_ref_fwd (const double *x, ref_shape xs, const double *stats, int32_t groups, const double *gamma,
                         const double *beta, double eps, double *y) {
  int64_t m = row_size (xs, groups);
  for (int64_t i = 0; i < ref_count (xs); i++) {
    int64_t r = i / m;
    int32_t c = channel_of (xs, i);
    y[i] = (x[i] - stats[2 * r]) / sqrt (stats[2 * r + 1] + eps) * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0);
  }
}

void norm_apply_ref_bwd (const double *x, ref_shape xs, const double *stats, int32_t groups, const double *gamma,
                         double eps, const double *dy, double *dx, double *dstats, double *dgamma, double *dbeta) {
  int64_t m = row_size (xs, groups), rows = (int64_t) xs.n * groups;
  if (dstats)
    for (int64_t k = 0; k < rows * 2; k++)
      dstats[k] = 0;
  for (int32_t c = 0; c < xs.c; c++) {
    if (dgamma)
      dgamma[c] = 0;
    if (dbeta)
      dbeta[c] = 0;
  }
  for (int64_t i = 0; i < ref_count (xs); i++) {
    int64_t r = i / m;
    int32_t c = channel_of (xs, i);
    double g = gamma ? gamma[c] : 1.0, v = stats[2 * r + 1] + eps, inv_std = 1.0 / sqrt (v);
    double centered = x[i] - stats[2 * r];
    if (dx)
      dx[i] = dy[i] * g * inv_std;
    if (dstats) {
      dstats[2 * r] -= dy[i] * g * inv_std;
      dstats[2 * r + 1] -= 0.5 * dy[i] * g * centered * inv_std / v;
    }
    if (dgamma)
      dgamma[c] += dy[i] * centered * inv_std;
    if (dbeta)
      dbeta[c] += dy[i];
  }
}

void norm_ref_fwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *gamma, const double *beta,
                   double eps, double *y) {
  double *stats = malloc ((size_t) xs.n * groups * 2 * sizeof *stats);
  norm_stats_ref_fwd (x, xs, groups, unbiased, stats);
  norm_apply_ref_fwd (x, xs, stats, groups, gamma, beta, eps, y);
  free (stats);
}

void norm_ref_bwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *gamma, double eps,
                   const double *dy, double *dx, double *dgamma, double *dbeta) {
  int64_t m = row_size (xs, groups), rows = (int64_t) xs.n * groups;
  double *stats = malloc ((size_t) rows * 2 * sizeof *stats);
  norm_stats_ref_fwd (x, xs, groups, unbiased, stats);
  double d = (double) (unbiased ? m - 1 : m);
  for (int64_t r = 0; r < rows && dx; r++) {
    double mean = stats[2 * r], inv_std = 1.0 / sqrt (stats[2 * r + 1] + eps);
    double sum_gdy = 0, sum_gdy_centered = 0;
    for (int64_t i = r * m; i < (r + 1) * m; i++) {
      double gdy = dy[i] * (gamma ? gamma[channel_of (xs, i)] : 1.0);
      sum_gdy += gdy;
      sum_gdy_centered += gdy * (x[i] - mean);
    }
    for (int64_t i = r * m; i < (r + 1) * m; i++) {
      double gdy = dy[i] * (gamma ? gamma[channel_of (xs, i)] : 1.0);
      dx[i] = inv_std * (gdy - sum_gdy / (double) m - (x[i] - mean) * inv_std * inv_std * sum_gdy_centered / d);
    }
  }
  if (dgamma || dbeta)
    norm_apply_ref_bwd (x, xs, stats, groups, gamma, eps, dy, NULL, NULL, dgamma, dbeta);
  free (stats);
}
