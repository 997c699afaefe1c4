/* Resize in all five modes, forward and backward: up and down, integer and odd ratios, output and input
 * size 1, identity, one axis up and the other down; plus the nearest indices PyTorch picks where float
 * rounding differs from exact arithmetic, size errors, and the forward with the other way of reading x (texel or
 * storage buffers). */
#include "opcheck.h"
#include "resize_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mode_names[] = { "nearest", "bilinear", "bilinear_align_corners", "bilinear_asymmetric", "bicubic" };

typedef struct { cel_shape x, y; cel_resize_mode mode; } resize_case;

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static cel_status build_resize (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const resize_case *c = ud;
  return cel_resize (g, in[0], c->y.h, c->y.w, c->mode, out);
}
static void ref_resize (const double *const *in, double *out, const void *ud) {
  const resize_case *c = ud;
  resize_ref_fwd (in[0], rs (c->x), rs (c->y), (int) c->mode, out);
}
static void ref_resize_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const resize_case *c = ud;
  resize_ref_bwd (dy, rs (c->x), rs (c->y), (int) c->mode, din[0]);
}

static void check_resize (cel_resize_mode mode, cel_shape x, int32_t oh, int32_t ow, const char *label) {
  resize_case c = { x, { x.n, x.c, oh, ow }, mode };
  char name[160];
  snprintf (name, sizeof name, "/resize/%s/%s_%dx%d_to_%dx%d", mode_names[mode], label, x.h, x.w, oh, ow);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .out_shape = c.y,
                .build = build_resize, .fwd = ref_resize, .bwd = ref_resize_bwd, .ud = &c };
  oc_check (&s);
}

/* Where floor (o * (float) (in / out)) differs from floor (o * in / out), PyTorch's nearest takes the float
 * one: 14 -> 46 reads input 6 at output 23 (found with torch 1.13, F.interpolate (size=...)). */
static void check_nearest_matches_pytorch_rounding (void) {
  static const struct { int32_t in, out, o, want; } cases[] = {
    { 14, 46, 23, 6 }, { 2, 82, 41, 0 }, { 6, 74, 37, 2 }, { 14, 92, 46, 6 },
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int32_t in = cases[k].in, out = cases[k].out;
    float *x = malloc ((size_t) in * in * sizeof *x), *y = malloc ((size_t) out * out * sizeof *y);
    for (int32_t i = 0; i < in * in; i++)
      x[i] = (float) i;
    cel_graph *g = NULL;
    cel_node xn, yn;
    cel_status st = cel_graph_create (oc_context (), &g);
    if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 1, in, in }, &xn);
    if (!st) st = cel_graph_set_data (g, xn, x, (size_t) in * in);
    if (!st) st = cel_resize (g, xn, out, out, CEL_RESIZE_NEAREST, &yn);
    if (!st) st = cel_graph_mark_output (g, yn);
    if (!st) st = cel_graph_run (g);
    if (!st) st = cel_graph_get_data (g, yn, y, (size_t) out * out);
    int32_t o = cases[k].o, want = cases[k].want, ref_i[2];
    double ref_w[2];
    resize_ref_taps (o, in, out, CEL_RESIZE_NEAREST, ref_i, ref_w);
    float got = st ? -1 : y[(size_t) o * out + o];
    bool ok = !st && got == (float) (want * in + want) && ref_i[0] == want;
    if (!ok)
      tap_diag ("  %d -> %d at %d: gpu read %g, reference index %d, want index %d (value %d)", in, out, o, (double) got,
                ref_i[0], want, want * in + want);
    tap_ok (ok, "/resize/nearest/float_rounding_as_pytorch_%d_to_%d", in, out);
    cel_graph_destroy (g);
    free (x);
    free (y);
  }
}

static bool close_all (const float *got, const double *want, int64_t n, const char *what) {
  for (int64_t i = 0; i < n; i++)
    if (!(fabs (got[i] - want[i]) <= 1e-4 * (1 + fabs (want[i])))) {
      tap_diag ("  %s at %lld: got %.8g, want %.8g", what, (long long) i, (double) got[i], want[i]);
      return false;
    }
  return true;
}

/* Runs x -> resize -> (y, dx) at shape `x`, with random data; compares with the reference. */
static bool run_and_compare (cel_graph *g, cel_node xn, cel_node dyn, cel_node yn, cel_shape x, cel_shape y,
                             cel_resize_mode mode) {
  int64_t nx = oc_count (x), ny = oc_count (y);
  float *fx = malloc ((size_t) nx * sizeof *fx), *fdy = malloc ((size_t) ny * sizeof *fdy);
  float *gy = malloc ((size_t) ny * sizeof *gy), *gdx = malloc ((size_t) nx * sizeof *gdx);
  double *dx = malloc ((size_t) nx * sizeof *dx), *ddy = malloc ((size_t) ny * sizeof *ddy);
  double *wy = malloc ((size_t) ny * sizeof *wy), *wdx = malloc ((size_t) nx * sizeof *wdx);
  for (int64_t i = 0; i < nx; i++)
    dx[i] = fx[i] = (float) oc_rand_uniform (-1, 1);
  for (int64_t i = 0; i < ny; i++)
    ddy[i] = fdy[i] = (float) oc_rand_uniform (-1, 1);
  cel_status st = cel_graph_set_data (g, xn, fx, (size_t) nx);
  if (!st) st = cel_graph_set_data (g, dyn, fdy, (size_t) ny);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, yn, gy, (size_t) ny);
  if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, xn), gdx, (size_t) nx);
  bool ok = !st;
  if (st)
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (oc_context ()));
  if (ok) {
    resize_ref_fwd (dx, rs (x), rs (y), (int) mode, wy);
    resize_ref_bwd (ddy, rs (x), rs (y), (int) mode, wdx);
    ok = close_all (gy, wy, ny, "y") && close_all (gdx, wdx, nx, "dx");
  }
  free (fx); free (fdy); free (gy); free (gdx); free (dx); free (ddy); free (wy); free (wdx);
  return ok;
}

/* The backward node reads x's shape from the forward at each planning: after cel_graph_set_input_shape the
 * gradient has the new shape and the new taps. */
static void check_backward_follows_new_input_shape (cel_resize_mode mode) {
  cel_shape x1 = { 1, 2, 5, 4 }, x2 = { 2, 3, 9, 3 }, y1 = { 1, 2, 7, 6 }, y2 = { 2, 3, 7, 6 };
  cel_graph *g = NULL;
  cel_node xn, yn, dyn;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", x1, &xn);
  if (!st) st = cel_graph_set_requires_grad (g, xn, true);
  if (!st) st = cel_resize (g, xn, 7, 6, mode, &yn);
  if (!st) st = cel_graph_mark_output (g, yn);
  if (!st) st = cel_graph_input (g, "dy", y1, &dyn);
  if (!st) st = cel_graph_backward (g, yn, dyn);
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, xn));
  bool ok = !st && run_and_compare (g, xn, dyn, yn, x1, y1, mode);
  if (ok) {
    st = cel_graph_set_input_shape (g, xn, x2);
    if (!st) st = cel_graph_set_input_shape (g, dyn, y2);
    ok = !st && run_and_compare (g, xn, dyn, yn, x2, y2, mode);
  }
  tap_ok (ok, "/resize/%s/backward_follows_new_input_shape", mode_names[mode]);
  cel_graph_destroy (g);
}

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
    tap_ok (false, "/resize/errors/graph");
    return;
  }
  cel_graph_input (g, "x", (cel_shape) { 1, 2, 5, 5 }, &x);
  static const struct { int32_t h, w; int mode; const char *what; } bad[] = {
    { 0, 4, 0, "zero_height" }, { 4, 0, 1, "zero_width" }, { 0, 0, 2, "zero_size" }, { -3, 4, 3, "negative_height" },
    { 4, 4, 5, "unknown_mode" }, { 4, 4, -1, "negative_mode" }, { 1 << 25, 1, 0, "absurd_height" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    y = 42;
    cel_status st = cel_resize (g, x, bad[i].h, bad[i].w, (cel_resize_mode) bad[i].mode, &y);
    tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && says ("resize"), "/resize/errors/%s", bad[i].what);
  }
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  static const struct { int32_t h, w, oh, ow; const char *label; } sizes[] = {
    { 4, 5, 8, 10, "up_integer" },    { 5, 3, 13, 7, "up_odd" },        { 12, 8, 4, 2, "down_integer" },
    { 12, 8, 6, 4, "down_half" },     { 13, 11, 5, 4, "down_odd" },     { 7, 6, 1, 1, "to_1x1" },
    { 5, 4, 1, 3, "to_one_row" },     { 1, 1, 5, 3, "from_1x1" },       { 1, 6, 4, 9, "from_one_row" },
    { 6, 7, 6, 7, "identity" },       { 5, 9, 11, 4, "up_and_down" },   { 3, 2, 97, 61, "up_large_ratio" },
    { 97, 61, 3, 2, "down_large_ratio" }, { 14, 14, 46, 46, "float_rounded_index" },
  };
  for (int mode = CEL_RESIZE_NEAREST; mode <= CEL_RESIZE_BICUBIC; mode++) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      cel_shape x = { oc_rand_int (1, 2), oc_rand_int (1, 3), sizes[k].h, sizes[k].w };
      check_resize ((cel_resize_mode) mode, x, sizes[k].oh, sizes[k].ow, sizes[k].label);
    }
    for (int i = 0; i < 4; i++) {
      cel_shape x = { oc_rand_int (1, 3), oc_rand_int (1, 5), oc_rand_int (1, 19), oc_rand_int (1, 19) };
      char label[32];
      snprintf (label, sizeof label, "random%d", i);
      check_resize ((cel_resize_mode) mode, x, oc_rand_int (1, 29), oc_rand_int (1, 29), label);
    }
    check_resize ((cel_resize_mode) mode, (cel_shape) { 1, 3, 67, 45 }, 128, 100, "large");
    check_backward_follows_new_input_shape ((cel_resize_mode) mode);
  }
  check_nearest_matches_pytorch_rounding ();
  check_errors ();
  /* the forward's other way of reading x (resize.comp or resize_texel.comp) */
  const char *other;
  if (oc_other_reads (&other)) {
    char prefix[32];
    snprintf (prefix, sizeof prefix, "/%s", other);
    oc_name_prefix = prefix;
    for (int mode = CEL_RESIZE_NEAREST; mode <= CEL_RESIZE_BICUBIC; mode++) {
      check_resize ((cel_resize_mode) mode, (cel_shape) { 2, 3, 13, 11 }, 5, 4, "down_odd");
      check_resize ((cel_resize_mode) mode, (cel_shape) { 1, 2, 5, 3 }, 13, 7, "up_odd");
    }
    oc_name_prefix = "";
    oc_other_reads (&other);
  } else {
    tap_skip ("the device cannot read float texel buffers", "/resize/other_reads");
  }
  return tap_finish ();
}
