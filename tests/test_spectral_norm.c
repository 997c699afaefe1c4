/* Spectral normalization: forward, state update and backward against the reference from a state set on
 * the host (eval and training modes), the start from a zero state, finite differences in eval mode (where
 * u and v are constants), convergence of sigma over repeated runs to the largest singular value, and
 * argument errors. */
#include "opcheck.h"
#include "spectral_norm_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(st) ((st) == CEL_OK || (tap_diag ("  %s:%d: %s", __FILE__, __LINE__, cel_context_last_error (oc_context ())), 0))

typedef struct {
  cel_shape ws;
  int32_t iterations;
  bool update;
  float eps;
  int runs; /* forward runs before the results are read */
} sn_case;

typedef struct {
  int32_t oc, k;
  int64_t nw, ns;
  float *w, *state, *dy;          /* inputs (state: before the first run) */
  float *y, *state_out, *dw;      /* GPU results */
} sn_data;

static void sn_alloc (sn_data *d, cel_shape ws) {
  d->oc = ws.n;
  d->k = ws.c * ws.h * ws.w;
  d->nw = oc_count (ws);
  d->ns = d->oc + d->k + 1;
  d->w = calloc ((size_t) d->nw, sizeof (float));
  d->dy = calloc ((size_t) d->nw, sizeof (float));
  d->y = calloc ((size_t) d->nw, sizeof (float));
  d->dw = calloc ((size_t) d->nw, sizeof (float));
  d->state = calloc ((size_t) d->ns, sizeof (float));
  d->state_out = calloc ((size_t) d->ns, sizeof (float));
}

static void sn_free (sn_data *d) {
  free (d->w);
  free (d->dy);
  free (d->y);
  free (d->dw);
  free (d->state);
  free (d->state_out);
}

static double *to_double (const float *x, int64_t n) {
  double *r = malloc ((size_t) n * sizeof *r);
  for (int64_t i = 0; i < n; i++)
    r[i] = x[i];
  return r;
}

static void random_unit (float *x, int32_t n) {
  double ss = 0;
  for (int32_t i = 0; i < n; i++) {
    x[i] = (float) oc_rand_uniform (-1, 1);
    ss += (double) x[i] * x[i];
  }
  for (int32_t i = 0; i < n; i++)
    x[i] = (float) (x[i] / sqrt (ss));
}

/* Builds w (param), u (state), y = spectral_norm (w, u) with dy as the seed, runs c->runs times and reads
 * y, the state and dw. */
static bool sn_run (const sn_case *c, sn_data *d) {
  cel_graph *g = NULL;
  cel_node w, u, y, seed, dw;
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "w", c->ws, &w)) &&
            CHECK (cel_graph_state (g, "u", (cel_shape) { 1, 1, 1, (int32_t) d->ns }, &u)) &&
            CHECK (cel_graph_set_data (g, w, d->w, (size_t) d->nw)) &&
            CHECK (cel_graph_set_data (g, u, d->state, (size_t) d->ns)) &&
            CHECK (cel_spectral_norm (g, w, u, c->iterations, c->update, c->eps, &y)) &&
            CHECK (cel_graph_mark_output (g, y)) && CHECK (cel_graph_input (g, "dy", c->ws, &seed)) &&
            CHECK (cel_graph_set_data (g, seed, d->dy, (size_t) d->nw)) && CHECK (cel_graph_backward (g, y, seed));
  dw = ok ? cel_graph_grad (g, w) : CEL_NO_NODE;
  ok = ok && dw != CEL_NO_NODE && CHECK (cel_graph_mark_output (g, dw));
  for (int r = 0; r < c->runs && ok; r++)
    ok = CHECK (cel_graph_run (g));
  ok = ok && CHECK (cel_graph_get_data (g, y, d->y, (size_t) d->nw)) &&
       CHECK (cel_graph_get_data (g, u, d->state_out, (size_t) d->ns)) &&
       CHECK (cel_graph_get_data (g, dw, d->dw, (size_t) d->nw));
  cel_graph_destroy (g);
  return ok;
}

static bool compare (const char *name, const char *what, const float *got, const double *want, int64_t n, double tol) {
  int64_t worst = 0;
  double worst_err = -1;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs ((double) got[i] - want[i]) / (1.0 + fabs (want[i]));
    if (isnan (err))
      err = INFINITY;
    if (err > worst_err) {
      worst_err = err;
      worst = i;
    }
  }
  bool ok = worst_err <= tol;
  if (!tap_ok (ok, "%s/%s", name, what))
    tap_diag ("  worst at %lld: got %.8g, want %.8g (scaled error %.3g > %.3g)", (long long) worst, (double) got[worst],
              want[worst], worst_err, tol);
  return ok;
}

/* sum (dy * spectral_norm (w)) with the state's u, v held constant (eval mode recomputes only sigma). */
static double eval_objective (const double *w, const double *state, const double *dy, int32_t oc, int32_t k) {
  int64_t n = (int64_t) oc * k;
  double *s = malloc ((size_t) (oc + k + 1) * sizeof *s), *y = malloc ((size_t) n * sizeof *y), l = 0;
  memcpy (s, state, (size_t) (oc + k + 1) * sizeof *s);
  spectral_norm_ref_power (w, oc, k, s, 0, false, 1e-12);
  spectral_norm_ref_fwd (w, n, s, oc, k, y);
  for (int64_t i = 0; i < n; i++)
    l += dy[i] * y[i];
  free (s);
  free (y);
  return l;
}

/* Runs the case on the GPU and compares y, the state and dw with the reference run the same number of
 * times; with fd, also dw with central differences (eval mode only: there u, v are constants). */
static void check_case (const char *name, const sn_case *c, sn_data *d, bool fd) {
  if (!tap_ok (sn_run (c, d), "%s/run", name))
    return;
  double *w = to_double (d->w, d->nw), *state = to_double (d->state, d->ns), *dy = to_double (d->dy, d->nw);
  double *y = malloc ((size_t) d->nw * sizeof *y), *dw = malloc ((size_t) d->nw * sizeof *dw);
  for (int r = 0; r < c->runs; r++)
    spectral_norm_ref_power (w, d->oc, d->k, state, c->iterations, c->update, c->eps);
  spectral_norm_ref_fwd (w, d->nw, state, d->oc, d->k, y);
  spectral_norm_ref_bwd (w, d->oc, d->k, state, dy, dw);
  compare (name, "forward", d->y, y, d->nw, 1e-4);
  compare (name, "state_u", d->state_out, state, d->oc, 1e-4);
  compare (name, "state_v", d->state_out + d->oc, state + d->oc, d->k, 1e-4);
  compare (name, "state_sigma", d->state_out + d->oc + d->k, state + d->oc + d->k, 1, 1e-4);
  compare (name, "backward", d->dw, dw, d->nw, 1e-4);
  if (fd) {
    bool ok = true;
    int64_t bad = 0;
    double bad_fd = 0, eps = 1e-4;
    for (int p = 0; p < 8; p++) {
      int64_t i = (int64_t) (oc_rng_u64 () % (uint64_t) d->nw);
      double keep = w[i];
      w[i] = keep + eps;
      double lp = eval_objective (w, state, dy, d->oc, d->k);
      w[i] = keep - eps;
      double lm = eval_objective (w, state, dy, d->oc, d->k);
      w[i] = keep;
      double f = (lp - lm) / (2 * eps);
      if (fabs (f - dw[i]) > 1e-5 * (1 + fabs (f)) || fabs (f - d->dw[i]) > 1e-3 * (1 + fabs (f))) {
        ok = false;
        bad = i;
        bad_fd = f;
      }
    }
    if (!tap_ok (ok, "%s/finite_differences", name))
      tap_diag ("  at %lld: finite difference %.8g, reference %.8g, gpu %.8g", (long long) bad, bad_fd, dw[bad],
                (double) d->dw[bad]);
  }
  free (w);
  free (state);
  free (dy);
  free (y);
  free (dw);
}

static void fill_random (sn_data *d, bool with_state) {
  for (int64_t i = 0; i < d->nw; i++) {
    d->w[i] = (float) oc_rand_uniform (-1, 1);
    d->dy[i] = (float) oc_rand_uniform (-1, 1);
  }
  memset (d->state, 0, (size_t) d->ns * sizeof (float));
  if (with_state) {
    random_unit (d->state, d->oc);
    random_unit (d->state + d->oc, d->k);
  }
}

static void test_case (const char *name, cel_shape ws, int32_t iterations, bool update, bool with_state, int runs, bool fd) {
  sn_case c = { ws, iterations, update, 1e-12f, runs };
  sn_data d;
  sn_alloc (&d, ws);
  fill_random (&d, with_state);
  check_case (name, &c, &d, fd);
  sn_free (&d);
}

/* W = noise + 3 a b^T has a clear gap between its two largest singular values. */
static void test_repeated_runs_converge_to_largest_singular_value (void) {
  const char *name = "/spectral_norm/train/repeated_runs_converge_to_largest_singular_value";
  cel_shape ws = { 6, 10, 1, 1 };
  sn_case c = { ws, 1, true, 1e-12f, 60 };
  sn_data d;
  sn_alloc (&d, ws);
  fill_random (&d, false);
  float a[6], b[10];
  random_unit (a, 6);
  random_unit (b, 10);
  for (int o = 0; o < 6; o++)
    for (int k = 0; k < 10; k++)
      d.w[o * 10 + k] = 0.3f * d.w[o * 10 + k] + 3.0f * a[o] * b[k];
  double *w = to_double (d.w, d.nw), *state = calloc ((size_t) d.ns, sizeof *state);
  spectral_norm_ref_power (w, 6, 10, state, 5000, true, 1e-12);
  double top = state[16];
  bool ok = sn_run (&c, &d);
  double sigma = d.state_out[16];
  ok = ok && fabs (sigma - top) <= 1e-5 * top;
  if (!tap_ok (ok, "%s", name))
    tap_diag ("  sigma after %d runs %.8g, largest singular value %.8g", c.runs, sigma, top);
  /* and the normalized weight has spectral norm 1: W / sigma applied to v has length 1 */
  double len = 0;
  for (int o = 0; o < 6; o++) {
    double r = 0;
    for (int k = 0; k < 10; k++)
      r += d.y[o * 10 + k] * state[6 + k];
    len += r * r;
  }
  tap_ok (ok && fabs (sqrt (len) - 1) < 1e-4, "/spectral_norm/train/normalized_weight_has_unit_spectral_norm");
  free (w);
  free (state);
  sn_free (&d);
}

static void test_errors (void) {
  cel_graph *g = NULL;
  cel_node w, u, bad, in, y = 0;
  cel_shape ws = { 4, 3, 2, 2 };
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "w", ws, &w)) &&
            CHECK (cel_graph_state (g, "u", (cel_shape) { 1, 1, 1, 4 + 12 + 1 }, &u)) &&
            CHECK (cel_graph_state (g, "bad", (cel_shape) { 1, 1, 1, 4 + 12 }, &bad)) &&
            CHECK (cel_graph_input (g, "in", (cel_shape) { 1, 1, 1, 4 + 12 + 1 }, &in));
  cel_status st = cel_spectral_norm (g, w, bad, 1, true, 1e-12f, &y);
  tap_ok (ok && st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "spectral_norm") &&
            y == CEL_NO_NODE, "/spectral_norm/errors/state_of_the_wrong_size");
  st = cel_spectral_norm (g, w, in, 1, true, 1e-12f, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "state"),
          "/spectral_norm/errors/u_must_be_a_state");
  st = cel_spectral_norm (g, w, u, -1, true, 1e-12f, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/spectral_norm/errors/negative_iterations");
  st = cel_spectral_norm (g, w, u, 1, true, -1.0f, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/spectral_norm/errors/negative_eps");
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  test_case ("/spectral_norm/eval/conv_weight", (cel_shape) { 5, 3, 2, 2 }, 1, false, true, 1, true);
  test_case ("/spectral_norm/eval/zero_iterations_in_training", (cel_shape) { 7, 4, 1, 1 }, 0, true, true, 1, true);
  test_case ("/spectral_norm/eval/wide", (cel_shape) { 3, 40, 3, 3 }, 1, false, true, 2, true);
  test_case ("/spectral_norm/eval/fresh_state_starts_from_hash", (cel_shape) { 6, 2, 3, 3 }, 1, false, false, 1, true);
  test_case ("/spectral_norm/train/one_iteration", (cel_shape) { 5, 3, 2, 2 }, 1, true, true, 1, false);
  test_case ("/spectral_norm/train/three_iterations_two_runs", (cel_shape) { 8, 2, 3, 3 }, 3, true, true, 2, false);
  test_case ("/spectral_norm/train/fresh_state_starts_from_hash", (cel_shape) { 9, 3, 1, 1 }, 1, true, false, 1, false);
  test_case ("/spectral_norm/train/tall", (cel_shape) { 40, 3, 1, 1 }, 2, true, true, 1, false);
  /* more rows and columns than the workgroup has threads */
  test_case ("/spectral_norm/train/large_conv_weight", (cel_shape) { 300, 64, 3, 3 }, 2, true, true, 1, false);
  test_case ("/spectral_norm/eval/large_conv_weight", (cel_shape) { 300, 64, 3, 3 }, 1, false, true, 1, true);
  test_repeated_runs_converge_to_largest_singular_value ();
  test_errors ();
  return tap_finish ();
}
