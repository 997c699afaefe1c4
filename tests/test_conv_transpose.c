/* conv_transpose2d: forward, backward (x, w, b) against the double reference and finite differences, over
 * named cases (stride 2 and 3, output padding from the stride and from the dilation, dilation, groups,
 * depthwise, 1x1 kernels and images, bias or none), cases at the edges of the register-blocked kernels (blocks
 * of 8 channels and 8 pixels) and random ones; shape errors. */
#include "conv_transpose_ref.h"
#include "opcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  cel_shape x, w, y;
  bool bias;
  double tol; /* GPU vs reference (opcheck's tol); 0: the default */
  cel_conv_transpose2d_params p;
  conv_transpose2d_ref_params rp;
} convt_case;

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static cel_status build_convt (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const convt_case *c = ud;
  return cel_conv_transpose2d (g, in[0], in[1], c->bias ? in[2] : CEL_NO_NODE, &c->p, out);
}

static void ref_convt (const double *const *in, double *out, const void *ud) {
  const convt_case *c = ud;
  conv_transpose2d_ref_fwd (in[0], rs (c->x), in[1], rs (c->w), c->bias ? in[2] : NULL, &c->rp, out);
}

static void ref_convt_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const convt_case *c = ud;
  if (din[0])
    conv_transpose2d_ref_bwd_data (dy, in[1], rs (c->w), rs (c->x), &c->rp, din[0]);
  if (din[1])
    conv_transpose2d_ref_bwd_weight (dy, in[0], rs (c->x), rs (c->w), &c->rp, din[1]);
  if (c->bias && din[2])
    conv_transpose2d_ref_bwd_bias (dy, rs (c->y), din[2]);
}

/* x (n, ic, h, w), w (ic, oc/groups, kh, kw). */
static convt_case make_case (int32_t n, int32_t ic, int32_t h, int32_t w, int32_t oc, int32_t kh, int32_t kw, bool bias,
                             cel_conv_transpose2d_params p) {
  convt_case c = { .x = { n, ic, h, w }, .bias = bias, .p = p };
  c.rp = (conv_transpose2d_ref_params) { p.stride_h ? p.stride_h : 1, p.stride_w ? p.stride_w : 1, p.pad_h, p.pad_w,
                                         p.output_pad_h, p.output_pad_w, p.dilation_h ? p.dilation_h : 1,
                                         p.dilation_w ? p.dilation_w : 1, p.groups ? p.groups : 1 };
  c.w = (cel_shape) { ic, oc / c.rp.groups, kh, kw };
  ref_shape ys = conv_transpose2d_ref_out_shape (rs (c.x), rs (c.w), &c.rp);
  c.y = (cel_shape) { ys.n, ys.c, ys.h, ys.w };
  return c;
}

static void describe (const convt_case *c) {
  tap_diag ("  x (%d,%d,%d,%d) w (%d,%d,%d,%d) y (%d,%d,%d,%d) stride %dx%d pad %dx%d output_pad %dx%d dilation %dx%d "
            "groups %d%s", c->x.n, c->x.c, c->x.h, c->x.w, c->w.n, c->w.c, c->w.h, c->w.w, c->y.n, c->y.c, c->y.h,
            c->y.w, c->rp.stride_h, c->rp.stride_w, c->rp.pad_h, c->rp.pad_w, c->rp.output_pad_h, c->rp.output_pad_w,
            c->rp.dilation_h, c->rp.dilation_w, c->rp.groups, c->bias ? " bias" : "");
}

/* oc_check skips a gradient it cannot read back (wrong shape): check every gradient's shape here. */
static bool gradient_shapes_match (const convt_case *c) {
  cel_graph *g = NULL;
  cel_node in[3], y, dy;
  cel_shape shapes[3] = { c->x, c->w, { 1, c->y.c, 1, 1 } };
  int n_in = c->bias ? 3 : 2;
  cel_status st = cel_graph_create (oc_context (), &g);
  for (int i = 0; i < n_in && !st; i++)
    st = cel_graph_param (g, NULL, shapes[i], &in[i]);
  if (!st) st = build_convt (g, in, &y, c);
  if (!st) st = cel_graph_input (g, "dy", c->y, &dy);
  if (!st) st = cel_graph_backward (g, y, dy);
  bool ok = !st;
  for (int i = 0; i < n_in && ok; i++) {
    cel_shape gs = { 0, 0, 0, 0 };
    ok = cel_graph_shape (g, cel_graph_grad (g, in[i]), &gs) == CEL_OK && memcmp (&gs, &shapes[i], sizeof gs) == 0;
  }
  cel_graph_destroy (g);
  return ok;
}

static void check_case (const char *name, const convt_case *c, bool w_param) {
  char full[128];
  snprintf (full, sizeof full, "/conv_transpose2d/%s", name);
  oc_spec s = { .name = full, .n_in = c->bias ? 3 : 2, .in_shape = { c->x, c->w, { 1, c->y.c, 1, 1 } },
                .in_param = { false, w_param, w_param }, .in_grad = { true, true, true }, .out_shape = c->y,
                .build = build_convt, .fwd = ref_convt, .bwd = ref_convt_bwd, .ud = c, .tol = c->tol };
  bool ok = oc_check (&s);
  ok &= tap_ok (gradient_shapes_match (c), "%s%s/backward/gradient_shapes", oc_name_prefix, full);
  if (!ok)
    describe (c);
}

#define P(...) ((cel_conv_transpose2d_params) { __VA_ARGS__ })

static void named_cases (void) {
  convt_case c;
  c = make_case (2, 3, 6, 7, 4, 3, 3, true, P (.pad_h = 1, .pad_w = 1));
  check_case ("3x3_pad1", &c, true);
  c = make_case (2, 4, 5, 6, 3, 4, 4, true, P (.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
  check_case ("stride2_kernel4_pad1", &c, true);
  c = make_case (1, 3, 5, 4, 2, 3, 3, false,
                 P (.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_pad_h = 1, .output_pad_w = 1));
  check_case ("stride2_output_pad1_no_bias", &c, false);
  c = make_case (2, 2, 4, 5, 3, 3, 2, true,
                 P (.stride_h = 3, .stride_w = 3, .pad_h = 1, .pad_w = 0, .output_pad_h = 2, .output_pad_w = 1));
  check_case ("stride3_output_pad2", &c, true);
  c = make_case (2, 3, 6, 5, 2, 3, 3, true, P (.dilation_h = 2, .dilation_w = 2, .pad_h = 2, .pad_w = 1));
  check_case ("dilation2", &c, false);
  /* output_pad >= stride is allowed when < dilation: the backward wrt x crops dy. */
  c = make_case (1, 2, 5, 6, 3, 3, 3, true, P (.dilation_h = 2, .dilation_w = 3, .output_pad_h = 1, .output_pad_w = 2));
  check_case ("output_pad_from_dilation", &c, true);
  c = make_case (2, 3, 4, 5, 2, 2, 3, false,
                 P (.stride_h = 2, .stride_w = 1, .dilation_h = 3, .dilation_w = 2, .pad_h = 1, .output_pad_h = 2,
                    .output_pad_w = 1));
  check_case ("output_pad_from_dilation_stride2", &c, false);
  c = make_case (2, 5, 6, 5, 3, 1, 1, true, P (0));
  check_case ("kernel_1x1", &c, false);
  c = make_case (2, 3, 1, 1, 4, 3, 3, true, P (0));
  check_case ("image_1x1", &c, true);
  c = make_case (1, 4, 1, 1, 2, 1, 1, false, P (.stride_h = 2, .stride_w = 2, .output_pad_h = 1, .output_pad_w = 1));
  check_case ("image_1x1_kernel_1x1_output_pad", &c, false);
  c = make_case (2, 4, 5, 6, 6, 3, 3, true, P (.groups = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
  check_case ("groups2_stride2", &c, true);
  c = make_case (2, 6, 5, 4, 6, 4, 4, true, P (.groups = 6, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
  check_case ("depthwise", &c, true);
  c = make_case (1, 4, 4, 5, 8, 3, 5, false, P (.groups = 4, .stride_h = 3, .stride_w = 2, .pad_h = 2, .pad_w = 1,
                                                .output_pad_h = 1, .dilation_w = 2));
  check_case ("depthwise_multiplier2_mixed", &c, false);
  /* Bigger: the weight gradient reduces over 2*16*16 and 1*32*32 positions per workgroup. */
  c = make_case (2, 16, 16, 16, 16, 4, 4, true, P (.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
  check_case ("large_16_to_32_stride2", &c, true);
  c = make_case (1, 16, 32, 32, 8, 3, 3, true, P (.pad_h = 1, .pad_w = 1));
  check_case ("large_32x32x16", &c, true);
}

/* Edges of the blocked kernels: the forward runs conv2d_bwd_data_blocked.comp (8 output channels x 8 pixels, a
 * multiple of the stride, per invocation), the weight gradient conv2d_bwd_weight_blocked.comp (8 input x 8*ICL
 * output channels per workgroup). */
static void blocked_cases (void) {
  convt_case c;
  c = make_case (2, 12, 5, 9, 20, 3, 3, true, P (.pad_h = 1, .pad_w = 1));
  check_case ("blocked/partial_blocks_12_to_20", &c, true);
  c = make_case (1, 10, 6, 7, 9, 4, 4, true,
                 P (.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_pad_h = 1, .output_pad_w = 1));
  check_case ("blocked/stride2_kernel4_output_pad", &c, true);
  c = make_case (2, 9, 5, 6, 11, 3, 3, false, P (.stride_h = 2, .stride_w = 2, .pad_h = 0, .pad_w = 0));
  check_case ("blocked/stride2_pad0", &c, false);
  c = make_case (1, 9, 4, 5, 10, 5, 5, true, P (.stride_h = 3, .stride_w = 3, .pad_h = 2, .pad_w = 1, .output_pad_w = 2));
  check_case ("blocked/stride3_kernel5", &c, true);
  c = make_case (1, 32, 6, 5, 48, 3, 3, true, P (.groups = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1));
  check_case ("blocked/groups2_16_to_24_per_group", &c, true);
  c = make_case (2, 24, 5, 6, 40, 1, 1, true, P (0));
  check_case ("blocked/kernel_1x1_24_to_40", &c, true);
  c = make_case (2, 16, 1, 1, 12, 3, 3, true, P (.stride_h = 2, .stride_w = 2));
  check_case ("blocked/image_1x1_16_to_12", &c, true);
  c = make_case (1, 9, 6, 7, 10, 7, 7, true, P (.pad_h = 3, .pad_w = 3, .dilation_h = 1, .dilation_w = 1));
  check_case ("blocked/7x7_rolled_rows", &c, false);
  c = make_case (1, 10, 5, 6, 9, 3, 3, true, P (.dilation_h = 2, .dilation_w = 3, .pad_h = 1, .pad_w = 2, .output_pad_w = 2));
  check_case ("blocked/dilation_2x3_output_pad", &c, true);
}

static convt_case random_case (void) {
  cel_conv_transpose2d_params p = { 0 };
  int32_t ic, oc, kind = oc_rand_int (0, 2);
  if (kind == 0) {
    p.groups = 1;
    ic = oc_rand_int (1, 8);
    oc = oc_rand_int (1, 8);
  } else if (kind == 1) {
    p.groups = 2;
    ic = 2 * oc_rand_int (1, 4);
    oc = 2 * oc_rand_int (1, 4);
  } else {
    ic = p.groups = oc_rand_int (1, 8);
    oc = ic * oc_rand_int (1, 8 / ic > 1 ? 8 / ic : 1);
  }
  int32_t kh = oc_rand_int (1, 5), kw = oc_rand_int (1, 5);
  p.stride_h = oc_rand_int (1, 3);
  p.stride_w = oc_rand_int (1, 3);
  p.dilation_h = oc_rand_int (1, 2);
  p.dilation_w = oc_rand_int (1, 2);
  int32_t max_oph = (p.stride_h > p.dilation_h ? p.stride_h : p.dilation_h) - 1;
  int32_t max_opw = (p.stride_w > p.dilation_w ? p.stride_w : p.dilation_w) - 1;
  p.output_pad_h = oc_rand_int (0, max_oph);
  p.output_pad_w = oc_rand_int (0, max_opw);
  int32_t h = oc_rand_int (1, 9), w = oc_rand_int (1, 9);
  /* padding that leaves at least one output row and column */
  int32_t full_h = (h - 1) * p.stride_h + p.dilation_h * (kh - 1) + p.output_pad_h + 1;
  int32_t full_w = (w - 1) * p.stride_w + p.dilation_w * (kw - 1) + p.output_pad_w + 1;
  p.pad_h = oc_rand_int (0, (full_h - 1) / 2 < 3 ? (full_h - 1) / 2 : 3);
  p.pad_w = oc_rand_int (0, (full_w - 1) / 2 < 3 ? (full_w - 1) / 2 : 3);
  return make_case (oc_rand_int (1, 2), ic, h, w, oc, kh, kw, oc_rand_int (0, 1), p);
}

/* ---- shape errors ------------------------------------------------------------------------------ */

/* conv_transpose2d of x and w (and a bias of shape bs when bs.n > 0) must fail with INVALID_ARGUMENT naming
 * the op. */
static void expect_error (const char *name, cel_shape xs, cel_shape ws, cel_shape bs, cel_conv_transpose2d_params p) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node x, w, b = CEL_NO_NODE, y = 0;
  cel_status st = cel_graph_create (ctx, &g);
  if (!st)
    st = cel_graph_input (g, "x", xs, &x);
  if (!st)
    st = cel_graph_param (g, "w", ws, &w);
  if (!st && bs.n > 0)
    st = cel_graph_param (g, "b", bs, &b);
  int32_t before = g ? cel_graph_node_count (g) : 0;
  cel_status got = st ? st : cel_conv_transpose2d (g, x, w, b, &p, &y);
  const char *msg = cel_context_last_error (ctx);
  bool ok = !st && got == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "conv_transpose2d") && y == CEL_NO_NODE
            && cel_graph_node_count (g) == before;
  if (!tap_ok (ok, "/conv_transpose2d/errors/%s", name))
    tap_diag ("  status %s, message '%s'", cel_status_string (got), msg);
  else
    tap_diag ("  %s", msg);
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  named_cases ();
  blocked_cases ();
  /* the blocked weight gradient's subgroupShuffle path (GPUs), forced here by the core's test switch */
  if (oc_forced_shuffle_begin ("/conv_transpose2d/subgroup_shuffle")) {
    oc_name_prefix = "subgroup_shuffle";
    blocked_cases ();
    oc_name_prefix = "";
    oc_forced_shuffle_end ();
  }
  for (int i = 0; i < 32; i++) {
    char name[32];
    snprintf (name, sizeof name, "random%d", i);
    convt_case c = random_case ();
    check_case (name, &c, i % 2 == 0);
  }
  /* one output channel: the plain weight gradient, striding by 256 over 4608*4608 positions (82944 strides per
   * invocation, past llvmpipe's cap on loop trips: shaders/common.glsl) */
  convt_case big = make_case (1, 1, 4608, 4608, 1, 2, 2, false, P (0));
  big.tol = 2e-3; /* sums of 21M random products: fp32 keeps them to about 1e-3 (test_conv.c) */
  check_case ("long_reduction", &big, true);
  /* two output channels: conv2d's blocked weight gradient, 786432 pixel blocks in slices of 262144 */
  big = make_case (1, 2, 1536, 2048, 2, 2, 2, false, P (0));
  big.tol = 2e-3;
  check_case ("blocked/long_reduction", &big, true);
  cel_shape none = { 0, 0, 0, 0 };
  expect_error ("channel_mismatch", (cel_shape) { 1, 3, 5, 5 }, (cel_shape) { 4, 2, 3, 3 }, none, P (0));
  expect_error ("groups_not_dividing_input_channels", (cel_shape) { 1, 6, 5, 5 }, (cel_shape) { 6, 1, 3, 3 }, none,
                P (.groups = 4));
  expect_error ("output_pad_not_smaller_than_stride_or_dilation", (cel_shape) { 1, 2, 5, 5 }, (cel_shape) { 2, 2, 3, 3 },
                none, P (.stride_h = 2, .stride_w = 2, .output_pad_h = 2));
  expect_error ("padding_leaves_no_output", (cel_shape) { 1, 2, 1, 1 }, (cel_shape) { 2, 2, 1, 1 }, none,
                P (.pad_h = 1, .pad_w = 1));
  expect_error ("bias_shape", (cel_shape) { 1, 2, 5, 5 }, (cel_shape) { 2, 3, 3, 3 }, (cel_shape) { 1, 2, 1, 1 }, P (0));
  expect_error ("negative_output_padding", (cel_shape) { 1, 2, 5, 5 }, (cel_shape) { 2, 3, 3, 3 }, none,
                P (.output_pad_w = -1));
  return tap_finish ();
}
