/* Losses: the Gram matrix (style loss) and the mean absolute / squared errors.
 * - gram and its backward are tiled matrix products (16x16 tiles through shared memory, see gram.comp); where the
 *   context reads through texel buffers, gram runs as conv2d's blocked weight gradient instead (conv.h), and
 *   its backward (gram_sym: the symmetrized, scaled gradient, then gram_bwd) as a grouped 1x1 convolution;
 *   the forward computes only the tiles on and above the diagonal and mirrors them.
 * - A mean loss is two nodes: loss_partials (1,1,1,LOSS_PARTIALS), per-chunk sums each computed by one
 *   workgroup, then a sum_to node adding them, so that no thread sums a large tensor alone. */
#include "../internal.h"
#include "conv.h"

#include <string.h>

/* ---- gram: x (N,C,H,W) -> y (N,1,C,C), fp[0] scale (0: 1 / (C*H*W)) ----------------------------- */

typedef struct { uint32_t c, hw; float scale; } gram_push;
_Static_assert (sizeof (gram_push) == 12, "mirror of gram.comp and gram_bwd.comp");

/* The scale is resolved at record time, so that it follows the current input shape. */
static gram_push gram_params (cel_shape xs, float scale) {
  uint32_t hw = (uint32_t) xs.h * (uint32_t) xs.w;
  if (scale == 0.0f)
    scale = (float) (1.0 / ((double) xs.c * hw));
  return (gram_push) { (uint32_t) xs.c, hw, scale };
}

cel_status gram_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  n->shape = (cel_shape) { xs.n, 1, xs.c, xs.c };
  return CEL_OK;
}

cel_status gram_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  gram_push p = gram_params (xs, n->fp[0]);
  /* Where the context reads through texel buffers (CPU devices) and subgroups are 8 wide: conv2d's blocked
   * weight gradient. In a lavapipe training step (fast configuration, 256x256, batch 2) about 0.3-1 s against
   * 3.5 s for gram.comp, whose shared-memory reads lavapipe runs lane by lane. */
  if (g->ctx->texel_reads) {
    bool done;
    cel_status st = conv2d_gram_blocked (ex, g, n->in[0], self, xs, p.scale, &done);
    if (st || done)
      return st;
  }
  cel_node bind[2] = { n->in[0], self };
  uint32_t tiles = (p.c + 15) / 16; /* 16x16 tiles of each sample's C x C; those below the diagonal exit */
  return cel_exec_dispatch (ex, CEL_SHADER_GRAM, NULL, 0, bind, 2, &p, sizeof p, tiles, tiles, (uint32_t) n->shape.n);
}

/* dx = scale * (dG + dG^T) x, per sample: S = scale * (dG + dG^T) (gram_sym), then dx = S x (gram_bwd). */
cel_status gram_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  cel_node s;
  cel_status st = cel_graph_add_op (g, CEL_OP_GRAM_SYM, (cel_node[2]) { dy, n.in[0] }, 2, NULL, 0, n.fp, 1, &s);
  if (st)
    return st;
  cel_node in[2] = { s, n.in[0] };
  return cel_graph_add_op (g, CEL_OP_GRAM_BWD, in, 2, NULL, 0, NULL, 0, &dx[0]);
}

cel_status cel_gram (cel_graph *g, cel_node x, float scale, cel_node *out) {
  *out = CEL_NO_NODE;
  cel_status st = cel_graph_check_node (g, x, false, "gram", "x");
  if (st)
    return st;
  return cel_graph_add_op (g, CEL_OP_GRAM, &x, 1, NULL, 0, &scale, 1, out);
}

/* ---- gram_sym: in dy (N,1,C,C), x (N,C,H,W) -> S (N*C,C,1,1) = scale * (dy + dy^T) per sample, fp[0] the
 * forward's scale (x only for its shape): the weights of gram_bwd's 1x1 convolution --------------------- */

cel_status gram_sym_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape ds = cel_node_shape (g, n->in[0]), xs = cel_node_shape (g, n->in[1]);
  char s1[64], s2[64];
  n->shape = (cel_shape) { xs.n * xs.c, xs.c, 1, 1 };
  if (ds.n != xs.n || ds.c != 1 || ds.h != xs.c || ds.w != xs.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "gram_bwd: gradient %s does not match the Gram matrix of %s",
                            cel_shape_str (ds, s1), cel_shape_str (xs, s2));
  return CEL_OK;
}

typedef struct { uint32_t count, c; float scale; } gram_sym_push;
_Static_assert (sizeof (gram_sym_push) == 12, "mirror of gram_sym.comp");

cel_status gram_sym_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  gram_push gp = gram_params (cel_node_shape (g, n->in[1]), n->fp[0]);
  gram_sym_push p = { (uint32_t) cel_shape_count (n->shape), gp.c, gp.scale };
  cel_node bind[2] = { n->in[0], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_GRAM_SYM, bind, 2, &p, sizeof p, p.count, 256);
}

/* ---- gram_bwd: in S (N*C,C,1,1) from gram_sym, x (N,C,H,W) -> dx (N,C,H,W) = S[n] x[n] per sample ------ */

cel_status gram_bwd_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape ss = cel_node_shape (g, n->in[0]), xs = cel_node_shape (g, n->in[1]);
  char s1[64], s2[64];
  n->shape = xs;
  if (ss.n != xs.n * xs.c || ss.c != xs.c || ss.h != 1 || ss.w != 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "gram_bwd: %s is not the (N*C, C, 1, 1) of x %s",
                            cel_shape_str (ss, s1), cel_shape_str (xs, s2));
  n->temp = conv2d_gram_bwd_temp (g, xs); /* the packed S of the blocked forward (0 where it does not run) */
  return CEL_OK;
}

cel_status gram_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  /* Where the context reads through texel buffers (CPU devices): a 1x1 convolution with N groups through
   * conv2d's blocked forward. In a lavapipe training step (fast configuration, 256x256, batch 2) gram_bwd.comp
   * took 1.1 s of 18, its shared-memory reads run lane by lane there. */
  if (g->ctx->texel_reads) {
    bool done;
    cel_status st = conv2d_gram_bwd_blocked (ex, g, n->in[0], n->in[1], self, n->shape, &done);
    if (st || done)
      return st;
  }
  gram_push p = gram_params (n->shape, 1.0f);
  cel_node bind[3] = { n->in[0], n->in[1], self };
  /* 16x16 tiles of each sample's C x HW, numbered over a 2-D grid of groups */
  uint32_t tiles = ((p.hw + 15) / 16) * ((p.c + 15) / 16);
  uint32_t gx = tiles < 65535 ? tiles : 65535, gy = (tiles + gx - 1) / gx;
  return cel_exec_dispatch (ex, CEL_SHADER_GRAM_BWD, NULL, 0, bind, 3, &p, sizeof p, gx, gy, (uint32_t) n->shape.n);
}

/* ---- loss_partials: a, b (any shape, equal) -> (1,1,1,LOSS_PARTIALS), ip[0] mode ------------------ */

/* The partial count is fixed, so that the node's shape (and the shapes the backward pass baked in) do not
 * depend on the input size; each partial covers ceil(count / LOSS_PARTIALS) elements (some none). */
enum { LOSS_ABS = 0, LOSS_SQUARED = 1, LOSS_PARTIALS = 512 };
static const char *const loss_names[2] = { "mean_abs_error", "mean_squared_error" };

typedef struct { uint32_t count, chunk, mode; float scale; } loss_push;
_Static_assert (sizeof (loss_push) == 16, "mirror of loss_partials.comp and loss_bwd.comp");

static uint32_t loss_chunk (int64_t count) {
  return (uint32_t) ((count + LOSS_PARTIALS - 1) / LOSS_PARTIALS);
}

static cel_status check_same_shape (cel_graph *g, const char *op, cel_node a, cel_node b) {
  char s1[64], s2[64];
  cel_shape as = cel_node_shape (g, a), bs = cel_node_shape (g, b);
  if (memcmp (&as, &bs, sizeof as) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: a %s and b %s must have the same shape", op,
                            cel_shape_str (as, s1), cel_shape_str (bs, s2));
  return CEL_OK;
}

cel_status loss_partials_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = (cel_shape) { 1, 1, 1, LOSS_PARTIALS };
  return check_same_shape (g, loss_names[n->ip[0]], n->in[0], n->in[1]);
}

cel_status loss_partials_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (cel_node_shape (g, n->in[0]));
  loss_push p = { (uint32_t) count, loss_chunk (count), (uint32_t) n->ip[0], (float) (1.0 / (double) count) };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch (ex, CEL_SHADER_LOSS_PARTIALS, NULL, 0, bind, 3, &p, sizeof p, LOSS_PARTIALS, 1, 1);
}

cel_status loss_partials_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_node in[3] = { dy, n.in[0], n.in[1] };
  cel_status st = CEL_OK;
  for (int32_t i = 0; i < 2 && !st; i++) {
    int32_t ip[2] = { n.ip[0], i };
    if (need[i])
      st = cel_graph_add_op (g, CEL_OP_LOSS_BWD, in, 3, ip, 2, NULL, 0, &dx[i]);
  }
  return st;
}

static cel_status mean_loss (cel_graph *g, int32_t mode, cel_node a, cel_node b, cel_node *out) {
  const char *name = loss_names[mode];
  cel_status st;
  *out = CEL_NO_NODE;
  if ((st = cel_graph_check_node (g, a, false, name, "a")) || (st = cel_graph_check_node (g, b, false, name, "b")) ||
      (st = check_same_shape (g, name, a, b)))
    return st;
  cel_node in[2] = { a, b }, partials;
  if ((st = cel_graph_add_op (g, CEL_OP_LOSS_PARTIALS, in, 2, &mode, 1, NULL, 0, &partials)))
    return st;
  return cel_sum_to (g, partials, (cel_shape) { 1, 1, 1, 1 }, out);
}

cel_status cel_mean_abs_error (cel_graph *g, cel_node a, cel_node b, cel_node *out) {
  return mean_loss (g, LOSS_ABS, a, b, out);
}

cel_status cel_mean_squared_error (cel_graph *g, cel_node a, cel_node b, cel_node *out) {
  return mean_loss (g, LOSS_SQUARED, a, b, out);
}

/* ---- loss_bwd: in dy (1,1,1,LOSS_PARTIALS), a, b -> da (ip[1] 0) or db (ip[1] 1); ip[0] mode ------- */

cel_status loss_bwd_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64];
  cel_shape ds = cel_node_shape (g, n->in[0]);
  n->shape = cel_node_shape (g, n->in[1]);
  if (ds.n != 1 || ds.c != 1 || ds.h != 1 || ds.w != LOSS_PARTIALS)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s backward: gradient %s is not (1, 1, 1, %d)",
                            loss_names[n->ip[0]], cel_shape_str (ds, s1), LOSS_PARTIALS);
  return check_same_shape (g, loss_names[n->ip[0]], n->in[1], n->in[2]);
}

cel_status loss_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (n->shape);
  double scale = (n->ip[0] == LOSS_SQUARED ? 2.0 : 1.0) / (double) count * (n->ip[1] ? -1.0 : 1.0);
  loss_push p = { (uint32_t) count, loss_chunk (count), (uint32_t) n->ip[0], (float) scale };
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_LOSS_BWD, bind, 4, &p, sizeof p, count, 256);
}
