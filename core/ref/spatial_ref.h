#ifndef CELGAN_SPATIAL_REF_H
#define CELGAN_SPATIAL_REF_H
#include "ref_common.h"

/* x (N,C,H,W) -> y (N,C,H+t+b,W+l+r); reflect 0: zeros, 1: PyTorch 'reflect', 2: 'replicate'. */
void pad_ref_fwd (const double *x, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *y);
/* dx (N,C,H,W) from dy of pad (accumulates mirrored positions). */
void pad_ref_bwd (const double *dy, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *dx);
/* y (N,C,h,w) = x[:, :, y0:y0+h, x0:x0+w]; crop_ref_bwd writes dx (zeros outside the window). */
void crop_ref_fwd (const double *x, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *y);
void crop_ref_bwd (const double *dy, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *dx);
/* Depth to space: x (N,C*r*r,H,W) -> y (N,C,H*r,W*r) (PyTorch pixel_shuffle); inverse: space to depth. */
void pixel_shuffle_ref_fwd (const double *x, ref_shape xs, int32_t r, int inverse, double *y);
#endif
