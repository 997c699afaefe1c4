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

/* Bicubic taps (mode 4): clamped indices, weights of the Keys cubic with A = -0.75 in double. */
static void cubic_ref_taps (int32_t o, int32_t in, int32_t out, int32_t i[4], double w[4]) {
  float scale = (float) in / (float) out;
  float src = (float) ((double) scale * (o + 0.5) - 0.5);
  double f = floor ((double) src), x = (double) src - f, A = -0.75, x1 = x + 1, y = 1 - x, y1 = 2 - x;
  w[0] = ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A;
  w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
  w[2] = ((A + 2) * y - (A + 3)) * y * y + 1;
  w[3] = ((A * y1 - 5 * A) * y1 + 8 * A) * y1 - 4 * A;
  for (int k = 0; k < 4; k++) {
    int32_t t = (int32_t) f - 1 + k;
    i[k] = t < 0 ? 0 : t > in - 1 ? in - 1 : t;
  }
}

/* All taps of output o along one axis (2 or 4 of them); returns the count. */
static int taps (int32_t o, int32_t in, int32_t out, int mode, int32_t i[4], double w[4]) {
  if (mode == 4) {
    cubic_ref_taps (o, in, out, i, w);
    return 4;
  }
  resize_ref_taps (o, in, out, mode, i, w);
  return 2;
}

void resize_ref_fwd (const double *x, ref_shape xs, ref_shape ys, int mode, double *y) {
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t oh = 0; oh < ys.h; oh++)
        for (int32_t ow = 0; ow < ys.w; ow++) {
          int32_t ih[4], iw[4];
          double wh[4], ww[4], s = 0;
          int nh = taps (oh, xs.h, ys.h, mode, ih, wh), nw = taps (ow, xs.w, ys.w, mode, iw, ww);
          for (int a = 0; a < nh; a++)
            for (int b = 0; b < nw; b++)
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
          int32_t ih[4], iw[4];
          double wh[4], ww[4];
          int nh = taps (oh, xs.h, ys.h, mode, ih, wh), nw = taps (ow, xs.w, ys.w, mode, iw, ww);
          for (int a = 0; a < nh; a++)
            for (int b = 0; b < nw; b++)
              dx[ref_at (xs, n, c, ih[a], iw[b])] += wh[a] * ww[b] * dy[ref_at (ys, n, c, oh, ow)];
        }
}
