/* Resize on H and W: nearest, three bilinear conventions and bicubic, matching PyTorch's F.interpolate (size=...)
 * index for index (the source coordinate is computed in float as PyTorch does), and the backward in gather
 * form: each input pixel sums dy over the outputs that read it, with the same taps (shaders/resize_axis.glsl). */
#include "../internal.h"

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

typedef struct { ivec4_t xshape, yshape; float scale_h, scale_w; uint32_t count; } resize_push;
_Static_assert (sizeof (resize_push) == 44, "mirror of resize.comp and resize_bwd.comp");

static const char *mode_name (int32_t mode) {
  static const char *names[] = { "nearest", "bilinear", "bilinear_align_corners", "bilinear_asymmetric", "bicubic" };
  return mode >= 0 && mode <= CEL_RESIZE_BICUBIC ? names[mode] : "unknown";
}

/* Source step per output pixel, in float exactly as PyTorch's area_pixel_compute_scale. */
float cel_resize_axis_scale (int32_t in, int32_t out, int32_t mode) {
  if (mode == CEL_RESIZE_BILINEAR_ALIGN_CORNERS)
    return out > 1 ? (float) (in - 1) / (float) (out - 1) : 0.0f;
  return (float) in / (float) out;
}

/* x (N,C,H,W) and y (N,C,OH,OW); one invocation per element of `self` (y forward, x backward). */
static cel_status resize_dispatch (cel_exec *ex, cel_graph *g, cel_node self, cel_shader_id shader, cel_shape xs,
                                   cel_shape ys, int32_t mode) {
  const cel_node_rec *n = cel_node_get (g, self);
  resize_push p = { iv (xs), iv (ys), cel_resize_axis_scale (xs.h, ys.h, mode), cel_resize_axis_scale (xs.w, ys.w, mode),
                    (uint32_t) cel_shape_count (n->shape) };
  uint32_t spec[1] = { (uint32_t) mode };
  cel_node bind[2] = { n->in[0], self };
  uint32_t groups = (p.count + 255) / 256, gx = groups < 65535 ? groups : 65535, gy = (groups + gx - 1) / gx;
  return cel_exec_dispatch (ex, shader, spec, 1, bind, 2, &p, sizeof p, gx, gy, 1);
}

/* ---- resize: x (N,C,H,W) -> y (N,C,ip[0],ip[1]); ip[2] cel_resize_mode --------------------------- */

cel_status resize_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  if (n->ip[2] < CEL_RESIZE_NEAREST || n->ip[2] > CEL_RESIZE_BICUBIC)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "resize: unknown mode %d", (int) n->ip[2]);
  if (n->ip[0] < 1 || n->ip[1] < 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "resize: output size %d x %d must be at least 1 x 1",
                            (int) n->ip[0], (int) n->ip[1]);
  /* float source coordinates stay exact integers up to 2^24 */
  if (xs.h > (1 << 24) || xs.w > (1 << 24) || n->ip[0] > (1 << 24) || n->ip[1] > (1 << 24))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "resize: sizes above 2^24 are not supported (%d x %d to %d x %d)",
                            xs.h, xs.w, (int) n->ip[0], (int) n->ip[1]);
  n->shape = (cel_shape) { xs.n, xs.c, n->ip[0], n->ip[1] };
  return CEL_OK;
}

cel_status resize_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]), ys = n->shape;
  int32_t mode = n->ip[2];
  resize_push p = { iv (xs), iv (ys), cel_resize_axis_scale (xs.h, ys.h, mode), cel_resize_axis_scale (xs.w, ys.w, mode),
                    (uint32_t) cel_shape_count (ys) };
  uint32_t spec[1] = { (uint32_t) mode };
  cel_node bind[2] = { n->in[0], self };
  cel_shader_id sh = cel_exec_pick_reads (ex, CEL_SHADER_RESIZE, CEL_SHADER_RESIZE_TEXEL, bind, 1);
  return cel_exec_dispatch_planes (ex, sh, spec, 1, bind, 2, &p, sizeof p, ys);
}

cel_status resize_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  int32_t ip[1] = { self };
  return cel_graph_add_op (g, CEL_OP_RESIZE_BWD, &dy, 1, ip, 1, NULL, 0, &dx[0]);
}

cel_status cel_resize (cel_graph *g, cel_node x, int32_t out_h, int32_t out_w, cel_resize_mode mode, cel_node *out) {
  int32_t ip[3] = { out_h, out_w, (int32_t) mode };
  return cel_graph_add_op (g, CEL_OP_RESIZE, &x, 1, ip, 3, NULL, 0, out);
}

/* ---- resize_bwd: dy (N,C,OH,OW) -> dx (N,C,H,W); ip[0] the forward resize node. Shapes and mode are read
 * from it at every inference, so the gradient follows cel_graph_set_input_shape without keeping x alive. */

cel_status resize_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  const cel_node_rec *fwd = cel_node_get (g, n->ip[0]);
  cel_shape ds = cel_node_shape (g, n->in[0]);
  n->shape = cel_node_shape (g, fwd->in[0]);
  if (ds.n != fwd->shape.n || ds.c != fwd->shape.c || ds.h != fwd->shape.h || ds.w != fwd->shape.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "resize_bwd (%s): gradient %s does not match output %s",
                            mode_name (fwd->ip[2]), cel_shape_str (ds, s1), cel_shape_str (fwd->shape, s2));
  return CEL_OK;
}

cel_status resize_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int32_t mode = cel_node_get (g, n->ip[0])->ip[2];
  return resize_dispatch (ex, g, self, CEL_SHADER_RESIZE_BWD, n->shape, cel_node_shape (g, n->in[0]), mode);
}
