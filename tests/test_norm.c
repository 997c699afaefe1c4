/* Norm family: norm_stats, norm_apply (stats as an independent input), instance and layer norm composed,
 * biased and unbiased, with and without affine; 1x1 images, large rows, large means; argument errors.
 * Inputs get per-channel offsets (an added (1,C,1,1) input) so that layer norm sees channels of different
 * means, and the statistics kernels a mean far from zero. */
#include "elementwise_ref.h"
#include "norm_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_EPS 1e-5 /* the references are double: a small step keeps the curvature of 1/sqrt (var) out */

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static const char *kind_name (cel_norm_kind kind) {
  return kind == CEL_NORM_LAYER ? "layer" : "instance";
}

static int32_t groups_of (cel_norm_kind kind, cel_shape x) {
  return kind == CEL_NORM_LAYER ? 1 : x.c;
}

/* x + offset (1,C,1,1), in double. */
static double *offset_input (const double *x, cel_shape xs, const double *off) {
  double *t = malloc ((size_t) oc_count (xs) * sizeof *t);
  add_ref_fwd (x, rs (xs), off, (ref_shape) { 1, xs.c, 1, 1 }, 1.0, 1.0, t);
  return t;
}

/* Random shape whose norm rows hold at least `min_row` elements. Rows of 2 or 3 elements are left out: their
 * variance is often tiny, and fp32 then loses digits that no tolerance bounds (the 1x1 cases are exact). */
static cel_shape random_shape (cel_norm_kind kind, int64_t min_row) {
  for (;;) {
    cel_shape s = { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) };
    if (oc_count (s) / ((int64_t) s.n * groups_of (kind, s)) >= min_row)
      return s;
  }
}

/* ---- norm_stats: in0 x, in1 per-channel offset ---------------------------------------------------- */

typedef struct {
  cel_shape x;
  cel_norm_kind kind;
  bool unbiased;
} stats_case;

static cel_status build_stats (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const stats_case *c = ud;
  cel_node xo;
  cel_status st = cel_add (g, in[0], in[1], 1.0f, 1.0f, &xo);
  return st ? st : cel_norm_stats (g, xo, c->kind, c->unbiased, out);
}
static void ref_stats (const double *const *in, double *out, const void *ud) {
  const stats_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[1]);
  norm_stats_ref_fwd (xo, rs (c->x), groups_of (c->kind, c->x), c->unbiased, out);
  free (xo);
}
static void ref_stats_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const stats_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[1]);
  norm_stats_ref_bwd (xo, rs (c->x), groups_of (c->kind, c->x), c->unbiased, dy, din[0]);
  free (xo);
}

static void test_stats (const char *label, cel_shape x, cel_norm_kind kind, bool unbiased, double lo, double hi) {
  stats_case c = { x, kind, unbiased };
  char name[128];
  snprintf (name, sizeof name, "/norm_stats/%s/%s/%s", kind_name (kind), unbiased ? "unbiased" : "biased", label);
  oc_spec s = { .name = name, .n_in = 2, .in_shape = { x, { 1, x.c, 1, 1 } }, .in_grad = { true, false },
                .in_lo = { lo, -3 }, .in_hi = { hi, 3 }, .out_shape = { x.n, groups_of (kind, x), 1, 2 },
                .build = build_stats, .fwd = ref_stats, .bwd = ref_stats_bwd, .ud = &c, .fd_eps = FD_EPS };
  oc_check (&s);
}

/* ---- norm_apply with stats as an input: in0 x, in1 stats, then gamma and beta when present -------- */

typedef struct {
  cel_shape x;
  cel_norm_kind kind;
  bool gamma, beta;
  float eps;
} apply_case;

static int beta_index (const apply_case *c) {
  return 2 + c->gamma;
}

static cel_status build_apply (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const apply_case *c = ud;
  return cel_norm_apply (g, in[0], in[1], c->gamma ? in[2] : CEL_NO_NODE, c->beta ? in[beta_index (c)] : CEL_NO_NODE,
                         c->eps, out);
}
static void ref_apply (const double *const *in, double *out, const void *ud) {
  const apply_case *c = ud;
  norm_apply_ref_fwd (in[0], rs (c->x), in[1], groups_of (c->kind, c->x), c->gamma ? in[2] : NULL,
                      c->beta ? in[beta_index (c)] : NULL, c->eps, out);
}
static void ref_apply_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const apply_case *c = ud;
  norm_apply_ref_bwd (in[0], rs (c->x), in[1], groups_of (c->kind, c->x), c->gamma ? in[2] : NULL, c->eps, dy, din[0],
                      din[1], c->gamma ? din[2] : NULL, c->beta ? din[beta_index (c)] : NULL);
}

static void test_apply (cel_norm_kind kind, bool gamma, bool beta) {
  apply_case c = { random_shape (kind, 1), kind, gamma, beta, 1e-5f };
  char name[128];
  snprintf (name, sizeof name, "/norm_apply/%s/%s%s/%dx%dx%dx%d", kind_name (kind), gamma ? "gamma" : "no_gamma",
            beta ? "_beta" : "_no_beta", c.x.n, c.x.c, c.x.h, c.x.w);
  cel_shape cs = { 1, c.x.c, 1, 1 };
  oc_spec s = { .name = name, .n_in = 2 + gamma + beta, .in_shape = { c.x, { c.x.n, groups_of (kind, c.x), 1, 2 } },
                .in_grad = { true, true, true, true }, .in_lo = { -1, 0.2 }, .in_hi = { 1, 2 }, .out_shape = c.x,
                .build = build_apply, .fwd = ref_apply, .bwd = ref_apply_bwd, .ud = &c, .fd_eps = FD_EPS };
  for (int i = 2; i < s.n_in; i++) {
    s.in_shape[i] = cs;
    s.in_param[i] = true;
    s.in_lo[i] = -2;
    s.in_hi[i] = 2;
  }
  oc_check (&s);
}

/* ---- instance / layer norm composed: in0 x, in1 offset, then gamma and beta when present ----------- */

typedef struct {
  cel_shape x;
  cel_norm_kind kind;
  bool unbiased, gamma, beta;
  float eps;
  int act;     /* an activation fused into the norm (cel_norm_apply_fuse_act): -1 none, else cel_activation */
  float alpha;
} norm_case;

static int norm_beta_index (const norm_case *c) {
  return 2 + c->gamma;
}

static cel_status build_norm (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const norm_case *c = ud;
  cel_node xo, stats, gamma = c->gamma ? in[2] : CEL_NO_NODE, beta = c->beta ? in[norm_beta_index (c)] : CEL_NO_NODE;
  cel_status st = cel_add (g, in[0], in[1], 1.0f, 1.0f, &xo);
  if (st)
    return st;
  if (c->unbiased) {
    st = cel_norm_stats (g, xo, c->kind, true, &stats);
    st = st ? st : cel_norm_apply (g, xo, stats, gamma, beta, c->eps, out);
  } else {
    st = c->kind == CEL_NORM_LAYER ? cel_layer_norm (g, xo, gamma, beta, c->eps, out)
                                   : cel_instance_norm (g, xo, gamma, beta, c->eps, out);
  }
  /* the fused activation must be taken: a refusal fails the case */
  if (!st && c->act >= 0 && !cel_norm_apply_fuse_act (g, *out, (cel_activation) c->act, c->alpha))
    st = CEL_ERROR_INVALID_ARGUMENT;
  return st;
}

/* relu (alpha 0) or leaky relu of the reference's output, in place; with dy, dy scaled by its slope at y */
static void ref_act (const norm_case *c, double *y, double *dy) {
  if (c->act < 0)
    return;
  double a = c->act == CEL_ACT_RELU ? 0.0 : c->alpha;
  for (int64_t i = 0; i < oc_count (c->x); i++) {
    if (dy)
      dy[i] *= y[i] > 0 ? 1.0 : a;
    else
      y[i] = y[i] > 0 ? y[i] : a * y[i];
  }
}
static void ref_norm (const double *const *in, double *out, const void *ud) {
  const norm_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[1]);
  norm_ref_fwd (xo, rs (c->x), groups_of (c->kind, c->x), c->unbiased, c->gamma ? in[2] : NULL,
                c->beta ? in[norm_beta_index (c)] : NULL, c->eps, out);
  ref_act (c, out, NULL);
  free (xo);
}
static void ref_norm_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const norm_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[1]), *dy_pre = NULL;
  if (c->act >= 0) { /* through the activation first: its slope at the norm's output */
    double *y = malloc ((size_t) oc_count (c->x) * sizeof *y);
    dy_pre = malloc ((size_t) oc_count (c->x) * sizeof *dy_pre);
    norm_ref_fwd (xo, rs (c->x), groups_of (c->kind, c->x), c->unbiased, c->gamma ? in[2] : NULL,
                  c->beta ? in[norm_beta_index (c)] : NULL, c->eps, y);
    memcpy (dy_pre, dy, (size_t) oc_count (c->x) * sizeof *dy_pre);
    ref_act (c, y, dy_pre);
    free (y);
    dy = dy_pre;
  }
  norm_ref_bwd (xo, rs (c->x), groups_of (c->kind, c->x), c->unbiased, c->gamma ? in[2] : NULL, c->eps, dy, din[0],
                c->gamma ? din[2] : NULL, c->beta ? din[norm_beta_index (c)] : NULL);
  free (dy_pre);
  free (xo);
}

/* dy_const: a constant output gradient (0: random). gamma's gradient, sum dy (x - mean) / sigma, then cancels to 0,
 * and fp32's rounding of the mean alone (N delta / sigma) outweighs any tolerance: it is not checked there. */
static void check_norm_case (const char *label, norm_case c, int fd_points, double dy_const) {
  cel_shape x = c.x;
  bool gamma = c.gamma, beta = c.beta;
  char name[160];
  snprintf (name, sizeof name, "/%s_norm%s/%s/%s/%s", kind_name (c.kind),
            c.act < 0 ? "" : c.act == CEL_ACT_RELU ? "+relu" : "+leaky_relu", c.unbiased ? "unbiased" : "biased",
            gamma && beta ? "affine" : gamma ? "gamma_only" : beta ? "beta_only" : "plain", label);
  cel_shape cs = { 1, x.c, 1, 1 };
  oc_spec s = { .name = name, .n_in = 2 + gamma + beta, .in_shape = { x, cs }, .in_grad = { true, false, true, true },
                .in_lo = { -1, -3 }, .in_hi = { 1, 3 }, .out_shape = x, .build = build_norm, .fwd = ref_norm,
                .bwd = ref_norm_bwd, .ud = &c, .fd_eps = FD_EPS, .fd_points = fd_points, .dy_lo = dy_const,
                .dy_hi = dy_const };
  for (int i = 2; i < s.n_in; i++) {
    s.in_shape[i] = cs;
    s.in_param[i] = true;
    s.in_lo[i] = -2;
    s.in_hi[i] = 2;
  }
  if (gamma && dy_const != 0)
    s.in_grad[2] = false;
  oc_check (&s);
}

static void test_norm_with (const char *label, cel_shape x, cel_norm_kind kind, bool unbiased, bool gamma, bool beta,
                            int fd_points, double dy_const) {
  check_norm_case (label, (norm_case) { x, kind, unbiased, gamma, beta, 1e-5f, -1, 0 }, fd_points, dy_const);
}

/* A norm with a relu or leaky relu fused into its pass (cel_norm_apply_fuse_act): forward and backward against
 * the reference norm followed by the activation. */
static void test_norm_act (const char *label, cel_shape x, cel_norm_kind kind, bool unbiased, cel_activation act,
                           float alpha) {
  check_norm_case (label, (norm_case) { x, kind, unbiased, true, true, 1e-5f, (int) act, alpha }, 4, 0);
}

/* What cel_norm_apply_fuse_act refuses, leaving the graph as it was: activations whose slope hides the side of
 * zero, a norm output something else reads, a node that is not a norm, twice, and after the backward. */
static void test_fuse_refusals (void) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node x, y, z, w, a, e;
  bool ok = cel_graph_create (ctx, &g) == CEL_OK && cel_graph_input (g, "x", (cel_shape) { 1, 2, 3, 3 }, &x) == CEL_OK;
  ok = ok && cel_layer_norm (g, x, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &y) == CEL_OK;
  ok = ok && !cel_norm_apply_fuse_act (g, y, CEL_ACT_TANH, 0) && !cel_norm_apply_fuse_act (g, y, CEL_ACT_SIGMOID, 0);
  ok = ok && !cel_norm_apply_fuse_act (g, y, CEL_ACT_LEAKY_RELU, 0) && !cel_norm_apply_fuse_act (g, y, CEL_ACT_LEAKY_RELU, -0.5f);
  ok = ok && !cel_norm_apply_fuse_act (g, x, CEL_ACT_RELU, 0);
  ok = ok && cel_activate (g, y, CEL_ACT_TANH, 0, &z) == CEL_OK && !cel_norm_apply_fuse_act (g, y, CEL_ACT_RELU, 0);
  ok = ok && cel_instance_norm (g, z, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &w) == CEL_OK &&
       cel_norm_apply_fuse_act (g, w, CEL_ACT_LEAKY_RELU, 0.2f) && !cel_norm_apply_fuse_act (g, w, CEL_ACT_RELU, 0);
  ok = ok && cel_instance_norm (g, w, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &a) == CEL_OK &&
       cel_graph_set_requires_grad (g, x, true) == CEL_OK && cel_mean (g, a, &e) == CEL_OK &&
       cel_graph_backward (g, e, CEL_NO_NODE) == CEL_OK && !cel_norm_apply_fuse_act (g, a, CEL_ACT_RELU, 0);
  tap_ok (ok, "/norm_apply/fuse_act/refusals");
  cel_graph_destroy (g);
}

static void test_norm (const char *label, cel_shape x, cel_norm_kind kind, bool unbiased, bool gamma, bool beta,
                       int fd_points) {
  test_norm_with (label, x, kind, unbiased, gamma, beta, fd_points, 0);
}

/* ---- a long row ------------------------------------------------------------------------------------- */

/* norm_stats of x = i / m over one row of m elements, against the same in double. */
static void test_long_row_stats (void) {
  cel_shape xs = { 1, 1, 4608, 4608 };
  int64_t m = oc_count (xs);
  float *x = malloc ((size_t) m * sizeof *x), stats[2] = { 0, 0 };
  double sum = 0, m2 = 0;
  for (int64_t i = 0; i < m; i++) {
    x[i] = (float) ((double) i / (double) m);
    sum += x[i];
  }
  double mean = sum / (double) m;
  for (int64_t i = 0; i < m; i++)
    m2 += (x[i] - mean) * (x[i] - mean);
  cel_graph *g = NULL;
  cel_node in, out;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", xs, &in);
  if (!st) st = cel_norm_stats (g, in, CEL_NORM_INSTANCE, false, &out);
  if (!st) st = cel_graph_mark_output (g, out);
  if (!st) st = cel_graph_set_data (g, in, x, (size_t) m);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, out, stats, 2);
  double var = m2 / (double) m;
  if (!tap_ok (!st && fabs (stats[0] - mean) <= 1e-5 && fabs (stats[1] - var) <= 1e-5 * var,
               "/norm_stats/instance/long_row_ramp"))
    tap_diag ("  mean %.7g (want %.7g), variance %.7g (want %.7g)%s%s", stats[0], mean, stats[1], var,
              st ? ": " : "", st ? cel_context_last_error (oc_context ()) : "");
  cel_graph_destroy (g);
  free (x);
}

/* ---- errors ---------------------------------------------------------------------------------------- */

static void expect_invalid (const char *name, cel_status st, const char *op) {
  const char *msg = cel_context_last_error (oc_context ());
  bool ok = st == CEL_ERROR_INVALID_ARGUMENT && strncmp (msg, op, strlen (op)) == 0 && msg[strlen (op)] == ':';
  if (!tap_ok (ok, "%s", name))
    tap_diag ("  status '%s', message '%s' (expected invalid argument from %s)", cel_status_string (st), msg, op);
}

static void test_errors (void) {
  cel_graph *g = NULL;
  cel_node x, x1, gamma3, gamma4, beta_bad, stats, stats_bad, y;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 2, 4, 5, 5 }, &x);
  if (!st) st = cel_graph_input (g, "x1", (cel_shape) { 1, 3, 1, 1 }, &x1);
  if (!st) st = cel_graph_param (g, "gamma3", (cel_shape) { 1, 3, 1, 1 }, &gamma3);
  if (!st) st = cel_graph_param (g, "gamma4", (cel_shape) { 1, 4, 1, 1 }, &gamma4);
  if (!st) st = cel_graph_param (g, "beta_bad", (cel_shape) { 1, 4, 2, 1 }, &beta_bad);
  if (!st) st = cel_graph_input (g, "stats_bad", (cel_shape) { 2, 3, 1, 2 }, &stats_bad);
  if (!st) st = cel_norm_stats (g, x, CEL_NORM_INSTANCE, false, &stats);
  if (!tap_ok (!st, "/norm/errors/setup")) {
    tap_diag ("  %s", cel_context_last_error (oc_context ()));
    cel_graph_destroy (g);
    return;
  }
  int32_t nodes = cel_graph_node_count (g);
  expect_invalid ("/instance_norm/error/gamma_channel_count", cel_instance_norm (g, x, gamma3, CEL_NO_NODE, 1e-5f, &y),
                  "instance_norm");
  tap_ok (y == CEL_NO_NODE && cel_graph_node_count (g) == nodes, "/instance_norm/error/leaves_graph_unchanged");
  expect_invalid ("/layer_norm/error/beta_shape", cel_layer_norm (g, x, gamma4, beta_bad, 1e-5f, &y), "layer_norm");
  expect_invalid ("/layer_norm/error/negative_eps", cel_layer_norm (g, x, gamma4, CEL_NO_NODE, -1e-5f, &y), "layer_norm");
  expect_invalid ("/instance_norm/error/nan_eps", cel_instance_norm (g, x, CEL_NO_NODE, CEL_NO_NODE, NAN, &y),
                  "instance_norm");
  expect_invalid ("/instance_norm/error/x_not_a_node", cel_instance_norm (g, 1000, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &y),
                  "instance_norm");
  expect_invalid ("/norm_apply/error/gamma_channel_count", cel_norm_apply (g, x, stats, gamma3, CEL_NO_NODE, 1e-5f, &y),
                  "norm_apply");
  expect_invalid ("/norm_apply/error/stats_shape", cel_norm_apply (g, x, stats_bad, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &y),
                  "norm_apply");
  expect_invalid ("/norm_apply/error/stats_missing", cel_norm_apply (g, x, CEL_NO_NODE, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &y),
                  "norm_apply");
  expect_invalid ("/norm_stats/error/unbiased_single_element", cel_norm_stats (g, x1, CEL_NORM_INSTANCE, true, &y),
                  "norm_stats");
  expect_invalid ("/norm_stats/error/unknown_kind", cel_norm_stats (g, x, (cel_norm_kind) 7, false, &y), "norm_stats");
  tap_ok (cel_graph_node_count (g) == nodes, "/norm/errors/leave_graph_unchanged");

  /* A shape change after building is caught when the graph is planned again. */
  if (!(st = cel_instance_norm (g, x, gamma4, CEL_NO_NODE, 1e-5f, &y)))
    st = cel_graph_set_input_shape (g, x, (cel_shape) { 2, 3, 5, 5 });
  expect_invalid ("/instance_norm/error/gamma_channel_count_at_plan", st ? st : cel_graph_plan (g), "norm_apply");
  cel_graph_destroy (g);
}

/* Instance norm of 1x1 images: zero variance, so y = beta and no NaN (eps keeps 1/sqrt finite). */
static void test_single_pixel (void) {
  test_norm ("2x5x1x1", (cel_shape) { 2, 5, 1, 1 }, CEL_NORM_INSTANCE, false, true, true, 0);
  test_norm ("3x4x1x1", (cel_shape) { 3, 4, 1, 1 }, CEL_NORM_INSTANCE, false, false, false, 0);
  test_norm ("2x5x1x1", (cel_shape) { 2, 5, 1, 1 }, CEL_NORM_LAYER, true, true, true, 0);
  test_stats ("2x3x1x1", (cel_shape) { 2, 3, 1, 1 }, CEL_NORM_INSTANCE, false, -1, 1);
}

/* Which kernels a layer norm with a fused leaky relu ran, from the profile: the texel-buffer variants of
 * norm_stats and norm_apply exactly when the context reads through texel buffers, the statistics in 2 parts
 * (4*64*64 elements: norm_stats_combine ran), and no separate activation. */
static void test_kernels_from_profile (void) {
  cel_context *ctx = oc_context ();
  bool texel = cel_context_texel_reads (ctx);
  const char *mode = texel ? "texel" : "storage";
  cel_status st = CEL_OK;
  if (!oc_profile_begin ()) {
    tap_skip ("no timestamps on this device", "/layer_norm+leaky_relu/kernels_from_profile/%s", mode);
    return;
  }
  cel_graph *g = NULL;
  cel_node x, gamma, beta, y;
  static float data[4 * 64 * 64];
  bool fused = false;
  if (!st) st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 4, 64, 64 }, &x);
  if (!st) st = cel_graph_param (g, "gamma", (cel_shape) { 1, 4, 1, 1 }, &gamma);
  if (!st) st = cel_graph_param (g, "beta", (cel_shape) { 1, 4, 1, 1 }, &beta);
  if (!st) st = cel_layer_norm (g, x, gamma, beta, 1e-5f, &y);
  if (!st) fused = cel_norm_apply_fuse_act (g, y, CEL_ACT_LEAKY_RELU, 0.2f);
  if (!st) st = cel_graph_mark_output (g, y);
  for (int i = 0; i < 4 * 64 * 64; i++)
    data[i] = (float) (i % 17) * 0.1f;
  if (!st) st = cel_graph_set_data (g, x, data, 4 * 64 * 64);
  if (!st) st = cel_graph_set_data (g, gamma, data, 4);
  if (!st) st = cel_graph_set_data (g, beta, data, 4);
  if (!st) st = cel_graph_run (g);
  char *report = oc_profile_take ();
  bool stats_texel = report && strstr (report, "norm_stats_texel"), stats_storage = report && strstr (report, "norm_stats ");
  bool apply_texel = report && strstr (report, "norm_apply_texel"), apply_storage = report && strstr (report, "norm_apply ");
  bool combine = report && strstr (report, "norm_stats_combine"), act = report && strstr (report, "activate");
  if (!tap_ok (!st && fused && stats_texel == texel && stats_storage == !texel && apply_texel == texel &&
               apply_storage == !texel && combine && !act, "/layer_norm+leaky_relu/kernels_from_profile/%s", mode))
    tap_diag ("  %s %s; fused %d; profile:\n%s", cel_status_string (st), st ? cel_context_last_error (ctx) : "",
              (int) fused, report ? report : "(none)");
  free (report);
  cel_graph_destroy (g);
}

static const char *shape_label (cel_shape s, char buf[48]) {
  snprintf (buf, 48, "%dx%dx%dx%d", s.n, s.c, s.h, s.w);
  return buf;
}

int main (void) {
  oc_context ();
  const cel_norm_kind kinds[2] = { CEL_NORM_INSTANCE, CEL_NORM_LAYER };
  char label[48];
  for (int k = 0; k < 2; k++)
    for (int unbiased = 0; unbiased < 2; unbiased++)
      for (int i = 0; i < 3; i++) {
        cel_shape x = random_shape (kinds[k], 4);
        test_stats (shape_label (x, label), x, kinds[k], unbiased, -1, 1);
      }
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < 2; i++) {
      test_apply (kinds[k], true, true);
      test_apply (kinds[k], false, false);
    }
  test_apply (CEL_NORM_INSTANCE, true, false);
  test_apply (CEL_NORM_LAYER, false, true);
  for (int k = 0; k < 2; k++)
    for (int unbiased = 0; unbiased < 2; unbiased++)
      for (int affine = 0; affine < 2; affine++)
        for (int i = 0; i < 2; i++) {
          cel_shape x = random_shape (kinds[k], 4);
          test_norm (shape_label (x, label), x, kinds[k], unbiased, affine, affine, 0);
        }
  cel_shape x = random_shape (CEL_NORM_INSTANCE, 4);
  test_norm (shape_label (x, label), x, CEL_NORM_INSTANCE, false, true, false, 0);
  x = random_shape (CEL_NORM_LAYER, 4);
  test_norm (shape_label (x, label), x, CEL_NORM_LAYER, false, false, true, 0);
  test_single_pixel ();

  /* Rows longer than the 256 threads of a workgroup, and a large mean (1000 + [-1, 1]) that a sum of squares
   * about zero would lose in fp32. */
  cel_shape big = { 1, 16, 64, 64 };
  test_norm ("1x16x64x64", big, CEL_NORM_INSTANCE, false, true, true, 4);
  test_norm ("1x16x64x64", big, CEL_NORM_LAYER, false, true, true, 4);
  test_norm ("2x3x61x67", (cel_shape) { 2, 3, 61, 67 }, CEL_NORM_LAYER, true, true, true, 4);
  test_stats ("1x16x64x64_mean_1000", big, CEL_NORM_INSTANCE, false, 999, 1001);
  test_stats ("1x16x64x64_mean_1000", big, CEL_NORM_LAYER, true, 999, 1001);
  /* Long rows split over several workgroups and folded by a second pass (norm.c's reduce_parts): 1x16x64x64
   * layer norm above runs in 8 parts, the 4608x4608 rows below in 256; 3*67*83 = 16683 elements make 2 parts
   * of 8342 and 8341, 1 x 3*61*67 stays one part. */
  test_stats ("2x3x67x83_two_uneven_parts", (cel_shape) { 2, 3, 67, 83 }, CEL_NORM_LAYER, false, 999, 1001);
  test_norm ("2x3x67x83_two_uneven_parts", (cel_shape) { 2, 3, 67, 83 }, CEL_NORM_LAYER, false, true, true, 4);
  /* gamma's gradient sums N*H*W = 16683 products per channel: 2 parts of 8342 and 8341 */
  test_norm ("3x2x67x83_gamma_grad_two_parts", (cel_shape) { 3, 2, 67, 83 }, CEL_NORM_INSTANCE, false, true, true, 4);

  /* Rows of 4608*4608 elements: 82944 strides per invocation, past llvmpipe's cap on loop trips
   * (shaders/common.glsl). The ramp makes a row cut short visible in its mean and variance. */
  test_long_row_stats ();
  test_norm ("1x1x4608x4608", (cel_shape) { 1, 1, 4608, 4608 }, CEL_NORM_INSTANCE, false, true, true, 2);
  /* A constant output gradient makes every plain running sum of those strides round the same way: beta's gradient
   * (sum dy) came out 6e-4 too large before the sums were compensated (common.glsl) */
  test_norm_with ("1x1x4608x4608_constant_dy", (cel_shape) { 1, 1, 4608, 4608 }, CEL_NORM_INSTANCE, false, true, true,
                  1, 0.1);
  test_errors ();
  /* relu and leaky relu fused into the norm's pass (the generators' norm + activation pairs) */
  x = random_shape (CEL_NORM_INSTANCE, 4);
  test_norm_act (shape_label (x, label), x, CEL_NORM_INSTANCE, false, CEL_ACT_LEAKY_RELU, 0.2f);
  test_norm_act ("2x3x61x67", (cel_shape) { 2, 3, 61, 67 }, CEL_NORM_LAYER, false, CEL_ACT_LEAKY_RELU, 0.2f);
  test_norm_act ("1x16x64x64", big, CEL_NORM_LAYER, true, CEL_ACT_RELU, 0);
  test_fuse_refusals ();
  test_kernels_from_profile ();
  /* texel-buffer reads are the default on lavapipe (norm_stats_texel.comp, norm_apply_texel.comp), storage buffers
   * on GPUs: both run */
  const char *other;
  if (oc_other_reads (&other)) {
    char prefix[32];
    snprintf (prefix, sizeof prefix, "/%s", other);
    oc_name_prefix = prefix;
    for (int k = 0; k < 2; k++) {
      x = random_shape (kinds[k], 4);
      test_stats (shape_label (x, label), x, kinds[k], k == 1, -1, 1);
      test_apply (kinds[k], true, true);
      test_apply (kinds[k], false, false);
      test_norm ("2x3x61x67", (cel_shape) { 2, 3, 61, 67 }, kinds[k], k == 0, true, true, 4);
    }
    test_apply (CEL_NORM_INSTANCE, true, false);
    test_stats ("1x16x64x64_mean_1000", big, CEL_NORM_INSTANCE, false, 999, 1001);
    test_kernels_from_profile ();
    oc_name_prefix = "";
    oc_other_reads (&other);
  } else {
    tap_skip ("the device cannot read float texel buffers", "/norm/other_reads");
  }
  return tap_finish ();
}
