/* Elementwise ops: add and mul with broadcasting, scale_shift, sum_to, global average pool, mean, fill. */
#include "elementwise_ref.h"
#include "opcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  cel_shape a, b;
  float alpha, beta;
} bin_case;

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static cel_status build_add (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const bin_case *c = ud;
  return cel_add (g, in[0], in[1], c->alpha, c->beta, out);
}
static void ref_add (const double *const *in, double *out, const void *ud) {
  const bin_case *c = ud;
  add_ref_fwd (in[0], rs (c->a), in[1], rs (c->b), c->alpha, c->beta, out);
}
static void ref_add_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const bin_case *c = ud;
  sum_to_ref_fwd (dy, rs (c->a), rs (c->a), c->alpha, din[0]);
  sum_to_ref_fwd (dy, rs (c->a), rs (c->b), c->beta, din[1]);
}

static cel_status build_mul (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  (void) ud;
  return cel_mul (g, in[0], in[1], out);
}
static void ref_mul (const double *const *in, double *out, const void *ud) {
  const bin_case *c = ud;
  mul_ref_fwd (in[0], rs (c->a), in[1], rs (c->b), out);
}
static void ref_mul_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const bin_case *c = ud;
  int64_t n = oc_count (c->a);
  double *t = malloc ((size_t) n * sizeof *t);
  mul_ref_fwd (dy, rs (c->a), in[1], rs (c->b), din[0]);
  for (int64_t i = 0; i < n; i++)
    t[i] = dy[i] * in[0][i];
  sum_to_ref_fwd (t, rs (c->a), rs (c->b), 1.0, din[1]);
  free (t);
}

static cel_shape random_shape (void) {
  return (cel_shape) { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) };
}

static cel_shape random_broadcast_of (cel_shape a) {
  cel_shape b = a;
  if (oc_rand_int (0, 1)) b.n = 1;
  if (oc_rand_int (0, 1)) b.c = 1;
  if (oc_rand_int (0, 1)) b.h = 1;
  if (oc_rand_int (0, 1)) b.w = 1;
  return b;
}

static void test_binary (const char *op, int iter, bool broadcast) {
  bin_case c = { .a = random_shape () };
  c.b = broadcast ? random_broadcast_of (c.a) : c.a;
  c.alpha = (float) oc_rand_uniform (-2, 2);
  c.beta = (float) oc_rand_uniform (-2, 2);
  char name[128];
  snprintf (name, sizeof name, "/%s/%s%d", op, broadcast ? "broadcast" : "same_shape", iter);
  bool is_add = strcmp (op, "add") == 0;
  oc_spec s = { .name = name, .n_in = 2, .in_shape = { c.a, c.b }, .in_grad = { true, true }, .out_shape = c.a,
                .build = is_add ? build_add : build_mul, .fwd = is_add ? ref_add : ref_mul,
                .bwd = is_add ? ref_add_bwd : ref_mul_bwd, .ud = &c };
  oc_check (&s);
}

/* scale_shift */
typedef struct { cel_shape x; float scale, shift; } ss_case;
static cel_status build_ss (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const ss_case *c = ud;
  return cel_scale_shift (g, in[0], c->scale, c->shift, out);
}
static void ref_ss (const double *const *in, double *out, const void *ud) {
  const ss_case *c = ud;
  for (int64_t i = 0; i < oc_count (c->x); i++)
    out[i] = c->scale * in[0][i] + c->shift;
}
static void ref_ss_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const ss_case *c = ud;
  for (int64_t i = 0; i < oc_count (c->x); i++)
    din[0][i] = c->scale * dy[i];
}

/* sum_to, global average pool, mean: all are scaled reductions */
typedef enum { RED_SUM_TO, RED_POOL, RED_MEAN } red_kind;
typedef struct { cel_shape x, y; red_kind kind; double scale; } red_case;
static cel_status build_red (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const red_case *c = ud;
  switch (c->kind) {
  case RED_SUM_TO: return cel_sum_to (g, in[0], c->y, out);
  case RED_POOL: return cel_global_avg_pool (g, in[0], out);
  default: return cel_mean (g, in[0], out);
  }
}
static void ref_red (const double *const *in, double *out, const void *ud) {
  const red_case *c = ud;
  sum_to_ref_fwd (in[0], rs (c->x), rs (c->y), c->scale, out);
}
static void ref_red_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const red_case *c = ud;
  broadcast_ref_fwd (dy, rs (c->y), rs (c->x), c->scale, din[0]);
}

static void test_reduction (red_kind kind, int iter, cel_shape x) {
  red_case c = { .x = x, .kind = kind, .scale = 1.0 };
  const char *nm = "sum_to";
  if (kind == RED_SUM_TO) {
    c.y = random_broadcast_of (x);
  } else if (kind == RED_POOL) {
    c.y = (cel_shape) { x.n, x.c, 1, 1 };
    c.scale = 1.0 / ((double) x.h * x.w);
    nm = "global_avg_pool";
  } else {
    c.y = (cel_shape) { 1, 1, 1, 1 };
    c.scale = 1.0 / (double) oc_count (x);
    nm = "mean";
  }
  char name[128];
  snprintf (name, sizeof name, "/%s/%d", nm, iter);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .out_shape = c.y, .build = build_red,
                .fwd = ref_red, .bwd = ref_red_bwd, .ud = &c };
  oc_check (&s);
}

/* A sum_to (or mean) of named shapes with few outputs of long sums: split over several workgroups per
 * output and folded by a second pass (cel_reduce_parts). */
static void test_split_reduction (const char *label, red_kind kind, cel_shape x, cel_shape y) {
  red_case c = { .x = x, .y = y, .kind = kind, .scale = kind == RED_MEAN ? 1.0 / (double) oc_count (x) : 1.0 };
  char name[128];
  snprintf (name, sizeof name, "/%s/split/%s", kind == RED_MEAN ? "mean" : "sum_to", label);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .out_shape = c.y, .build = build_red,
                .fwd = ref_red, .bwd = ref_red_bwd, .ud = &c, .fd_points = 3, .tol = 2e-4 };
  oc_check (&s);
}

static void test_fill (void) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node y;
  cel_shape s = { 2, 3, 5, 7 };
  float data[210];
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_fill (g, s, 2.5f, &y);
  if (!st) st = cel_graph_mark_output (g, y);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, y, data, 210);
  bool ok = !st;
  for (int i = 0; i < 210 && ok; i++)
    ok = data[i] == 2.5f;
  tap_ok (ok, "/fill/forward");
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  for (int i = 0; i < 6; i++) {
    test_binary ("add", i, false);
    test_binary ("add", i, true);
    test_binary ("mul", i, false);
    test_binary ("mul", i, true);
  }
  {
    /* the gradient of a broadcast scalar sums 4608*4608 elements: 82944 strides per invocation (llvmpipe's cap
     * on loop trips: shaders/common.glsl) */
    bin_case c = { .a = { 1, 1, 4608, 4608 }, .b = { 1, 1, 1, 1 }, .alpha = 1.0f, .beta = 1.0f };
    oc_spec s = { .name = "/add/broadcast_long_sum", .n_in = 2, .in_shape = { c.a, c.b }, .in_grad = { true, true },
                  .out_shape = c.a, .build = build_add, .fwd = ref_add, .bwd = ref_add_bwd, .ud = &c, .fd_points = 2 };
    oc_check (&s);
  }
  for (int i = 0; i < 4; i++) {
    ss_case c = { random_shape (), (float) oc_rand_uniform (-3, 3), (float) oc_rand_uniform (-1, 1) };
    char name[64];
    snprintf (name, sizeof name, "/scale_shift/%d", i);
    oc_spec s = { .name = name, .n_in = 1, .in_shape = { c.x }, .in_grad = { true }, .out_shape = c.x,
                  .build = build_ss, .fwd = ref_ss, .bwd = ref_ss_bwd, .ud = &c };
    oc_check (&s);
  }
  for (int i = 0; i < 6; i++) {
    test_reduction (RED_SUM_TO, i, random_shape ());
    test_reduction (RED_POOL, i, random_shape ());
    test_reduction (RED_MEAN, i, random_shape ());
  }
  /* a reduction longer than one workgroup's stride, and a 1x1 tensor */
  test_reduction (RED_MEAN, 100, (cel_shape) { 2, 3, 61, 67 });
  test_reduction (RED_POOL, 101, (cel_shape) { 1, 1, 1, 1 });
  /* few outputs of long sums, split: 3 parts of 8633 (5 channels over 3*97*89: a bias's gradient), 16 parts (a
   * mean over 2*4*128*128), 2 uneven parts of 8342 and 8341 (3*67*83 per channel of 2) */
  test_split_reduction ("3x5x97x89_to_channels", RED_SUM_TO, (cel_shape) { 3, 5, 97, 89 }, (cel_shape) { 1, 5, 1, 1 });
  test_split_reduction ("2x4x128x128", RED_MEAN, (cel_shape) { 2, 4, 128, 128 }, (cel_shape) { 1, 1, 1, 1 });
  test_split_reduction ("3x2x67x83_to_channels", RED_SUM_TO, (cel_shape) { 3, 2, 67, 83 }, (cel_shape) { 1, 2, 1, 1 });
  test_fill ();
  return tap_finish ();
}
