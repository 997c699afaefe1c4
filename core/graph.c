/* Graph building: nodes, shape inference, host data, reverse-mode autodiff. Planning and running are in
 * plan.c. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cel_shape_str (cel_shape s, char buf[64]) {
  snprintf (buf, 64, "(%d, %d, %d, %d)", s.n, s.c, s.h, s.w);
  return buf;
}

cel_status cel_graph_error (cel_graph *g, cel_status st, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (g->ctx->error, sizeof g->ctx->error, fmt, ap);
  va_end (ap);
  return st;
}

cel_status cel_graph_create (cel_context *ctx, cel_graph **out) {
  *out = NULL;
  if (!ctx || ctx->failed)
    return ctx ? cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "the context failed to initialize: %s", ctx->error)
               : CEL_ERROR_INVALID_ARGUMENT;
  cel_graph *g = calloc (1, sizeof *g);
  if (!g)
    return cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  g->ctx = ctx;
  *out = g;
  return CEL_OK;
}

void cel_plan_release (cel_graph *g); /* plan.c */

void cel_graph_destroy (cel_graph *g) {
  if (!g)
    return;
  cel_plan_release (g);
  cel_buffer_destroy (g->ctx, &g->persist);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    free (g->nodes[i].name);
    free (g->nodes[i].host);
  }
  free (g->nodes);
  free (g->grads);
  free (g);
}

cel_context *cel_graph_context (cel_graph *g) {
  return g->ctx;
}

int32_t cel_graph_node_count (const cel_graph *g) {
  return g->n_nodes;
}

cel_status cel_graph_check_node (cel_graph *g, cel_node n, bool optional, const char *op, const char *what) {
  if (n == CEL_NO_NODE && optional)
    return CEL_OK;
  if (n < 0 || n >= g->n_nodes)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: %s is not a node of this graph (%d)", op, what, (int) n);
  if (g->nodes[n].no_output)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: %s is an op without output (%s)", op, what,
                            cel_op_table[g->nodes[n].op].name);
  return CEL_OK;
}

static cel_status check_shape (cel_graph *g, cel_shape s, const char *what) {
  char b[64];
  if (s.n <= 0 || s.c <= 0 || s.h <= 0 || s.w <= 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: shape %s has a zero or negative size", what,
                            cel_shape_str (s, b));
  /* Multiply in double first: four int32 factors can overflow int64. */
  double count = (double) s.n * s.c * s.h * s.w;
  if (count >= (double) CEL_MAX_ELEMENTS)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: shape %s has %.4g elements; at most %lld fit one tensor "
                            "(use tiling)", what, cel_shape_str (s, b), count, (long long) CEL_MAX_ELEMENTS - 1);
  return CEL_OK;
}

static cel_status new_node (cel_graph *g, cel_node_kind kind, const char *name, cel_node *out) {
  if (g->n_nodes == g->cap_nodes) {
    int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    cel_node_rec *p = realloc (g->nodes, (size_t) cap * sizeof *p);
    if (!p)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    g->nodes = p;
    g->cap_nodes = cap;
  }
  cel_node_rec *n = &g->nodes[g->n_nodes];
  memset (n, 0, sizeof *n);
  n->kind = kind;
  for (int i = 0; i < CEL_MAX_INPUTS; i++)
    n->in[i] = CEL_NO_NODE;
  if (name) {
    n->name = strdup (name);
    if (!n->name)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  }
  *out = g->n_nodes++;
  g->planned = false;
  return CEL_OK;
}

static cel_status new_leaf (cel_graph *g, cel_node_kind kind, const char *name, cel_shape shape, cel_node *out) {
  *out = CEL_NO_NODE;
  const char *what = kind == CEL_NODE_INPUT ? "input" : kind == CEL_NODE_PARAM ? "param" : "state";
  char label[256];
  snprintf (label, sizeof label, "%s '%s'", what, name ? name : "");
  cel_status st = check_shape (g, shape, label);
  if (st)
    return st;
  if (name && *name) {
    cel_node dup;
    if (cel_graph_find (g, name, &dup) == CEL_OK)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: the name is already used", label);
  }
  if (g->has_backward && kind != CEL_NODE_INPUT && kind != CEL_NODE_STATE)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: parameters must be created before cel_graph_backward", label);
  float *host = NULL;
  if (kind != CEL_NODE_INPUT) {
    host = calloc ((size_t) cel_shape_count (shape), sizeof *host);
    if (!host)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", label);
  }
  cel_node id;
  if ((st = new_node (g, kind, name, &id))) {
    free (host);
    return st;
  }
  g->nodes[id].shape = shape;
  g->nodes[id].host = host;
  g->nodes[id].host_dirty = host != NULL;
  g->nodes[id].requires_grad = kind == CEL_NODE_PARAM;
  *out = id;
  return CEL_OK;
}

cel_status cel_graph_input (cel_graph *g, const char *name, cel_shape shape, cel_node *out) {
  return new_leaf (g, CEL_NODE_INPUT, name, shape, out);
}

cel_status cel_graph_param (cel_graph *g, const char *name, cel_shape shape, cel_node *out) {
  return new_leaf (g, CEL_NODE_PARAM, name, shape, out);
}

cel_status cel_graph_state (cel_graph *g, const char *name, cel_shape shape, cel_node *out) {
  return new_leaf (g, CEL_NODE_STATE, name, shape, out);
}

cel_status cel_graph_set_input_shape (cel_graph *g, cel_node input, cel_shape shape) {
  cel_status st = cel_graph_check_node (g, input, false, "set_input_shape", "the node");
  if (st)
    return st;
  if (g->nodes[input].kind != CEL_NODE_INPUT)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "set_input_shape: node %d is not an input", (int) input);
  if ((st = check_shape (g, shape, "set_input_shape")))
    return st;
  cel_node_rec *n = &g->nodes[input];
  if (memcmp (&n->shape, &shape, sizeof shape) != 0) {
    n->shape = shape;
    free (n->host);
    n->host = NULL;
    g->planned = false;
  }
  return CEL_OK;
}

cel_status cel_graph_set_requires_grad (cel_graph *g, cel_node node, bool requires_grad) {
  cel_status st = cel_graph_check_node (g, node, false, "set_requires_grad", "the node");
  if (st)
    return st;
  if (g->nodes[node].kind != CEL_NODE_INPUT)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "set_requires_grad: node %d is not an input", (int) node);
  if (g->has_backward)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "set_requires_grad: call it before cel_graph_backward");
  g->nodes[node].requires_grad = requires_grad;
  return CEL_OK;
}

cel_status cel_graph_mark_output (cel_graph *g, cel_node node) {
  cel_status st = cel_graph_check_node (g, node, false, "mark_output", "the node");
  if (st)
    return st;
  if (!g->nodes[node].is_output) {
    g->nodes[node].is_output = true;
    g->planned = false;
  }
  return CEL_OK;
}

cel_status cel_graph_shape (const cel_graph *g, cel_node node, cel_shape *out) {
  if (node < 0 || node >= g->n_nodes) {
    snprintf (g->ctx->error, sizeof g->ctx->error, "shape: %d is not a node of this graph", (int) node);
    return CEL_ERROR_INVALID_ARGUMENT;
  }
  *out = g->nodes[node].shape;
  return CEL_OK;
}

const char *cel_graph_node_name (const cel_graph *g, cel_node node) {
  if (node < 0 || node >= g->n_nodes)
    return NULL;
  const cel_node_rec *n = &g->nodes[node];
  return n->name ? n->name : n->kind == CEL_NODE_OP ? cel_op_table[n->op].name : "";
}

cel_status cel_graph_find (const cel_graph *g, const char *name, cel_node *out) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].kind != CEL_NODE_OP && g->nodes[i].name && strcmp (g->nodes[i].name, name) == 0) {
      *out = i;
      return CEL_OK;
    }
  snprintf (g->ctx->error, sizeof g->ctx->error, "no input, parameter or state named '%s'", name);
  return CEL_ERROR_INVALID_ARGUMENT;
}

bool cel_shape_broadcasts (cel_shape b, cel_shape a) {
  return (b.n == a.n || b.n == 1) && (b.c == a.c || b.c == 1) && (b.h == a.h || b.h == 1) && (b.w == a.w || b.w == 1);
}

static cel_status infer_node (cel_graph *g, cel_node id) {
  cel_node_rec *n = &g->nodes[id];
  const cel_op_info *info = &cel_op_table[n->op];
  if (!info->infer)
    return cel_graph_error (g, CEL_ERROR_UNSUPPORTED, "op %d is not available in this build", (int) n->op);
  cel_status st = info->infer (g, n);
  if (st)
    return st;
  if (n->no_output)
    return CEL_OK;
  char label[128];
  snprintf (label, sizeof label, "%s (node %d)", info->name, (int) id);
  return check_shape (g, n->shape, label);
}

cel_status cel_graph_infer_all (cel_graph *g) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].kind != CEL_NODE_OP)
      continue;
    cel_status st = infer_node (g, i);
    if (st)
      return st;
  }
  return CEL_OK;
}

cel_status cel_graph_add_op (cel_graph *g, cel_op op, const cel_node *in, int32_t n_in, const int32_t *ip,
                             int32_t n_ip, const float *fp, int32_t n_fp, cel_node *out) {
  *out = CEL_NO_NODE;
  const char *name = cel_op_table[op].name ? cel_op_table[op].name : "op";
  if (n_in > CEL_MAX_INPUTS || n_ip > 16 || n_fp > 8)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: too many arguments", name);
  for (int32_t i = 0; i < n_in; i++) {
    char what[32];
    snprintf (what, sizeof what, "input %d", (int) i);
    cel_status st = cel_graph_check_node (g, in[i], true, name, what);
    if (st)
      return st;
  }
  cel_node id;
  cel_status st = new_node (g, CEL_NODE_OP, NULL, &id);
  if (st)
    return st;
  cel_node_rec *n = &g->nodes[id];
  n->op = op;
  n->n_in = n_in;
  for (int32_t i = 0; i < n_in; i++)
    n->in[i] = in[i];
  if (ip && n_ip)
    memcpy (n->ip, ip, (size_t) n_ip * sizeof *ip);
  if (fp && n_fp)
    memcpy (n->fp, fp, (size_t) n_fp * sizeof *fp);
  if ((st = infer_node (g, id))) {
    /* Remove the failed node so the graph stays valid. */
    g->n_nodes--;
    return st;
  }
  bool rg = false;
  for (int32_t i = 0; i < n_in; i++)
    if (in[i] != CEL_NO_NODE && g->nodes[in[i]].requires_grad)
      rg = true;
  n->requires_grad = rg && cel_op_table[op].backward != NULL;
  *out = id;
  return CEL_OK;
}

/* ---- host data -------------------------------------------------------------------------------- */

cel_status cel_plan_download_persistent (cel_graph *g, cel_node node); /* plan.c */

cel_status cel_graph_set_data (cel_graph *g, cel_node node, const float *data, size_t count) {
  cel_status st = cel_graph_check_node (g, node, false, "set_data", "the node");
  if (st)
    return st;
  cel_node_rec *n = &g->nodes[node];
  if (n->kind == CEL_NODE_OP)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "set_data: node %d is an op result, not an input, parameter or state",
                            (int) node);
  size_t want = (size_t) cel_shape_count (n->shape);
  if (count != want)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "set_data: '%s' holds %zu values, got %zu",
                            n->name ? n->name : "", want, count);
  if (!n->host) {
    n->host = malloc (want * sizeof *n->host);
    if (!n->host)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "set_data: out of host memory");
  }
  memcpy (n->host, data, want * sizeof *data);
  n->host_dirty = true;
  n->staged = false;
  return CEL_OK;
}

cel_status cel_graph_get_data (cel_graph *g, cel_node node, float *data, size_t count) {
  cel_status st = cel_graph_check_node (g, node, false, "get_data", "the node");
  if (st)
    return st;
  cel_node_rec *n = &g->nodes[node];
  size_t want = (size_t) cel_shape_count (n->shape);
  if (count != want)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "get_data: node %d holds %zu values, got room for %zu",
                            (int) node, want, count);
  if (n->kind == CEL_NODE_PARAM || n->kind == CEL_NODE_STATE) {
    if ((st = cel_plan_download_persistent (g, node)))
      return st;
    memcpy (data, n->host, want * sizeof *data);
    return CEL_OK;
  }
  if (!n->is_output)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "get_data: node %d (%s) was not marked as an output", (int) node,
                            cel_graph_node_name (g, node));
  const float *src = cel_plan_output_data (g, node);
  if (!src)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "get_data: the graph has not run since it was (re)planned");
  memcpy (data, src, want * sizeof *data);
  return CEL_OK;
}

/* ---- autodiff --------------------------------------------------------------------------------- */

cel_node cel_graph_grad (const cel_graph *g, cel_node node) {
  if (!g->grads || node < 0 || node >= g->n_nodes)
    return CEL_NO_NODE;
  return g->grads[node];
}

cel_status cel_graph_backward (cel_graph *g, cel_node output, cel_node seed) {
  cel_status st = cel_graph_check_node (g, output, false, "backward", "the output");
  if (st)
    return st;
  if ((st = cel_graph_check_node (g, seed, true, "backward", "the seed")))
    return st;
  if (g->has_backward)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "backward: the graph already has a backward pass");
  cel_shape os = g->nodes[output].shape;
  char b1[64], b2[64];
  if (seed == CEL_NO_NODE) {
    if (cel_shape_count (os) != 1)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "backward: output %s is not a single value; give a seed gradient",
                              cel_shape_str (os, b1));
    if ((st = cel_fill (g, os, 1.0f, &seed)))
      return st;
  } else if (memcmp (&g->nodes[seed].shape, &os, sizeof os) != 0) {
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "backward: seed %s does not match output %s",
                            cel_shape_str (g->nodes[seed].shape, b1), cel_shape_str (os, b2));
  }

  /* grads grows with the graph: size it for the nodes now plus generous room, then grow on demand. */
  int32_t last = output;
  g->grads = malloc ((size_t) g->n_nodes * sizeof *g->grads);
  if (!g->grads)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  int32_t n_grads = g->n_nodes;
  for (int32_t i = 0; i < n_grads; i++)
    g->grads[i] = CEL_NO_NODE;
  g->has_backward = true;
  g->grads[output] = seed;

  for (int32_t i = last; i >= 0; i--) {
    cel_node dy = g->grads[i];
    if (dy == CEL_NO_NODE || g->nodes[i].kind != CEL_NODE_OP || !g->nodes[i].requires_grad)
      continue;
    const cel_op_info *info = &cel_op_table[g->nodes[i].op];
    bool need[CEL_MAX_INPUTS] = { 0 };
    cel_node dx[CEL_MAX_INPUTS];
    int32_t n_in = g->nodes[i].n_in;
    cel_node ins[CEL_MAX_INPUTS];
    for (int32_t j = 0; j < n_in; j++) {
      ins[j] = g->nodes[i].in[j];
      need[j] = ins[j] != CEL_NO_NODE && g->nodes[ins[j]].requires_grad;
      dx[j] = CEL_NO_NODE;
    }
    if ((st = info->backward (g, i, dy, need, dx)))
      return st;
    for (int32_t j = 0; j < n_in; j++) {
      if (!need[j] || dx[j] == CEL_NO_NODE)
        continue;
      cel_node target = ins[j];
      if (g->grads[target] == CEL_NO_NODE) {
        g->grads[target] = dx[j];
      } else {
        cel_node sum;
        if ((st = cel_add (g, g->grads[target], dx[j], 1.0f, 1.0f, &sum)))
          return st;
        g->grads[target] = sum;
      }
    }
  }
  /* Extend grads to the nodes appended by the backward pass (none of them has a gradient). */
  cel_node *p = realloc (g->grads, (size_t) g->n_nodes * sizeof *p);
  if (!p)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  g->grads = p;
  for (int32_t i = n_grads; i < g->n_nodes; i++)
    g->grads[i] = CEL_NO_NODE;
  return CEL_OK;
}

cel_status cel_graph_truncate (cel_graph *g, int32_t n_nodes) {
  if (n_nodes < 0 || n_nodes > g->n_nodes)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "truncate: %d is not a node count of this graph", (int) n_nodes);
  if (g->has_backward)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "truncate: the graph has a backward pass");
  for (int32_t i = n_nodes; i < g->n_nodes; i++)
    if (g->nodes[i].kind == CEL_NODE_PARAM || g->nodes[i].kind == CEL_NODE_STATE)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "truncate: would remove parameter '%s'",
                              g->nodes[i].name ? g->nodes[i].name : "");
  for (int32_t i = n_nodes; i < g->n_nodes; i++) {
    free (g->nodes[i].name);
    free (g->nodes[i].host);
  }
  for (int32_t i = 0; i < n_nodes; i++)
    g->nodes[i].is_output = false;
  if (n_nodes != g->n_nodes)
    g->planned = false;
  g->n_nodes = n_nodes;
  return CEL_OK;
}
