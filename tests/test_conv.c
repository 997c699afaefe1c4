/* conv2d: forward, backward (x, w, b) against the double reference and finite differences, over named cases
 * (1x1 kernels and images, stride 2 and 3, dilation, groups, depthwise, zero/reflect, asymmetric padding,
 * bias or none), cases at the edges of the register-blocked kernels (blocks of 8 channels and 8 pixels, partial
 * blocks, 7x7 with rolled kernel rows, strided gathers, 1x1 rows read as vec4, the per-element fallback) and random
 * ones; the blocked cases again with the other way of reading inputs (texel buffers or storage buffers,
 * cel_context_set_texel_reads) and a check of which forward kernel each runs; shape errors;
 * re-planning after an input shape change. */
#include "conv_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  cel_shape x, w, y;
  bool bias;
  double tol; /* GPU vs reference (opcheck's tol); 0: the default */
  int fuse;    /* an activation fused into the convolution (cel_conv2d_fuse_act): 0 none, 1 relu, 2 leaky relu */
  float alpha; /* the leaky relu's slope */
  cel_conv2d_params p;
  conv2d_ref_params rp;
} conv_case;

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static conv2d_ref_params ref_params (const cel_conv2d_params *p) {
  return (conv2d_ref_params) { p->stride_h ? p->stride_h : 1, p->stride_w ? p->stride_w : 1, p->pad_top, p->pad_bottom,
                               p->pad_left, p->pad_right, p->dilation_h ? p->dilation_h : 1,
                               p->dilation_w ? p->dilation_w : 1, p->groups ? p->groups : 1,
                               p->padding_mode == CEL_PAD_REFLECT };
}

static cel_status build_conv (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const conv_case *c = ud;
  cel_status st = cel_conv2d (g, in[0], in[1], c->bias ? in[2] : CEL_NO_NODE, &c->p, out);
  /* the fused activation must be taken: a refusal fails the case */
  if (!st && c->fuse && !cel_conv2d_fuse_act (g, *out, c->fuse == 1 ? CEL_ACT_RELU : CEL_ACT_LEAKY_RELU, c->alpha))
    return CEL_ERROR_INVALID_ARGUMENT;
  return st;
}

static double act_slope (const conv_case *c, double y) {
  return y > 0 ? 1.0 : c->fuse == 1 ? 0.0 : c->alpha;
}

static void ref_conv (const double *const *in, double *out, const void *ud) {
  const conv_case *c = ud;
  conv2d_ref_fwd (in[0], rs (c->x), in[1], rs (c->w), c->bias ? in[2] : NULL, &c->rp, out);
  if (c->fuse)
    for (int64_t i = 0; i < oc_count (c->y); i++)
      out[i] *= act_slope (c, out[i]);
}

static void ref_conv_bwd (const double *const *in, const double *dy_in, double *const *din, const void *ud) {
  const conv_case *c = ud;
  const double *dy = dy_in;
  double *dya = NULL;
  if (c->fuse) { /* through the activation first, its slope from the convolution's output */
    int64_t ny = oc_count (c->y);
    double *y = malloc ((size_t) ny * sizeof *y);
    dya = malloc ((size_t) ny * sizeof *dya);
    conv2d_ref_fwd (in[0], rs (c->x), in[1], rs (c->w), c->bias ? in[2] : NULL, &c->rp, y);
    for (int64_t i = 0; i < ny; i++)
      dya[i] = dy_in[i] * act_slope (c, y[i]);
    free (y);
    dy = dya;
  }
  if (din[0])
    conv2d_ref_bwd_data (dy, in[1], rs (c->w), rs (c->x), &c->rp, din[0]);
  if (din[1])
    conv2d_ref_bwd_weight (dy, in[0], rs (c->x), rs (c->w), &c->rp, din[1]);
  if (c->bias && din[2])
    conv2d_ref_bwd_bias (dy, rs (c->y), din[2]);
  free (dya);
}

/* x (n, ic, h, w), w (oc, ic/groups, kh, kw). */
static conv_case make_case (int32_t n, int32_t ic, int32_t h, int32_t w, int32_t oc, int32_t kh, int32_t kw, bool bias,
                            cel_conv2d_params p) {
  conv_case c = { .x = { n, ic, h, w }, .bias = bias, .p = p };
  c.rp = ref_params (&p);
  c.w = (cel_shape) { oc, ic / c.rp.groups, kh, kw };
  ref_shape ys = conv2d_ref_out_shape (rs (c.x), rs (c.w), &c.rp);
  c.y = (cel_shape) { ys.n, ys.c, ys.h, ys.w };
  return c;
}

static void describe (const conv_case *c) {
  tap_diag ("  x (%d,%d,%d,%d) w (%d,%d,%d,%d) y (%d,%d,%d,%d) stride %dx%d pad t%d b%d l%d r%d dilation %dx%d groups %d "
            "%s%s", c->x.n, c->x.c, c->x.h, c->x.w, c->w.n, c->w.c, c->w.h, c->w.w, c->y.n, c->y.c, c->y.h, c->y.w,
            c->rp.stride_h, c->rp.stride_w, c->rp.pad_top, c->rp.pad_bottom, c->rp.pad_left, c->rp.pad_right,
            c->rp.dilation_h, c->rp.dilation_w, c->rp.groups, c->rp.reflect ? "reflect" : "zero",
            c->bias ? " bias" : "");
}

/* oc_check skips a gradient it cannot read back (wrong shape): check every gradient's shape here. */
static bool gradient_shapes_match (const conv_case *c) {
  cel_graph *g = NULL;
  cel_node in[3], y, dy;
  cel_shape shapes[3] = { c->x, c->w, { 1, c->y.c, 1, 1 } };
  int n_in = c->bias ? 3 : 2;
  cel_status st = cel_graph_create (oc_context (), &g);
  for (int i = 0; i < n_in && !st; i++)
    st = cel_graph_param (g, NULL, shapes[i], &in[i]);
  if (!st) st = build_conv (g, in, &y, c);
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

/* Prefix of the case names: "" first, then the way of reading inputs of the second pass over the blocked cases. */
static const char *case_prefix = "";
static bool skip_long_cases;

static void check_case (const char *name, const conv_case *c, bool w_param) {
  char full[160];
  snprintf (full, sizeof full, "/conv2d/%s%s", case_prefix, name);
  oc_spec s = { .name = full, .n_in = c->bias ? 3 : 2, .in_shape = { c->x, c->w, { 1, c->w.n, 1, 1 } },
                .in_param = { false, w_param, w_param }, .in_grad = { true, true, true }, .out_shape = c->y,
                .build = build_conv, .fwd = ref_conv, .bwd = ref_conv_bwd, .ud = c, .tol = c->tol,
                /* a fused relu's kink: a small step keeps the probes from crossing it (the reference is double) */
                .fd_eps = c->fuse ? 1e-7 : 0 };
  bool ok = oc_check (&s);
  ok &= tap_ok (gradient_shapes_match (c), "%s/backward/gradient_shapes", full);
  if (!ok)
    describe (c);
}

#define P(...) ((cel_conv2d_params) { __VA_ARGS__ })

static void named_cases (void) {
  conv_case c;
  c = make_case (2, 3, 7, 9, 4, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("3x3_same_zero", &c, true);
  c = make_case (2, 5, 6, 5, 3, 1, 1, true, P (0));
  check_case ("kernel_1x1", &c, false);
  c = make_case (2, 3, 1, 1, 2, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("image_1x1_kernel_3x3_zero", &c, false);
  c = make_case (1, 4, 1, 1, 3, 1, 1, false, P (.padding_mode = CEL_PAD_REFLECT));
  check_case ("image_1x1_kernel_1x1", &c, true);
  c = make_case (2, 3, 9, 8, 4, 3, 3, true,
                 P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("stride2_reflect", &c, true);
  c = make_case (1, 2, 13, 11, 3, 4, 3, false,
                 P (.stride_h = 3, .stride_w = 3, .pad_top = 2, .pad_bottom = 1, .pad_left = 0, .pad_right = 2));
  check_case ("stride3_zero_no_bias", &c, false);
  c = make_case (2, 3, 11, 10, 2, 3, 3, true,
                 P (.dilation_h = 2, .dilation_w = 2, .pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2));
  check_case ("dilation2_zero", &c, true);
  c = make_case (1, 2, 9, 7, 3, 3, 2, true,
                 P (.dilation_h = 2, .dilation_w = 2, .pad_top = 2, .pad_bottom = 1, .pad_left = 2, .pad_right = 3,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("dilation2_reflect", &c, false);
  c = make_case (2, 4, 8, 9, 6, 3, 3, true, P (.groups = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("groups2", &c, true);
  c = make_case (2, 6, 9, 10, 6, 3, 3, true,
                 P (.groups = 6, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("depthwise_reflect", &c, true);
  c = make_case (1, 4, 11, 9, 8, 5, 3, false, P (.groups = 4, .stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 1));
  check_case ("depthwise_multiplier2_stride2", &c, false);
  c = make_case (2, 3, 7, 8, 2, 3, 4, true, P (.pad_top = 0, .pad_bottom = 2, .pad_left = 3, .pad_right = 1));
  check_case ("asymmetric_padding_zero", &c, true);
  c = make_case (2, 3, 6, 7, 2, 3, 3, false,
                 P (.pad_top = 2, .pad_bottom = 0, .pad_left = 1, .pad_right = 3, .padding_mode = CEL_PAD_REFLECT));
  check_case ("asymmetric_padding_reflect", &c, false);
  /* Reflect padding of size H-1: both mirror images of interior rows fold back. */
  c = make_case (1, 2, 4, 3, 2, 3, 3, true,
                 P (.pad_top = 3, .pad_bottom = 3, .pad_left = 2, .pad_right = 2, .padding_mode = CEL_PAD_REFLECT));
  check_case ("reflect_padding_of_size_minus_one", &c, true);
  c = make_case (1, 3, 12, 13, 8, 7, 7, true,
                 P (.pad_top = 3, .pad_bottom = 3, .pad_left = 3, .pad_right = 3, .padding_mode = CEL_PAD_REFLECT));
  check_case ("7x7_reflect3", &c, true);
  c = make_case (2, 4, 10, 9, 4, 3, 3, true,
                 P (.groups = 2, .stride_h = 2, .stride_w = 3, .dilation_h = 2, .dilation_w = 1, .pad_top = 2,
                    .pad_bottom = 1, .pad_left = 1, .pad_right = 2, .padding_mode = CEL_PAD_REFLECT));
  check_case ("groups2_stride_dilation_reflect", &c, false);
  /* Bigger: the weight gradient reduces over 2*32*32 positions per workgroup. */
  c = make_case (2, 16, 32, 32, 16, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("large_32x32x16_reflect", &c, true);
  c = make_case (1, 16, 33, 31, 8, 4, 4, true,
                 P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("large_stride2_zero", &c, true);
}

/* Edges of the blocked kernels (conv2d_*_blocked.comp, conv2d_*_depthwise.comp): each invocation computes 8 output
 * channels (or input channels for the gradient wrt x) x 8 adjacent pixels (fewer for narrow outputs; a multiple of
 * the stride for the gradient wrt x), a weight-gradient workgroup 8 x 8*ICL channels. */
static void blocked_cases (void) {
  conv_case c;
  /* widths 19 and 13 end in partial pixel blocks; 20 and 12 channels in partial channel blocks */
  c = make_case (2, 12, 5, 19, 20, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("blocked/partial_blocks_zero", &c, true);
  c = make_case (1, 20, 7, 13, 12, 3, 3, false,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/partial_blocks_reflect", &c, true);
  /* 1x1: the weight gradient gives each lane 5 input channels (a tile of 8 x 40) */
  c = make_case (2, 40, 6, 7, 24, 1, 1, true, P (0));
  check_case ("blocked/kernel_1x1_40_to_24", &c, true);
  /* 1x1, stride 1 along w, no padding along w, width a multiple of 4: rows read as vec4. Width 12 (not a
   * multiple of 8): 4 pixels per invocation, as width 4; width 16: 8; rows padded (zero, reflect) and strided.
   * With padding on the right the rows are read one float at a time (output wider than x). */
  c = make_case (2, 13, 5, 12, 10, 1, 1, true, P (.stride_h = 2, .pad_top = 1, .pad_bottom = 2));
  check_case ("blocked/kernel_1x1_vec4_rows_width12_rows_padded", &c, true);
  c = make_case (1, 6, 3, 4, 18, 1, 1, false, P (.groups = 2, .pad_top = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/kernel_1x1_vec4_rows_width4_groups2_reflect", &c, true);
  c = make_case (2, 9, 2, 16, 17, 1, 1, true, P (0));
  check_case ("blocked/kernel_1x1_vec4_rows_width16", &c, true);
  c = make_case (1, 5, 3, 8, 9, 1, 1, true, P (.pad_right = 2, .pad_bottom = 1));
  check_case ("blocked/kernel_1x1_width8_pad_right", &c, true);
  /* stride 1, the width a multiple of 4: the middle px columns of a block read as vec4, the padding sides one
   * by one (PAD_L 0 .. DW*(KW-1)) */
  c = make_case (2, 5, 6, 16, 9, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/vec4_rows_3x3_reflect_width16", &c, true);
  c = make_case (1, 4, 5, 12, 10, 3, 3, false, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("blocked/vec4_rows_3x3_zero_width12", &c, true);
  c = make_case (1, 3, 9, 16, 8, 7, 7, true,
                 P (.pad_top = 3, .pad_bottom = 3, .pad_left = 3, .pad_right = 3, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/vec4_rows_7x7_reflect3", &c, true);
  c = make_case (2, 3, 7, 8, 5, 3, 3, true,
                 P (.dilation_h = 2, .dilation_w = 2, .pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/vec4_rows_dilation2_reflect", &c, true);
  c = make_case (1, 6, 5, 12, 7, 3, 3, true, P (0));
  check_case ("blocked/vec4_rows_3x3_valid", &c, true);
  c = make_case (1, 4, 6, 8, 9, 3, 3, false, P (.pad_top = 1, .pad_left = 2, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/vec4_rows_pad_left2_right0", &c, true);
  c = make_case (2, 3, 4, 20, 6, 1, 5, true, P (.pad_right = 4));
  check_case ("blocked/vec4_rows_pad_left0_right4", &c, true);
  c = make_case (1, 4, 6, 8, 5, 3, 3, true, P (.pad_top = 1, .pad_left = 3, .pad_right = 0));
  check_case ("blocked/pad_left_past_kernel_no_vec4", &c, true);
  /* two groups of 16 input and 24 output channels */
  c = make_case (1, 32, 9, 10, 48, 3, 3, true,
                 P (.groups = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/groups2_16_to_24_per_group", &c, false);
  /* stride 2: the gradient wrt x takes dy columns by parity of pad_left + pixel - tap (pad_left 0, 1 and 3) */
  c = make_case (2, 9, 11, 17, 10, 3, 3, true, P (.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1,
                                                  .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/stride2_pad_left0_reflect", &c, true);
  c = make_case (1, 10, 12, 21, 9, 3, 3, false, P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1,
                                                   .pad_left = 1, .pad_right = 1));
  check_case ("blocked/stride2_pad_left1_zero", &c, true);
  c = make_case (1, 8, 9, 15, 16, 5, 4, true, P (.stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 3, .pad_right = 1,
                                                 .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/stride2_pad_left3_kernel5x4", &c, false);
  /* stride 3: 9 pixels per invocation in the gradient wrt x */
  c = make_case (2, 11, 13, 25, 9, 3, 5, true, P (.stride_h = 3, .stride_w = 3, .pad_top = 2, .pad_left = 2, .pad_right = 1));
  check_case ("blocked/stride3", &c, true);
  c = make_case (1, 9, 12, 18, 10, 3, 3, true,
                 P (.dilation_h = 2, .dilation_w = 3, .pad_top = 2, .pad_bottom = 2, .pad_left = 3, .pad_right = 3,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/dilation_2x3_reflect", &c, true);
  /* 7x7: kernel rows in a loop (not unrolled); the weight gradient tiles 2 kernel rows */
  c = make_case (1, 9, 11, 13, 10, 7, 7, true,
                 P (.pad_top = 3, .pad_bottom = 3, .pad_left = 3, .pad_right = 3, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/7x7_reflect_rolled_rows", &c, true);
  /* 1x1 images and narrow outputs: 1, 2 and 4 pixels per invocation */
  c = make_case (2, 16, 1, 1, 12, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("blocked/image_1x1_16_to_12", &c, true);
  c = make_case (3, 10, 3, 3, 9, 3, 3, false,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/width3_reflect", &c, true);
  c = make_case (1, 9, 6, 5, 11, 1, 3, true, P (.pad_left = 1, .pad_right = 1));
  check_case ("blocked/width5_kernel1x3", &c, true);
  /* depthwise: 4 x 8 pixels per invocation; the gradient wrt x is the rotated-kernel depthwise convolution at
   * stride 1 (multiplier 1), the blocked gather otherwise */
  c = make_case (2, 16, 9, 19, 16, 3, 3, true,
                 P (.groups = 16, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/depthwise_16_reflect", &c, true);
  c = make_case (1, 10, 11, 13, 10, 5, 5, false,
                 P (.groups = 10, .dilation_h = 2, .dilation_w = 2, .pad_top = 4, .pad_bottom = 3, .pad_left = 2, .pad_right = 4));
  check_case ("blocked/depthwise_5x5_dilation2_zero", &c, true);
  c = make_case (2, 12, 13, 15, 12, 3, 3, true,
                 P (.groups = 12, .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                    .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/depthwise_stride2_reflect", &c, false);
  c = make_case (1, 5, 7, 9, 15, 3, 3, true, P (.groups = 5, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("blocked/depthwise_multiplier3", &c, true);
  c = make_case (1, 3, 10, 11, 3, 7, 7, true,
                 P (.groups = 3, .pad_top = 3, .pad_bottom = 3, .pad_left = 3, .pad_right = 3, .padding_mode = CEL_PAD_REFLECT));
  check_case ("blocked/depthwise_7x7_reflect", &c, true);
  /* Long reductions: each subgroup of the weight gradient sums 2*1536*2048/8/8 = 98304 blocks of 8 pixels (PX 8),
   * past the 65535 iterations at which llvmpipe stops a shader loop; the depthwise one 2*1536*2048/4/8/64 per
   * invocation. One input channel keeps the C reference fast. */
  if (skip_long_cases)
    return;
  c = make_case (1, 2, 1536, 2048, 2, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  /* sums of millions of random products that cancel to O(1) (partial sums near sqrt(n)/3, about 600): fp32 keeps
   * them to about 1e-3 of the result */
  c.tol = 2e-3;
  check_case ("blocked/long_reduction_6M_pixels", &c, true);
  /* depthwise: 4.8M blocks of 4 pixels, 75000 per invocation without slices */
  c = make_case (1, 1, 4800000, 4, 1, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  c.tol = 2e-3;
  check_case ("blocked/depthwise_long_reduction", &c, true);
  /* a dilated row of 37 columns: more than the blocked kernels hold, one invocation per element */
  c = make_case (1, 3, 6, 40, 9, 2, 5, true, P (.dilation_w = 9, .pad_top = 1));
  check_case ("fallback/dilation9_kernel2x5", &c, true);
  /* the plain weight gradient striding by 256 over 4608*4608 positions: 82944 strides per invocation */
  c = make_case (1, 1, 4608, 4608, 1, 1, 5, false, P (.dilation_w = 9, .pad_left = 18, .pad_right = 18));
  c.tol = 2e-3;
  check_case ("fallback/long_reduction", &c, true);
}

/* Winograd F(4x4, 3x3) (3x3, stride 1, one group; taken from 32 channels on, from 1 with CELGAN_WINOGRAD=1): partial
 * tiles at the right and bottom, chunks of 8 tiles (CELGAN_WINOGRAD_TILES=8) with a partial last chunk, widths that
 * are and are not multiples of 4 (tile rows stored as vec4 or one by one), reflect padding reaching far, valid
 * convolutions, batches. */
static void winograd_cases (void) {
  conv_case c;
  c = make_case (1, 3, 7, 9, 5, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("winograd/partial_tiles_reflect", &c, true);
  c = make_case (2, 4, 10, 13, 6, 3, 3, false, P (.pad_bottom = 2, .pad_left = 1));
  check_case ("winograd/two_chunks_asymmetric_zero_width12", &c, true);
  c = make_case (1, 5, 6, 6, 3, 3, 3, true, P (0));
  check_case ("winograd/valid_one_tile", &c, false);
  c = make_case (2, 3, 9, 17, 4, 3, 3, true,
                 P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  check_case ("winograd/two_chunks_batch2_width17", &c, true);
  c = make_case (1, 2, 4, 3, 2, 3, 3, true,
                 P (.pad_top = 3, .pad_bottom = 3, .pad_left = 2, .pad_right = 2, .padding_mode = CEL_PAD_REFLECT));
  check_case ("winograd/reflect_padding_of_size_minus_one", &c, true);
  c = make_case (1, 33, 12, 16, 32, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  check_case ("winograd/33_to_32_width16", &c, false);
}

/* A relu or leaky relu fused into the convolution's kernel (cel_conv2d_fuse_act): Winograd (16 -> 16 3x3), the
 * blocked forward (1x1, 5x5 stride 2, a 3x3 of 3 channels), forward and backward against the reference. */
static void fused_cases (void) {
  conv_case c;
  c = make_case (1, 32, 9, 12, 32, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                                                  .padding_mode = CEL_PAD_REFLECT));
  c.fuse = 2;
  c.alpha = 0.2f;
  check_case ("fuse_act/leaky_winograd_32", &c, true);
  c = make_case (2, 5, 6, 8, 9, 1, 1, false, P (0));
  c.fuse = 1;
  check_case ("fuse_act/relu_1x1", &c, true);
  c = make_case (1, 4, 11, 13, 6, 5, 5, true, P (.stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 2));
  c.fuse = 2;
  c.alpha = 0.1f;
  check_case ("fuse_act/leaky_5x5_stride2", &c, true);
  c = make_case (1, 3, 7, 9, 3, 3, 3, true, P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  c.fuse = 1;
  check_case ("fuse_act/relu_3x3_rgb", &c, false);
}

/* What cel_conv2d_fuse_act refuses, leaving the graph as it was: activations whose slope hides the side of zero,
 * other ops, depthwise convolutions (their own kernel), convolutions that something else reads or that are
 * outputs, fusing twice, and after the backward. */
static void test_fuse_refusals (void) {
  cel_graph *g = NULL;
  cel_node x, w, wd, y, yd, z, a;
  cel_conv2d_params p = { .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1 };
  cel_conv2d_params pd = { .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 4 };
  bool ok = cel_graph_create (oc_context (), &g) == CEL_OK && cel_graph_input (g, "x", (cel_shape) { 1, 4, 8, 8 }, &x) == CEL_OK &&
            cel_graph_param (g, "w", (cel_shape) { 4, 4, 3, 3 }, &w) == CEL_OK &&
            cel_graph_param (g, "wd", (cel_shape) { 4, 1, 3, 3 }, &wd) == CEL_OK &&
            cel_conv2d (g, x, w, CEL_NO_NODE, &p, &y) == CEL_OK && cel_conv2d (g, x, wd, CEL_NO_NODE, &pd, &yd) == CEL_OK;
  ok = ok && !cel_conv2d_fuse_act (g, y, CEL_ACT_TANH, 0) && !cel_conv2d_fuse_act (g, y, CEL_ACT_SIGMOID, 0);
  ok = ok && !cel_conv2d_fuse_act (g, y, CEL_ACT_LEAKY_RELU, 0) && !cel_conv2d_fuse_act (g, y, CEL_ACT_LEAKY_RELU, -0.5f);
  ok = ok && !cel_conv2d_fuse_act (g, x, CEL_ACT_RELU, 0) && !cel_conv2d_fuse_act (g, yd, CEL_ACT_RELU, 0);
  ok = ok && cel_activate (g, y, CEL_ACT_TANH, 0, &z) == CEL_OK && !cel_conv2d_fuse_act (g, y, CEL_ACT_RELU, 0);
  cel_node v, u;
  ok = ok && cel_conv2d (g, z, w, CEL_NO_NODE, &p, &v) == CEL_OK && cel_graph_mark_output (g, v) == CEL_OK &&
       !cel_conv2d_fuse_act (g, v, CEL_ACT_RELU, 0);
  ok = ok && cel_conv2d (g, z, w, CEL_NO_NODE, &p, &u) == CEL_OK && cel_conv2d_fuse_act (g, u, CEL_ACT_LEAKY_RELU, 0.2f) &&
       !cel_conv2d_fuse_act (g, u, CEL_ACT_RELU, 0);
  ok = ok && cel_conv2d (g, u, w, CEL_NO_NODE, &p, &a) == CEL_OK && cel_sum_to (g, a, (cel_shape) { 1, 1, 1, 1 }, &z) == CEL_OK &&
       cel_graph_backward (g, z, CEL_NO_NODE) == CEL_OK && !cel_conv2d_fuse_act (g, a, CEL_ACT_RELU, 0);
  tap_ok (ok, "/conv2d/fuse_act/refusals");
  cel_graph_destroy (g);
}

/* Winograd for every 3x3 stride-1 convolution of one group, in chunks of 8 tiles (the core's test switches). */
static void winograd_forced (bool on) {
  if (on) {
    setenv ("CELGAN_WINOGRAD", "1", 1);
    setenv ("CELGAN_WINOGRAD_TILES", "8", 1);
  } else {
    unsetenv ("CELGAN_WINOGRAD");
    unsetenv ("CELGAN_WINOGRAD_TILES");
  }
}

static conv_case random_case (void) {
  cel_conv2d_params p = { 0 };
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
  p.pad_top = oc_rand_int (0, 3);
  p.pad_bottom = oc_rand_int (0, 3);
  p.pad_left = oc_rand_int (0, 3);
  p.pad_right = oc_rand_int (0, 3);
  p.padding_mode = oc_rand_int (0, 1) ? CEL_PAD_REFLECT : CEL_PAD_ZERO;
  int32_t lo_h = p.dilation_h * (kh - 1) + 1 - p.pad_top - p.pad_bottom;
  int32_t lo_w = p.dilation_w * (kw - 1) + 1 - p.pad_left - p.pad_right;
  if (p.padding_mode == CEL_PAD_REFLECT) {
    int32_t mh = (p.pad_top > p.pad_bottom ? p.pad_top : p.pad_bottom) + 1;
    int32_t mw = (p.pad_left > p.pad_right ? p.pad_left : p.pad_right) + 1;
    lo_h = lo_h > mh ? lo_h : mh;
    lo_w = lo_w > mw ? lo_w : mw;
  }
  int32_t h = oc_rand_int (lo_h > 1 ? lo_h : 1, 17), w = oc_rand_int (lo_w > 1 ? lo_w : 1, 17);
  return make_case (oc_rand_int (1, 2), ic, h, w, oc, kh, kw, oc_rand_int (0, 1), p);
}

/* ---- shape errors ------------------------------------------------------------------------------ */

/* conv2d of x and w (and a bias of shape bs when bs.n > 0) must fail with INVALID_ARGUMENT naming conv2d. */
static void expect_error (const char *name, cel_shape xs, cel_shape ws, cel_shape bs, cel_conv2d_params p) {
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
  cel_status got = st ? st : cel_conv2d (g, x, w, b, &p, &y);
  const char *msg = cel_context_last_error (ctx);
  bool ok = !st && got == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "conv2d") && y == CEL_NO_NODE
            && cel_graph_node_count (g) == before;
  if (!tap_ok (ok, "/conv2d/errors/%s", name))
    tap_diag ("  status %s, message '%s'", cel_status_string (got), msg);
  else
    tap_diag ("  %s", msg);
  cel_graph_destroy (g);
}

/* A reflect-padded conv accepted for one input shape is refused at planning after the input shrinks. */
static void test_error_at_replan (void) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node x, w, y;
  cel_conv2d_params p = { .pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2, .padding_mode = CEL_PAD_REFLECT };
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 2, 8, 8 }, &x);
  if (!st) st = cel_graph_param (g, "w", (cel_shape) { 3, 2, 3, 3 }, &w);
  if (!st) st = cel_conv2d (g, x, w, CEL_NO_NODE, &p, &y);
  if (!st) st = cel_graph_mark_output (g, y);
  if (!st) st = cel_graph_set_input_shape (g, x, (cel_shape) { 1, 2, 2, 8 });
  cel_status got = st ? st : cel_graph_plan (g);
  const char *msg = cel_context_last_error (ctx);
  if (!tap_ok (!st && got == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "conv2d"), "/conv2d/errors/reflect_padding_at_replan"))
    tap_diag ("  status %s, message '%s'", cel_status_string (got), msg);
  cel_graph_destroy (g);
}

/* ---- re-planning: gradients follow a new input shape ------------------------------------------- */

static float *random_floats (int64_t n, double **as_double) {
  float *f = malloc ((size_t) n * sizeof *f);
  *as_double = malloc ((size_t) n * sizeof **as_double);
  for (int64_t i = 0; i < n; i++)
    (*as_double)[i] = f[i] = (float) oc_rand_uniform (-1, 1);
  return f;
}

static bool close_all (const float *got, const double *want, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabs (got[i] - want[i]) <= 1e-4 * (1 + fabs (want[i]))))
      return false;
  return true;
}

static void test_replan_new_input_shape (void) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node x, w, dy, y;
  cel_conv2d_params p = { .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 2, .pad_left = 2, .pad_right = 1,
                          .padding_mode = CEL_PAD_REFLECT };
  conv2d_ref_params rp = ref_params (&p);
  cel_shape ws = { 4, 3, 3, 3 }, shapes[2] = { { 1, 3, 9, 8 }, { 2, 3, 12, 15 } };
  double *wd;
  float *wf = random_floats (oc_count (ws), &wd);
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", shapes[0], &x);
  if (!st) st = cel_graph_set_requires_grad (g, x, true);
  if (!st) st = cel_graph_param (g, "w", ws, &w);
  if (!st) st = cel_graph_set_data (g, w, wf, (size_t) oc_count (ws));
  if (!st) st = cel_conv2d (g, x, w, CEL_NO_NODE, &p, &y);
  cel_shape ys = { 0 };
  if (!st) st = cel_graph_shape (g, y, &ys);
  if (!st) st = cel_graph_input (g, "dy", ys, &dy);
  if (!st) st = cel_graph_backward (g, y, dy);
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, x));
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, w));
  bool ok = !st;
  for (int k = 0; k < 2 && ok; k++) {
    cel_shape xs = shapes[k];
    ref_shape ys_ref = conv2d_ref_out_shape (rs (xs), rs (ws), &rp);
    cel_shape ysk = { ys_ref.n, ys_ref.c, ys_ref.h, ys_ref.w };
    int64_t nx = oc_count (xs), ny = oc_count (ysk), nw = oc_count (ws);
    double *xd, *dyd, *dx_ref = malloc ((size_t) nx * sizeof *dx_ref), *dw_ref = malloc ((size_t) nw * sizeof *dw_ref);
    float *xf = random_floats (nx, &xd), *dyf = random_floats (ny, &dyd);
    float *dx = malloc ((size_t) nx * sizeof *dx), *dw = malloc ((size_t) nw * sizeof *dw);
    st = cel_graph_set_input_shape (g, x, xs);
    if (!st) st = cel_graph_set_input_shape (g, dy, ysk);
    if (!st) st = cel_graph_set_data (g, x, xf, (size_t) nx);
    if (!st) st = cel_graph_set_data (g, dy, dyf, (size_t) ny);
    if (!st) st = cel_graph_run (g);
    if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, x), dx, (size_t) nx);
    if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, w), dw, (size_t) nw);
    if (!st) {
      conv2d_ref_bwd_data (dyd, wd, rs (ws), rs (xs), &rp, dx_ref);
      conv2d_ref_bwd_weight (dyd, xd, rs (xs), rs (ws), &rp, dw_ref);
    }
    ok = !st && close_all (dx, dx_ref, nx) && close_all (dw, dw_ref, nw);
    free (xd);
    free (dyd);
    free (dx_ref);
    free (dw_ref);
    free (xf);
    free (dyf);
    free (dx);
    free (dw);
  }
  if (!tap_ok (ok, "/conv2d/backward/follows_new_input_shape") && st)
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (ctx));
  free (wf);
  free (wd);
  cel_graph_destroy (g);
}

/* The shaders a c -> c 3x3 convolution of a 16x20 image ran (profile; with fuse, a leaky relu fused into it), or NULL
 * where the device has no timestamps. */
static char *forward_profile (int32_t c, bool fuse) {
  cel_context *ctx = oc_context ();
  if (c > 32)
    return strdup ("(too many channels)");
  if (!oc_profile_begin ())
    return NULL;
  cel_graph *g = NULL;
  cel_node x, w, y;
  cel_conv2d_params p = { .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT };
  /* zeros, at least c * 16 * 20 (x) and c * c * 9 (w) for c up to 32 (it once held only the second: ASan caught
   * x's upload reading past it) */
  static float data[32 * 16 * 20 > 32 * 32 * 9 ? 32 * 16 * 20 : 32 * 32 * 9];
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, c, 16, 20 }, &x);
  if (!st) st = cel_graph_param (g, "w", (cel_shape) { c, c, 3, 3 }, &w);
  if (!st) st = cel_conv2d (g, x, w, CEL_NO_NODE, &p, &y);
  if (!st && fuse && !cel_conv2d_fuse_act (g, y, CEL_ACT_LEAKY_RELU, 0.2f))
    st = CEL_ERROR_INVALID_ARGUMENT;
  if (!st) st = cel_graph_mark_output (g, y);
  if (!st) st = cel_graph_set_data (g, x, data, (size_t) c * 16 * 20);
  if (!st) st = cel_graph_set_data (g, w, data, (size_t) c * c * 3 * 3);
  if (!st) st = cel_graph_run (g);
  char *report = oc_profile_take ();
  if (st)
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (ctx));
  cel_graph_destroy (g);
  return st ? (free (report), strdup ("(failed)")) : report;
}

/* A 32 -> 32 3x3 convolution runs as Winograd (its three transforms' kernels and the blocked products), and
 * directly with CELGAN_WINOGRAD=0; with a fused leaky relu both run no activation kernel. */
static void test_winograd_taken (void) {
  char *on = forward_profile (32, true);
  if (!on) {
    tap_skip ("no timestamps on this device", "/conv2d/winograd/taken");
    return;
  }
  setenv ("CELGAN_WINOGRAD", "0", 1);
  char *off = forward_profile (32, true);
  unsetenv ("CELGAN_WINOGRAD");
  bool ok = strstr (on, "winograd_weight") && strstr (on, "winograd_input") && strstr (on, "winograd_output") &&
            strstr (on, "conv2d_fwd_blocked") && off && !strstr (off, "winograd") && strstr (off, "conv2d_fwd_blocked") &&
            !strstr (on, "activate") && !strstr (off, "activate");
  if (!tap_ok (ok, "/conv2d/winograd/taken"))
    tap_diag ("  profile:\n%s\n  with CELGAN_WINOGRAD=0:\n%s", on, off ? off : "(none)");
  free (on);
  free (off);
}

/* The profile times every dispatch: a Winograd convolution in chunks of 8 tiles over a 64x64 image records 97
 * dispatches for one op (the profile once had room for 16 per op and left the rest out). */
static void test_profile_counts_every_dispatch (void) {
  cel_context *ctx = oc_context ();
  if (!oc_profile_begin ()) {
    tap_skip ("no timestamps on this device", "/conv2d/winograd/profile_counts_every_dispatch");
    return;
  }
  winograd_forced (true);
  cel_graph *g = NULL;
  cel_node x, w, y;
  cel_conv2d_params p = { .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1 };
  cel_plan_stats ps = { 0 };
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 2, 64, 64 }, &x);
  if (!st) st = cel_graph_param (g, "w", (cel_shape) { 2, 2, 3, 3 }, &w);
  if (!st) st = cel_conv2d (g, x, w, CEL_NO_NODE, &p, &y);
  if (!st) st = cel_graph_mark_output (g, y);
  static float data[2 * 64 * 64];
  if (!st) st = cel_graph_set_data (g, x, data, 2 * 64 * 64);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_plan_stats (g, &ps);
  winograd_forced (false);
  char *report = oc_profile_take ();
  long total = 0;
  for (const char *line = report; line && *line; line = strchr (line, '\n') ? strchr (line, '\n') + 1 : "") {
    char name[64];
    long count;
    if (sscanf (line, "%63s %ld", name, &count) == 2 && strcmp (name, "all") != 0)
      total += count;
  }
  if (!tap_ok (!st && ps.dispatches == 97 && total == (long) ps.dispatches, "/conv2d/winograd/profile_counts_every_dispatch"))
    tap_diag ("  %s %s; %u dispatches planned, %ld in the profile:\n%s", cel_status_string (st),
              st ? cel_context_last_error (ctx) : "", ps.dispatches, total, report ? report : "(none)");
  free (report);
  cel_graph_destroy (g);
}

/* Which forward kernel a 3x3 convolution ran, from the profile: the texel-buffer variant exactly when the context
 * reads through texel buffers. */
static void test_forward_kernel_follows_reads (void) {
  bool texel = cel_context_texel_reads (oc_context ());
  char *report = forward_profile (8, false);
  if (!report) {
    tap_skip ("no timestamps on this device", "/conv2d/forward_kernel_follows_reads/%s", texel ? "texel" : "storage");
    return;
  }
  bool ran_texel = strstr (report, "conv2d_fwd_blocked_texel");
  bool ran_storage = strstr (report, "conv2d_fwd_blocked ");
  if (!tap_ok (ran_texel == texel && ran_storage == !texel, "/conv2d/forward_kernel_follows_reads/%s",
               texel ? "texel" : "storage"))
    tap_diag ("  profile:\n%s", report);
  free (report);
}

int main (void) {
  cel_context *ctx = oc_context ();
  tap_diag ("inputs read through %s buffers", cel_context_texel_reads (ctx) ? "texel" : "storage");
  named_cases ();
  blocked_cases ();
  test_forward_kernel_follows_reads ();
  test_winograd_taken ();
  test_profile_counts_every_dispatch ();
  winograd_cases ();
  fused_cases ();
  test_fuse_refusals ();
  /* every case that can run as Winograd runs so, in chunks of 8 tiles */
  winograd_forced (true);
  case_prefix = "winograd_forced/";
  named_cases ();
  winograd_cases ();
  fused_cases ();
  winograd_forced (false);
  case_prefix = "";
  /* the blocked cases again with the other way of reading (the GPU default on lavapipe, and the reverse) */
  bool texel = cel_context_texel_reads (ctx);
  if (cel_context_set_texel_reads (ctx, !texel) == CEL_OK) {
    case_prefix = texel ? "storage_reads/" : "texel_reads/";
    skip_long_cases = true;
    blocked_cases ();
    test_forward_kernel_follows_reads ();
    test_winograd_taken ();
    fused_cases ();
    winograd_forced (true);
    winograd_cases ();
    winograd_forced (false);
    cel_context_set_texel_reads (ctx, texel);
    case_prefix = "";
  } else {
    tap_skip ("the device cannot read float texel buffers", "/conv2d/texel_reads");
  }
  /* the blocked weight gradient's subgroupShuffle path (GPUs), forced here by the core's test switch */
  if (oc_forced_shuffle_begin ("/conv2d/subgroup_shuffle")) {
    case_prefix = "subgroup_shuffle/";
    skip_long_cases = true;
    blocked_cases ();
    case_prefix = "";
    oc_forced_shuffle_end ();
  }
  for (int i = 0; i < 32; i++) {
    char name[32];
    snprintf (name, sizeof name, "random%d", i);
    conv_case c = random_case ();
    check_case (name, &c, i % 2 == 0);
  }
  cel_shape none = { 0, 0, 0, 0 };
  expect_error ("channel_mismatch", (cel_shape) { 1, 3, 8, 8 }, (cel_shape) { 4, 2, 3, 3 }, none, P (0));
  expect_error ("reflect_padding_not_smaller_than_input", (cel_shape) { 1, 2, 3, 5 }, (cel_shape) { 2, 2, 3, 3 }, none,
                P (.pad_top = 3, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .padding_mode = CEL_PAD_REFLECT));
  expect_error ("kernel_larger_than_padded_input", (cel_shape) { 1, 2, 4, 4 }, (cel_shape) { 2, 2, 7, 7 }, none,
                P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1));
  expect_error ("dilated_kernel_larger_than_input", (cel_shape) { 1, 2, 6, 6 }, (cel_shape) { 2, 2, 3, 3 }, none,
                P (.dilation_h = 3, .dilation_w = 3));
  expect_error ("groups_not_dividing_input_channels", (cel_shape) { 1, 6, 8, 8 }, (cel_shape) { 4, 1, 3, 3 }, none,
                P (.groups = 4));
  expect_error ("groups_not_dividing_output_channels", (cel_shape) { 1, 4, 8, 8 }, (cel_shape) { 5, 2, 3, 3 }, none,
                P (.groups = 2));
  expect_error ("bias_shape", (cel_shape) { 1, 2, 8, 8 }, (cel_shape) { 4, 2, 3, 3 }, (cel_shape) { 1, 3, 1, 1 }, P (0));
  expect_error ("negative_padding", (cel_shape) { 1, 2, 8, 8 }, (cel_shape) { 4, 2, 3, 3 }, none, P (.pad_left = -1));
  expect_error ("negative_stride", (cel_shape) { 1, 2, 8, 8 }, (cel_shape) { 4, 2, 3, 3 }, none, P (.stride_w = -2));
  test_error_at_replan ();
  test_replan_new_input_shape ();
  return tap_finish ();
}
