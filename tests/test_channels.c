/* Channel ops: concat and slice_channels, forward and backward, on random shapes (odd sizes, 1x1), their
 * compositions (gradients of several slices accumulating into one tensor), and shape errors. */
#include "channels_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

/* ---- concat ----------------------------------------------------------------------------------- */

typedef struct { cel_shape a, b; } concat_case;

static cel_status build_concat (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  (void) ud;
  return cel_concat (g, in[0], in[1], out);
}
static void ref_concat (const double *const *in, double *out, const void *ud) {
  const concat_case *c = ud;
  concat_ref_fwd (in[0], rs (c->a), in[1], rs (c->b), out);
}
static void ref_concat_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const concat_case *c = ud;
  concat_ref_bwd (dy, rs (c->a), rs (c->b), din[0], din[1]);
}

static void check_concat (cel_shape a, int32_t cb, bool grad_a, bool grad_b, const char *label) {
  concat_case c = { a, { a.n, cb, a.h, a.w } };
  char name[128];
  snprintf (name, sizeof name, "/concat/%s", label);
  oc_spec s = { .name = name, .n_in = 2, .in_shape = { c.a, c.b }, .in_grad = { grad_a, grad_b },
                .out_shape = { a.n, a.c + cb, a.h, a.w }, .build = build_concat, .fwd = ref_concat,
                .bwd = ref_concat_bwd, .ud = &c };
  oc_check (&s);
}

/* concat (x, x): both halves' gradients add up in x */
static cel_status build_concat_self (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  (void) ud;
  return cel_concat (g, in[0], in[0], out);
}
static void ref_concat_self (const double *const *in, double *out, const void *ud) {
  const cel_shape *x = ud;
  concat_ref_fwd (in[0], rs (*x), in[0], rs (*x), out);
}
static void ref_concat_self_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const cel_shape *x = ud;
  int64_t n = oc_count (*x);
  double *second = malloc ((size_t) n * sizeof *second);
  concat_ref_bwd (dy, rs (*x), rs (*x), din[0], second);
  for (int64_t i = 0; i < n; i++)
    din[0][i] += second[i];
  free (second);
}

/* ---- slice ------------------------------------------------------------------------------------ */

typedef struct { cel_shape x; int32_t c0, count; } slice_case;

static cel_status build_slice (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const slice_case *c = ud;
  return cel_slice_channels (g, in[0], c->c0, c->count, out);
}
static void ref_slice (const double *const *in, double *out, const void *ud) {
  const slice_case *c = ud;
  slice_channels_ref_fwd (in[0], rs (c->x), c->c0, c->count, out);
}
static void ref_slice_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const slice_case *c = ud;
  slice_channels_ref_bwd (dy, rs (c->x), c->c0, c->count, din[0]);
}

static void check_slice (cel_shape x, int32_t c0, int32_t count, const char *label) {
  slice_case c = { x, c0, count };
  char name[128];
  snprintf (name, sizeof name, "/slice_channels/%s", label);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .out_shape = { x.n, count, x.h, x.w },
                .build = build_slice, .fwd = ref_slice, .bwd = ref_slice_bwd, .ud = &c };
  oc_check (&s);
}

/* Channels swapped in two halves: concat (slice (x, k, C-k), slice (x, 0, k)); every gradient of x comes
 * through a placement, and the two placements add. */
static cel_status build_swap (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const slice_case *c = ud;
  cel_node hi, lo;
  cel_status st = cel_slice_channels (g, in[0], c->c0, c->x.c - c->c0, &hi);
  if (!st) st = cel_slice_channels (g, in[0], 0, c->c0, &lo);
  if (!st) st = cel_concat (g, hi, lo, out);
  return st;
}
static void ref_swap (const double *const *in, double *out, const void *ud) {
  const slice_case *c = ud;
  cel_shape x = c->x;
  for (int32_t n = 0; n < x.n; n++)
    for (int32_t ch = 0; ch < x.c; ch++)
      for (int64_t k = 0; k < (int64_t) x.h * x.w; k++)
        out[((int64_t) n * x.c + ch) * x.h * x.w + k] = in[0][((int64_t) n * x.c + (ch + c->c0) % x.c) * x.h * x.w + k];
}
static void ref_swap_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const slice_case *c = ud;
  cel_shape x = c->x;
  for (int32_t n = 0; n < x.n; n++)
    for (int32_t ch = 0; ch < x.c; ch++)
      for (int64_t k = 0; k < (int64_t) x.h * x.w; k++)
        din[0][((int64_t) n * x.c + (ch + c->c0) % x.c) * x.h * x.w + k] = dy[((int64_t) n * x.c + ch) * x.h * x.w + k];
}

/* ---- backward after the input shapes change ------------------------------------------------- */

static bool close_all (const float *got, const double *want, int64_t n, const char *what) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabs (got[i] - want[i]) <= 1e-6 * (1 + fabs (want[i])))) {
      tap_diag ("  %s at %lld: got %.8g, want %.8g", what, (long long) i, (double) got[i], want[i]);
      return false;
    }
  return true;
}

static float *random_floats (int64_t n, double **copy) {
  float *f = malloc ((size_t) n * sizeof *f);
  *copy = malloc ((size_t) n * sizeof **copy);
  for (int64_t i = 0; i < n; i++)
    (*copy)[i] = f[i] = (float) oc_rand_uniform (-1, 1);
  return f;
}

/* y = concat (slice (x, 1, 3), a) at shapes x, a; compares y, dx, da with the reference. */
static bool run_slice_concat (cel_graph *g, const cel_node *nodes, cel_shape xs, cel_shape as) {
  cel_shape ss = { xs.n, 3, xs.h, xs.w }, ys = { xs.n, 3 + as.c, xs.h, xs.w };
  int64_t nx = oc_count (xs), na = oc_count (as), ns = oc_count (ss), ny = oc_count (ys);
  double *dx, *da, *ddy;
  float *fx = random_floats (nx, &dx), *fa = random_floats (na, &da), *fdy = random_floats (ny, &ddy);
  float *gy = malloc ((size_t) ny * sizeof *gy), *gdx = malloc ((size_t) nx * sizeof *gdx);
  float *gda = malloc ((size_t) na * sizeof *gda);
  double *s = malloc ((size_t) ns * sizeof *s), *ds = malloc ((size_t) ns * sizeof *ds);
  double *wy = malloc ((size_t) ny * sizeof *wy);
  double *wdx = malloc ((size_t) nx * sizeof *wdx), *wda = malloc ((size_t) na * sizeof *wda);
  cel_status st = cel_graph_set_data (g, nodes[0], fx, (size_t) nx);
  if (!st) st = cel_graph_set_data (g, nodes[1], fa, (size_t) na);
  if (!st) st = cel_graph_set_data (g, nodes[2], fdy, (size_t) ny);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, nodes[3], gy, (size_t) ny);
  if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, nodes[0]), gdx, (size_t) nx);
  if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, nodes[1]), gda, (size_t) na);
  bool ok = !st;
  if (st)
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (oc_context ()));
  if (ok) {
    slice_channels_ref_fwd (dx, rs (xs), 1, 3, s);
    concat_ref_fwd (s, rs (ss), da, rs (as), wy);
    concat_ref_bwd (ddy, rs (ss), rs (as), ds, wda);
    slice_channels_ref_bwd (ds, rs (xs), 1, 3, wdx);
    ok = close_all (gy, wy, ny, "y") && close_all (gdx, wdx, nx, "dx") && close_all (gda, wda, na, "da");
  }
  free (fx); free (fa); free (fdy); free (dx); free (da); free (ddy); free (gy); free (gdx); free (gda);
  free (s); free (ds); free (wy); free (wdx); free (wda);
  return ok;
}

/* The backward ops read their shapes from the forward nodes at each planning: after
 * cel_graph_set_input_shape (channels included) the gradients have the new shapes and channel ranges. */
static void check_backward_follows_new_input_shapes (void) {
  cel_shape x1 = { 1, 5, 3, 3 }, a1 = { 1, 2, 3, 3 }, x2 = { 2, 4, 5, 6 }, a2 = { 2, 3, 5, 6 };
  cel_graph *g = NULL;
  cel_node nodes[4], sl; /* x, a, dy, y */
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", x1, &nodes[0]);
  if (!st) st = cel_graph_input (g, "a", a1, &nodes[1]);
  if (!st) st = cel_graph_set_requires_grad (g, nodes[0], true);
  if (!st) st = cel_graph_set_requires_grad (g, nodes[1], true);
  if (!st) st = cel_slice_channels (g, nodes[0], 1, 3, &sl);
  if (!st) st = cel_concat (g, sl, nodes[1], &nodes[3]);
  if (!st) st = cel_graph_mark_output (g, nodes[3]);
  if (!st) st = cel_graph_input (g, "dy", (cel_shape) { 1, 5, 3, 3 }, &nodes[2]);
  if (!st) st = cel_graph_backward (g, nodes[3], nodes[2]);
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, nodes[0]));
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, nodes[1]));
  bool ok = !st && run_slice_concat (g, nodes, x1, a1);
  if (ok) {
    st = cel_graph_set_input_shape (g, nodes[0], x2);
    if (!st) st = cel_graph_set_input_shape (g, nodes[1], a2);
    if (!st) st = cel_graph_set_input_shape (g, nodes[2], (cel_shape) { 2, 6, 5, 6 });
    ok = !st && run_slice_concat (g, nodes, x2, a2);
  }
  tap_ok (ok, "/channels/backward_follows_new_input_shapes");
  cel_graph_destroy (g);
}

/* ---- errors ----------------------------------------------------------------------------------- */

static bool says (const char *needle) {
  const char *msg = cel_context_last_error (oc_context ());
  bool ok = strstr (msg, needle) != NULL;
  if (!ok)
    tap_diag ("  message '%s' does not mention '%s'", msg, needle);
  return ok;
}

static void check_errors (void) {
  cel_graph *g = NULL;
  cel_node x, y;
  if (cel_graph_create (oc_context (), &g)) {
    tap_ok (false, "/channels/errors/graph");
    return;
  }
  cel_graph_input (g, "x", (cel_shape) { 2, 3, 5, 7 }, &x);
  static const struct { cel_shape s; const char *what; } other[] = {
    { { 1, 3, 5, 7 }, "n" }, { { 2, 3, 4, 7 }, "h" }, { { 2, 3, 5, 6 }, "w" },
  };
  for (int i = 0; i < 3; i++) {
    char nm[16];
    cel_node b;
    snprintf (nm, sizeof nm, "b%d", i);
    cel_graph_input (g, nm, other[i].s, &b);
    y = 42;
    cel_status st = cel_concat (g, x, b, &y);
    tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && says ("concat"), "/concat/errors/different_%s",
            other[i].what);
  }
  static const struct { int32_t c0, count; const char *what; } bad[] = {
    { -1, 2, "negative_start" }, { 0, 0, "empty" }, { 1, -2, "negative_count" }, { 2, 2, "past_the_end" },
    { 3, 1, "start_past_the_end" }, { 0, 4, "too_many" }, { 1, INT32_MAX, "count_overflow" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    y = 42;
    cel_status st = cel_slice_channels (g, x, bad[i].c0, bad[i].count, &y);
    tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && says ("slice_channels"), "/slice_channels/errors/%s",
            bad[i].what);
  }
  /* a slice that was valid goes out of range when the input shrinks: planning says so */
  cel_status st = cel_slice_channels (g, x, 1, 2, &y);
  if (!st) st = cel_graph_mark_output (g, y);
  if (!st) st = cel_graph_set_input_shape (g, x, (cel_shape) { 2, 2, 5, 7 });
  if (!st) st = cel_graph_plan (g);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("slice_channels"), "/slice_channels/errors/input_shrunk_before_plan");
  cel_graph_destroy (g);
}

static cel_shape random_shape (void) {
  return (cel_shape) { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) };
}

int main (void) {
  oc_context ();
  char label[64];
  for (int i = 0; i < 8; i++) {
    snprintf (label, sizeof label, "random%d", i);
    check_concat (random_shape (), oc_rand_int (1, 7), true, true, label);
  }
  check_concat ((cel_shape) { 1, 1, 1, 1 }, 1, true, true, "1x1");
  check_concat ((cel_shape) { 2, 5, 9, 11 }, 3, true, false, "gradient_of_first_only");
  check_concat ((cel_shape) { 2, 5, 9, 11 }, 3, false, true, "gradient_of_second_only");
  check_concat ((cel_shape) { 1, 3, 131, 97 }, 6, true, true, "large");
  cel_shape xs = random_shape ();
  oc_spec self = { .name = "/concat/same_tensor_twice", .n_in = 1, .in_shape = { xs }, .in_grad = { true },
                   .out_shape = { xs.n, 2 * xs.c, xs.h, xs.w }, .build = build_concat_self, .fwd = ref_concat_self,
                   .bwd = ref_concat_self_bwd, .ud = &xs };
  oc_check (&self);

  for (int i = 0; i < 8; i++) {
    cel_shape x = random_shape ();
    int32_t c0 = oc_rand_int (0, x.c - 1);
    snprintf (label, sizeof label, "random%d", i);
    check_slice (x, c0, oc_rand_int (1, x.c - c0), label);
  }
  check_slice ((cel_shape) { 1, 1, 1, 1 }, 0, 1, "1x1");
  check_slice ((cel_shape) { 2, 6, 7, 5 }, 0, 6, "whole");
  check_slice ((cel_shape) { 2, 6, 7, 5 }, 0, 1, "first_channel");
  check_slice ((cel_shape) { 2, 6, 7, 5 }, 5, 1, "last_channel");
  for (int i = 0; i < 3; i++) {
    slice_case c = { random_shape (), 0, 0 };
    c.x.c = oc_rand_int (2, 9);
    c.c0 = oc_rand_int (1, c.x.c - 1);
    snprintf (label, sizeof label, "/channels/swap_halves%d", i);
    oc_spec s = { .name = label, .n_in = 1, .in_shape = { c.x }, .in_grad = { true }, .out_shape = c.x,
                  .build = build_swap, .fwd = ref_swap, .bwd = ref_swap_bwd, .ud = &c };
    oc_check (&s);
  }
  check_backward_follows_new_input_shapes ();
  check_errors ();
  return tap_finish ();
}
