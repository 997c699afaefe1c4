/* Elementwise ops and broadcasting reductions: fill, add, mul, scale_shift, sum_to (also global average
 * pool and mean), broadcast_scale. */
#include "../internal.h"

#include <string.h>

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}
static cel_shape shape_from (const int32_t *ip) {
  return (cel_shape) { ip[0], ip[1], ip[2], ip[3] };
}

/* ---- fill: ip[0..3] shape, fp[0] value ----------------------------------------------------------- */

typedef struct { uint32_t count; float value; } fill_push;
_Static_assert (sizeof (fill_push) == 8, "mirror of fill.comp");

cel_status fill_infer (cel_graph *g, cel_node_rec *n) {
  (void) g;
  n->shape = shape_from (n->ip);
  return CEL_OK;
}

cel_status fill_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  fill_push p = { (uint32_t) cel_shape_count (n->shape), n->fp[0] };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_FILL, &self, 1, &p, sizeof p, p.count, 256);
}

cel_status cel_fill (cel_graph *g, cel_shape shape, float value, cel_node *out) {
  int32_t ip[4] = { shape.n, shape.c, shape.h, shape.w };
  return cel_graph_add_op (g, CEL_OP_FILL, NULL, 0, ip, 4, &value, 1, out);
}

/* ---- add: y = fp[0] * a + fp[1] * b, b broadcast ------------------------------------------------- */

typedef struct { ivec4_t shape, bshape; uint32_t count; float alpha, beta; } add_push;
_Static_assert (sizeof (add_push) == 44, "mirror of add.comp");

static cel_status check_broadcast (cel_graph *g, const char *op, cel_node a, cel_node b) {
  char s1[64], s2[64];
  if (!cel_shape_broadcasts (cel_node_shape (g, b), cel_node_shape (g, a)))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: %s does not broadcast to %s", op,
                            cel_shape_str (cel_node_shape (g, b), s1), cel_shape_str (cel_node_shape (g, a), s2));
  return CEL_OK;
}

cel_status add_infer (cel_graph *g, cel_node_rec *n) {
  cel_status st = check_broadcast (g, "add", n->in[0], n->in[1]);
  n->shape = cel_node_shape (g, n->in[0]);
  return st;
}

cel_status add_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  add_push p = { iv (n->shape), iv (cel_node_shape (g, n->in[1])), (uint32_t) cel_shape_count (n->shape), n->fp[0], n->fp[1] };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  cel_shape bs = cel_node_shape (g, n->in[1]);
  uint32_t same = memcmp (&bs, &n->shape, sizeof bs) == 0;
  cel_bind b[3] = { cel_bind_node (bind[0]), cel_bind_node (bind[1]), cel_bind_node (bind[2]) };
  return cel_exec_dispatch_1d_bound (ex, CEL_SHADER_ADD, &same, 1, b, 3, &p, sizeof p, p.count, 256);
}

/* dy scaled and summed down to `target`'s shape. */
static cel_status reduce_grad (cel_graph *g, cel_node dy, cel_shape target, float scale, cel_node *out) {
  cel_shape ds = cel_node_shape (g, dy);
  if (memcmp (&ds, &target, sizeof ds) == 0)
    return scale == 1.0f ? (*out = dy, CEL_OK) : cel_scale_shift (g, dy, scale, 0.0f, out);
  cel_node s;
  cel_status st = cel_sum_to (g, dy, target, &s);
  if (st || scale == 1.0f)
    return *out = s, st;
  return cel_scale_shift (g, s, scale, 0.0f, out);
}

cel_status add_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  if (need[0] && (st = reduce_grad (g, dy, cel_node_shape (g, n.in[0]), n.fp[0], &dx[0])))
    return st;
  if (need[1])
    st = reduce_grad (g, dy, cel_node_shape (g, n.in[1]), n.fp[1], &dx[1]);
  return st;
}

cel_status cel_add (cel_graph *g, cel_node a, cel_node b, float alpha, float beta, cel_node *out) {
  cel_node in[2] = { a, b };
  float fp[2] = { alpha, beta };
  return cel_graph_add_op (g, CEL_OP_ADD, in, 2, NULL, 0, fp, 2, out);
}

/* ---- mul: y = a * b, b broadcast ---------------------------------------------------------------- */

typedef struct { ivec4_t shape, bshape; uint32_t count; } mul_push;
_Static_assert (sizeof (mul_push) == 36, "mirror of mul.comp");

cel_status mul_infer (cel_graph *g, cel_node_rec *n) {
  cel_status st = check_broadcast (g, "mul", n->in[0], n->in[1]);
  n->shape = cel_node_shape (g, n->in[0]);
  return st;
}

cel_status mul_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  mul_push p = { iv (n->shape), iv (cel_node_shape (g, n->in[1])), (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_MUL, bind, 3, &p, sizeof p, p.count, 256);
}

cel_status mul_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  if (need[0] && (st = cel_mul (g, dy, n.in[1], &dx[0])))
    return st;
  if (need[1]) {
    cel_node t;
    if ((st = cel_mul (g, dy, n.in[0], &t)))
      return st;
    st = reduce_grad (g, t, cel_node_shape (g, n.in[1]), 1.0f, &dx[1]);
  }
  return st;
}

cel_status cel_mul (cel_graph *g, cel_node a, cel_node b, cel_node *out) {
  cel_node in[2] = { a, b };
  return cel_graph_add_op (g, CEL_OP_MUL, in, 2, NULL, 0, NULL, 0, out);
}

/* ---- scale_shift: y = fp[0] * x + fp[1] --------------------------------------------------------- */

typedef struct { uint32_t count; float scale, shift; } scale_shift_push;
_Static_assert (sizeof (scale_shift_push) == 12, "mirror of scale_shift.comp");

cel_status scale_shift_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status scale_shift_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  scale_shift_push p = { (uint32_t) cel_shape_count (n->shape), n->fp[0], n->fp[1] };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_SCALE_SHIFT, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status scale_shift_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  return cel_scale_shift (g, dy, cel_node_get (g, self)->fp[0], 0.0f, &dx[0]);
}

cel_status cel_scale_shift (cel_graph *g, cel_node x, float scale, float shift, cel_node *out) {
  float fp[2] = { scale, shift };
  return cel_graph_add_op (g, CEL_OP_SCALE_SHIFT, &x, 1, NULL, 0, fp, 2, out);
}

/* ---- sum_to: y (shape ip[0..3]) = fp[0] * sum of x over the dims where y is 1 ------------------- */

typedef struct { ivec4_t xshape, yshape; uint32_t ycount; float scale; } sum_to_push;
_Static_assert (sizeof (sum_to_push) == 40, "mirror of sum_to.comp");

cel_status sum_to_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = shape_from (n->ip);
  char s1[64], s2[64];
  cel_shape xs = cel_node_shape (g, n->in[0]);
  if (!cel_shape_broadcasts (n->shape, xs))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "sum_to: cannot reduce %s to %s (each dim must be kept or 1)",
                            cel_shape_str (xs, s1), cel_shape_str (n->shape, s2));
  uint32_t count = (uint32_t) cel_shape_count (n->shape);
  uint32_t parts = cel_reduce_parts (count, (uint32_t) (cel_shape_count (xs) / count));
  n->scratch = parts > 1 ? (int64_t) count * parts : 0;
  return CEL_OK;
}

cel_status sum_to_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  uint32_t count = (uint32_t) cel_shape_count (n->shape);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  sum_to_push p = { iv (xs), iv (n->shape), count, n->fp[0] };
  cel_node bind[2] = { n->in[0], self };
  /* few outputs of long sums (a bias's gradient: one per channel over N*H*W) in several parts each, folded by
   * fold_parts.comp from the node's scratch (cel_reduce_parts) */
  uint32_t spec[1] = { cel_reduce_parts (count, (uint32_t) (cel_shape_count (xs) / count)) };
  cel_status st = cel_exec_dispatch_groups (ex, CEL_SHADER_SUM_TO, spec, 1, bind, 2, &p, sizeof p, count * spec[0]);
  return st || spec[0] == 1 ? st : cel_exec_fold_parts (ex, self, count, spec[0], p.scale);
}

cel_status sum_to_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n.in[0]);
  int32_t ip[4] = { xs.n, xs.c, xs.h, xs.w };
  return cel_graph_add_op (g, CEL_OP_BROADCAST_SCALE, &dy, 1, ip, 4, &n.fp[0], 1, &dx[0]);
}

cel_status cel_sum_to (cel_graph *g, cel_node x, cel_shape shape, cel_node *out) {
  int32_t ip[4] = { shape.n, shape.c, shape.h, shape.w };
  float one = 1.0f;
  return cel_graph_add_op (g, CEL_OP_SUM_TO, &x, 1, ip, 4, &one, 1, out);
}

cel_status cel_global_avg_pool (cel_graph *g, cel_node x, cel_node *out) {
  cel_status st = cel_graph_check_node (g, x, false, "global_avg_pool", "x");
  if (st)
    return st;
  cel_shape xs = cel_node_shape (g, x);
  int32_t ip[4] = { xs.n, xs.c, 1, 1 };
  float scale = 1.0f / ((float) xs.h * (float) xs.w);
  return cel_graph_add_op (g, CEL_OP_SUM_TO, &x, 1, ip, 4, &scale, 1, out);
}

cel_status cel_mean (cel_graph *g, cel_node x, cel_node *out) {
  cel_status st = cel_graph_check_node (g, x, false, "mean", "x");
  if (st)
    return st;
  int32_t ip[4] = { 1, 1, 1, 1 };
  float scale = (float) (1.0 / (double) cel_shape_count (cel_node_shape (g, x)));
  return cel_graph_add_op (g, CEL_OP_SUM_TO, &x, 1, ip, 4, &scale, 1, out);
}

/* ---- broadcast_scale: y (shape ip[0..3]) = fp[0] * x broadcast ---------------------------------- */

typedef struct { ivec4_t yshape, xshape; uint32_t count; float scale; } broadcast_scale_push;
_Static_assert (sizeof (broadcast_scale_push) == 40, "mirror of broadcast_scale.comp");

cel_status broadcast_scale_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = shape_from (n->ip);
  char s1[64], s2[64];
  cel_shape xs = cel_node_shape (g, n->in[0]);
  if (!cel_shape_broadcasts (xs, n->shape))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "broadcast: %s does not broadcast to %s", cel_shape_str (xs, s1),
                            cel_shape_str (n->shape, s2));
  return CEL_OK;
}

cel_status broadcast_scale_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  broadcast_scale_push p = { iv (n->shape), iv (cel_node_shape (g, n->in[0])), (uint32_t) cel_shape_count (n->shape), n->fp[0] };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_BROADCAST_SCALE, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status broadcast_scale_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  return reduce_grad (g, dy, cel_node_shape (g, n.in[0]), n.fp[0], &dx[0]);
}

/* ---- stop_gradient: y = x, and no gradient flows back through y ------------------------------ */

cel_status stop_gradient_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status stop_gradient_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  scale_shift_push p = { (uint32_t) cel_shape_count (n->shape), 1.0f, 0.0f };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_SCALE_SHIFT, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status cel_stop_gradient (cel_graph *g, cel_node x, cel_node *out) {
  return cel_graph_add_op (g, CEL_OP_STOP_GRADIENT, &x, 1, NULL, 0, NULL, 0, out);
}
