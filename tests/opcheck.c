#include "opcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- TAP -------------------------------------------------------------------------------------- */

static int tap_count, tap_failed;

bool tap_ok (bool ok, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  printf ("%s %d - ", ok ? "ok" : "not ok", ++tap_count);
  vprintf (fmt, ap);
  printf ("\n");
  va_end (ap);
  fflush (stdout);
  if (!ok)
    tap_failed++;
  return ok;
}

void tap_diag (const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  printf ("# ");
  vprintf (fmt, ap);
  printf ("\n");
  va_end (ap);
  fflush (stdout);
}

static cel_context *shared_ctx;

int tap_finish (void) {
  if (shared_ctx) {
    uint32_t n = cel_context_validation_messages (shared_ctx);
    if (!tap_ok (n == 0, "/validation/no_messages"))
      tap_diag ("%u validation message(s):\n%s", n, cel_context_validation_log (shared_ctx));
    cel_context_destroy (shared_ctx);
    shared_ctx = NULL;
  }
  printf ("1..%d\n", tap_count);
  return tap_failed ? 1 : 0;
}

void tap_skip (const char *reason, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  printf ("ok %d - ", ++tap_count);
  vprintf (fmt, ap);
  printf (" # SKIP %s\n", reason);
  va_end (ap);
  fflush (stdout);
}

int tap_skip_all (const char *reason) {
  printf ("1..0 # SKIP %s\n", reason);
  return 0;
}

/* ---- context, rng ----------------------------------------------------------------------------- */

cel_context *oc_context (void) {
  if (shared_ctx)
    return shared_ctx;
  cel_context_options o = { .device = getenv ("CELGAN_TEST_DEVICE"), .pipeline_cache_path = "" };
  cel_context *ctx = NULL;
  cel_status st = cel_context_create (&o, &ctx);
  if (st) {
    printf ("Bail out! cannot create a Vulkan context: %s\n", cel_context_last_error (ctx));
    cel_context_destroy (ctx);
    exit (1);
  }
  tap_diag ("device: %s", cel_context_device (ctx)->name);
  shared_ctx = ctx;
  const char *seed = getenv ("CELGAN_TEST_SEED");
  uint64_t s = seed ? strtoull (seed, NULL, 10) : 20261127u;
  tap_diag ("seed: %llu (set CELGAN_TEST_SEED to change)", (unsigned long long) s);
  oc_rng_seed (s);
  return ctx;
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;

void oc_rng_seed (uint64_t seed) {
  rng_state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
}

uint64_t oc_rng_u64 (void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int32_t oc_rand_int (int32_t lo, int32_t hi) {
  return lo + (int32_t) (oc_rng_u64 () % (uint64_t) (hi - lo + 1));
}

double oc_rand_uniform (double lo, double hi) {
  return lo + (hi - lo) * ((double) (oc_rng_u64 () >> 11) / 9007199254740992.0);
}

/* ---- op check --------------------------------------------------------------------------------- */

static bool close_enough (double a, double b, double tol) {
  return fabs (a - b) <= tol * (1.0 + fabs (b)) && !isnan (a);
}

/* Compares n values; reports the worst index on failure. */
static bool compare (const char *name, const char *what, const float *got, const double *want, int64_t n, double tol) {
  int64_t worst = -1;
  double worst_err = 0;
  for (int64_t i = 0; i < n; i++) {
    double err = fabs ((double) got[i] - want[i]) / (1.0 + fabs (want[i]));
    if (isnan (got[i]))
      err = INFINITY;
    if (err > worst_err) {
      worst_err = err;
      worst = i;
    }
  }
  bool ok = worst < 0 || close_enough (got[worst], want[worst], tol);
  if (!tap_ok (ok, "%s/%s", name, what))
    tap_diag ("  worst at %lld: got %.8g, want %.8g (scaled error %.3g > %.3g)", (long long) worst,
              (double) got[worst], want[worst], worst_err, tol);
  return ok;
}

/* Compensated (Neumaier): the finite differences subtract two such sums of up to 2e7 terms, and a plain double sum
 * left 2e-3 of noise in them for a constant dy (test-norm's 4608x4608 plane). */
static double weighted_sum (const double *y, const double *w, int64_t n) {
  double s = 0, c = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = y[i] * w[i], t = s + v;
    c += fabs (s) >= fabs (v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

const char *oc_name_prefix = "";

bool oc_other_reads (const char **prefix) {
  cel_context *ctx = oc_context ();
  bool texel = cel_context_texel_reads (ctx);
  if (cel_context_set_texel_reads (ctx, !texel) != CEL_OK)
    return false;
  *prefix = texel ? "storage_reads" : "texel_reads";
  return true;
}

bool oc_forced_shuffle_begin (const char *skip_name) {
  const cel_device_info *dev = cel_context_device (oc_context ());
  if (dev->subgroup_size == 8 && dev->subgroup_shuffle) {
    setenv ("CELGAN_TEST_SUBGROUP_SHUFFLE", "1", 1);
    return true;
  }
  tap_skip (dev->subgroup_size == 8 ? "no subgroupShuffle" : "subgroups are not 8 wide: the shuffle ran above", "%s",
            skip_name);
  return false;
}

void oc_forced_shuffle_end (void) {
  unsetenv ("CELGAN_TEST_SUBGROUP_SHUFFLE");
}

bool oc_profile_begin (void) {
  cel_context *ctx = oc_context ();
  if (cel_context_set_profiling (ctx, true) != CEL_OK)
    return false;
  cel_context_profile_report (ctx, NULL);
  return true;
}

char *oc_profile_take (void) {
  cel_context *ctx = oc_context ();
  char *report = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&report, &len);
  if (f) {
    cel_context_profile_report (ctx, f);
    fclose (f);
  }
  cel_context_set_profiling (ctx, false);
  return report;
}

bool oc_check (const oc_spec *spec) {
  cel_context *ctx = oc_context ();
  char full_name[256];
  snprintf (full_name, sizeof full_name, "%s%s", oc_name_prefix, spec->name);
  oc_spec named = *spec;
  named.name = full_name;
  const oc_spec *s = &named;
  double tol = s->tol > 0 ? s->tol : 1e-4;
  double eps = s->fd_eps > 0 ? s->fd_eps : 1e-3;
  int fd_points = s->fd_points > 0 ? s->fd_points : 6;
  bool all = true;

  float *fin[OC_MAX_IN] = { 0 };
  double *din[OC_MAX_IN] = { 0 }, *ref_grad[OC_MAX_IN] = { 0 };
  float *gpu_grad[OC_MAX_IN] = { 0 };
  double *ref_out = NULL, *dy = NULL, *probe = NULL;
  float *gpu_out = NULL, *fdy = NULL;
  cel_graph *g = NULL;
  cel_node in[OC_MAX_IN], out = CEL_NO_NODE, seed = CEL_NO_NODE;

  int64_t n_out = oc_count (s->out_shape);
  for (int i = 0; i < s->n_in; i++) {
    int64_t n = oc_count (s->in_shape[i]);
    fin[i] = malloc ((size_t) n * sizeof (float));
    din[i] = malloc ((size_t) n * sizeof (double));
    double lo = s->in_lo[i], hi = s->in_hi[i];
    if (lo == 0 && hi == 0)
      lo = -1, hi = 1;
    for (int64_t k = 0; k < n; k++) {
      fin[i][k] = (float) oc_rand_uniform (lo, hi);
      din[i][k] = fin[i][k];
    }
  }
  ref_out = malloc ((size_t) n_out * sizeof (double));
  gpu_out = malloc ((size_t) n_out * sizeof (float));
  dy = malloc ((size_t) n_out * sizeof (double));
  fdy = malloc ((size_t) n_out * sizeof (float));
  probe = malloc ((size_t) n_out * sizeof (double));
  for (int64_t k = 0; k < n_out; k++) {
    if (s->dy_lo == 0 && s->dy_hi == 0)
      fdy[k] = (float) oc_rand_uniform (-1, 1);
    else
      fdy[k] = s->dy_lo == s->dy_hi ? (float) s->dy_lo : (float) oc_rand_uniform (s->dy_lo, s->dy_hi);
    dy[k] = fdy[k];
  }

  cel_status st = cel_graph_create (ctx, &g);
  for (int i = 0; i < s->n_in && !st; i++) {
    char nm[32];
    snprintf (nm, sizeof nm, "in%d", i);
    st = s->in_param[i] ? cel_graph_param (g, nm, s->in_shape[i], &in[i]) : cel_graph_input (g, nm, s->in_shape[i], &in[i]);
    if (!st && !s->in_param[i] && s->bwd && s->in_grad[i])
      st = cel_graph_set_requires_grad (g, in[i], true);
    if (!st)
      st = cel_graph_set_data (g, in[i], fin[i], (size_t) oc_count (s->in_shape[i]));
  }
  if (!st)
    st = s->build (g, in, &out, s->ud);
  cel_shape os = { 0, 0, 0, 0 };
  if (!st)
    st = cel_graph_shape (g, out, &os);
  if (!st && memcmp (&os, &s->out_shape, sizeof os) != 0) {
    tap_ok (false, "%s/shape", s->name);
    tap_diag ("  output shape (%d,%d,%d,%d), expected (%d,%d,%d,%d)", os.n, os.c, os.h, os.w, s->out_shape.n,
              s->out_shape.c, s->out_shape.h, s->out_shape.w);
    all = false;
    goto done;
  }
  if (!st)
    st = cel_graph_mark_output (g, out);
  if (!st && s->bwd) {
    st = cel_graph_input (g, "dy", s->out_shape, &seed);
    if (!st)
      st = cel_graph_set_data (g, seed, fdy, (size_t) n_out);
    if (!st)
      st = cel_graph_backward (g, out, seed);
    for (int i = 0; i < s->n_in && !st; i++) {
      if (!s->in_grad[i])
        continue;
      cel_node gr = cel_graph_grad (g, in[i]);
      if (gr == CEL_NO_NODE) {
        tap_ok (false, "%s/backward/in%d_has_gradient", s->name, i);
        all = false;
        continue;
      }
      st = cel_graph_mark_output (g, gr);
    }
  }
  if (!st)
    st = cel_graph_run (g);
  if (!st)
    st = cel_graph_get_data (g, out, gpu_out, (size_t) n_out);
  if (st) {
    tap_ok (false, "%s/run", s->name);
    tap_diag ("  %s: %s", cel_status_string (st), cel_context_last_error (ctx));
    all = false;
    goto done;
  }

  s->fwd ((const double *const *) din, ref_out, s->ud);
  all &= compare (s->name, "forward", gpu_out, ref_out, n_out, tol);

  if (!s->bwd)
    goto done;
  for (int i = 0; i < s->n_in; i++) {
    if (!s->in_grad[i])
      continue;
    int64_t n = oc_count (s->in_shape[i]);
    ref_grad[i] = calloc ((size_t) n, sizeof (double));
    gpu_grad[i] = malloc ((size_t) n * sizeof (float));
    cel_node gr = cel_graph_grad (g, in[i]);
    cel_status gs = gr == CEL_NO_NODE ? CEL_ERROR_INVALID_ARGUMENT : cel_graph_get_data (g, gr, gpu_grad[i], (size_t) n);
    if (gs) {
      tap_ok (false, "%s/backward/in%d", s->name, i);
      tap_diag ("  cannot read the gradient: %s: %s", cel_status_string (gs), cel_context_last_error (ctx));
      all = false;
      free (gpu_grad[i]);
      gpu_grad[i] = NULL;
    }
  }
  s->bwd ((const double *const *) din, dy, ref_grad, s->ud);
  for (int i = 0; i < s->n_in; i++) {
    if (!s->in_grad[i] || !gpu_grad[i])
      continue;
    int64_t n = oc_count (s->in_shape[i]);
    char what[64];
    snprintf (what, sizeof what, "backward/in%d", i);
    all &= compare (s->name, what, gpu_grad[i], ref_grad[i], n, tol);

    /* Central differences of L = sum (dy * y) on the double reference. */
    bool fd_ok = true;
    int64_t bad = -1;
    double bad_fd = 0;
    for (int p = 0; p < fd_points; p++) {
      int64_t k = (int64_t) (oc_rng_u64 () % (uint64_t) n);
      double keep = din[i][k];
      din[i][k] = keep + eps;
      s->fwd ((const double *const *) din, probe, s->ud);
      double lp = weighted_sum (probe, dy, n_out);
      din[i][k] = keep - eps;
      s->fwd ((const double *const *) din, probe, s->ud);
      double lm = weighted_sum (probe, dy, n_out);
      din[i][k] = keep;
      double fd = (lp - lm) / (2 * eps);
      if (!close_enough (ref_grad[i][k], fd, 1e-3 * (1 + n_out / 1e4)) || !close_enough (gpu_grad[i][k], fd, 10 * tol + 1e-3)) {
        fd_ok = false;
        bad = k;
        bad_fd = fd;
      }
    }
    snprintf (what, sizeof what, "finite_differences/in%d", i);
    if (!tap_ok (fd_ok, "%s/%s", s->name, what))
      tap_diag ("  at %lld: finite difference %.8g, reference %.8g, gpu %.8g", (long long) bad, bad_fd, ref_grad[i][bad],
                (double) gpu_grad[i][bad]);
    all &= fd_ok;
  }

done:
  cel_graph_destroy (g);
  for (int i = 0; i < OC_MAX_IN; i++) {
    free (fin[i]);
    free (din[i]);
    free (ref_grad[i]);
    free (gpu_grad[i]);
  }
  free (ref_out);
  free (gpu_out);
  free (dy);
  free (fdy);
  free (probe);
  return all;
}
