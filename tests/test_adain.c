/* AdaIN: adain_apply with the stats as independent inputs, cel_adain composed (content and style of different
 * sizes, gradients to both through norm_stats), a large case, and argument errors. Content and style get
 * per-channel offsets (added (1,C,1,1) inputs) so that the planes have different means. */
#include "adain_ref.h"
#include "elementwise_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_EPS 1e-5 /* the references are double: a small step keeps the curvature of 1/sqrt (var) out */

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

/* x + offset (1,C,1,1), in double. */
static double *offset_input (const double *x, cel_shape xs, const double *off) {
  double *t = malloc ((size_t) oc_count (xs) * sizeof *t);
  add_ref_fwd (x, rs (xs), off, (ref_shape) { 1, xs.c, 1, 1 }, 1.0, 1.0, t);
  return t;
}

/* ---- adain_apply: in0 content, in1 content stats, in2 style stats ---------------------------------- */

typedef struct {
  cel_shape x;
  float eps;
} apply_case;

static cel_status build_apply (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const apply_case *c = ud;
  return cel_adain_apply (g, in[0], in[1], in[2], c->eps, out);
}
static void ref_apply (const double *const *in, double *out, const void *ud) {
  const apply_case *c = ud;
  adain_apply_ref_fwd (in[0], rs (c->x), in[1], in[2], c->eps, out);
}
static void ref_apply_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const apply_case *c = ud;
  adain_apply_ref_bwd (in[0], rs (c->x), in[1], in[2], c->eps, dy, din[0], din[1], din[2]);
}

static void test_apply (void) {
  apply_case c = { { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) }, 1e-5f };
  cel_shape ss = { c.x.n, c.x.c, 1, 2 };
  char name[64];
  snprintf (name, sizeof name, "/adain_apply/%dx%dx%dx%d", c.x.n, c.x.c, c.x.h, c.x.w);
  oc_spec s = { .name = name, .n_in = 3, .in_shape = { c.x, ss, ss }, .in_grad = { true, true, true },
                .in_lo = { -1, 0.2, 0.2 }, .in_hi = { 1, 2, 2 }, .out_shape = c.x, .build = build_apply,
                .fwd = ref_apply, .bwd = ref_apply_bwd, .ud = &c, .fd_eps = FD_EPS };
  oc_check (&s);
}

/* ---- cel_adain: in0 content, in1 style, in2 content offset, in3 style offset --------------------- */

typedef struct {
  cel_shape x, s;
  float eps;
} adain_case;

static cel_status build_adain (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const adain_case *c = ud;
  cel_node xo, so;
  cel_status st = cel_add (g, in[0], in[2], 1.0f, 1.0f, &xo);
  if (!st)
    st = cel_add (g, in[1], in[3], 1.0f, 1.0f, &so);
  return st ? st : cel_adain (g, xo, so, c->eps, out);
}
static void ref_adain (const double *const *in, double *out, const void *ud) {
  const adain_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[2]), *so = offset_input (in[1], c->s, in[3]);
  adain_ref_fwd (xo, rs (c->x), so, rs (c->s), c->eps, out);
  free (xo);
  free (so);
}
static void ref_adain_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const adain_case *c = ud;
  double *xo = offset_input (in[0], c->x, in[2]), *so = offset_input (in[1], c->s, in[3]);
  adain_ref_bwd (xo, rs (c->x), so, rs (c->s), c->eps, dy, din[0], din[1]);
  free (xo);
  free (so);
}

static void test_adain (const char *label, cel_shape x, cel_shape sty, int fd_points, double dy_const) {
  adain_case c = { x, sty, 1e-5f };
  char name[96];
  snprintf (name, sizeof name, "/adain/%s", label);
  cel_shape off = { 1, x.c, 1, 1 };
  oc_spec s = { .name = name, .n_in = 4, .in_shape = { x, sty, off, off }, .in_grad = { true, true, false, false },
                .in_lo = { -1, -1, -3, -3 }, .in_hi = { 1, 1, 3, 3 }, .out_shape = x, .build = build_adain,
                .fwd = ref_adain, .bwd = ref_adain_bwd, .ud = &c, .fd_eps = FD_EPS, .fd_points = fd_points,
                .dy_lo = dy_const, .dy_hi = dy_const };
  oc_check (&s);
}

/* Random content and style with the same batch and channels and at least 4 pixels each (planes of 2 or 3
 * pixels often have a tiny variance, where fp32 loses digits that no tolerance bounds). */
static void random_pair (cel_shape *x, cel_shape *s) {
  int32_t n = oc_rand_int (1, 3), c = oc_rand_int (1, 7);
  do
    *x = (cel_shape) { n, c, oc_rand_int (1, 13), oc_rand_int (1, 17) };
  while (x->h * x->w < 4);
  do
    *s = (cel_shape) { n, c, oc_rand_int (1, 13), oc_rand_int (1, 17) };
  while (s->h * s->w < 4);
}

/* AdaIN of a tensor with its own statistics gives the tensor back. */
static void test_self_identity (void) {
  cel_shape xs = { 2, 3, 9, 11 };
  int64_t n = oc_count (xs);
  float *x = malloc ((size_t) n * sizeof *x), *y = malloc ((size_t) n * sizeof *y);
  for (int64_t i = 0; i < n; i++)
    x[i] = (float) oc_rand_uniform (-1, 1) + (float) (i / (xs.h * xs.w));
  cel_graph *g = NULL;
  cel_node in, out;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", xs, &in);
  if (!st) st = cel_graph_set_data (g, in, x, (size_t) n);
  if (!st) st = cel_adain (g, in, in, 1e-5f, &out);
  if (!st) st = cel_graph_mark_output (g, out);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, out, y, (size_t) n);
  double worst = st ? INFINITY : 0;
  for (int64_t i = 0; i < n && !st; i++)
    worst = fmax (worst, fabs ((double) y[i] - x[i]));
  if (!tap_ok (worst < 1e-4, "/adain/self_is_identity"))
    tap_diag ("  %s; worst difference %g", st ? cel_context_last_error (oc_context ()) : "ran", worst);
  cel_graph_destroy (g);
  free (x);
  free (y);
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
  cel_node x, s3, s_batch, s_pixel, cstats, sstats3, layer_stats, y;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 2, 4, 8, 8 }, &x);
  if (!st) st = cel_graph_input (g, "s3", (cel_shape) { 2, 3, 8, 8 }, &s3);
  if (!st) st = cel_graph_input (g, "s_batch", (cel_shape) { 1, 4, 8, 8 }, &s_batch);
  if (!st) st = cel_graph_input (g, "s_pixel", (cel_shape) { 2, 4, 1, 1 }, &s_pixel);
  if (!st) st = cel_norm_stats (g, x, CEL_NORM_INSTANCE, true, &cstats);
  if (!st) st = cel_norm_stats (g, s3, CEL_NORM_INSTANCE, true, &sstats3);
  if (!st) st = cel_norm_stats (g, x, CEL_NORM_LAYER, true, &layer_stats);
  if (!tap_ok (!st, "/adain/errors/setup")) {
    tap_diag ("  %s", cel_context_last_error (oc_context ()));
    cel_graph_destroy (g);
    return;
  }
  int32_t nodes = cel_graph_node_count (g);
  expect_invalid ("/adain/error/channel_mismatch", cel_adain (g, x, s3, 1e-5f, &y), "adain");
  tap_ok (y == CEL_NO_NODE && cel_graph_node_count (g) == nodes, "/adain/error/leaves_graph_unchanged");
  expect_invalid ("/adain/error/batch_mismatch", cel_adain (g, x, s_batch, 1e-5f, &y), "adain");
  expect_invalid ("/adain/error/single_pixel_style", cel_adain (g, x, s_pixel, 1e-5f, &y), "adain");
  expect_invalid ("/adain/error/negative_eps", cel_adain (g, x, x, -1.0f, &y), "adain");
  expect_invalid ("/adain_apply/error/style_stats_channels", cel_adain_apply (g, x, cstats, sstats3, 1e-5f, &y),
                  "adain_apply");
  expect_invalid ("/adain_apply/error/layer_stats", cel_adain_apply (g, x, layer_stats, cstats, 1e-5f, &y),
                  "adain_apply");
  expect_invalid ("/adain_apply/error/stats_missing", cel_adain_apply (g, x, CEL_NO_NODE, cstats, 1e-5f, &y),
                  "adain_apply");
  tap_ok (cel_graph_node_count (g) == nodes, "/adain/errors/leave_graph_unchanged");
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  for (int i = 0; i < 5; i++)
    test_apply ();
  for (int i = 0; i < 6; i++) {
    cel_shape x, s;
    random_pair (&x, &s);
    char label[64];
    snprintf (label, sizeof label, "%dx%dx%dx%d_style_%dx%d", x.n, x.c, x.h, x.w, s.h, s.w);
    test_adain (label, x, s, 0, 0);
  }
  test_adain ("1x16x64x64_style_48x40", (cel_shape) { 1, 16, 64, 64 }, (cel_shape) { 1, 16, 48, 40 }, 4, 0);
  /* planes of 4608*4608 pixels: 82944 strides per invocation (llvmpipe's cap on loop trips: common.glsl) */
  test_adain ("1x1x4608x4608_style_8x8", (cel_shape) { 1, 1, 4608, 4608 }, (cel_shape) { 1, 1, 8, 8 }, 2, 0);
  /* A constant output gradient makes every plain running sum of those strides round the same way: the style's
   * gradient (sum dy / 64 per pixel) came out 6e-4 too large before the sums were compensated (common.glsl) */
  test_adain ("1x1x4608x4608_style_8x8_constant_dy", (cel_shape) { 1, 1, 4608, 4608 }, (cel_shape) { 1, 1, 8, 8 }, 1,
              0.1);
  test_self_identity ();
  test_errors ();
  return tap_finish ();
}
