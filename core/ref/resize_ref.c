/* Reference of resize. The interpolation is in double, but the source coordinate of each output is computed
 * in float as PyTorch does (area_pixel_compute_scale / _source_index, nearest_neighbor_compute_source_index):
 * which input pixel nearest picks depends on that rounding, and the reference must pick the same. */
#include "resize_ref.h"

#include <math.h>

void resize_ref_taps (int32_t o, int32_t in, int32_t out, int mode, int32_t i[2], double w[2]) {
  float scale = mode == 2 ? (out > 1 ? (float) (in - 1) / (float) (out - 1) : 0.0f) : (float) in / (float) out;
  if (mode == 0) {
    int32_t k = (int32_t) floorf ((float) o * scale);
    i[0] = i[1] = k < in - 1 ? k : in - 1;
    w[0] = 1;
    w[1] = 0;
    return;
  }
  float src;
  if (mode == 1) {
    /* PyTorch 1.13 evaluates scale * (o + 0.5) - 0.5 in double and rounds once to float */
    src = (float) ((double) scale * (o + 0.5) - 0.5);
    if (src < 0)
      src = 0;
  } else {
    src = scale * (float) o;
  }
  int32_t k = (int32_t) floorf (src);
  i[0] = k < in - 1 ? k : in - 1;
  i[1] = i[0] < in - 1 ? i[0] + 1 : i[0];
  float l1 = src - (float) i[0];
  l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
  w[0] = 1.0f - l1;
  w[1] = l1;
}

void resize_ref_fwd (const double *x, ref_shape xs, ref_shape ys, int mode, double *y) {
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t oh = 0; oh < ys.h; oh++)
        for (int32_t ow = 0; ow < ys.w; ow++) {
          int32_t ih[2], iw[2];
          double wh[2], ww[2], s = 0;
          resize_ref_taps (oh, xs.h, ys.h, mode, ih, wh);
          resize_ref_taps (ow, xs.w, ys.w, mode, iw, ww);
          for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
              s += wh[a] * ww[b] * x[ref_at (xs, n, c, ih[a], iw[b])];
          y[ref_at (ys, n, c, oh, ow)] = s;
        }
}

void resize_ref_bwd (const double *dy, ref_shape xs, ref_shape ys, int mode, double *dx) {
  for (int64_t k = 0; k < ref_count (xs); k++)
    dx[k] = 0;
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t oh = 0; oh < ys.h; oh++)
        for (int32_t ow = 0; ow < ys.w; ow++) {
          int32_t ih[2], iw[2];
          double wh[2], ww[2];
          resize_ref_taps (oh, xs.h, ys.h, mode, ih, wh);
          resize_ref_taps (ow, xs.w, ys.w, mode, iw, ww);
          for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
              dx[ref_at (xs, n, c, ih[a], iw[b])] += wh[a] * ww[b] * dy[ref_at (ys, n, c, oh, ow)];
        }
}
