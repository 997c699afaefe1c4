/* References of the channel ops: plain copies between channel ranges. */
#include "channels_ref.h"

void concat_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double *y) {
  ref_shape ys = { as.n, as.c + bs.c, as.h, as.w };
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++)
          y[ref_at (ys, n, c, h, w)] = c < as.c ? a[ref_at (as, n, c, h, w)] : b[ref_at (bs, n, c - as.c, h, w)];
}

void concat_ref_bwd (const double *dy, ref_shape as, ref_shape bs, double *da, double *db) {
  ref_shape ys = { as.n, as.c + bs.c, as.h, as.w };
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++) {
          double v = dy[ref_at (ys, n, c, h, w)];
          if (c < as.c) {
            if (da)
              da[ref_at (as, n, c, h, w)] = v;
          } else if (db) {
            db[ref_at (bs, n, c - as.c, h, w)] = v;
          }
        }
}

void slice_channels_ref_fwd (const double *x, ref_shape xs, int32_t c0, int32_t count, double *y) {
  ref_shape ys = { xs.n, count, xs.h, xs.w };
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++)
          y[ref_at (ys, n, c, h, w)] = x[ref_at (xs, n, c0 + c, h, w)];
}

void slice_channels_ref_bwd (const double *dy, ref_shape xs, int32_t c0, int32_t count, double *dx) {
  ref_shape ys = { xs.n, count, xs.h, xs.w };
  for (int64_t i = 0; i < ref_count (xs); i++)
    dx[i] = 0;
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++)
          dx[ref_at (xs, n, c0 + c, h, w)] = dy[ref_at (ys, n, c, h, w)];
}
