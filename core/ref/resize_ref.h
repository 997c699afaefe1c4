#ifndef CELGAN_RESIZE_REF_H
#define CELGAN_RESIZE_REF_H
#include "ref_common.h"

/* mode as cel_resize_mode: 0 nearest, 1 bilinear (half-pixel), 2 bilinear align_corners, 3 bilinear
 * asymmetric (TF1), 4 bicubic (A = -0.75, clamped taps). x (N,C,H,W), y (N,C,OH,OW) with OH, OW = ys.h, ys.w. */
void resize_ref_fwd (const double *x, ref_shape xs, ref_shape ys, int mode, double *y);
/* dx (N,C,H,W) from dy (N,C,OH,OW), by scattering each output's gradient to its taps. */
void resize_ref_bwd (const double *dy, ref_shape xs, ref_shape ys, int mode, double *dx);
/* The taps of output o along one axis: inputs i[0], i[1] with weights w[0], w[1] (exposed for tests). */
void resize_ref_taps (int32_t o, int32_t in, int32_t out, int mode, int32_t i[2], double w[2]);
#endif
