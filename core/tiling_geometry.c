/* Geometry of tiled execution (tiling.c): per-op receptive fields in whole-image coordinates, and the part of a
 * tensor a tile owns. */
#include "tiling.h"

#include <math.h>

tile_span tile_clamp_span (tile_span s, int32_t n) {
  tile_span r = { s.lo < 0 ? 0 : s.lo, s.hi > n ? n : s.hi };
  if (r.hi < r.lo)
    r.hi = r.lo;
  return r;
}

/* Input rows a conv2d output span reads, before clamping: [o.lo*s - pad, (o.hi-1)*s - pad + ext). */
tile_span tile_conv_ideal (tile_span o, int32_t s, int32_t pad, int32_t k, int32_t d) {
  return (tile_span) { o.lo * s - pad, (o.hi - 1) * s - pad + d * (k - 1) + 1 };
}

/* The window of the input that must exist: the clamped ideal span plus the rows reflection reads. */
tile_span tile_conv_need (tile_span ideal, int32_t n, bool reflect) {
  tile_span c = tile_clamp_span (ideal, n);
  if (reflect) {
    if (ideal.lo < 0 && -ideal.lo + 1 > c.hi)
      c.hi = -ideal.lo + 1 < n ? -ideal.lo + 1 : n;
    if (ideal.hi > n && 2 * n - 1 - ideal.hi < c.lo)
      c.lo = 2 * n - 1 - ideal.hi > 0 ? 2 * n - 1 - ideal.hi : 0;
  }
  return c;
}

/* The window of the input a pad reads for an ideal span (rows outside map to the edge or their mirror). */
tile_span tile_pad_need (tile_span ideal, int32_t n, bool reflect) {
  tile_span c = tile_conv_need (ideal, n, reflect);
  if (c.hi <= c.lo) /* wholly outside: the edge row (replicate), or nothing (zeros) */
    c = ideal.hi <= 0 ? (tile_span) { 0, 1 } : (tile_span) { n - 1, n };
  return c;
}

tile_span tile_convt_need (tile_span o, int32_t n_in, int32_t s, int32_t pad, int32_t k, int32_t d) {
  /* output o reads inputs i with i*s - pad + kk*d == o */
  int32_t lo_num = o.lo + pad - d * (k - 1), hi_num = o.hi - 1 + pad;
  int32_t lo = lo_num >= 0 ? (lo_num + s - 1) / s : -((-lo_num) / s);
  int32_t hi = (hi_num >= 0 ? hi_num / s : -((-hi_num + s - 1) / s)) + 1;
  return tile_clamp_span ((tile_span) { lo, hi }, n_in);
}

tile_span tile_resize_need (tile_span o, int32_t n_in, int32_t n_out, int32_t mode) {
  float sc = cel_resize_axis_scale (n_in, n_out, mode);
  double lo_src, hi_src;
  if (mode == CEL_RESIZE_BICUBIC) { /* taps floor(src)-1 .. floor(src)+2 */
    lo_src = sc * (o.lo + 0.5) - 0.5;
    hi_src = sc * (o.hi - 1 + 0.5) - 0.5;
    return tile_clamp_span ((tile_span) { (int32_t) floor (lo_src) - 2, (int32_t) floor (hi_src) + 4 }, n_in);
  }
  if (mode == CEL_RESIZE_BILINEAR) {
    lo_src = sc * (o.lo + 0.5) - 0.5;
    hi_src = sc * (o.hi - 1 + 0.5) - 0.5;
  } else {
    lo_src = (double) sc * o.lo;
    hi_src = (double) sc * (o.hi - 1);
  }
  /* one extra input on each side covers float rounding; clamped to the tensor */
  return tile_clamp_span ((tile_span) { (int32_t) floor (lo_src) - 1, (int32_t) floor (hi_src) + 3 }, n_in);
  (void) n_out;
}

tile_span tile_owned_span (int32_t t0, int32_t t1, int32_t full, double res, int32_t gsize) {
  int32_t lo = (int32_t) llround (t0 * res);
  int32_t hi = t1 == full ? gsize : (int32_t) llround (t1 * res);
  if (lo > gsize)
    lo = gsize;
  if (hi > gsize)
    hi = gsize;
  return (tile_span) { lo, hi };
}
