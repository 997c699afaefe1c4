/* Channel ops: concat of two tensors on channels, a slice of channels, and their backward ops: concat's
 * is a slice per input, the slice's places the gradient into the input's channel range, zeros elsewhere.
 * The backward ops refer to their forward node (ip[0]) for shapes, read at every inference, so gradients
 * follow cel_graph_set_input_shape without keeping the forward's inputs alive. */
#include "../internal.h"

typedef struct { int32_t v[4]; } ivec4_t;
static ivec4_t iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

/* ---- concat: a (N,C1,H,W), b (N,C2,H,W) -> y (N,C1+C2,H,W) --------------------------------------- */

typedef struct { ivec4_t yshape; int32_t ca; uint32_t count; } concat_push;
_Static_assert (sizeof (concat_push) == 24, "mirror of concat.comp");

cel_status concat_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  cel_shape a = cel_node_shape (g, n->in[0]), b = cel_node_shape (g, n->in[1]);
  if (a.n != b.n || a.h != b.h || a.w != b.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "concat: %s and %s differ in N, H or W", cel_shape_str (a, s1),
                            cel_shape_str (b, s2));
  if ((int64_t) a.c + b.c > INT32_MAX)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "concat: %d + %d channels overflow", a.c, b.c);
  n->shape = (cel_shape) { a.n, a.c + b.c, a.h, a.w };
  return CEL_OK;
}

cel_status concat_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  concat_push p = { iv (n->shape), cel_node_shape (g, n->in[0]).c, (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONCAT, bind, 3, &p, sizeof p, p.count, 256);
}

cel_status concat_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  cel_status st = CEL_OK;
  for (int32_t i = 0; i < 2 && !st; i++) {
    int32_t ip[2] = { self, i };
    if (need[i])
      st = cel_graph_add_op (g, CEL_OP_CONCAT_BWD, &dy, 1, ip, 2, NULL, 0, &dx[i]);
  }
  return st;
}

cel_status cel_concat (cel_graph *g, cel_node a, cel_node b, cel_node *out) {
  cel_node in[2] = { a, b };
  return cel_graph_add_op (g, CEL_OP_CONCAT, in, 2, NULL, 0, NULL, 0, out);
}

/* ---- slice_channels: x (N,C,H,W) -> y (N,count,H,W) = channels [c0, c0+count); ip[0] c0, ip[1] count.
 * slice_channels_bwd: dy (N,count,H,W) -> dx (N,C,H,W), dy at channels [c0, c0+count), zeros elsewhere;
 * ip[0] the forward slice node. Slices, their backward and concat's backward are one shader:
 * y[n,c,h,w] = x[n,c+shift,h,w] where 0 <= c+shift < C_x, else 0. ------------------------------------- */

typedef struct { ivec4_t xshape, yshape; int32_t shift; uint32_t count; } slice_push;
_Static_assert (sizeof (slice_push) == 40, "mirror of slice_channels.comp");

cel_status slice_channels_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64];
  cel_shape xs = cel_node_shape (g, n->in[0]);
  int32_t c0 = n->ip[0], count = n->ip[1];
  if (c0 < 0 || count < 1 || (int64_t) c0 + count > xs.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "slice_channels: channels [%d, %lld) are not a non-empty range of %s",
                            c0, (long long) c0 + count, cel_shape_str (xs, s1));
  n->shape = (cel_shape) { xs.n, count, xs.h, xs.w };
  return CEL_OK;
}

static cel_status slice_dispatch (cel_exec *ex, cel_graph *g, cel_node self, int32_t shift) {
  const cel_node_rec *n = cel_node_get (g, self);
  slice_push p = { iv (cel_node_shape (g, n->in[0])), iv (n->shape), shift, (uint32_t) cel_shape_count (n->shape) };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_SLICE_CHANNELS, bind, 2, &p, sizeof p, p.count, 256);
}

cel_status slice_channels_record (cel_exec *ex, cel_graph *g, cel_node self) {
  return slice_dispatch (ex, g, self, cel_node_get (g, self)->ip[0]);
}

cel_status slice_channels_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  int32_t ip[1] = { self };
  return cel_graph_add_op (g, CEL_OP_SLICE_CHANNELS_BWD, &dy, 1, ip, 1, NULL, 0, &dx[0]);
}

cel_status cel_slice_channels (cel_graph *g, cel_node x, int32_t c0, int32_t count, cel_node *out) {
  int32_t ip[2] = { c0, count };
  return cel_graph_add_op (g, CEL_OP_SLICE_CHANNELS, &x, 1, ip, 2, NULL, 0, out);
}

cel_status slice_channels_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  const cel_node_rec *fwd = cel_node_get (g, n->ip[0]);
  cel_shape ds = cel_node_shape (g, n->in[0]);
  n->shape = cel_node_shape (g, fwd->in[0]);
  if (ds.n != fwd->shape.n || ds.c != fwd->shape.c || ds.h != fwd->shape.h || ds.w != fwd->shape.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "slice_channels_bwd: gradient %s does not match output %s",
                            cel_shape_str (ds, s1), cel_shape_str (fwd->shape, s2));
  return CEL_OK;
}

cel_status slice_channels_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  return slice_dispatch (ex, g, self, -cel_node_get (g, n->ip[0])->ip[0]);
}

/* ---- concat_bwd: dy (N,C1+C2,H,W) -> the gradient of concat input ip[1] (0: channels [0, C1), 1: [C1,
 * C1+C2)); ip[0] the forward concat node, whose input shapes are read at every inference. -------------- */

cel_status concat_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  const cel_node_rec *fwd = cel_node_get (g, n->ip[0]);
  cel_shape ds = cel_node_shape (g, n->in[0]);
  n->shape = cel_node_shape (g, fwd->in[n->ip[1]]);
  if (ds.n != fwd->shape.n || ds.c != fwd->shape.c || ds.h != fwd->shape.h || ds.w != fwd->shape.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "concat_bwd: gradient %s does not match output %s",
                            cel_shape_str (ds, s1), cel_shape_str (fwd->shape, s2));
  return CEL_OK;
}

cel_status concat_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  const cel_node_rec *fwd = cel_node_get (g, n->ip[0]);
  return slice_dispatch (ex, g, self, n->ip[1] ? cel_node_shape (g, fwd->in[0]).c : 0);
}
