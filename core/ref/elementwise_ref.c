/* References of the elementwise family. Backward passes are compositions of these (the gradient of a
 * broadcast is a sum_to and vice versa), which is what the tests check the GPU against. */
#include "elementwise_ref.h"

static int64_t bcast_index (ref_shape bs, int32_t n, int32_t c, int32_t h, int32_t w) {
  return ref_at (bs, bs.n == 1 ? 0 : n, bs.c == 1 ? 0 : c, bs.h == 1 ? 0 : h, bs.w == 1 ? 0 : w);
}

void add_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double alpha, double beta, double *y) {
  for (int32_t n = 0; n < as.n; n++)
    for (int32_t c = 0; c < as.c; c++)
      for (int32_t h = 0; h < as.h; h++)
        for (int32_t w = 0; w < as.w; w++) {
          int64_t i = ref_at (as, n, c, h, w);
          y[i] = alpha * a[i] + beta * b[bcast_index (bs, n, c, h, w)];
        }
}

void mul_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double *y) {
  for (int32_t n = 0; n < as.n; n++)
    for (int32_t c = 0; c < as.c; c++)
      for (int32_t h = 0; h < as.h; h++)
        for (int32_t w = 0; w < as.w; w++) {
          int64_t i = ref_at (as, n, c, h, w);
          y[i] = a[i] * b[bcast_index (bs, n, c, h, w)];
        }
}

void sum_to_ref_fwd (const double *x, ref_shape xs, ref_shape ys, double scale, double *y) {
  for (int64_t i = 0; i < ref_count (ys); i++)
    y[i] = 0;
  for (int32_t n = 0; n < xs.n; n++)
    for (int32_t c = 0; c < xs.c; c++)
      for (int32_t h = 0; h < xs.h; h++)
        for (int32_t w = 0; w < xs.w; w++)
          y[bcast_index (ys, n, c, h, w)] += x[ref_at (xs, n, c, h, w)];
  for (int64_t i = 0; i < ref_count (ys); i++)
    y[i] *= scale;
}

void broadcast_ref_fwd (const double *x, ref_shape xs, ref_shape ys, double scale, double *y) {
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t c = 0; c < ys.c; c++)
      for (int32_t h = 0; h < ys.h; h++)
        for (int32_t w = 0; w < ys.w; w++)
          y[ref_at (ys, n, c, h, w)] = scale * x[bcast_index (xs, n, c, h, w)];
}
