/* Optimizer family: Adam steps (with and without weight decay) against the double reference over several
 * runs, Adam appended after the backward pass minimizing a mean squared error, and argument errors.
 * Uses the elementwise ops only (besides adam), so that it builds with -Dop_families=elementwise,optimizer. */
#include "opcheck.h"
#include "optimizer_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(st) ((st) == CEL_OK || (tap_diag ("  %s:%d: %s", __FILE__, __LINE__, cel_context_last_error (oc_context ())), 0))

/* |got - want| <= tol * (|want| + floor) everywhere; reports the worst element. */
static bool compare (const char *name, const float *got, const double *want, int64_t n, double tol, double floor) {
  int64_t worst = 0;
  double worst_err = -1;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs ((double) got[i] - want[i]) / (fabs (want[i]) + floor);
    if (isnan (err))
      err = INFINITY;
    if (err > worst_err) {
      worst_err = err;
      worst = i;
    }
  }
  bool ok = worst_err <= tol;
  if (!tap_ok (ok, "%s", name))
    tap_diag ("  worst at %lld: got %.9g, want %.9g (relative error %.3g > %.3g)", (long long) worst, (double) got[worst],
              want[worst], worst_err, tol);
  return ok;
}

/* Hyper-parameters of step t (from 1) as the host computes them for the adam node. */
static void hyper_of_step (float hyper[4], double lr, const cel_adam_params *p, int t) {
  hyper[0] = (float) lr;
  hyper[1] = (float) (1 - pow (p->beta1, t));
  hyper[2] = (float) (1 - pow (p->beta2, t));
  hyper[3] = 0;
}

static void test_steps_match_reference (const char *label, cel_shape s, cel_adam_params ap, double lr, int steps) {
  int64_t n = oc_count (s);
  float *fp = malloc ((size_t) n * sizeof *fp), *fg = malloc ((size_t) n * sizeof *fg);
  float *gp = malloc ((size_t) n * sizeof *gp), *gm = malloc ((size_t) n * sizeof *gm), *gv = malloc ((size_t) n * sizeof *gv);
  double *rp = malloc ((size_t) n * sizeof *rp), *rg = malloc ((size_t) n * sizeof *rg);
  double *rm = calloc ((size_t) n, sizeof *rm), *rv = calloc ((size_t) n, sizeof *rv);
  for (int64_t i = 0; i < n; i++)
    rp[i] = fp[i] = (float) oc_rand_uniform (-1, 1);
  cel_graph *g = NULL;
  cel_node param, grad, m, v, hyper, step;
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "p", s, &param)) &&
            CHECK (cel_graph_set_data (g, param, fp, (size_t) n)) && CHECK (cel_graph_input (g, "grad", s, &grad)) &&
            CHECK (cel_graph_state (g, "m", s, &m)) && CHECK (cel_graph_state (g, "v", s, &v)) &&
            CHECK (cel_graph_input (g, "hyper", (cel_shape) { 1, 1, 1, 4 }, &hyper)) &&
            CHECK (cel_adam_step (g, param, grad, m, v, hyper, &ap, &step));
  for (int t = 1; t <= steps && ok; t++) {
    for (int64_t i = 0; i < n; i++)
      rg[i] = fg[i] = (float) oc_rand_uniform (-2, 2);
    float h[4];
    hyper_of_step (h, lr, &ap, t);
    ok = CHECK (cel_graph_set_data (g, grad, fg, (size_t) n)) && CHECK (cel_graph_set_data (g, hyper, h, 4)) &&
         CHECK (cel_graph_run (g));
    adam_ref_step (rp, rg, rm, rv, n, h[0], h[1], h[2], ap.beta1, ap.beta2, ap.eps, ap.weight_decay);
  }
  ok = ok && CHECK (cel_graph_get_data (g, param, gp, (size_t) n)) && CHECK (cel_graph_get_data (g, m, gm, (size_t) n)) &&
       CHECK (cel_graph_get_data (g, v, gv, (size_t) n));
  char name[128];
  snprintf (name, sizeof name, "/adam/%s/run", label);
  if (tap_ok (ok, "%s", name)) {
    snprintf (name, sizeof name, "/adam/%s/param", label);
    compare (name, gp, rp, n, 1e-5, 1e-2);
    snprintf (name, sizeof name, "/adam/%s/m", label);
    compare (name, gm, rm, n, 1e-5, 1e-2);
    snprintf (name, sizeof name, "/adam/%s/v", label);
    compare (name, gv, rv, n, 1e-5, 1e-2);
  }
  cel_graph_destroy (g);
  free (fp);
  free (fg);
  free (gp);
  free (gm);
  free (gv);
  free (rp);
  free (rg);
  free (rm);
  free (rv);
}

/* loss = mean ((p - target)^2); backward; adam on p. The first run's loss and update match the reference
 * (the adam node reads this run's gradient after every use of p); then the loss goes to ~0. */
static void test_minimizes_mean_squared_error (void) {
  cel_shape s = { 1, 2, 4, 4 };
  enum { N = 32, STEPS = 300 };
  cel_adam_params ap = { 0.9f, 0.999f, 1e-8f, 0.0f };
  float fp[N], ft[N], got[N], loss = 0, first = 0;
  double rp[N], rt[N], rg[N], rm[N] = { 0 }, rv[N] = { 0 };
  for (int i = 0; i < N; i++) {
    rp[i] = fp[i] = (float) oc_rand_uniform (-1, 1);
    rt[i] = ft[i] = (float) oc_rand_uniform (-1, 1);
  }
  cel_graph *g = NULL;
  cel_node param, target, diff, sq, mse, m, v, hyper;
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "p", s, &param)) &&
            CHECK (cel_graph_set_data (g, param, fp, N)) && CHECK (cel_graph_input (g, "target", s, &target)) &&
            CHECK (cel_graph_set_data (g, target, ft, N)) && CHECK (cel_graph_state (g, "m", s, &m)) &&
            CHECK (cel_graph_state (g, "v", s, &v)) &&
            CHECK (cel_graph_input (g, "hyper", (cel_shape) { 1, 1, 1, 4 }, &hyper)) &&
            CHECK (cel_add (g, param, target, 1.0f, -1.0f, &diff)) && CHECK (cel_mul (g, diff, diff, &sq)) &&
            CHECK (cel_mean (g, sq, &mse)) && CHECK (cel_graph_mark_output (g, mse)) &&
            CHECK (cel_graph_backward (g, mse, CEL_NO_NODE)) &&
            CHECK (cel_adam_step (g, param, cel_graph_grad (g, param), m, v, hyper, &ap, NULL));
  for (int t = 1; t <= STEPS && ok; t++) {
    float h[4];
    hyper_of_step (h, 0.1 * pow (0.98, t - 1), &ap, t);
    ok = CHECK (cel_graph_set_data (g, hyper, h, 4)) && CHECK (cel_graph_run (g)) && CHECK (cel_graph_get_data (g, mse, &loss, 1));
    if (t == 1 && ok) {
      first = loss;
      double want = 0;
      for (int i = 0; i < N; i++) {
        want += (rp[i] - rt[i]) * (rp[i] - rt[i]) / N;
        rg[i] = 2 * (rp[i] - rt[i]) / N;
      }
      tap_ok (fabs (loss - want) < 1e-5, "/adam/end_to_end/first_loss_matches_reference");
      adam_ref_step (rp, rg, rm, rv, N, h[0], h[1], h[2], ap.beta1, ap.beta2, ap.eps, ap.weight_decay);
      ok = CHECK (cel_graph_get_data (g, param, got, N));
      compare ("/adam/end_to_end/first_step_uses_this_runs_gradient", got, rp, N, 1e-5, 1e-2);
    }
  }
  if (!tap_ok (ok && loss < 1e-4 * first, "/adam/end_to_end/minimizes_mean_squared_error"))
    tap_diag ("  loss %.6g after %d steps, %.6g at the start", (double) loss, STEPS, (double) first);
  cel_graph_destroy (g);
}

static void test_errors (void) {
  cel_graph *g = NULL;
  cel_shape s = { 1, 2, 3, 4 };
  cel_node p, grad, m, v, hyper, bad_m, in_m, bad_hyper, step, y;
  cel_adam_params ap = { 0.9f, 0.999f, 1e-8f, 0.0f };
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "p", s, &p)) &&
            CHECK (cel_graph_input (g, "grad", s, &grad)) && CHECK (cel_graph_state (g, "m", s, &m)) &&
            CHECK (cel_graph_state (g, "v", s, &v)) && CHECK (cel_graph_input (g, "hyper", (cel_shape) { 1, 1, 1, 4 }, &hyper)) &&
            CHECK (cel_graph_state (g, "bad_m", (cel_shape) { 1, 2, 3, 5 }, &bad_m)) &&
            CHECK (cel_graph_input (g, "in_m", s, &in_m)) &&
            CHECK (cel_graph_input (g, "bad_hyper", (cel_shape) { 1, 1, 1, 3 }, &bad_hyper));
  cel_status st = cel_adam_step (g, p, grad, bad_m, v, hyper, &ap, &step);
  tap_ok (ok && st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "adam") &&
            step == CEL_NO_NODE, "/adam/errors/moment_of_the_wrong_shape");
  st = cel_adam_step (g, p, grad, in_m, v, hyper, &ap, &step);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "adam"),
          "/adam/errors/moment_must_be_a_state");
  st = cel_adam_step (g, p, grad, m, v, bad_hyper, &ap, &step);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "hyper"),
          "/adam/errors/hyper_of_the_wrong_shape");
  st = cel_adam_step (g, p, grad, m, m, hyper, &ap, &step);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/adam/errors/m_and_v_must_differ");
  cel_adam_params bad = { 1.0f, 0.999f, 1e-8f, 0.0f };
  st = cel_adam_step (g, p, grad, m, v, hyper, &bad, &step);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/adam/errors/beta_of_one");
  ok = CHECK (cel_adam_step (g, p, grad, m, v, hyper, &ap, &step));
  st = cel_scale_shift (g, step, 1.0f, 0.0f, &y);
  tap_ok (ok && st == CEL_ERROR_INVALID_ARGUMENT, "/adam/errors/step_has_no_output_to_use");
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  test_steps_match_reference ("ten_steps", (cel_shape) { 2, 3, 4, 5 }, (cel_adam_params) { 0.9f, 0.999f, 1e-8f, 0.0f }, 1e-3, 10);
  test_steps_match_reference ("ten_steps_weight_decay", (cel_shape) { 3, 5, 7, 11 },
                              (cel_adam_params) { 0.5f, 0.99f, 1e-6f, 0.01f }, 2e-3, 10);
  test_steps_match_reference ("many_workgroups", (cel_shape) { 1, 64, 64, 70 },
                              (cel_adam_params) { 0.9f, 0.999f, 1e-8f, 1e-4f }, 1e-3, 3);
  test_minimizes_mean_squared_error ();
  test_errors ();
  return tap_finish ();
}
