#ifndef CELGAN_LOSS_REF_H
#define CELGAN_LOSS_REF_H
#include "ref_common.h"

/* x (N,C,H,W), y (N,1,C,C): y[n][i][j] = scale * sum_hw x[n][i][hw] x[n][j][hw]; scale 0 means 1/(C*H*W). */
void gram_ref_fwd (const double *x, ref_shape xs, double scale, double *y);
/* dy (N,1,C,C) -> dx (N,C,H,W) = scale * (dy + dy^T) x per sample. */
void gram_ref_bwd (const double *x, ref_shape xs, double scale, const double *dy, double *dx);

/* a, b of n elements: mean |a - b| and mean (a - b)^2. */
double mean_abs_error_ref_fwd (const double *a, const double *b, int64_t n);
double mean_squared_error_ref_fwd (const double *a, const double *b, int64_t n);
/* Gradients for the loss's gradient dy (a scalar); da or db may be NULL. sign(0) = 0, as PyTorch. */
void mean_abs_error_ref_bwd (const double *a, const double *b, int64_t n, double dy, double *da, double *db);
void mean_squared_error_ref_bwd (const double *a, const double *b, int64_t n, double dy, double *da, double *db);
#endif
