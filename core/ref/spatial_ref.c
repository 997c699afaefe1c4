#include "spatial_ref.h"

static int32_t source (int32_t i, int32_t n, int reflect) {
  if (i >= 0 && i < n)
    return i;
  if (reflect == 2)
    return i < 0 ? 0 : n - 1;
  if (!reflect)
    return -1;
  return i < 0 ? -i : 2 * n - 2 - i;
}

void pad_ref_fwd (const double *x, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *y) {
  ref_shape ys = { xs.n, xs.c, xs.h + t + b, xs.w + l + r };
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++) {
          int32_t sh = source (h - t, xs.h, reflect), sw = source (w - l, xs.w, reflect);
          y[ref_at (ys, n, c, h, w)] = sh < 0 || sw < 0 ? 0.0 : x[ref_at (xs, n, c, sh, sw)];
        }
}

void pad_ref_bwd (const double *dy, ref_shape xs, int32_t t, int32_t b, int32_t l, int32_t r, int reflect, double *dx) {
  ref_shape ys = { xs.n, xs.c, xs.h + t + b, xs.w + l + r };
  for (int64_t i = 0; i < ref_count (xs); i++)
    dx[i] = 0;
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++) {
          int32_t sh = source (h - t, xs.h, reflect), sw = source (w - l, xs.w, reflect);
          if (sh >= 0 && sw >= 0)
            dx[ref_at (xs, n, c, sh, sw)] += dy[ref_at (ys, n, c, h, w)];
        }
}

void crop_ref_fwd (const double *x, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *y) {
  ref_shape ys = { xs.n, xs.c, h, w };
  for (int32_t n = 0; n < xs.n; n++)
    for (int32_t c = 0; c < xs.c; c++)
      for (int32_t i = 0; i < h; i++)
        for (int32_t j = 0; j < w; j++)
          y[ref_at (ys, n, c, i, j)] = x[ref_at (xs, n, c, i + y0, j + x0)];
}

void crop_ref_bwd (const double *dy, ref_shape xs, int32_t y0, int32_t x0, int32_t h, int32_t w, double *dx) {
  ref_shape ys = { xs.n, xs.c, h, w };
  for (int64_t i = 0; i < ref_count (xs); i++)
    dx[i] = 0;
  for (int32_t n = 0; n < xs.n; n++)
    for (int32_t c = 0; c < xs.c; c++)
      for (int32_t i = 0; i < h; i++)
        for (int32_t j = 0; j < w; j++)
          dx[ref_at (xs, n, c, i + y0, j + x0)] = dy[ref_at (ys, n, c, i, j)];
}

void pixel_shuffle_ref_fwd (const double *x, ref_shape xs, int32_t r, int inverse, double *y) {
  ref_shape ys = inverse ? (ref_shape) { xs.n, xs.c * r * r, xs.h / r, xs.w / r } : (ref_shape) { xs.n, xs.c / (r * r), xs.h * r, xs.w * r };
  ref_shape big = inverse ? xs : ys, small = inverse ? ys : xs;
  for (int32_t n = 0; n < big.n; n++)
    for (int32_t c = 0; c < big.c; c++)
      for (int32_t h = 0; h < big.h; h++)
        for (int32_t w = 0; w < big.w; w++) {
          int64_t b = ref_at (big, n, c, h, w), s = ref_at (small, n, (c * r + h % r) * r + w % r, h / r, w / r);
          if (inverse)
            y[s] = x[b];
          else
            y[b] = x[s];
        }
}
