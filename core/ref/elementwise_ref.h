#ifndef CELGAN_ELEMENTWISE_REF_H
#define CELGAN_ELEMENTWISE_REF_H
#include "ref_common.h"

/* y = alpha * a + beta * b, b broadcast to a's shape (each dim equal or 1). */
void add_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double alpha, double beta, double *y);
/* y = a * b, b broadcast. */
void mul_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double *y);
/* y (shape ys) = scale * sum of x over the dims where ys is 1. */
void sum_to_ref_fwd (const double *x, ref_shape xs, ref_shape ys, double scale, double *y);
/* y (shape ys) = scale * x broadcast (x each dim equal to ys or 1). */
void broadcast_ref_fwd (const double *x, ref_shape xs, ref_shape ys, double scale, double *y);
#endif
