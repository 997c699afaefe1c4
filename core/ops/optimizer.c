/* Optimizers as ops: adam, an in-place update of a parameter and its moments. The node has no output
 * (node->no_output); it runs where it was created in the node order, so append it after
 * cel_graph_backward: it then reads the gradient of this run and updates the parameter after every use. */
#include "../internal.h"

#include <math.h>
#include <string.h>

/* ---- adam: in param, grad, m, v, hyper (1,1,1,4); fp[0..3] beta1, beta2, eps, weight_decay -------- */

typedef struct { uint32_t count; float beta1, beta2, eps, weight_decay; } adam_push;
_Static_assert (sizeof (adam_push) == 20, "mirror of adam.comp");

cel_status adam_infer (cel_graph *g, cel_node_rec *n) {
  static const char *const what[5] = { "param", "grad", "m", "v", "hyper" };
  char s1[64], s2[64];
  n->no_output = true;
  n->shape = (cel_shape) { 1, 1, 1, 1 };
  cel_shape ps = cel_node_shape (g, n->in[0]);
  cel_node_kind pk = cel_node_get (g, n->in[0])->kind;
  if (pk != CEL_NODE_PARAM && pk != CEL_NODE_STATE)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: param must be a parameter or a state (it is updated in place)");
  for (int i = 2; i < 4; i++)
    if (cel_node_get (g, n->in[i])->kind != CEL_NODE_STATE)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: %s must be a state (cel_graph_state)", what[i]);
  /* one dispatch binds all five: a buffer written in place must not be bound twice */
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++)
      if (n->in[i] == n->in[j])
        return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: %s and %s are the same node", what[i], what[j]);
  for (int i = 1; i < 4; i++) {
    cel_shape s = cel_node_shape (g, n->in[i]);
    if (memcmp (&s, &ps, sizeof s) != 0)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: %s %s does not match param %s", what[i],
                              cel_shape_str (s, s1), cel_shape_str (ps, s2));
  }
  cel_shape hs = cel_node_shape (g, n->in[4]);
  if (hs.n != 1 || hs.c != 1 || hs.h != 1 || hs.w != 4)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: hyper %s must be (1, 1, 1, 4): lr, 1 - beta1^t, 1 - beta2^t, 0",
                            cel_shape_str (hs, s1));
  return CEL_OK;
}

cel_status adam_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  adam_push p = { (uint32_t) cel_shape_count (cel_node_shape (g, n->in[0])), n->fp[0], n->fp[1], n->fp[2], n->fp[3] };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_ADAM, n->in, 5, &p, sizeof p, p.count, 256);
}

cel_status cel_adam_step (cel_graph *g, cel_node param, cel_node grad, cel_node m, cel_node v, cel_node hyper,
                          const cel_adam_params *p, cel_node *out) {
  cel_node id = CEL_NO_NODE;
  if (out)
    *out = CEL_NO_NODE;
  cel_node in[5] = { param, grad, m, v, hyper };
  static const char *const what[5] = { "param", "grad", "m", "v", "hyper" };
  cel_status st;
  for (int i = 0; i < 5; i++)
    if ((st = cel_graph_check_node (g, in[i], false, "adam", what[i])))
      return st;
  if (!p)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: no parameters given");
  if (!(p->beta1 >= 0.0f && p->beta1 < 1.0f) || !(p->beta2 >= 0.0f && p->beta2 < 1.0f) || !(p->eps >= 0.0f) ||
      !isfinite (p->eps) || !isfinite (p->weight_decay))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "adam: betas must be in [0, 1) and eps, weight_decay finite "
                            "(eps >= 0); got beta1 %g, beta2 %g, eps %g, weight_decay %g", (double) p->beta1,
                            (double) p->beta2, (double) p->eps, (double) p->weight_decay);
  float fp[4] = { p->beta1, p->beta2, p->eps, p->weight_decay };
  st = cel_graph_add_op (g, CEL_OP_ADAM, in, 5, NULL, 0, fp, 4, &id);
  if (out)
    *out = id;
  return st;
}
