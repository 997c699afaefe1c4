/* Per-shader and per-op GPU time (cel_context_set_profiling): the totals the graphs' runs add to (plan.c reads
 * the timestamps), and their reports. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cel_status cel_context_set_profiling (cel_context *ctx, bool enable) {
  if (enable && ctx->timestamp_bits == 0)
    return cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "profiling: device '%s' has no timestamps on its compute queue",
                          ctx->info.name);
  ctx->profiling = enable;
  return CEL_OK;
}

typedef struct prof_row {
  const char *name;
  double ns;
  uint64_t calls;
} prof_row;

static int cmp_prof_row (const void *a, const void *b) {
  double x = ((const prof_row *) a)->ns, y = ((const prof_row *) b)->ns;
  return (x < y) - (x > y);
}

void cel_context_profile_report (cel_context *ctx, FILE *out) {
  if (!out) {
    memset (ctx->prof_ns, 0, sizeof ctx->prof_ns);
    memset (ctx->prof_calls, 0, sizeof ctx->prof_calls);
    return;
  }
  prof_row rows[CEL_SHADER_COUNT];
  int n = 0;
  double total = 0;
  for (int i = 0; i < CEL_SHADER_COUNT; i++)
    if (ctx->prof_calls[i]) {
      rows[n++] = (prof_row) { cel_shader_table[i].name, ctx->prof_ns[i], ctx->prof_calls[i] };
      total += ctx->prof_ns[i];
    }
  qsort (rows, (size_t) n, sizeof rows[0], cmp_prof_row);
  fprintf (out, "%-36s %10s %12s %7s\n", "shader", "dispatches", "total ms", "share");
  for (int i = 0; i < n; i++)
    fprintf (out, "%-36s %10llu %12.2f %6.1f%%\n", rows[i].name, (unsigned long long) rows[i].calls, rows[i].ns / 1e6,
             total > 0 ? 100.0 * rows[i].ns / total : 0.0);
  fprintf (out, "%-36s %10s %12.2f\n", "all", "", total / 1e6);
  memset (ctx->prof_ns, 0, sizeof ctx->prof_ns);
  memset (ctx->prof_calls, 0, sizeof ctx->prof_calls);
}

static int cmp_prof_op (const void *a, const void *b) {
  double x = (*(const cel_prof_op *const *) a)->ns, y = (*(const cel_prof_op *const *) b)->ns;
  return (x < y) - (x > y);
}

void cel_context_profile_report_ops (cel_context *ctx, FILE *out, int max_rows) {
  if (out) {
    cel_prof_op **rows = malloc (sizeof *rows * (ctx->n_prof_ops ? ctx->n_prof_ops : 1));
    uint32_t n = 0;
    double total = 0;
    for (uint32_t i = 0; rows && i < ctx->n_prof_ops; i++)
      if (ctx->prof_ops[i].calls) {
        rows[n++] = &ctx->prof_ops[i];
        total += ctx->prof_ops[i].ns;
      }
    if (rows) {
      qsort (rows, n, sizeof *rows, cmp_prof_op);
      fprintf (out, "%12s %7s %8s  %s\n", "total ms", "share", "calls", "op (inputs' shapes -> output's)");
      for (uint32_t i = 0; i < n && (max_rows <= 0 || i < (uint32_t) max_rows); i++)
        fprintf (out, "%12.2f %6.1f%% %8llu  %s\n", rows[i]->ns / 1e6, total > 0 ? 100.0 * rows[i]->ns / total : 0.0,
                 (unsigned long long) rows[i]->calls, rows[i]->key);
      if (max_rows > 0 && n > (uint32_t) max_rows)
        fprintf (out, "%12s %7s %8s  (%u more)\n", "", "", "", n - (uint32_t) max_rows);
      fprintf (out, "%12.2f %7s %8s  all\n", total / 1e6, "", "");
    }
    free (rows);
  }
  for (uint32_t i = 0; i < ctx->n_prof_ops; i++) {
    ctx->prof_ops[i].ns = 0;
    ctx->prof_ops[i].calls = 0;
  }
}

uint32_t cel_profile_row (cel_graph *g, cel_node node) {
  cel_context *ctx = g->ctx;
  char key[sizeof ctx->prof_ops->key], b[64];
  const cel_node_rec *n = &g->nodes[node];
  int len = snprintf (key, sizeof key, "%s", cel_op_table[n->op].name);
  for (int32_t i = 0; i < n->n_in && len > 0 && (size_t) len < sizeof key; i++)
    if (n->in[i] != CEL_NO_NODE)
      len += snprintf (key + len, sizeof key - (size_t) len, " %s", cel_shape_str (g->nodes[n->in[i]].shape, b));
  if (len > 0 && (size_t) len < sizeof key)
    snprintf (key + len, sizeof key - (size_t) len, " -> %s", cel_shape_str (n->shape, b));
  for (uint32_t r = 0; r < ctx->n_prof_ops; r++)
    if (strcmp (ctx->prof_ops[r].key, key) == 0)
      return r;
  if (ctx->n_prof_ops == ctx->cap_prof_ops) {
    uint32_t cap = ctx->cap_prof_ops ? 2 * ctx->cap_prof_ops : 64;
    cel_prof_op *rows = realloc (ctx->prof_ops, sizeof *rows * cap);
    if (!rows)
      return UINT32_MAX;
    ctx->prof_ops = rows;
    ctx->cap_prof_ops = cap;
  }
  cel_prof_op *row = &ctx->prof_ops[ctx->n_prof_ops];
  memcpy (row->key, key, sizeof key);
  row->ns = 0;
  row->calls = 0;
  return ctx->n_prof_ops++;
}
