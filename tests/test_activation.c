/* Activations: relu, leaky relu, tanh, sigmoid, forward and backward, on random shapes (odd sizes, 1x1). */
#include "activation_ref.h"
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *act_names[] = { "relu", "leaky_relu", "tanh", "sigmoid" };

typedef struct { cel_shape x; cel_activation act; float alpha; } act_case;

static cel_status build_act (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const act_case *c = ud;
  return cel_activate (g, in[0], c->act, c->alpha, out);
}
static void ref_act (const double *const *in, double *out, const void *ud) {
  const act_case *c = ud;
  activation_ref_fwd (in[0], oc_count (c->x), (int) c->act, c->alpha, out);
}
static void ref_act_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const act_case *c = ud;
  activation_ref_bwd (in[0], dy, oc_count (c->x), (int) c->act, c->alpha, din[0]);
}

static cel_shape random_shape (void) {
  return (cel_shape) { oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 13), oc_rand_int (1, 17) };
}

/* One opcheck case with x uniform in [lo, hi]; relu and leaky keep their ranges 1e-2 away from the kink so
 * that central differences see one side only. */
static void check_act (cel_activation act, float alpha, cel_shape x, double lo, double hi, const char *label) {
  act_case c = { x, act, alpha };
  char name[128];
  snprintf (name, sizeof name, "/activate/%s/%s", act_names[act], label);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { x }, .in_grad = { true }, .in_lo = { lo }, .in_hi = { hi },
                .out_shape = x, .build = build_act, .fwd = ref_act, .bwd = ref_act_bwd, .ud = &c };
  oc_check (&s);
}

/* Mixed signs and exact zeros in one tensor (no finite differences there: the kink is in the data), checked
 * forward and backward against the reference. */
static void check_mixed_signs (cel_activation act, float alpha, cel_shape xs, const char *label) {
  int64_t n = oc_count (xs);
  float *x = malloc ((size_t) n * sizeof *x), *dy = malloc ((size_t) n * sizeof *dy);
  float *y = malloc ((size_t) n * sizeof *y), *dx = malloc ((size_t) n * sizeof *dx);
  double *xd = malloc ((size_t) n * sizeof *xd), *dyd = malloc ((size_t) n * sizeof *dyd);
  double *want_y = malloc ((size_t) n * sizeof *want_y);
  double *want_dx = malloc ((size_t) n * sizeof *want_dx);
  for (int64_t i = 0; i < n; i++) {
    int r = oc_rand_int (0, 9);
    x[i] = r == 0 ? 0.0f : (float) ((r & 1 ? 1 : -1) * oc_rand_uniform (1e-3, 4));
    dy[i] = (float) oc_rand_uniform (-1, 1);
    xd[i] = x[i];
    dyd[i] = dy[i];
  }
  activation_ref_fwd (xd, n, (int) act, alpha, want_y);
  activation_ref_bwd (xd, dyd, n, (int) act, alpha, want_dx);

  cel_graph *g = NULL;
  cel_node in, out, seed;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", xs, &in);
  if (!st) st = cel_graph_set_requires_grad (g, in, true);
  if (!st) st = cel_graph_set_data (g, in, x, (size_t) n);
  if (!st) st = cel_activate (g, in, act, alpha, &out);
  if (!st) st = cel_graph_mark_output (g, out);
  if (!st) st = cel_graph_input (g, "dy", xs, &seed);
  if (!st) st = cel_graph_set_data (g, seed, dy, (size_t) n);
  if (!st) st = cel_graph_backward (g, out, seed);
  if (!st) st = cel_graph_mark_output (g, cel_graph_grad (g, in));
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, out, y, (size_t) n);
  if (!st) st = cel_graph_get_data (g, cel_graph_grad (g, in), dx, (size_t) n);
  if (st)
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (oc_context ()));
  bool ok_y = !st, ok_dx = !st;
  for (int64_t i = 0; i < n && !st; i++) {
    if (!(fabs (y[i] - want_y[i]) <= 1e-5 * (1 + fabs (want_y[i]))) && ok_y) {
      tap_diag ("  y at %lld (x = %g): got %.8g, want %.8g", (long long) i, (double) x[i], (double) y[i], want_y[i]);
      ok_y = false;
    }
    if (!(fabs (dx[i] - want_dx[i]) <= 1e-5 * (1 + fabs (want_dx[i]))) && ok_dx) {
      tap_diag ("  dx at %lld (x = %g): got %.8g, want %.8g", (long long) i, (double) x[i], (double) dx[i], want_dx[i]);
      ok_dx = false;
    }
  }
  tap_ok (ok_y, "/activate/%s/mixed_signs_%s/forward", act_names[act], label);
  tap_ok (ok_dx, "/activate/%s/mixed_signs_%s/backward", act_names[act], label);
  cel_graph_destroy (g);
  free (x); free (dy); free (y); free (dx); free (xd); free (dyd); free (want_y); free (want_dx);
}

/* tanh and sigmoid stay finite and saturate exactly for huge inputs. */
static void check_saturation (cel_activation act) {
  float x[6] = { -1e4f, -100, -40, 40, 100, 1e4f }, y[6];
  cel_graph *g = NULL;
  cel_node in, out;
  cel_shape s = { 1, 1, 1, 6 };
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", s, &in);
  if (!st) st = cel_graph_set_data (g, in, x, 6);
  if (!st) st = cel_activate (g, in, act, 0, &out);
  if (!st) st = cel_graph_mark_output (g, out);
  if (!st) st = cel_graph_run (g);
  if (!st) st = cel_graph_get_data (g, out, y, 6);
  bool ok = !st;
  for (int i = 0; i < 6 && ok; i++) {
    double want = act == CEL_ACT_TANH ? tanh (x[i]) : 1 / (1 + exp (-(double) x[i]));
    ok = fabs (y[i] - want) <= 1e-7;
    if (!ok)
      tap_diag ("  x = %g: got %.8g, want %.8g", (double) x[i], (double) y[i], want);
  }
  tap_ok (ok, "%s/activate/%s/saturates_without_nan", oc_name_prefix, act_names[act]);
  cel_graph_destroy (g);
}

static void check_errors (void) {
  cel_graph *g = NULL;
  cel_node x, y = 7;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 2, 3, 3 }, &x);
  if (!st) st = cel_activate (g, x, (cel_activation) 9, 0, &y);
  const char *msg = cel_context_last_error (oc_context ());
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && strstr (msg, "activate"),
          "/activate/errors/unknown_activation");
  cel_graph_destroy (g);
}

/* ---- prelu ----------------------------------------------------------------------------------- */

typedef struct { cel_shape x; int per_channel; } prelu_case;

static cel_status build_prelu (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  (void) ud;
  return cel_prelu (g, in[0], in[1], out);
}
static void ref_prelu (const double *const *in, double *out, const void *ud) {
  const prelu_case *c = ud;
  prelu_ref_fwd (in[0], (ref_shape) { c->x.n, c->x.c, c->x.h, c->x.w }, in[1], c->per_channel, out);
}
static void ref_prelu_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  const prelu_case *c = ud;
  prelu_ref_bwd (in[0], (ref_shape) { c->x.n, c->x.c, c->x.h, c->x.w }, in[1], c->per_channel, dy, din[0], din[1]);
}

/* x of one sign per case (finite differences stay off the kink); the slope is a parameter. */
static void check_prelu (cel_shape x, int per_channel, double lo, double hi, const char *label) {
  prelu_case c = { x, per_channel };
  char name[96];
  snprintf (name, sizeof name, "/prelu/%s/%s", per_channel ? "per_channel" : "shared", label);
  oc_spec s = { .name = name, .n_in = 2, .in_shape = { x, { 1, per_channel ? x.c : 1, 1, 1 } }, .in_param = { false, true },
                .in_grad = { true, true }, .in_lo = { lo, -0.5 }, .in_hi = { hi, 0.5 }, .out_shape = x, .build = build_prelu,
                .fwd = ref_prelu, .bwd = ref_prelu_bwd, .ud = &c };
  oc_check (&s);
}

static void check_prelu_errors (void) {
  cel_graph *g = NULL;
  cel_node x, a, y = 7;
  cel_status st = cel_graph_create (oc_context (), &g);
  if (!st) st = cel_graph_input (g, "x", (cel_shape) { 1, 4, 3, 3 }, &x);
  if (!st) st = cel_graph_param (g, "a", (cel_shape) { 1, 3, 1, 1 }, &a);
  if (!st) st = cel_prelu (g, x, a, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && strstr (cel_context_last_error (oc_context ()), "prelu"),
          "/prelu/errors/slope_count_differs_from_channels");
  cel_graph_destroy (g);
}

/* The activations on a few shapes: the second pass, with the other way of reading inputs. */
static void short_pass (void) {
  for (int act = CEL_ACT_RELU; act <= CEL_ACT_SIGMOID; act++) {
    bool kink = act == CEL_ACT_RELU || act == CEL_ACT_LEAKY_RELU;
    check_act ((cel_activation) act, 0.2f, random_shape (), kink ? 1e-2 : -3, kink ? 2 : 3, "random");
    check_act ((cel_activation) act, 0.1f, (cel_shape) { 1, 3, 257, 263 }, kink ? 1e-2 : -4, 4, "large");
    check_mixed_signs ((cel_activation) act, 0.1f, (cel_shape) { 2, 3, 17, 19 }, "odd");
  }
  check_saturation (CEL_ACT_TANH);
}

int main (void) {
  oc_context ();
  for (int act = CEL_ACT_RELU; act <= CEL_ACT_SIGMOID; act++) {
    bool kink = act == CEL_ACT_RELU || act == CEL_ACT_LEAKY_RELU;
    for (int i = 0; i < 4; i++) {
      float alpha = act == CEL_ACT_LEAKY_RELU ? (float) oc_rand_uniform (0.01, 0.5) : 0.0f;
      char label[32];
      if (kink) {
        snprintf (label, sizeof label, "positive%d", i);
        check_act ((cel_activation) act, alpha, random_shape (), 1e-2, 2, label);
        snprintf (label, sizeof label, "negative%d", i);
        check_act ((cel_activation) act, alpha, random_shape (), -2, -1e-2, label);
      } else {
        snprintf (label, sizeof label, "random%d", i);
        check_act ((cel_activation) act, alpha, random_shape (), -3, 3, label);
      }
    }
    check_act ((cel_activation) act, 0.2f, (cel_shape) { 1, 1, 1, 1 }, kink ? -1 : -2, kink ? -1e-2 : 2, "1x1");
    /* many workgroups */
    check_act ((cel_activation) act, 0.1f, (cel_shape) { 1, 3, 257, 263 }, kink ? 1e-2 : -4, 4, "large");
    check_mixed_signs ((cel_activation) act, 0.1f, random_shape (), "random");
    check_mixed_signs ((cel_activation) act, 0.1f, (cel_shape) { 2, 3, 17, 19 }, "odd");
  }
  /* leaky relu with a negative slope and a slope above 1: the backward must read x, not the sign of y */
  check_act (CEL_ACT_LEAKY_RELU, -0.3f, random_shape (), -2, -1e-2, "negative_alpha");
  check_act (CEL_ACT_LEAKY_RELU, 1.7f, random_shape (), -2, -1e-2, "alpha_above_one");
  check_mixed_signs (CEL_ACT_LEAKY_RELU, -0.3f, random_shape (), "negative_alpha");
  check_saturation (CEL_ACT_TANH);
  check_saturation (CEL_ACT_SIGMOID);
  check_errors ();
  for (int i = 0; i < 3; i++) {
    char label[32];
    snprintf (label, sizeof label, "negative%d", i);
    check_prelu (random_shape (), i != 2, -2, -1e-2, label);
    snprintf (label, sizeof label, "positive%d", i);
    check_prelu (random_shape (), i != 2, 1e-2, 2, label);
  }
  check_prelu ((cel_shape) { 1, 64, 19, 23 }, 1, -2, -1e-2, "64_channels_negative");
  check_prelu_errors ();
  /* texel-buffer reads are the default on lavapipe (activate_texel.comp), storage buffers on GPUs: both run */
  const char *other;
  if (oc_other_reads (&other)) {
    char prefix[32];
    snprintf (prefix, sizeof prefix, "/%s", other);
    oc_name_prefix = prefix;
    short_pass ();
    oc_name_prefix = "";
    oc_other_reads (&other);
  } else {
    tap_skip ("the device cannot read float texel buffers", "/activate/other_reads");
  }
  return tap_finish ();
}
