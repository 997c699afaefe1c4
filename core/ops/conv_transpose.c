/* conv_transpose2d (PyTorch semantics): forward in gather form, gradient wrt w (one workgroup per weight
 * element reducing over N*H*W), gradient wrt x as a conv2d of dy with the same weight and geometry, bias
 * gradient as a sum_to of dy. The forward is the gather of conv2d's gradient wrt x and the weight gradient that
 * of conv2d's with x and dy swapped: where subgroups are 8 wide or more they run conv2d's register-blocked
 * kernels (conv2d_bwd_data_blocked.comp, conv2d_bwd_weight_blocked.comp).
 * x (N,IC,H,W), w (IC,OC/groups,KH,KW), b (1,OC,1,1), y (N,OC,OH,OW),
 * OH = (H-1)*stride - 2*pad + dilation*(KH-1) + output_pad + 1. */
#include "conv.h"

#include <string.h>

/* ip[] of conv_transpose2d and conv_transpose2d_bwd_weight nodes. */
enum {
  IP_STRIDE_H, IP_STRIDE_W, IP_PAD_H, IP_PAD_W, IP_OUTPUT_PAD_H, IP_OUTPUT_PAD_W, IP_DILATION_H, IP_DILATION_W,
  IP_GROUPS, IP_COUNT
};

/* Mirror of the push block of conv_transpose2d_fwd.comp and conv_transpose2d_bwd_weight.comp. */
typedef struct {
  ivec4_t xshape, yshape; /* (N,IC,H,W), (N,OC,OH,OW) */
  int32_t kernel[2], stride[2], dilation[2], pad[2]; /* (h, w) */
  int32_t groups, has_bias;
  uint32_t count; /* elements written */
} conv_transpose2d_push;
_Static_assert (sizeof (conv_transpose2d_push) == 76, "mirror of conv_transpose2d_*.comp");

static conv_transpose2d_push make_push (const int32_t *ip, cel_shape xs, cel_shape ws, cel_shape ys, bool has_bias,
                                        int64_t count) {
  return (conv_transpose2d_push) { conv_iv (xs), conv_iv (ys), { ws.h, ws.w }, { ip[IP_STRIDE_H], ip[IP_STRIDE_W] },
                                   { ip[IP_DILATION_H], ip[IP_DILATION_W] }, { ip[IP_PAD_H], ip[IP_PAD_W] },
                                   ip[IP_GROUPS], has_bias, (uint32_t) count };
}


/* conv2d's view of this geometry: input `in`, output `out` (zero padding pad at top and left). */
static conv2d_push conv2d_view (const int32_t *ip, cel_shape in, cel_shape ws, cel_shape out, bool has_bias) {
  return (conv2d_push) { conv_iv (in), conv_iv (out), { ws.h, ws.w }, { ip[IP_STRIDE_H], ip[IP_STRIDE_W] },
                         { ip[IP_DILATION_H], ip[IP_DILATION_W] }, { ip[IP_PAD_H], ip[IP_PAD_W] }, ip[IP_GROUPS], 0,
                         has_bias, 0, 0, 0, 0, 0, 1.0f };
}

/* Output pixels per invocation of the blocked kernels for an output width (a multiple of the stride for the
 * gather) and the columns a block reads; both kernels take up to 32 (see conv.c). */
static int32_t pixels_per_invocation (int32_t width, int32_t stride) {
  int32_t px = width >= 8 ? 8 : width >= 4 ? 4 : width >= 2 ? 2 : 1;
  return (px + stride - 1) / stride * stride;
}

static bool blocked_kernels (cel_graph *g, cel_shape ws, const int32_t *ip) {
  int32_t sw = ip[IP_STRIDE_W], dw = ip[IP_DILATION_W];
  return cel_context_device (g->ctx)->subgroup_size >= 8 && ws.w <= 16 && sw <= 8
         && (pixels_per_invocation (8, sw) - 1 + dw * (ws.w - 1)) / sw + 2 <= 32 && 3 * sw + dw * (ws.w - 1) + 1 <= 32;
}

static int64_t out_size (int32_t in, int32_t kernel, int32_t stride, int32_t pad, int32_t dilation, int32_t output_pad) {
  return (int64_t) (in - 1) * stride - 2 * (int64_t) pad + (int64_t) dilation * (kernel - 1) + output_pad + 1;
}

/* Checks x (N,IC,H,W) against w (IC,OC/groups,KH,KW) and the geometry in ip; sets *ys to (N,OC,OH,OW). */
static cel_status check_geometry (cel_graph *g, cel_shape xs, cel_shape ws, const int32_t *ip, cel_shape *ys) {
  char s1[64], s2[64];
  int32_t groups = ip[IP_GROUPS];
  if (groups < 1 || ip[IP_STRIDE_H] < 1 || ip[IP_STRIDE_W] < 1 || ip[IP_DILATION_H] < 1 || ip[IP_DILATION_W] < 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv_transpose2d: stride, dilation and groups must be positive");
  if (xs.c % groups != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: groups %d does not divide the %d input channels of x %s", groups, xs.c,
                            cel_shape_str (xs, s1));
  if (ws.n != xs.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: x %s has %d channels but w %s (IC, OC/groups, KH, KW) expects %d",
                            cel_shape_str (xs, s1), xs.c, cel_shape_str (ws, s2), ws.n);
  int32_t oph = ip[IP_OUTPUT_PAD_H], opw = ip[IP_OUTPUT_PAD_W];
  if ((oph >= ip[IP_STRIDE_H] && oph >= ip[IP_DILATION_H]) || (opw >= ip[IP_STRIDE_W] && opw >= ip[IP_DILATION_W]))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: output padding (%d, %d) must be smaller than the stride (%d, %d) or the "
                            "dilation (%d, %d)", oph, opw, ip[IP_STRIDE_H], ip[IP_STRIDE_W], ip[IP_DILATION_H],
                            ip[IP_DILATION_W]);
  int64_t oh = out_size (xs.h, ws.h, ip[IP_STRIDE_H], ip[IP_PAD_H], ip[IP_DILATION_H], oph);
  int64_t ow = out_size (xs.w, ws.w, ip[IP_STRIDE_W], ip[IP_PAD_W], ip[IP_DILATION_W], opw);
  if (oh < 1 || ow < 1 || oh > INT32_MAX || ow > INT32_MAX)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: x %s with kernel %dx%d, stride (%d, %d), padding (%d, %d) gives an output "
                            "of %lldx%lld", cel_shape_str (xs, s1), ws.h, ws.w, ip[IP_STRIDE_H], ip[IP_STRIDE_W],
                            ip[IP_PAD_H], ip[IP_PAD_W], (long long) oh, (long long) ow);
  *ys = (cel_shape) { xs.n, ws.c * groups, (int32_t) oh, (int32_t) ow };
  return CEL_OK;
}

/* ---- forward: in (x, w, b or none) ------------------------------------------------------------- */

cel_status conv_transpose2d_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]);
  cel_status st = check_geometry (g, xs, ws, n->ip, &n->shape);
  if (st)
    return st;
  /* the blocked kernel's packed weights (conv_transpose2d_record) */
  n->temp = blocked_kernels (g, ws, n->ip)
              ? conv_pack_floats (g, n->ip[IP_GROUPS], ws.c, ws.n / n->ip[IP_GROUPS], ws.h * ws.w, ws.c <= 4 ? 4 : 8)
              : 0;
  if (n->in[2] == CEL_NO_NODE)
    return st;
  cel_shape bs = cel_node_shape (g, n->in[2]);
  char s1[64];
  if (bs.n != 1 || bs.c != n->shape.c || bs.h != 1 || bs.w != 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv_transpose2d: bias %s must be (1, %d, 1, 1)",
                            cel_shape_str (bs, s1), n->shape.c);
  return CEL_OK;
}

cel_status conv_transpose2d_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  bool has_bias = n->in[2] != CEL_NO_NODE;
  int64_t count = cel_shape_count (n->shape);
  conv_transpose2d_push p = make_push (n->ip, cel_node_shape (g, n->in[0]), cel_node_shape (g, n->in[1]), n->shape,
                                       has_bias, count);
  /* Without a bias the shader reads nothing from binding 2; w fills it. */
  cel_node bind[4] = { n->in[0], n->in[1], has_bias ? n->in[2] : n->in[1], self };
  cel_shape xs = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]), ys = n->shape;
  const int32_t *ip = n->ip;
  if (blocked_kernels (g, ws, ip)) {
    /* conv2d's gradient wrt x with y as dx: 8 (or 4) output channels x px pixels per invocation */
    conv2d_push c = conv2d_view (ip, ys, ws, xs, has_bias);
    int32_t sw = ip[IP_STRIDE_W], px = pixels_per_invocation (ys.w, sw), plm = ((ip[IP_PAD_W] % sw) + sw) % sw;
    /* output channels per invocation: 8, or 4 for at most 4 per group (RGB) */
    int32_t icb = ws.c <= 4 ? 4 : 8;
    uint32_t spec[11] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) sw, (uint32_t) ip[IP_DILATION_W], (uint32_t) px,
                          (uint32_t) plm, ws.h * ws.w * px <= 128, (uint32_t) ip[IP_STRIDE_H], 0, 0, (uint32_t) icb };
    int64_t blocks = (int64_t) ys.n * ys.h * ((ys.w + px - 1) / px), wgs = (blocks + 63) / 64;
    uint32_t gx = (uint32_t) (wgs < 65535 ? wgs : 65535), gz = (uint32_t) ((wgs + gx - 1) / gx);
    uint32_t gy = (uint32_t) (ip[IP_GROUPS] * ((ws.c + icb - 1) / icb));
    /* x and the packed weights through texel buffers where the context reads so */
    int64_t pack = conv_pack_floats (g, ip[IP_GROUPS], ws.c, ws.n / ip[IP_GROUPS], ws.h * ws.w, icb);
    cel_bind tbind[5], wp;
    uint32_t n_bind;
    cel_shader_id sh;
    cel_status st = conv_bwd_data_blocked_bind (ex, n->in[0], n->in[1], has_bias ? n->in[2] : CEL_NO_NODE, self,
                                                conv_packed_range (n, self, pack, &wp), ws, ip[IP_GROUPS], icb, &sh,
                                                tbind, &n_bind);
    if (st)
      return st;
    return cel_exec_dispatch_bound (ex, sh, spec, 11, tbind, n_bind, &c, sizeof c, gx, gy, gz);
  }
  /* one invocation per output element */
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONV_TRANSPOSE2D_FWD, bind, 4, &p, sizeof p, count, 256);
}

static int32_t max0 (int32_t v) {
  return v > 0 ? v : 0;
}

cel_status conv_transpose2d_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  const int32_t *ip = n.ip;
  cel_status st = CEL_OK;
  if (need[0]) {
    /* dx = conv2d (dy, w) with zero padding, as a CEL_OP_CONV2D node (its ip[] holds cel_conv2d_params in field
     * order, see conv.c). The bottom/right pads make its output exactly H x W; when output_pad >= stride (allowed
     * when < dilation) they drop below pad and may turn negative: a crop of dy rows only output_pad produced. */
    int32_t pb = ip[IP_PAD_H] - max0 (ip[IP_OUTPUT_PAD_H] - ip[IP_STRIDE_H] + 1);
    int32_t pr = ip[IP_PAD_W] - max0 (ip[IP_OUTPUT_PAD_W] - ip[IP_STRIDE_W] + 1);
    int32_t conv_ip[10] = { ip[IP_STRIDE_H], ip[IP_STRIDE_W], ip[IP_PAD_H], pb, ip[IP_PAD_W], pr,
                            ip[IP_DILATION_H], ip[IP_DILATION_W], ip[IP_GROUPS], CEL_PAD_ZERO };
    cel_node in[3] = { dy, n.in[1], CEL_NO_NODE };
    if ((st = cel_graph_add_op (g, CEL_OP_CONV2D, in, 3, conv_ip, 10, NULL, 0, &dx[0])))
      return st;
  }
  if (need[1]) {
    cel_node in[3] = { n.in[0], dy, n.in[1] };
    if ((st = cel_graph_add_op (g, CEL_OP_CONV_TRANSPOSE2D_BWD_WEIGHT, in, 3, ip, IP_COUNT, NULL, 0, &dx[1])))
      return st;
  }
  if (need[2])
    st = cel_sum_to (g, dy, (cel_shape) { 1, n.shape.c, 1, 1 }, &dx[2]);
  return st;
}

cel_status cel_conv_transpose2d (cel_graph *g, cel_node x, cel_node w, cel_node b, const cel_conv_transpose2d_params *p,
                                 cel_node *out) {
  *out = CEL_NO_NODE;
  cel_status st;
  if ((st = cel_graph_check_node (g, x, false, "conv_transpose2d", "x"))
      || (st = cel_graph_check_node (g, w, false, "conv_transpose2d", "w"))
      || (st = cel_graph_check_node (g, b, true, "conv_transpose2d", "b")))
    return st;
  cel_conv_transpose2d_params d = { 0 };
  if (p)
    d = *p;
  if (d.stride_h < 0 || d.stride_w < 0 || d.dilation_h < 0 || d.dilation_w < 0 || d.groups < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: stride (%d, %d), dilation (%d, %d) and groups %d must be positive "
                            "(0 means 1)", d.stride_h, d.stride_w, d.dilation_h, d.dilation_w, d.groups);
  if (d.pad_h < 0 || d.pad_w < 0 || d.output_pad_h < 0 || d.output_pad_w < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv_transpose2d: padding (%d, %d) and output padding (%d, %d) must not be negative", d.pad_h,
                            d.pad_w, d.output_pad_h, d.output_pad_w);
  int32_t ip[IP_COUNT] = {
    [IP_STRIDE_H] = d.stride_h ? d.stride_h : 1, [IP_STRIDE_W] = d.stride_w ? d.stride_w : 1,
    [IP_PAD_H] = d.pad_h, [IP_PAD_W] = d.pad_w, [IP_OUTPUT_PAD_H] = d.output_pad_h, [IP_OUTPUT_PAD_W] = d.output_pad_w,
    [IP_DILATION_H] = d.dilation_h ? d.dilation_h : 1, [IP_DILATION_W] = d.dilation_w ? d.dilation_w : 1,
    [IP_GROUPS] = d.groups ? d.groups : 1,
  };
  cel_node in[3] = { x, w, b };
  return cel_graph_add_op (g, CEL_OP_CONV_TRANSPOSE2D, in, 3, ip, IP_COUNT, NULL, 0, out);
}

/* ---- gradient wrt w: in (x, dy, w); w only gives the shape -------------------------------------- */

cel_status conv_transpose2d_bwd_weight_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), dys = cel_node_shape (g, n->in[1]), ws = cel_node_shape (g, n->in[2]);
  cel_shape ys;
  cel_status st = check_geometry (g, xs, ws, n->ip, &ys);
  if (st)
    return st;
  char s1[64], s2[64];
  if (memcmp (&ys, &dys, sizeof ys) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv_transpose2d backward: dy %s does not match the output %s",
                            cel_shape_str (dys, s1), cel_shape_str (ys, s2));
  n->shape = ws;
  return CEL_OK;
}

cel_status conv_transpose2d_bwd_weight_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (n->shape);
  conv_transpose2d_push p = make_push (n->ip, cel_node_shape (g, n->in[0]), n->shape, cel_node_shape (g, n->in[1]),
                                       false, count);
  cel_shape xs = cel_node_shape (g, n->in[0]), dys = cel_node_shape (g, n->in[1]), ws = n->shape;
  const int32_t *ip = n->ip;
  if (blocked_kernels (g, ws, ip) && conv_weight_blocked_runs (g) && ws.c > 1) {
    /* conv2d's weight gradient with x as its dy and dy as its input: a tile of 8 x 8*icl channels x kt kernel rows */
    conv2d_push c = conv2d_view (ip, dys, ws, xs, false);
    int32_t kt = 16 / ws.w < ws.h ? 16 / ws.w : ws.h, icl = 16 / (kt * ws.w), icl_max = (ws.c + 7) / 8;
    icl = icl < icl_max ? icl : icl_max;
    int32_t px = xs.w >= 4 ? 4 : xs.w >= 2 ? 2 : 1, groups = ip[IP_GROUPS];
    int64_t tiles = (int64_t) groups * ((ws.n / groups + 7) / 8) * ((ws.c + 8 * icl - 1) / (8 * icl)) * ((ws.h + kt - 1) / kt);
    if (tiles <= 65535) {
      /* no vec4 loads (VEC4_ROWS, PAD_L, DY4 zero); SHUFFLE as conv.c's */
      uint32_t spec[11] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) ip[IP_STRIDE_W], (uint32_t) ip[IP_DILATION_W],
                            (uint32_t) px, (uint32_t) kt, (uint32_t) icl, 0, 0, 0, conv_weight_shuffle (g) };
      cel_node bind[3] = { n->in[0], n->in[1], self };
      /* conv2d's dy here is x: its N*H*ceil(W/px) pixel blocks, in slices as conv.c's */
      int64_t blocks = (int64_t) xs.n * xs.h * ((xs.w + px - 1) / px);
      cel_node tbind[5];
      uint32_t n_bind;
      cel_shader_id sh = conv_pick_reads (ex, CEL_SHADER_CONV2D_BWD_WEIGHT_BLOCKED,
                                          CEL_SHADER_CONV2D_BWD_WEIGHT_BLOCKED_TEXEL, bind, 3, n->in, 2, tbind, &n_bind);
      return conv2d_dispatch_weight_slices (ex, sh, spec, 11, tbind, n_bind, c, blocks, CONV2D_WEIGHT_BLOCKS_BLOCKED,
                                            (uint32_t) tiles);
    }
  }
  /* one workgroup per weight element */
  cel_node bind[3] = { n->in[0], n->in[1], self };
  uint32_t gx = count < 65535 ? (uint32_t) count : 65535, gy = (uint32_t) ((count + gx - 1) / gx);
  return cel_exec_dispatch (ex, CEL_SHADER_CONV_TRANSPOSE2D_BWD_WEIGHT, NULL, 0, bind, 3, &p, sizeof p, gx, gy, 1);
}
