/* Spatial windowing: pad (zero, reflect or replicate, per side), crop, and pixel shuffle. Tiled execution builds its tiles from these:
 * padding only at the image's true borders and cropping the part of a tensor a consumer needs. */
#include "../internal.h"

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

/* ---- pad: ip = top, bottom, left, right, mode ---------------------------------------------------- */

typedef struct { ivec4_t xshape, yshape; int32_t top, left, mode; uint32_t count; } pad_push;
_Static_assert (sizeof (pad_push) == 48, "mirror of pad.comp and pad_bwd.comp");

cel_status pad_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  const int32_t *p = n->ip;
  char b[64];
  if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0 || p[0] > (1 << 20) || p[1] > (1 << 20) || p[2] > (1 << 20) ||
      p[3] > (1 << 20))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pad: amounts (%d, %d, %d, %d) must be >= 0", p[0], p[1], p[2], p[3]);
  if (p[4] == CEL_PAD_REFLECT && (p[0] >= xs.h || p[1] >= xs.h || p[2] >= xs.w || p[3] >= xs.w))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pad: reflect padding (%d, %d, %d, %d) must be smaller than the input %s",
                            p[0], p[1], p[2], p[3], cel_shape_str (xs, b));
  if (p[4] != CEL_PAD_ZERO && p[4] != CEL_PAD_REFLECT && p[4] != CEL_PAD_REPLICATE)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pad: unknown padding mode %d", p[4]);
  n->shape = (cel_shape) { xs.n, xs.c, xs.h + p[0] + p[1], xs.w + p[2] + p[3] };
  return CEL_OK;
}

cel_status pad_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  pad_push p = { iv (cel_node_shape (g, n->in[0])), iv (n->shape), n->ip[0], n->ip[2], n->ip[4],
                 (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_planes (ex, CEL_SHADER_PAD, NULL, 0, bind, 2, &p, sizeof p, n->shape);
}

cel_status pad_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n.in[0]);
  if (n.ip[4] == CEL_PAD_ZERO)
    return cel_crop (g, dy, n.ip[0], n.ip[2], xs.h, xs.w, &dx[0]);
  int32_t ip[9] = { n.ip[0], n.ip[1], n.ip[2], n.ip[3], n.ip[4], xs.n, xs.c, xs.h, xs.w };
  return cel_graph_add_op (g, CEL_OP_PAD_BWD, &dy, 1, ip, 9, NULL, 0, &dx[0]);
}

/* ip as pad's, then the input shape at ip[5..8] */
cel_status pad_bwd_infer (cel_graph *g, cel_node_rec *n) {
  (void) g;
  n->shape = (cel_shape) { n->ip[5], n->ip[6], n->ip[7], n->ip[8] };
  return CEL_OK;
}

cel_status pad_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  pad_push p = { iv (n->shape), iv (cel_node_shape (g, n->in[0])), n->ip[0], n->ip[2], n->ip[4],
                 (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_planes (ex, CEL_SHADER_PAD_BWD, NULL, 0, bind, 2, &p, sizeof p, n->shape);
}

cel_status cel_pad (cel_graph *g, cel_node x, int32_t top, int32_t bottom, int32_t left, int32_t right,
                    cel_padding_mode mode, cel_node *out) {
  int32_t ip[5] = { top, bottom, left, right, (int32_t) mode };
  return cel_graph_add_op (g, CEL_OP_PAD, &x, 1, ip, 5, NULL, 0, out);
}

/* ---- crop: ip = y0, x0, h, w -------------------------------------------------------------------- */

typedef struct { ivec4_t xshape, yshape; int32_t y0, x0; uint32_t count; } crop_push;
_Static_assert (sizeof (crop_push) == 44, "mirror of crop.comp");

cel_status crop_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  const int32_t *p = n->ip;
  char b[64];
  if (p[0] < 0 || p[1] < 0 || p[2] <= 0 || p[3] <= 0 || (int64_t) p[0] + p[2] > xs.h || (int64_t) p[1] + p[3] > xs.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "crop: window (y %d, x %d, %dx%d) is not inside the input %s", p[0],
                            p[1], p[2], p[3], cel_shape_str (xs, b));
  n->shape = (cel_shape) { xs.n, xs.c, p[2], p[3] };
  return CEL_OK;
}

cel_status crop_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  crop_push p = { iv (cel_node_shape (g, n->in[0])), iv (n->shape), n->ip[0], n->ip[1], (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_planes (ex, CEL_SHADER_CROP, NULL, 0, bind, 2, &p, sizeof p, n->shape);
}

cel_status crop_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n.in[0]);
  return cel_pad (g, dy, n.ip[0], xs.h - n.ip[0] - n.ip[2], n.ip[1], xs.w - n.ip[1] - n.ip[3], CEL_PAD_ZERO, &dx[0]);
}

cel_status cel_crop (cel_graph *g, cel_node x, int32_t y0, int32_t x0, int32_t h, int32_t w, cel_node *out) {
  int32_t ip[4] = { y0, x0, h, w };
  return cel_graph_add_op (g, CEL_OP_CROP, &x, 1, ip, 4, NULL, 0, out);
}

/* ---- resize_window (tiled inference only, no gradient) --------------------------------------------
 * ip: 0 out window h, 1 w, 2 mode, 3 global in h, 4 global in w, 5 global out h, 6 global out w,
 *     7 iy0, 8 ix0 (window origin of x in the global input), 9 oy0, 10 ox0 (of y in the global output). */

typedef struct {
  ivec4_t xshape, yshape;
  float scale_h, scale_w;
  uint32_t count;
  int32_t in_global_h, in_global_w, iy0, ix0, oy0, ox0;
} resize_window_push;
_Static_assert (sizeof (resize_window_push) == 68, "mirror of resize_window.comp");

cel_status resize_window_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  const int32_t *p = n->ip;
  if (p[0] < 1 || p[1] < 1 || p[2] < 0 || p[2] > CEL_RESIZE_BICUBIC || p[7] < 0 || p[8] < 0 ||
      p[7] + xs.h > p[3] || p[8] + xs.w > p[4] || p[9] < 0 || p[10] < 0 || p[9] + p[0] > p[5] || p[10] + p[1] > p[6])
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "resize_window: the windows do not fit the global sizes");
  n->shape = (cel_shape) { xs.n, xs.c, p[0], p[1] };
  return CEL_OK;
}

cel_status resize_window_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  const int32_t *q = n->ip;
  resize_window_push p = { iv (cel_node_shape (g, n->in[0])), iv (n->shape), cel_resize_axis_scale (q[3], q[5], q[2]),
                           cel_resize_axis_scale (q[4], q[6], q[2]), (uint32_t) cel_shape_count (n->shape), q[3], q[4], q[7], q[8],
                           q[9], q[10] };
  uint32_t spec[1] = { (uint32_t) q[2] };
  cel_node bind[2] = { n->in[0], self };
  uint32_t groups = (p.count + 255) / 256, gx = groups < 65535 ? groups : 65535, gy = (groups + gx - 1) / gx;
  return cel_exec_dispatch (ex, CEL_SHADER_RESIZE_WINDOW, spec, 1, bind, 2, &p, sizeof p, gx, gy, 1);
}

/* ---- pixel_shuffle (depth to space, PyTorch F.pixel_shuffle and ncnn PixelShuffle mode 0):
 * x (N,C*r*r,H,W) -> y (N,C,H*r,W*r), y[n,c,h*r+i,w*r+j] = x[n,(c*r+i)*r+j,h,w]; ip[0] r, ip[1] 1 for the
 * inverse (space to depth, F.pixel_unshuffle), which is also each direction's gradient. ----------------- */

typedef struct { ivec4_t xshape, yshape; int32_t r, inverse; uint32_t count; } shuffle_push;
_Static_assert (sizeof (shuffle_push) == 44, "mirror of pixel_shuffle.comp");

cel_status pixel_shuffle_infer (cel_graph *g, cel_node_rec *n) {
  char b[64];
  cel_shape xs = cel_node_shape (g, n->in[0]);
  int32_t r = n->ip[0];
  if (r < 1 || r > 16)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pixel_shuffle: factor %d must be 1..16", r);
  if (!n->ip[1]) {
    if (xs.c % (r * r))
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pixel_shuffle: %d channels of %s are not a multiple of %d", xs.c,
                              cel_shape_str (xs, b), r * r);
    if ((int64_t) xs.h * r > INT32_MAX || (int64_t) xs.w * r > INT32_MAX)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pixel_shuffle: %s is too large", cel_shape_str (xs, b));
    n->shape = (cel_shape) { xs.n, xs.c / (r * r), xs.h * r, xs.w * r };
  } else {
    if (xs.h % r || xs.w % r || (int64_t) xs.c * r * r > INT32_MAX)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "pixel_unshuffle: the size of %s is not a multiple of %d",
                              cel_shape_str (xs, b), r);
    n->shape = (cel_shape) { xs.n, xs.c * r * r, xs.h / r, xs.w / r };
  }
  return CEL_OK;
}

cel_status pixel_shuffle_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  shuffle_push p = { iv (cel_node_shape (g, n->in[0])), iv (n->shape), n->ip[0], n->ip[1], (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_PIXEL_SHUFFLE, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status pixel_shuffle_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  int32_t ip[2] = { n.ip[0], !n.ip[1] };
  return cel_graph_add_op (g, CEL_OP_PIXEL_SHUFFLE, &dy, 1, ip, 2, NULL, 0, &dx[0]);
}

cel_status cel_pixel_shuffle (cel_graph *g, cel_node x, int32_t factor, bool inverse, cel_node *out) {
  int32_t ip[2] = { factor, inverse };
  return cel_graph_add_op (g, CEL_OP_PIXEL_SHUFFLE, &x, 1, ip, 2, NULL, 0, out);
}
