/* Activations: y = f (x) for ReLU, LeakyReLU (slope alpha), tanh and sigmoid, PReLU (a learnable slope per
 * channel), and their backward. */
#include "../internal.h"

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv4 (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

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
  cel_shader_id sh = cel_exec_pick_reads (ex, CEL_SHADER_ACTIVATE, CEL_SHADER_ACTIVATE_TEXEL, bind, 1);
  return cel_exec_dispatch_1d (ex, sh, bind, 2, &p, sizeof p, p.count, 256);
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

/* ---- prelu: y = x > 0 ? x : slope[c] * x.  x (N,C,H,W), slope (1,C,1,1) or (1,1,1,1) (one slope for all
 * channels, PyTorch PReLU(num_parameters=1)). ---------------------------------------------------------- */

typedef struct { ivec4_t xshape; int32_t per_channel, mode; uint32_t count; } prelu_push;
_Static_assert (sizeof (prelu_push) == 28, "mirror of prelu.comp and prelu_bwd.comp");

cel_status prelu_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  cel_shape xs = cel_node_shape (g, n->in[0]), as = cel_node_shape (g, n->in[1]);
  if (as.n != 1 || as.h != 1 || as.w != 1 || (as.c != 1 && as.c != xs.c))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "prelu: slope %s must be (1, C, 1, 1) or (1, 1, 1, 1) for x %s",
                            cel_shape_str (as, s1), cel_shape_str (xs, s2));
  n->shape = xs;
  return CEL_OK;
}

static cel_status prelu_dispatch (cel_exec *ex, cel_graph *g, cel_node self, cel_shape xs, int32_t mode,
                                  const cel_node *bind, uint32_t n_bind) {
  prelu_push p = { iv4 (xs), cel_node_shape (g, bind[1]).c != 1, mode, (uint32_t) cel_shape_count (xs) };
  (void) self;
  return cel_exec_dispatch_planes (ex, mode ? CEL_SHADER_PRELU_BWD : CEL_SHADER_PRELU, NULL, 0, bind, n_bind, &p, sizeof p, xs);
}

cel_status prelu_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return prelu_dispatch (ex, g, self, n->shape, 0, bind, 3);
}

/* dx = x > 0 ? dy : slope * dy (mode 1); dslope = sum over what the slope broadcasts of (x > 0 ? 0 : x * dy),
 * the per-element product from the same shader (mode 2) summed with sum_to. */
cel_status prelu_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  cel_node in[3] = { n.in[0], n.in[1], dy };
  for (int32_t k = 0; k < 2 && !st; k++) {
    if (!need[k])
      continue;
    int32_t ip[1] = { k + 1 };
    cel_node t;
    st = cel_graph_add_op (g, CEL_OP_PRELU_BWD, in, 3, ip, 1, NULL, 0, &t);
    if (!st && k == 1)
      st = cel_sum_to (g, t, cel_node_shape (g, n.in[1]), &t);
    dx[k] = t;
  }
  return st;
}

cel_status cel_prelu (cel_graph *g, cel_node x, cel_node slope, cel_node *out) {
  cel_node in[2] = { x, slope };
  return cel_graph_add_op (g, CEL_OP_PRELU, in, 2, NULL, 0, NULL, 0, out);
}

/* ---- prelu_bwd: in x, slope, dy; ip[0] 1: dx (x's shape), 2: x * dy where x <= 0 (x's shape) ------ */

cel_status prelu_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  cel_shape xs = cel_node_shape (g, n->in[0]), ds = cel_node_shape (g, n->in[2]);
  if (xs.n != ds.n || xs.c != ds.c || xs.h != ds.h || xs.w != ds.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "prelu_bwd: gradient %s does not match x %s", cel_shape_str (ds, s1),
                            cel_shape_str (xs, s2));
  n->shape = xs;
  return CEL_OK;
}

cel_status prelu_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return prelu_dispatch (ex, g, self, n->shape, n->ip[0], bind, 4);
}
