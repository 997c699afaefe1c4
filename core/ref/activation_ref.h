#ifndef CELGAN_ACTIVATION_REF_H
#define CELGAN_ACTIVATION_REF_H
#include "ref_common.h"

/* act as cel_activation: 0 relu, 1 leaky relu (slope alpha), 2 tanh, 3 sigmoid. x, y, dy, dx hold n values. */
void activation_ref_fwd (const double *x, int64_t n, int act, double alpha, double *y);
/* dx = f'(x) * dy; at x == 0 the slope of the negative side (0 or alpha), as PyTorch. */
void activation_ref_bwd (const double *x, const double *dy, int64_t n, int act, double alpha, double *dx);
/* PReLU: y = x > 0 ? x : slope[c] * x, x (N,C,H,W), slope C values (per_channel) or one. */
void prelu_ref_fwd (const double *x, ref_shape xs, const double *slope, int per_channel, double *y);
/* dx (x's shape) and dslope (the slope's count), either may be NULL. */
void prelu_ref_bwd (const double *x, ref_shape xs, const double *slope, int per_channel, const double *dy, double *dx,
                    double *dslope);
#endif
