/* Activations: y = f (x) for ReLU, LeakyReLU (slope alpha), tanh and sigmoid, and their backward. */
#include "../internal.h"

typedef struct { uint32_t count, act; float alpha; } activate_push;
_Static_assert (sizeof (activate_push) == 12, "mirror of activate.comp and activate_bwd.comp");

static const char *act_name (int32_t act) {
  static const char *names[] = { "relu", "leaky_relu", "tanh", "sigmoid" };
  return act >= 0 && act <= CEL_ACT_SIGMOID ? names[act] : "unknown";
}

/* ---- activate: x, y (N,C,H,W); ip[0] cel_activation, fp[0] alpha -------------------------------- */

cel_status activate_infer (cel_graph *g, cel_node_rec *n) {
  if (n->ip[0] < CEL_ACT_RELU || n->ip[0] > CEL_ACT_SIGMOID)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "activate: unknown activation %d", (int) n->ip[0]);
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status activate_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  activate_push p = { (uint32_t) cel_shape_count (n->shape), (uint32_t) n->ip[0], n->fp[0] };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_ACTIVATE, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status activate_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  /* tanh and sigmoid differentiate from y (no transcendental again); relu and leaky from x, because with
   * alpha <= 0 the sign of y no longer tells which side of zero x was. */
  cel_node from = n.ip[0] == CEL_ACT_TANH || n.ip[0] == CEL_ACT_SIGMOID ? self : n.in[0];
  cel_node in[2] = { from, dy };
  return cel_graph_add_op (g, CEL_OP_ACTIVATE_BWD, in, 2, n.ip, 1, n.fp, 1, &dx[0]);
}

cel_status cel_activate (cel_graph *g, cel_node x, cel_activation act, float alpha, cel_node *out) {
  int32_t ip[1] = { (int32_t) act };
  return cel_graph_add_op (g, CEL_OP_ACTIVATE, &x, 1, ip, 1, &alpha, 1, out);
}

/* ---- activate_bwd: dx = f' * dy.  in[0] x (relu, leaky) or y (tanh, sigmoid), in[1] dy, all (N,C,H,W);
 * ip[0] cel_activation, fp[0] alpha --------------------------------------------------------------- */

cel_status activate_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  cel_shape us = cel_node_shape (g, n->in[0]), ds = cel_node_shape (g, n->in[1]);
  n->shape = us;
  if (us.n != ds.n || us.c != ds.c || us.h != ds.h || us.w != ds.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "activate_bwd (%s): gradient %s does not match %s",
                            act_name (n->ip[0]), cel_shape_str (ds, s1), cel_shape_str (us, s2));
  return CEL_OK;
}

cel_status activate_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  activate_push p = { (uint32_t) cel_shape_count (n->shape), (uint32_t) n->ip[0], n->fp[0] };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_ACTIVATE_BWD, bind, 3, &p, sizeof p, p.count, 256);
}
