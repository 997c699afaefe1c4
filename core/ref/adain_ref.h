#ifndef CELGAN_ADAIN_REF_H
#define CELGAN_ADAIN_REF_H
#include "ref_common.h"

/* content x (N,C,H,W), style s (N,C,H',W'); stats (N,C,1,2) = (mean, var) per (n, c), var unbiased.
 * y = (x - mean_x) / sqrt (var_x + eps) * sqrt (var_s + eps) + mean_s. */

/* With precomputed stats. */
void adain_apply_ref_fwd (const double *x, ref_shape xs, const double *cstats, const double *sstats, double eps,
                          double *y);
/* Gradients with the stats as independent inputs: dx (N,C,H,W), dcstats and dsstats (N,C,1,2); each may be NULL. */
void adain_apply_ref_bwd (const double *x, ref_shape xs, const double *cstats, const double *sstats, double eps,
                          const double *dy, double *dx, double *dcstats, double *dsstats);

/* Stats of content and style, then apply. */
void adain_ref_fwd (const double *x, ref_shape xs, const double *s, ref_shape ss, double eps, double *y);
/* Its gradients in closed form, per (n, c) with r = 1 / sqrt (var_x + eps), t = sqrt (var_s + eps), M = H*W:
 *   dx = t r (dy - mean (dy) - (x - mean_x) r^2 sum (dy (x - mean_x)) / (M - 1))
 *   ds = sum (dy) / M' + r sum (dy (x - mean_x)) / (2 t) * 2 (s - mean_s) / (M' - 1),  M' = H'*W'.
 * Each output may be NULL. */
void adain_ref_bwd (const double *x, ref_shape xs, const double *s, ref_shape ss, double eps, const double *dy,
                    double *dx, double *ds);
#endif
