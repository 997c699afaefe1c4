/* Graph mechanics with elementwise ops only: planning once and running many times, re-planning for new
 * input shapes, arena reuse by lifetime, persistent parameters, gradient accumulation, outputs. */
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(st) ((st) == CEL_OK || (tap_diag ("  %s:%d: %s", __FILE__, __LINE__, cel_context_last_error (oc_context ())), 0))

static void test_run_many_times_with_new_inputs (void) {
  cel_graph *g = NULL;
  cel_node x, y;
  cel_shape s = { 1, 2, 3, 4 };
  float in[24], out[24];
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "x", s, &x)) &&
            CHECK (cel_scale_shift (g, x, 2.0f, 1.0f, &y)) && CHECK (cel_graph_mark_output (g, y)) &&
            CHECK (cel_graph_plan (g));
  cel_plan_stats before = { 0 }, after = { 0 };
  ok = ok && CHECK (cel_graph_plan_stats (g, &before));
  for (int r = 0; r < 3 && ok; r++) {
    for (int i = 0; i < 24; i++)
      in[i] = (float) (i * (r + 1));
    ok = CHECK (cel_graph_set_data (g, x, in, 24)) && CHECK (cel_graph_run (g)) && CHECK (cel_graph_get_data (g, y, out, 24));
    for (int i = 0; i < 24 && ok; i++)
      ok = out[i] == 2.0f * in[i] + 1.0f;
  }
  ok = ok && CHECK (cel_graph_plan_stats (g, &after)) && before.dispatches == after.dispatches;
  tap_ok (ok, "/graph/run_many_times_without_replanning");
  cel_graph_destroy (g);
}

static void test_replan_for_new_input_shape (void) {
  cel_graph *g = NULL;
  cel_node x, b, y;
  cel_shape s1 = { 1, 3, 4, 5 }, s2 = { 2, 3, 7, 9 }, bs = { 1, 3, 1, 1 };
  float bias[3] = { 1, 2, 3 };
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "x", s1, &x)) &&
            CHECK (cel_graph_param (g, "b", bs, &b)) && CHECK (cel_graph_set_data (g, b, bias, 3)) &&
            CHECK (cel_add (g, x, b, 1.0f, 1.0f, &y)) && CHECK (cel_graph_mark_output (g, y));
  float *in = malloc (2 * 3 * 7 * 9 * sizeof (float)), *out = malloc (2 * 3 * 7 * 9 * sizeof (float));
  for (int pass = 0; pass < 2 && ok; pass++) {
    cel_shape s = pass ? s2 : s1;
    int64_t n = oc_count (s);
    for (int64_t i = 0; i < n; i++)
      in[i] = (float) i;
    ok = CHECK (cel_graph_set_input_shape (g, x, s)) && CHECK (cel_graph_set_data (g, x, in, (size_t) n)) &&
         CHECK (cel_graph_run (g));
    cel_shape ys;
    ok = ok && CHECK (cel_graph_shape (g, y, &ys)) && memcmp (&ys, &s, sizeof s) == 0 &&
         CHECK (cel_graph_get_data (g, y, out, (size_t) n));
    for (int64_t i = 0; i < n && ok; i++) {
      int c = (int) ((i / (s.h * s.w)) % s.c);
      ok = out[i] == in[i] + bias[c];
    }
  }
  tap_ok (ok, "/graph/replan_for_new_input_shape_keeps_parameters");
  free (in);
  free (out);
  cel_graph_destroy (g);
}

/* A chain of 10 same-size ops needs only two live buffers at a time (plus the input). */
static void test_arena_reuses_memory_by_lifetime (void) {
  cel_graph *g = NULL;
  cel_node x, y;
  cel_shape s = { 1, 4, 32, 32 };
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "x", s, &x));
  y = x;
  for (int i = 0; i < 10 && ok; i++)
    ok = CHECK (cel_scale_shift (g, y, 1.0f, 1.0f, &y));
  ok = ok && CHECK (cel_graph_mark_output (g, y)) && CHECK (cel_graph_plan (g));
  cel_plan_stats st = { 0 };
  ok = ok && CHECK (cel_graph_plan_stats (g, &st));
  uint64_t one = (uint64_t) oc_count (s) * 4;
  if (!tap_ok (ok && st.arena_bytes <= 3 * one && st.unpacked_bytes >= 11 * one, "/graph/arena_reuses_memory_by_lifetime"))
    tap_diag ("  arena %llu bytes, unpacked %llu, one tensor %llu", (unsigned long long) st.arena_bytes,
              (unsigned long long) st.unpacked_bytes, (unsigned long long) one);
  float *in = calloc ((size_t) oc_count (s), sizeof (float)), *out = malloc ((size_t) oc_count (s) * sizeof (float));
  ok = ok && CHECK (cel_graph_set_data (g, x, in, (size_t) oc_count (s))) && CHECK (cel_graph_run (g)) &&
       CHECK (cel_graph_get_data (g, y, out, (size_t) oc_count (s)));
  for (int64_t i = 0; i < oc_count (s) && ok; i++)
    ok = out[i] == 10.0f;
  tap_ok (ok, "/graph/packed_chain_computes_correctly");
  free (in);
  free (out);
  cel_graph_destroy (g);
}

/* Intermediates that outgrow the largest allocation are planned into several allocations (chunks) with the
 * same results, forward and backward; a single tensor larger than the limit is a clear error. Eight branches
 * y_i = (i + 1) x + i stay live until their sum: with room for three tensors per allocation the arena needs
 * at least three chunks. sum = 36 x + 28, d mean(sum) / dx = 36 / N. */
static void test_arena_in_chunks (void) {
  cel_context *ctx = oc_context ();
  cel_shape s = { 1, 4, 16, 16 };
  uint64_t one = (uint64_t) oc_count (s) * 4;
  bool ok = CHECK (cel_context_limit_allocation (ctx, 3 * one));
  cel_graph *g = NULL;
  cel_node x, y[8], sum, total;
  ok = ok && CHECK (cel_graph_create (ctx, &g)) && CHECK (cel_graph_input (g, "x", s, &x)) &&
       CHECK (cel_graph_set_requires_grad (g, x, true));
  for (int i = 0; i < 8 && ok; i++)
    ok = CHECK (cel_scale_shift (g, x, (float) (i + 1), (float) i, &y[i]));
  sum = y[0];
  for (int i = 1; i < 8 && ok; i++)
    ok = CHECK (cel_add (g, sum, y[i], 1, 1, &sum));
  ok = ok && CHECK (cel_mean (g, sum, &total)) && CHECK (cel_graph_mark_output (g, sum)) &&
       CHECK (cel_graph_backward (g, total, CEL_NO_NODE));
  cel_node gx = ok ? cel_graph_grad (g, x) : CEL_NO_NODE;
  ok = ok && gx != CEL_NO_NODE && CHECK (cel_graph_mark_output (g, gx)) && CHECK (cel_graph_plan (g));
  cel_plan_stats st = { 0 };
  ok = ok && CHECK (cel_graph_plan_stats (g, &st));
  if (!tap_ok (ok && st.arena_chunks >= 3, "/graph/arena_in_chunks/planned_in_several_allocations"))
    tap_diag ("  %u chunks, arena %llu bytes, limit %llu", st.arena_chunks, (unsigned long long) st.arena_bytes,
              (unsigned long long) (3 * one));
  size_t n = (size_t) oc_count (s);
  float *in = malloc (n * sizeof (float)), *out = malloc (n * sizeof (float)), *grad = malloc (n * sizeof (float));
  for (size_t i = 0; i < n; i++)
    in[i] = (float) ((int) (i % 7) - 3) * 0.25f;
  ok = ok && in && out && grad && CHECK (cel_graph_set_data (g, x, in, n)) && CHECK (cel_graph_run (g)) &&
       CHECK (cel_graph_get_data (g, sum, out, n)) && CHECK (cel_graph_get_data (g, gx, grad, n));
  bool same = ok;
  for (size_t i = 0; i < n && same; i++)
    same = fabsf (out[i] - (36 * in[i] + 28)) <= 1e-4f && fabsf (grad[i] * (float) n - 36) <= 1e-3f;
  tap_ok (same, "/graph/arena_in_chunks/forward_and_backward_correct");
  cel_graph_destroy (g);
  g = NULL;
  /* one tensor above the limit: refused at planning, with the reason */
  cel_node big, z;
  ok = CHECK (cel_context_limit_allocation (ctx, one / 2)) && CHECK (cel_graph_create (ctx, &g)) &&
       CHECK (cel_graph_input (g, "x", s, &big)) && CHECK (cel_scale_shift (g, big, 2, 0, &z)) &&
       CHECK (cel_graph_mark_output (g, z));
  cel_status pst = ok ? cel_graph_plan (g) : CEL_OK;
  if (!tap_ok (pst == CEL_ERROR_OUT_OF_DEVICE_MEMORY && strstr (cel_context_last_error (ctx), "one allocation"),
               "/graph/arena_in_chunks/tensor_over_the_limit_refused"))
    tap_diag ("  status %d: %s", (int) pst, cel_context_last_error (ctx));
  cel_graph_destroy (g);
  CHECK (cel_context_limit_allocation (ctx, 0));
  free (in);
  free (out);
  free (grad);
}

/* y = x*x + 3x uses x twice: the gradient accumulates both paths: dy/dx = 2x + 3. */
static void test_gradient_accumulates_over_uses (void) {
  cel_graph *g = NULL;
  cel_node x, sq, lin, y, loss;
  cel_shape s = { 1, 1, 2, 3 };
  float in[6] = { -1, 0, 1, 2, 3, 0.5f }, grad[6];
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "x", s, &x)) &&
            CHECK (cel_graph_set_data (g, x, in, 6)) && CHECK (cel_mul (g, x, x, &sq)) &&
            CHECK (cel_scale_shift (g, x, 3.0f, 0.0f, &lin)) && CHECK (cel_add (g, sq, lin, 1.0f, 1.0f, &y)) &&
            CHECK (cel_sum_to (g, y, (cel_shape) { 1, 1, 1, 1 }, &loss)) && CHECK (cel_graph_backward (g, loss, CEL_NO_NODE));
  cel_node gx = cel_graph_grad (g, x);
  ok = ok && gx != CEL_NO_NODE && CHECK (cel_graph_mark_output (g, gx)) && CHECK (cel_graph_run (g)) &&
       CHECK (cel_graph_get_data (g, gx, grad, 6));
  for (int i = 0; i < 6 && ok; i++)
    ok = fabsf (grad[i] - (2 * in[i] + 3)) < 1e-6f;
  tap_ok (ok, "/graph/gradient_accumulates_over_uses");
  tap_ok (cel_graph_grad (g, loss) != CEL_NO_NODE, "/graph/output_has_seed_gradient");
  cel_graph_destroy (g);
}

/* Inputs without requires_grad get no gradient node; parameters do. */
static void test_requires_grad (void) {
  cel_graph *g = NULL;
  cel_node x, w, y, loss;
  cel_shape s = { 1, 1, 1, 4 };
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_input (g, "x", s, &x)) &&
            CHECK (cel_graph_param (g, "w", s, &w)) && CHECK (cel_mul (g, x, w, &y)) && CHECK (cel_mean (g, y, &loss)) &&
            CHECK (cel_graph_backward (g, loss, CEL_NO_NODE));
  tap_ok (ok && cel_graph_grad (g, x) == CEL_NO_NODE && cel_graph_grad (g, w) != CEL_NO_NODE,
          "/graph/only_parameters_and_requested_inputs_get_gradients");
  cel_graph_destroy (g);
}

/* Parameters set before planning survive adding nodes and re-planning; get_data returns them. */
static void test_parameters_persist (void) {
  cel_graph *g = NULL;
  cel_node p, q, y;
  cel_shape s = { 1, 1, 1, 3 };
  float a[3] = { 1, 2, 3 }, b[3] = { 10, 20, 30 }, got[3], out[3];
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "p", s, &p)) &&
            CHECK (cel_graph_set_data (g, p, a, 3)) && CHECK (cel_scale_shift (g, p, 1.0f, 0.0f, &y)) &&
            CHECK (cel_graph_mark_output (g, y)) && CHECK (cel_graph_run (g)) &&
            CHECK (cel_graph_param (g, "q", s, &q)) && CHECK (cel_graph_set_data (g, q, b, 3)) &&
            CHECK (cel_add (g, y, q, 1.0f, 1.0f, &y)) && CHECK (cel_graph_mark_output (g, y)) && CHECK (cel_graph_run (g)) &&
            CHECK (cel_graph_get_data (g, y, out, 3)) && CHECK (cel_graph_get_data (g, p, got, 3));
  for (int i = 0; i < 3 && ok; i++)
    ok = out[i] == a[i] + b[i] && got[i] == a[i];
  cel_node found = CEL_NO_NODE;
  ok = ok && CHECK (cel_graph_find (g, "q", &found)) && found == q;
  tap_ok (ok, "/graph/parameters_persist_across_replanning");
  cel_graph_destroy (g);
}

/* loss = sum (x * stop_gradient (x)): the gradient is x (one path only), the value x^2. */
static void test_stop_gradient (void) {
  cel_graph *g = NULL;
  cel_node x, sx, y, loss;
  cel_shape s = { 1, 1, 1, 4 };
  float in[4] = { 1, -2, 3, 0.5f }, grad[4], l = 0;
  bool ok = CHECK (cel_graph_create (oc_context (), &g)) && CHECK (cel_graph_param (g, "x", s, &x)) &&
            CHECK (cel_graph_set_data (g, x, in, 4)) && CHECK (cel_stop_gradient (g, x, &sx)) && CHECK (cel_mul (g, x, sx, &y)) &&
            CHECK (cel_sum_to (g, y, (cel_shape) { 1, 1, 1, 1 }, &loss)) && CHECK (cel_graph_mark_output (g, loss)) &&
            CHECK (cel_graph_backward (g, loss, CEL_NO_NODE));
  cel_node gx = cel_graph_grad (g, x);
  ok = ok && gx != CEL_NO_NODE && CHECK (cel_graph_mark_output (g, gx)) && CHECK (cel_graph_run (g)) &&
       CHECK (cel_graph_get_data (g, gx, grad, 4)) && CHECK (cel_graph_get_data (g, loss, &l, 1));
  for (int i = 0; i < 4 && ok; i++)
    ok = grad[i] == in[i];
  tap_ok (ok && l == 1 + 4 + 9 + 0.25f, "/graph/stop_gradient_blocks_one_path");
  cel_graph_destroy (g);
}

static void test_devices_listed (void) {
  cel_device_info infos[16];
  uint32_t n = 0;
  char err[256] = "";
  cel_status st = cel_device_list (infos, 16, &n, err, sizeof err);
  bool ok = st == CEL_OK && n >= 1 && infos[0].name[0];
  tap_ok (ok, "/context/device_list");
  for (uint32_t i = 0; ok && i < n && i < 16; i++)
    tap_diag ("  device %u: %s (%s, subgroup %u, fp16 %d, storage16 %d, coopmat %d)", i, infos[i].name,
              infos[i].is_cpu ? "cpu" : "gpu", infos[i].subgroup_size, infos[i].shader_float16, infos[i].storage_16bit,
              infos[i].cooperative_matrix);
}

static void test_pipeline_cache_file (void) {
  char path[] = "/tmp/celgan-test-cache-XXXXXX";
  int fd = mkstemp (path);
  if (fd >= 0)
    remove (path);
  cel_context_options o = { .pipeline_cache_path = path };
  bool ok = true;
  for (int round = 0; round < 2 && ok; round++) {
    cel_context *ctx = NULL;
    cel_graph *g = NULL;
    cel_node x, y;
    ok = cel_context_create (&o, &ctx) == CEL_OK && cel_graph_create (ctx, &g) == CEL_OK &&
         cel_graph_input (g, "x", (cel_shape) { 1, 1, 1, 1 }, &x) == CEL_OK &&
         cel_scale_shift (g, x, 1, 0, &y) == CEL_OK && cel_graph_plan (g) == CEL_OK;
    cel_graph_destroy (g);
    cel_context_destroy (ctx);
    FILE *f = fopen (path, "rb");
    ok = ok && f != NULL;
    if (f)
      fclose (f);
  }
  remove (path);
  tap_ok (ok, "/context/pipeline_cache_saved_and_reloaded");
}

/* A profile report (per shader, or per op and shapes) as a string; the caller frees it. */
static char *report_text (cel_context *ctx, bool by_op) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  if (!f)
    return strdup ("");
  if (by_op)
    cel_context_profile_report_ops (ctx, f, 0);
  else
    cel_context_profile_report (ctx, f);
  fclose (f);
  return text;
}

/* Profiling: each dispatch of a run is counted under its shader, the report lists them and clears. */
static void test_profile (void) {
  cel_context *ctx = oc_context ();
  cel_graph *g = NULL;
  cel_node x, a, y;
  float in[64] = { 0 };
  cel_status pst = cel_context_set_profiling (ctx, true);
  if (pst == CEL_ERROR_UNSUPPORTED) {
    tap_ok (true, "/context/profile_counts_dispatches_per_shader # SKIP the device has no timestamps");
    return;
  }
  bool ok = CHECK (pst) && CHECK (cel_graph_create (ctx, &g)) &&
            CHECK (cel_graph_input (g, "x", (cel_shape) { 1, 1, 8, 8 }, &x)) && CHECK (cel_scale_shift (g, x, 2, 1, &a)) &&
            CHECK (cel_add (g, a, x, 1, 1, &y)) && CHECK (cel_graph_mark_output (g, y)) &&
            CHECK (cel_graph_set_data (g, x, in, 64)) && CHECK (cel_graph_run (g)) && CHECK (cel_graph_run (g));
  char *text = report_text (ctx, false);
  /* Two runs: two dispatches of each shader, each with a time. */
  unsigned long long calls[2] = { 0, 0 };
  double ms[2] = { -1, -1 };
  const char *names[2] = { "\nscale_shift ", "\nadd " };
  for (int i = 0; i < 2 && ok; i++) {
    const char *line = strstr (text, names[i]);
    ok = line && sscanf (line + strlen (names[i]), "%llu %lf", &calls[i], &ms[i]) == 2 && calls[i] == 2 && ms[i] >= 0;
  }
  ok = ok && strstr (text, "\nall ");
  if (!ok)
    tap_diag ("  report:\n%s", text ? text : "");
  free (text);
  text = report_text (ctx, false); /* cleared: only the header and the total */
  ok = ok && !strstr (text, "\nadd ");
  free (text);
  tap_ok (ok, "/context/profile_counts_dispatches_per_shader");

  /* The same dispatches by op and shapes: each op's row with its two calls, the bias-less inputs left out; a
   * second graph's op of the same shapes adds to the same row; the report clears. */
  cel_graph *g2 = NULL;
  cel_node x2, a2;
  cel_context_profile_report_ops (ctx, NULL, 0); /* clears the first two runs' */
  bool ok2 = CHECK (cel_graph_run (g)) && CHECK (cel_graph_create (ctx, &g2)) &&
             CHECK (cel_graph_input (g2, "x", (cel_shape) { 1, 1, 8, 8 }, &x2)) &&
             CHECK (cel_scale_shift (g2, x2, 3, 0, &a2)) && CHECK (cel_graph_mark_output (g2, a2)) &&
             CHECK (cel_graph_set_data (g2, x2, in, 64)) && CHECK (cel_graph_run (g2));
  text = report_text (ctx, true);
  const char *rows[2] = { "scale_shift (1, 1, 8, 8) -> (1, 1, 8, 8)\n", "add (1, 1, 8, 8) (1, 1, 8, 8) -> (1, 1, 8, 8)\n" };
  unsigned long long want[2] = { 2, 1 };
  for (int i = 0; i < 2 && ok2; i++) {
    const char *row = strstr (text, rows[i]);
    const char *start = row;
    while (start && start > text && start[-1] != '\n')
      start--;
    double ms_row = -1, share = -1;
    unsigned long long n_calls = 0;
    ok2 = row && sscanf (start, "%lf %lf%% %llu", &ms_row, &share, &n_calls) == 3 && n_calls == want[i] && ms_row >= 0;
  }
  ok2 = ok2 && strstr (text, " all\n");
  if (!ok2)
    tap_diag ("  report by op:\n%s", text ? text : "");
  free (text);
  text = report_text (ctx, true);
  ok2 = ok2 && !strstr (text, "scale_shift");
  free (text);
  cel_context_set_profiling (ctx, false);
  tap_ok (ok2, "/context/profile_by_op_and_shapes");
  cel_graph_destroy (g2);
  cel_graph_destroy (g);
}

int main (void) {
  oc_context ();
  test_devices_listed ();
  test_run_many_times_with_new_inputs ();
  test_replan_for_new_input_shape ();
  test_arena_reuses_memory_by_lifetime ();
  test_arena_in_chunks ();
  test_gradient_accumulates_over_uses ();
  test_requires_grad ();
  test_parameters_persist ();
  test_pipeline_cache_file ();
  test_stop_gradient ();
  test_profile ();
  return tap_finish ();
}
