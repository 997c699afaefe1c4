/* conv2d: forward, gradient wrt x (gather; reflect padding folds back onto the interior), gradient wrt w (one
 * workgroup per weight element reducing over N*OH*OW), and the bias gradient as a sum_to of dy.
 * x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (1,OC,1,1), y (N,OC,OH,OW). */
#include "../internal.h"

#include <string.h>

/* ip[] of conv2d, conv2d_bwd_data and conv2d_bwd_weight nodes: the fields of cel_conv2d_params in order, zeros
 * replaced by ones (conv_transpose2d's backward builds conv2d nodes relying on this). Pads may be negative there
 * (a crop, zero padding only); the public entry point allows only pads >= 0. */
enum {
  IP_STRIDE_H, IP_STRIDE_W, IP_PAD_TOP, IP_PAD_BOTTOM, IP_PAD_LEFT, IP_PAD_RIGHT, IP_DILATION_H, IP_DILATION_W,
  IP_GROUPS, IP_REFLECT, IP_COUNT
};

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

/* Mirror of the push block of conv2d_fwd.comp, conv2d_bwd_data.comp and conv2d_bwd_weight.comp. */
typedef struct {
  ivec4_t xshape, yshape; /* (N,IC,H,W), (N,OC,OH,OW) */
  int32_t kernel[2], stride[2], dilation[2], pad[2]; /* (h, w); pad is (top, left) */
  int32_t groups, reflect, has_bias;
  uint32_t count; /* elements written */
} conv2d_push;
_Static_assert (sizeof (conv2d_push) == 80, "mirror of conv2d_*.comp");

static conv2d_push make_push (const int32_t *ip, cel_shape xs, cel_shape ws, cel_shape ys, bool has_bias, int64_t count) {
  return (conv2d_push) { iv (xs), iv (ys), { ws.h, ws.w }, { ip[IP_STRIDE_H], ip[IP_STRIDE_W] },
                         { ip[IP_DILATION_H], ip[IP_DILATION_W] }, { ip[IP_PAD_TOP], ip[IP_PAD_LEFT] }, ip[IP_GROUPS],
                         ip[IP_REFLECT], has_bias, (uint32_t) count };
}

/* Checks x (N,IC,H,W) against w (OC,IC/groups,KH,KW) and the geometry in ip; sets *ys to (N,OC,OH,OW). */
static cel_status check_geometry (cel_graph *g, cel_shape xs, cel_shape ws, const int32_t *ip, cel_shape *ys) {
  char s1[64], s2[64];
  int32_t groups = ip[IP_GROUPS];
  if (groups < 1 || ip[IP_STRIDE_H] < 1 || ip[IP_STRIDE_W] < 1 || ip[IP_DILATION_H] < 1 || ip[IP_DILATION_W] < 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: stride, dilation and groups must be positive");
  if (xs.c % groups != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: groups %d does not divide the %d input channels of x %s",
                            groups, xs.c, cel_shape_str (xs, s1));
  if (ws.n % groups != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: groups %d does not divide the %d output channels of w %s",
                            groups, ws.n, cel_shape_str (ws, s1));
  if (ws.c * groups != xs.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: x %s has %d channels but w %s expects %d (%d per group, %d groups)",
                            cel_shape_str (xs, s1), xs.c, cel_shape_str (ws, s2), ws.c * groups, ws.c, groups);
  int32_t pt = ip[IP_PAD_TOP], pb = ip[IP_PAD_BOTTOM], pl = ip[IP_PAD_LEFT], pr = ip[IP_PAD_RIGHT];
  if (ip[IP_REFLECT] && (pt < 0 || pb < 0 || pl < 0 || pr < 0 || pt >= xs.h || pb >= xs.h || pl >= xs.w || pr >= xs.w))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: reflect padding (top %d, bottom %d, left %d, right %d) must be smaller than the "
                            "input's height %d and width %d (x %s)", pt, pb, pl, pr, xs.h, xs.w, cel_shape_str (xs, s1));
  int64_t span_h = (int64_t) ip[IP_DILATION_H] * (ws.h - 1) + 1, span_w = (int64_t) ip[IP_DILATION_W] * (ws.w - 1) + 1;
  int64_t padded_h = (int64_t) xs.h + pt + pb, padded_w = (int64_t) xs.w + pl + pr;
  if (span_h > padded_h || span_w > padded_w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: the kernel %dx%d with dilation %dx%d spans %lldx%lld, larger than the padded input "
                            "%lldx%lld (x %s)", ws.h, ws.w, ip[IP_DILATION_H], ip[IP_DILATION_W], (long long) span_h,
                            (long long) span_w, (long long) padded_h, (long long) padded_w, cel_shape_str (xs, s1));
  *ys = (cel_shape) { xs.n, ws.n, (int32_t) ((padded_h - span_h) / ip[IP_STRIDE_H] + 1),
                      (int32_t) ((padded_w - span_w) / ip[IP_STRIDE_W] + 1) };
  return CEL_OK;
}

/* ---- forward: in (x, w, b or none) ------------------------------------------------------------- */

cel_status conv2d_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]);
  cel_status st = check_geometry (g, xs, ws, n->ip, &n->shape);
  if (st || n->in[2] == CEL_NO_NODE)
    return st;
  cel_shape bs = cel_node_shape (g, n->in[2]);
  char s1[64];
  if (bs.n != 1 || bs.c != ws.n || bs.h != 1 || bs.w != 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: bias %s must be (1, %d, 1, 1)", cel_shape_str (bs, s1),
                            ws.n);
  return CEL_OK;
}

cel_status conv2d_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  bool has_bias = n->in[2] != CEL_NO_NODE;
  int64_t count = cel_shape_count (n->shape);
  conv2d_push p = make_push (n->ip, cel_node_shape (g, n->in[0]), cel_node_shape (g, n->in[1]), n->shape, has_bias, count);
  /* Without a bias the shader reads nothing from binding 2; w fills it. */
  cel_node bind[4] = { n->in[0], n->in[1], has_bias ? n->in[2] : n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONV2D_FWD, bind, 4, &p, sizeof p, count, 256);
}

cel_status conv2d_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  if (need[0]) {
    cel_node in[3] = { dy, n.in[1], n.in[0] };
    if ((st = cel_graph_add_op (g, CEL_OP_CONV2D_BWD_DATA, in, 3, n.ip, IP_COUNT, NULL, 0, &dx[0])))
      return st;
  }
  if (need[1]) {
    cel_node in[3] = { dy, n.in[0], n.in[1] };
    if ((st = cel_graph_add_op (g, CEL_OP_CONV2D_BWD_WEIGHT, in, 3, n.ip, IP_COUNT, NULL, 0, &dx[1])))
      return st;
  }
  if (need[2])
    st = cel_sum_to (g, dy, (cel_shape) { 1, n.shape.c, 1, 1 }, &dx[2]);
  return st;
}

cel_status cel_conv2d (cel_graph *g, cel_node x, cel_node w, cel_node b, const cel_conv2d_params *p, cel_node *out) {
  *out = CEL_NO_NODE;
  cel_status st;
  if ((st = cel_graph_check_node (g, x, false, "conv2d", "x")) || (st = cel_graph_check_node (g, w, false, "conv2d", "w"))
      || (st = cel_graph_check_node (g, b, true, "conv2d", "b")))
    return st;
  cel_conv2d_params d = { 0 };
  if (p)
    d = *p;
  if (d.stride_h < 0 || d.stride_w < 0 || d.dilation_h < 0 || d.dilation_w < 0 || d.groups < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: stride (%d, %d), dilation (%d, %d) and groups %d must be positive (0 means 1)",
                            d.stride_h, d.stride_w, d.dilation_h, d.dilation_w, d.groups);
  if (d.pad_top < 0 || d.pad_bottom < 0 || d.pad_left < 0 || d.pad_right < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: padding (top %d, bottom %d, left %d, right %d) must not be negative", d.pad_top,
                            d.pad_bottom, d.pad_left, d.pad_right);
  if (d.padding_mode != CEL_PAD_ZERO && d.padding_mode != CEL_PAD_REFLECT)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: unknown padding mode %d", (int) d.padding_mode);
  int32_t ip[IP_COUNT] = {
    [IP_STRIDE_H] = d.stride_h ? d.stride_h : 1, [IP_STRIDE_W] = d.stride_w ? d.stride_w : 1,
    [IP_PAD_TOP] = d.pad_top, [IP_PAD_BOTTOM] = d.pad_bottom, [IP_PAD_LEFT] = d.pad_left, [IP_PAD_RIGHT] = d.pad_right,
    [IP_DILATION_H] = d.dilation_h ? d.dilation_h : 1, [IP_DILATION_W] = d.dilation_w ? d.dilation_w : 1,
    [IP_GROUPS] = d.groups ? d.groups : 1, [IP_REFLECT] = d.padding_mode == CEL_PAD_REFLECT,
  };
  cel_node in[3] = { x, w, b };
  return cel_graph_add_op (g, CEL_OP_CONV2D, in, 3, ip, IP_COUNT, NULL, 0, out);
}

/* ---- gradient wrt x: in (dy, w, x); x only gives the shape (H and W are not recoverable from dy) ---------- */

cel_status conv2d_bwd_data_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape dys = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]), xs = cel_node_shape (g, n->in[2]);
  cel_shape ys;
  cel_status st = check_geometry (g, xs, ws, n->ip, &ys);
  if (st)
    return st;
  char s1[64], s2[64];
  if (memcmp (&ys, &dys, sizeof ys) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d backward: dy %s does not match the output %s",
                            cel_shape_str (dys, s1), cel_shape_str (ys, s2));
  n->shape = xs;
  return CEL_OK;
}

cel_status conv2d_bwd_data_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (n->shape);
  conv2d_push p = make_push (n->ip, n->shape, cel_node_shape (g, n->in[1]), cel_node_shape (g, n->in[0]), false, count);
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONV2D_BWD_DATA, bind, 3, &p, sizeof p, count, 256);
}

/* ---- gradient wrt w: in (dy, x, w); w only gives the shape -------------------------------------- */

cel_status conv2d_bwd_weight_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape dys = cel_node_shape (g, n->in[0]), xs = cel_node_shape (g, n->in[1]), ws = cel_node_shape (g, n->in[2]);
  cel_shape ys;
  cel_status st = check_geometry (g, xs, ws, n->ip, &ys);
  if (st)
    return st;
  char s1[64], s2[64];
  if (memcmp (&ys, &dys, sizeof ys) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d backward: dy %s does not match the output %s",
                            cel_shape_str (dys, s1), cel_shape_str (ys, s2));
  n->shape = ws;
  return CEL_OK;
}

cel_status conv2d_bwd_weight_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (n->shape);
  conv2d_push p = make_push (n->ip, cel_node_shape (g, n->in[1]), n->shape, cel_node_shape (g, n->in[0]), false, count);
  cel_node bind[3] = { n->in[0], n->in[1], self };
  uint32_t gx = count < 65535 ? (uint32_t) count : 65535, gy = (uint32_t) ((count + gx - 1) / gx);
  return cel_exec_dispatch (ex, CEL_SHADER_CONV2D_BWD_WEIGHT, NULL, 0, bind, 3, &p, sizeof p, gx, gy, 1);
}
