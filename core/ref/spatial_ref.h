#ifndef CELGAN_SPATIAL_REF_H
#define CELGAN_SPATIAL_REF_H
#include "ref_common.h"

/* x (N,C,H,W) -> y (N,C,H+t+b,W+l+r); reflect: PyTorch 'reflect'. */
void pad_ref_fwd (const double *x, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *y);
/* dx (N,C,H,W) from dy of pad (accumulates mirrored positions). */
void pad_ref_bwd (const double *dy, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *dx);
/* y (N,C,h,w) = x[:, :, y0:y0+h, x0:x0+w]; crop_ref_bwd writes dx (zeros outside the window). */
void crop_ref_fwd (const double *x, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *y);
void crop_ref_bwd (const double *dy, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *dx);
#endif
