/* Bad input gets a clear status and message, never a crash or a leak (ASan run checks the leaks):
 * wrong shapes, zero-sized and absurd tensors, a device that cannot allocate, misuse of the API. */
#include "opcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool says (const char *needle) {
  const char *msg = cel_context_last_error (oc_context ());
  bool ok = strstr (msg, needle) != NULL;
  if (!ok)
    tap_diag ("  message '%s' does not mention '%s'", msg, needle);
  return ok;
}

static cel_graph *new_graph (void) {
  cel_graph *g = NULL;
  if (cel_graph_create (oc_context (), &g) != CEL_OK) {
    printf ("Bail out! cannot create a graph\n");
    exit (1);
  }
  return g;
}

static void test_shapes (void) {
  cel_graph *g = new_graph ();
  cel_node a, b, y = 123;
  cel_graph_input (g, "a", (cel_shape) { 1, 3, 4, 4 }, &a);
  cel_graph_input (g, "b", (cel_shape) { 1, 2, 4, 4 }, &b);
  int32_t before = cel_graph_node_count (g);
  cel_status st = cel_add (g, a, b, 1, 1, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && y == CEL_NO_NODE && says ("add") && says ("(1, 2, 4, 4)"),
          "/errors/add_with_mismatched_shapes");
  tap_ok (cel_graph_node_count (g) == before, "/errors/failed_op_leaves_graph_unchanged");

  st = cel_graph_input (g, "z", (cel_shape) { 1, 0, 4, 4 }, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("zero"), "/errors/zero_sized_input");
  st = cel_graph_input (g, "neg", (cel_shape) { 1, -3, 4, 4 }, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/errors/negative_size_input");
  st = cel_graph_input (g, "huge", (cel_shape) { 65536, 65536, 65536, 65536 }, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("elements"), "/errors/absurd_size_overflows_cleanly");
  st = cel_fill (g, (cel_shape) { 1 << 30, 1 << 30, 4, 4 }, 0, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT, "/errors/absurd_fill");
  st = cel_graph_input (g, "a", (cel_shape) { 1, 1, 1, 1 }, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("already"), "/errors/duplicate_name");
  st = cel_scale_shift (g, 9999, 1, 0, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("not a node"), "/errors/unknown_node");
  st = cel_sum_to (g, a, (cel_shape) { 1, 2, 1, 1 }, &y);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && says ("sum_to"), "/errors/sum_to_incompatible_shape");
  cel_graph_destroy (g);
}

static void test_data_misuse (void) {
  cel_graph *g = new_graph ();
  cel_node x, y;
  float buf[16] = { 0 };
  cel_graph_input (g, "x", (cel_shape) { 1, 1, 4, 4 }, &x);
  cel_scale_shift (g, x, 1, 0, &y);
  cel_graph_mark_output (g, y);
  tap_ok (cel_graph_set_data (g, x, buf, 15) == CEL_ERROR_INVALID_ARGUMENT && says ("16"), "/errors/set_data_wrong_count");
  tap_ok (cel_graph_set_data (g, y, buf, 16) == CEL_ERROR_INVALID_ARGUMENT && says ("op result"),
          "/errors/set_data_on_op_result");
  tap_ok (cel_graph_run (g) == CEL_ERROR_INVALID_ARGUMENT && says ("no data"), "/errors/run_without_input_data");
  tap_ok (cel_graph_get_data (g, y, buf, 16) == CEL_ERROR_INVALID_ARGUMENT && says ("not run"), "/errors/get_data_before_run");
  cel_node z;
  cel_scale_shift (g, x, 2, 0, &z);
  cel_graph_set_data (g, x, buf, 16);
  cel_graph_run (g);
  tap_ok (cel_graph_get_data (g, z, buf, 16) == CEL_ERROR_INVALID_ARGUMENT && says ("output"),
          "/errors/get_data_of_unmarked_node");
  tap_ok (cel_graph_backward (g, y, CEL_NO_NODE) == CEL_ERROR_INVALID_ARGUMENT && says ("seed"),
          "/errors/backward_of_non_scalar_without_seed");
  cel_graph_destroy (g);
}

/* A budget smaller than the graph needs: planning fails with OUT_OF_DEVICE_MEMORY, a clear sentence, and
 * nothing stays allocated; the same context then runs a graph that fits. */
static void test_device_cannot_allocate (void) {
  cel_context_options o = { .memory_budget = 1 << 20, .pipeline_cache_path = "" };
  cel_context *ctx = NULL;
  cel_graph *g = NULL;
  cel_node x, y;
  bool ok = cel_context_create (&o, &ctx) == CEL_OK && cel_graph_create (ctx, &g) == CEL_OK &&
            cel_graph_input (g, "x", (cel_shape) { 1, 16, 128, 128 }, &x) == CEL_OK &&
            cel_scale_shift (g, x, 1, 0, &y) == CEL_OK && cel_graph_mark_output (g, y) == CEL_OK;
  cel_status st = ok ? cel_graph_plan (g) : CEL_OK;
  ok = ok && st == CEL_ERROR_OUT_OF_DEVICE_MEMORY && strstr (cel_context_last_error (ctx), "budget") &&
       cel_context_device_bytes (ctx) == 0;
  if (!tap_ok (ok, "/errors/out_of_device_memory_is_reported") && ctx)
    tap_diag ("  status %d: %s", st, cel_context_last_error (ctx));
  float buf[4] = { 1, 2, 3, 4 }, out[4];
  ok = ok && cel_graph_set_input_shape (g, x, (cel_shape) { 1, 1, 2, 2 }) == CEL_OK &&
       cel_graph_set_data (g, x, buf, 4) == CEL_OK && cel_graph_run (g) == CEL_OK &&
       cel_graph_get_data (g, y, out, 4) == CEL_OK && out[3] == 4;
  tap_ok (ok, "/errors/context_usable_after_out_of_memory");
  cel_graph_destroy (g);
  cel_context_destroy (ctx);
}

static void test_bad_device_choice (void) {
  cel_context *ctx = NULL;
  cel_context_options o = { .device = "no-such-gpu-xyz", .pipeline_cache_path = "" };
  cel_status st = cel_context_create (&o, &ctx);
  tap_ok (st == CEL_ERROR_NO_DEVICE && ctx && strstr (cel_context_last_error (ctx), "no-such-gpu-xyz"),
          "/errors/unknown_device_name");
  cel_graph *g = NULL;
  tap_ok (cel_graph_create (ctx, &g) == CEL_ERROR_INVALID_ARGUMENT && g == NULL, "/errors/failed_context_refuses_graphs");
  cel_context_destroy (ctx);
  o.device = "99";
  st = cel_context_create (&o, &ctx);
  tap_ok (st == CEL_ERROR_NO_DEVICE && strstr (cel_context_last_error (ctx), "out of range"), "/errors/device_index_out_of_range");
  cel_context_destroy (ctx);
}

int main (void) {
  oc_context ();
  test_shapes ();
  test_data_misuse ();
  test_device_cannot_allocate ();
  test_bad_device_choice ();
  tap_ok (strcmp (cel_status_string (CEL_ERROR_DEVICE_LOST), "device lost") == 0, "/errors/status_strings");
  return tap_finish ();
}
