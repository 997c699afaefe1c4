#ifndef CELGAN_NORM_REF_H
#define CELGAN_NORM_REF_H
#include "ref_common.h"

#include <stdbool.h>

/* x (N,C,H,W) is viewed as N*G contiguous rows of m = C*H*W / G elements: G = C for instance norm, G = 1 for
 * layer norm (groups = C or 1 below). stats (N,G,1,2) = (mean, var) per row; gamma, beta (1,C,1,1) or NULL.
 * var divides by m, or by m - 1 when unbiased. */

/* stats of x. */
void norm_stats_ref_fwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, double *stats);
/* dx from dstats (dmean, dvar) per row. */
void norm_stats_ref_bwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *dstats, double *dx);

/* y = (x - mean) / sqrt (var + eps) * gamma + beta with the given stats. */
void norm_apply_ref_fwd (const double *x, ref_shape xs, const double *stats, int32_t groups, const double *gamma,
                         const double *beta, double eps, double *y);
/* Gradients of norm_apply with stats as an independent input: dx (N,C,H,W), dstats (N,G,1,2), dgamma and
 * dbeta (1,C,1,1); each output may be NULL. */
void norm_apply_ref_bwd (const double *x, ref_shape xs, const double *stats, int32_t groups, const double *gamma,
                         double eps, const double *dy, double *dx, double *dstats, double *dgamma, double *dbeta);

/* Instance (groups = C) or layer (groups = 1) norm: stats then apply. */
void norm_ref_fwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *gamma, const double *beta,
                   double eps, double *y);
/* Its gradients in closed form, with d = m or m - 1 and r = 1 / sqrt (var + eps):
 *   dx = r (g dy - mean (g dy) - (x - mean) r^2 sum (g dy (x - mean)) / d) per row, g = gamma of the element's
 *   channel; dgamma, dbeta as in norm_apply_ref_bwd. Each output may be NULL. */
void norm_ref_bwd (const double *x, ref_shape xs, int32_t groups, bool unbiased, const double *gamma, double eps,
                   const double *dy, double *dx, double *dgamma, double *dbeta);
#endif
