/* Loss family: Gram matrix, mean absolute and squared errors (forward, backward, finite differences), a
 * style loss composed of both, re-planning for a new input size, and shape errors. */
#include "loss_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(st) ((st) == CEL_OK || (tap_diag ("  %s:%d: %s", __FILE__, __LINE__, cel_context_last_error (oc_context ())), 0))

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

/* ---- gram ------------------------------------------------------------------------------------- */

typedef struct { cel_shape x; float scale; } gram_case;

static cel_status build_gram (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const gram_case *c = ud;
  return cel_gram (g, in[0], c->scale, out);
}
static void ref_gram (const double *const *in, double *out, const void *ud) {
  const gram_case *c = ud;
  gram_ref_fwd (in[0], rs (c->x), c->scale, out);
}
static void ref_gram_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const gram_case *c = ud;
  gram_ref_bwd (in[0], rs (c->x), c->scale, dy, din[0]);
}

/* "" first, then the way of reading of the second pass (texel reads run the Gram matrix as conv2d's blocked weight
 * gradient, storage reads as gram.comp) */
static const char *gram_prefix = "";

static void test_gram (const char *label, cel_shape x, float scale) {
  gram_case c = { x, scale };
  char name[128];
  snprintf (name, sizeof name, "/gram/%s%s", gram_prefix, label);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .out_shape = { x.n, 1, x.c, x.c },
                .build = build_gram, .fwd = ref_gram, .bwd = ref_gram_bwd, .ud = &c };
  oc_check (&s);
}

/* ---- mean errors ------------------------------------------------------------------------------ */

typedef struct { cel_shape x; bool squared; } err_case;

static cel_status build_err (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const err_case *c = ud;
  return c->squared ? cel_mean_squared_error (g, in[0], in[1], out) : cel_mean_abs_error (g, in[0], in[1], out);
}
static void ref_err (const double *const *in, double *out, const void *ud) {
  const err_case *c = ud;
  int64_t n = oc_count (c->x);
  out[0] = c->squared ? mean_squared_error_ref_fwd (in[0], in[1], n) : mean_abs_error_ref_fwd (in[0], in[1], n);
}
static void ref_err_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const err_case *c = ud;
  int64_t n = oc_count (c->x);
  if (c->squared)
    mean_squared_error_ref_bwd (in[0], in[1], n, dy[0], din[0], din[1]);
  else
    mean_abs_error_ref_bwd (in[0], in[1], n, dy[0], din[0], din[1]);
}

static void test_err (const char *label, cel_shape x, bool squared, bool b_is_param) {
  err_case c = { x, squared };
  char name[128];
  snprintf (name, sizeof name, "/%s/%s", squared ? "mean_squared_error" : "mean_abs_error", label);
  /* |a - b| has a kink at 0: a small step keeps the probes off it */
  oc_spec s = { .name = name, .n_in = 2, .in_shape = { x, x }, .in_param = { false, b_is_param },
                .in_grad = { true, true }, .out_shape = { 1, 1, 1, 1 }, .build = build_err, .fwd = ref_err,
                .bwd = ref_err_bwd, .ud = &c, .fd_eps = squared ? 0 : 1e-5 };
  oc_check (&s);
}

/* ---- style loss: mean_squared_error (gram (x), target) ---------------------------------------- */

static cel_status build_style (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  (void) ud;
  cel_node gm;
  cel_status st = cel_gram (g, in[0], 0.0f, &gm);
  return st ? st : cel_mean_squared_error (g, gm, in[1], out);
}
static void ref_style (const double *const *in, double *out, const void *ud) {
  const cel_shape *x = ud;
  int64_t ng = (int64_t) x->n * x->c * x->c;
  double *gm = malloc ((size_t) ng * sizeof *gm);
  gram_ref_fwd (in[0], rs (*x), 0, gm);
  out[0] = mean_squared_error_ref_fwd (gm, in[1], ng);
  free (gm);
}
static void ref_style_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const cel_shape *x = ud;
  int64_t ng = (int64_t) x->n * x->c * x->c;
  double *gm = malloc ((size_t) ng * sizeof *gm), *dg = malloc ((size_t) ng * sizeof *dg);
  gram_ref_fwd (in[0], rs (*x), 0, gm);
  mean_squared_error_ref_bwd (gm, in[1], ng, dy[0], dg, NULL);
  gram_ref_bwd (in[0], rs (*x), 0, dg, din[0]);
  free (gm);
  free (dg);
}

static void test_style_loss (void) {
  cel_shape x = { 2, 4, 9, 11 };
  oc_spec s = { .name = "/gram/style_loss_through_mean_squared_error", .n_in = 2, .in_shape = { x, { 2, 1, 4, 4 } },
                .in_grad = { true, false }, .out_shape = { 1, 1, 1, 1 }, .build = build_style, .fwd = ref_style,
                .bwd = ref_style_bwd, .ud = &x };
  oc_check (&s);
}

/* ---- the mean and the Gram scale follow a new input size -------------------------------------- */

static void test_replan_for_new_input_size (void) {
  cel_graph *g = NULL;
  cel_node a, b, mse, gm;
  cel_shape shapes[2] = { { 1, 2, 3, 4 }, { 2, 3, 45, 47 } };
  int64_t most = oc_count (shapes[1]);
  float *fa = malloc ((size_t) most * sizeof *fa), *fb = malloc ((size_t) most * sizeof *fb);
  double *da = malloc ((size_t) most * sizeof *da), *db = malloc ((size_t) most * sizeof *db);
  float got_gram[18];
  double want_gram[18];
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "a", shapes[0], &a)) &&
            CHECK (cel_graph_input (g, "b", shapes[0], &b)) && CHECK (cel_mean_squared_error (g, a, b, &mse)) &&
            CHECK (cel_gram (g, a, 0.0f, &gm)) && CHECK (cel_graph_mark_output (g, mse)) &&
            CHECK (cel_graph_mark_output (g, gm));
  for (int pass = 0; pass < 2 && ok; pass++) {
    cel_shape s = shapes[pass];
    int64_t n = oc_count (s), ng = (int64_t) s.n * s.c * s.c;
    for (int64_t i = 0; i < n; i++) {
      da[i] = fa[i] = (float) oc_rand_uniform (-1, 1);
      db[i] = fb[i] = (float) oc_rand_uniform (-1, 1);
    }
    float got = 0;
    ok = CHECK (cel_graph_set_input_shape (g, a, s)) && CHECK (cel_graph_set_input_shape (g, b, s)) &&
         CHECK (cel_graph_set_data (g, a, fa, (size_t) n)) && CHECK (cel_graph_set_data (g, b, fb, (size_t) n)) &&
         CHECK (cel_graph_run (g)) && CHECK (cel_graph_get_data (g, mse, &got, 1)) &&
         CHECK (cel_graph_get_data (g, gm, got_gram, (size_t) ng));
    double want = mean_squared_error_ref_fwd (da, db, n);
    ok = ok && fabsf (got - (float) want) <= 1e-4f * (float) (1 + want);
    gram_ref_fwd (da, rs (s), 0, want_gram);
    for (int64_t i = 0; i < ng && ok; i++)
      ok = fabs (got_gram[i] - want_gram[i]) <= 1e-4 * (1 + fabs (want_gram[i]));
  }
  tap_ok (ok, "/mean_squared_error/replan_for_new_input_size_rescales_the_mean");
  cel_graph_destroy (g);
  free (fa);
  free (fb);
  free (da);
  free (db);
}

/* ---- errors ----------------------------------------------------------------------------------- */

static void test_mismatched_shapes_are_rejected (void) {
  cel_graph *g = NULL;
  cel_node a, b, y = 0;
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "a", (cel_shape) { 1, 2, 3, 4 }, &a)) &&
            CHECK (cel_graph_input (g, "b", (cel_shape) { 1, 2, 3, 5 }, &b));
  int32_t before = cel_graph_node_count (g);
  cel_status st = cel_mean_squared_error (g, a, b, &y);
  const char *msg = cel_context_last_error (oc_context ());
  tap_ok (ok && st == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "mean_squared_error") && y == CEL_NO_NODE &&
            cel_graph_node_count (g) == before, "/mean_squared_error/mismatched_shapes_are_an_invalid_argument");
  st = cel_mean_abs_error (g, a, b, &y);
  msg = cel_context_last_error (oc_context ());
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "mean_abs_error"), "/mean_abs_error/mismatched_shapes_are_an_invalid_argument");
  st = cel_gram (g, 12345, 0.0f, &y);
  msg = cel_context_last_error (oc_context ());
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (msg, "gram"), "/gram/bad_node_is_an_invalid_argument");
  cel_graph_destroy (g);
}

static cel_shape random_shape (void) {
  return (cel_shape) { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) };
}

static void gram_cases (void) {
  char label[32];
  for (int i = 0; i < 6; i++) {
    snprintf (label, sizeof label, "%d", i);
    test_gram (label, random_shape (), i % 2 ? 0.0f : (float) oc_rand_uniform (0.1, 2));
  }
  test_gram ("one_channel", (cel_shape) { 2, 1, 5, 6 }, 0.0f);
  test_gram ("hw_not_a_multiple_of_the_tile", (cel_shape) { 2, 5, 33, 37 }, 0.0f);
  /* 16x16 tiles: several tiles each way, mirrored tiles above the diagonal, partial edge tiles */
  test_gram ("several_tiles", (cel_shape) { 2, 37, 5, 7 }, 0.0f);
  test_gram ("channels_a_multiple_of_the_tile", (cel_shape) { 1, 32, 4, 4 }, 0.5f);
  test_gram ("more_channels_than_one_step", (cel_shape) { 1, 70, 3, 5 }, 0.0f); /* a partial second step of 64 */
  /* the weight-gradient form: 3 samples as 3 groups of 20 channels (partial blocks of 8 and of 8*16) */
  test_gram ("three_samples_20_channels", (cel_shape) { 3, 20, 6, 9 }, 0.0f);
  /* 65536 products per element, the trainer's 256x256 features: llvmpipe caps shader loops at 65535
   * iterations, and gram.comp's inner loop came out 10 % low here before it was unrolled */
  test_gram ("long_sum", (cel_shape) { 1, 16, 256, 256 }, 0.0f);
  /* 1024x1024: the tile loads loop 5 times per 64 products unless unrolled (1024*1024/64*5 trips); the
   * weight-gradient form sums it in two slices */
  test_gram ("long_sum_1024x1024", (cel_shape) { 1, 16, 1024, 1024 }, 0.0f);
}

int main (void) {
  cel_context *ctx = oc_context ();
  char label[32];
  gram_cases ();
  bool texel = cel_context_texel_reads (ctx);
  if (cel_context_set_texel_reads (ctx, !texel) == CEL_OK) {
    gram_prefix = texel ? "storage_reads/" : "texel_reads/";
    gram_cases ();
    cel_context_set_texel_reads (ctx, texel);
    gram_prefix = "";
  }
  test_style_loss ();
  for (int i = 0; i < 6; i++) {
    snprintf (label, sizeof label, "%d", i);
    test_err (label, random_shape (), false, i % 2);
    test_err (label, random_shape (), true, i % 2);
  }
  test_err ("one_element", (cel_shape) { 1, 1, 1, 1 }, true, false);
  /* a batch of images: each partial is a chunk of thousands of elements */
  test_err ("8x3x256x256", (cel_shape) { 8, 3, 256, 256 }, false, false);
  test_err ("8x3x256x256", (cel_shape) { 8, 3, 256, 256 }, true, false);
  test_replan_for_new_input_size ();
  test_mismatched_shapes_are_rejected ();
  return tap_finish ();
}
