/* Normalization: norm_stats (mean and variance per group) and norm_apply (normalize with given stats, then a
 * per-channel affine), kept apart so that tiled runs can accumulate the statistics over tiles before the
 * apply. Instance and layer norm are the two composed; their backward is the chain rule through both ops.
 *
 * A norm views x (N,C,H,W) as N*G contiguous rows of m = C*H*W / G elements: G = C for instance norm (a row is
 * one (n, c) plane), G = 1 for layer norm (a row is one sample). Stats are (N,G,1,2) = (mean, var) per row. */
#include "../internal.h"

#include <math.h>
#include <string.h>

static int32_t groups_of (int32_t kind, cel_shape x) {
  return kind == CEL_NORM_LAYER ? 1 : x.c;
}

static uint32_t row_size (cel_shape x, int32_t groups) {
  return (uint32_t) (cel_shape_count (x) / ((int64_t) x.n * groups));
}

static cel_status check_eps (cel_graph *g, const char *op, float eps) {
  if (!(eps >= 0.0f) || isinf (eps))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: eps must be finite and >= 0 (got %g)", op, (double) eps);
  return CEL_OK;
}

/* gamma and beta: (1,C,1,1) or CEL_NO_NODE. */
static cel_status check_affine (cel_graph *g, const char *op, cel_node x, cel_node gamma, cel_node beta) {
  cel_shape xs = cel_node_shape (g, x), want = { 1, xs.c, 1, 1 };
  const cel_node p[2] = { gamma, beta };
  const char *what[2] = { "gamma", "beta" };
  char b1[64], b2[64], b3[64];
  for (int i = 0; i < 2; i++) {
    if (p[i] == CEL_NO_NODE)
      continue;
    cel_shape s = cel_node_shape (g, p[i]);
    if (s.n != want.n || s.c != want.c || s.h != want.h || s.w != want.w)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: %s %s must be %s (one per channel of x %s)", op, what[i],
                              cel_shape_str (s, b1), cel_shape_str (want, b2), cel_shape_str (xs, b3));
  }
  return CEL_OK;
}

/* ---- norm_stats: x (N,C,H,W) -> (N,G,1,2); ip[0] kind, ip[1] unbiased ---------------------------- */

typedef struct { uint32_t groups, m; float divisor; } norm_stats_push;
_Static_assert (sizeof (norm_stats_push) == 12, "mirror of norm_stats.comp");

cel_status norm_stats_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  char b[64];
  if (n->ip[0] != CEL_NORM_INSTANCE && n->ip[0] != CEL_NORM_LAYER)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "norm_stats: unknown norm kind %d", n->ip[0]);
  int32_t groups = groups_of (n->ip[0], xs);
  /* torch.var returns NaN for a single element; an error says why instead */
  if (n->ip[1] && row_size (xs, groups) < 2)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "norm_stats: the unbiased variance needs at least 2 elements per group; x %s has 1",
                            cel_shape_str (xs, b));
  n->shape = (cel_shape) { xs.n, groups, 1, 2 };
  uint32_t parts = cel_reduce_parts ((uint32_t) (xs.n * groups), row_size (xs, groups));
  n->scratch = parts > 1 ? 3 * (int64_t) xs.n * groups * parts : 0;
  return CEL_OK;
}

static float stats_divisor (uint32_t m, bool unbiased) {
  return (float) (unbiased ? (double) m - 1.0 : (double) m);
}

cel_status norm_stats_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  uint32_t m = row_size (xs, n->shape.c);
  norm_stats_push p = { (uint32_t) (n->shape.n * n->shape.c), m, stats_divisor (m, n->ip[1]) };
  cel_node bind[2] = { n->in[0], self };
  cel_shader_id sh = cel_exec_pick_reads (ex, CEL_SHADER_NORM_STATS, CEL_SHADER_NORM_STATS_TEXEL, bind, 1);
  uint32_t spec[1] = { cel_reduce_parts (p.groups, m) };
  cel_status st = cel_exec_dispatch_groups (ex, sh, spec, 1, bind, 2, &p, sizeof p, p.groups * spec[0]);
  if (st || spec[0] == 1)
    return st;
  return cel_exec_dispatch_groups (ex, CEL_SHADER_NORM_STATS_COMBINE, spec, 1, &self, 1, &p, sizeof p, p.groups);
}

cel_status norm_stats_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  (void) need;
  const cel_node_rec n = *cel_node_get (g, self);
  cel_node in[3] = { n.in[0], self, dy };
  return cel_graph_add_op (g, CEL_OP_NORM_STATS_BWD, in, 3, n.ip, 2, NULL, 0, &dx[0]);
}

cel_status cel_norm_stats (cel_graph *g, cel_node x, cel_norm_kind kind, bool unbiased, cel_node *out) {
  cel_status st = cel_graph_check_node (g, x, false, "norm_stats", "x");
  if (st)
    return *out = CEL_NO_NODE, st;
  int32_t ip[2] = { (int32_t) kind, unbiased };
  return cel_graph_add_op (g, CEL_OP_NORM_STATS, &x, 1, ip, 2, NULL, 0, out);
}

/* ---- norm_stats_bwd: (x, stats, dstats) -> dx = dmean / m + dvar * 2 (x - mean) / divisor ------- */

typedef struct { uint32_t count, m, hw, c; float inv_m, two_over_divisor; } norm_stats_bwd_push;
_Static_assert (sizeof (norm_stats_bwd_push) == 24, "mirror of norm_stats_bwd.comp");

cel_status norm_stats_bwd_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status norm_stats_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  uint32_t m = row_size (n->shape, cel_node_shape (g, n->in[1]).c);
  norm_stats_bwd_push p = { (uint32_t) cel_shape_count (n->shape), m, (uint32_t) (n->shape.h * n->shape.w),
                            (uint32_t) n->shape.c, (float) (1.0 / m), (float) (2.0 / stats_divisor (m, n->ip[1])) };
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return cel_exec_dispatch_planes (ex, CEL_SHADER_NORM_STATS_BWD, NULL, 0, bind, 4, &p, sizeof p, n->shape);
}

/* ---- norm_apply: (x, stats, gamma?, beta?) -> y; fp[0] eps --------------------------------------- */

typedef struct { uint32_t count, m, hw, c; float eps; } norm_apply_push;
_Static_assert (sizeof (norm_apply_push) == 20, "mirror of norm_apply.comp and norm_apply_bwd_x.comp");

cel_status norm_apply_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), ss = cel_node_shape (g, n->in[1]);
  char b1[64], b2[64];
  if (ss.n != xs.n || (ss.c != xs.c && ss.c != 1) || ss.h != 1 || ss.w != 2)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "norm_apply: stats %s must be (%d, %d or 1, 1, 2) for x %s (see cel_norm_stats)",
                            cel_shape_str (ss, b1), xs.n, xs.c, cel_shape_str (xs, b2));
  cel_status st = check_affine (g, "norm_apply", n->in[0], n->in[2], n->in[3]);
  if (!st)
    st = check_eps (g, "norm_apply", n->fp[0]);
  n->shape = xs;
  return st;
}

static norm_apply_push apply_push (const cel_graph *g, cel_shape xs, cel_node stats, float eps) {
  return (norm_apply_push) { (uint32_t) cel_shape_count (xs), row_size (xs, cel_node_shape (g, stats).c),
                             (uint32_t) (xs.h * xs.w), (uint32_t) xs.c, eps };
}

cel_status norm_apply_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_node gamma = n->in[2], beta = n->in[3], stats = n->in[1];
  /* ip[0]: the fused activation (cel_norm_apply_fuse_act), 0 none, else cel_activation + 1; fp[1] its slope */
  uint32_t alpha_bits;
  memcpy (&alpha_bits, &n->fp[1], sizeof alpha_bits);
  uint32_t spec[4] = { gamma != CEL_NO_NODE, beta != CEL_NO_NODE,
                       n->ip[0] == CEL_ACT_RELU + 1 ? 1u : n->ip[0] == CEL_ACT_LEAKY_RELU + 1 ? 2u : 0u, alpha_bits };
  norm_apply_push p = apply_push (g, n->shape, stats, n->fp[0]);
  /* absent gamma / beta: stats is bound in their place and not read */
  cel_node bind[5] = { n->in[0], stats, spec[0] ? gamma : stats, spec[1] ? beta : stats, self };
  cel_shader_id sh = cel_exec_pick_reads (ex, CEL_SHADER_NORM_APPLY, CEL_SHADER_NORM_APPLY_TEXEL, bind, 4);
  return cel_exec_dispatch_planes (ex, sh, spec, 4, bind, 5, &p, sizeof p, n->shape);
}

/* Folds an activation into a norm_apply node: one pass over the tensor instead of two (on the H200 the
 * AnimeGANv2-shaped generator's activations took 6 % of its time, on lavapipe 5-9 %). Relu, and leaky relu
 * with a slope above 0: the sign of y then tells the side of zero the norm's output was on, so the backward
 * differentiates the activation from the fused node's own output. Only where nothing else reads the norm's
 * output yet: the caller (the model builder, the tiler) knows no later layer will. */
bool cel_norm_apply_fuse_act (cel_graph *g, cel_node node, cel_activation act, float alpha) {
  if (node < 0 || node >= g->n_nodes || g->has_backward)
    return false;
  cel_node_rec *n = &g->nodes[node];
  if (n->kind != CEL_NODE_OP || n->op != CEL_OP_NORM_APPLY || n->ip[0] != 0 || n->is_output ||
      !(act == CEL_ACT_RELU || (act == CEL_ACT_LEAKY_RELU && alpha > 0.0f && isfinite (alpha))))
    return false;
  for (int32_t i = node + 1; i < g->n_nodes; i++)
    for (int32_t k = 0; k < g->nodes[i].n_in; k++)
      if (g->nodes[i].in[k] == node)
        return false;
  n->ip[0] = (int32_t) act + 1;
  n->fp[1] = act == CEL_ACT_RELU ? 0.0f : alpha;
  g->planned = false;
  return true;
}

cel_status norm_apply_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_node x = n.in[0], stats = n.in[1], gamma = n.in[2];
  cel_status st = CEL_OK;
  if (n.ip[0] != 0) { /* a fused relu or leaky relu: its gradient from y (same sign as the norm's output) first */
    int32_t act = n.ip[0] - 1;
    if ((st = cel_graph_add_op (g, CEL_OP_ACTIVATE_BWD, (cel_node[2]) { self, dy }, 2, &act, 1, &n.fp[1], 1, &dy)))
      return st;
  }
  if (need[0]) {
    cel_node in[3] = { dy, stats, gamma };
    if ((st = cel_graph_add_op (g, CEL_OP_NORM_APPLY_BWD_X, in, 3, NULL, 0, n.fp, 1, &dx[0])))
      return st;
  }
  if (need[1]) {
    cel_node in[4] = { x, stats, gamma, dy };
    if ((st = cel_graph_add_op (g, CEL_OP_NORM_APPLY_BWD_STATS, in, 4, NULL, 0, n.fp, 1, &dx[1])))
      return st;
  }
  if (need[2]) {
    cel_node in[3] = { x, stats, dy };
    if ((st = cel_graph_add_op (g, CEL_OP_NORM_APPLY_BWD_GAMMA, in, 3, NULL, 0, n.fp, 1, &dx[2])))
      return st;
  }
  if (need[3])
    st = cel_sum_to (g, dy, cel_node_shape (g, n.in[3]), &dx[3]);
  return st;
}

cel_status cel_norm_apply (cel_graph *g, cel_node x, cel_node stats, cel_node gamma, cel_node beta, float eps,
                           cel_node *out) {
  cel_status st;
  *out = CEL_NO_NODE;
  if ((st = cel_graph_check_node (g, x, false, "norm_apply", "x")) ||
      (st = cel_graph_check_node (g, stats, false, "norm_apply", "stats")) ||
      (st = cel_graph_check_node (g, gamma, true, "norm_apply", "gamma")) ||
      (st = cel_graph_check_node (g, beta, true, "norm_apply", "beta")))
    return st;
  cel_node in[4] = { x, stats, gamma, beta };
  return cel_graph_add_op (g, CEL_OP_NORM_APPLY, in, 4, NULL, 0, &eps, 1, out);
}

static cel_status norm (cel_graph *g, cel_norm_kind kind, const char *op, cel_node x, cel_node gamma, cel_node beta,
                        float eps, cel_node *out) {
  cel_status st;
  cel_node stats;
  *out = CEL_NO_NODE;
  if ((st = cel_graph_check_node (g, x, false, op, "x")) || (st = cel_graph_check_node (g, gamma, true, op, "gamma")) ||
      (st = cel_graph_check_node (g, beta, true, op, "beta")) || (st = check_affine (g, op, x, gamma, beta)) ||
      (st = check_eps (g, op, eps)) || (st = cel_norm_stats (g, x, kind, false, &stats)))
    return st;
  return cel_norm_apply (g, x, stats, gamma, beta, eps, out);
}

cel_status cel_instance_norm (cel_graph *g, cel_node x, cel_node gamma, cel_node beta, float eps, cel_node *out) {
  return norm (g, CEL_NORM_INSTANCE, "instance_norm", x, gamma, beta, eps, out);
}

cel_status cel_layer_norm (cel_graph *g, cel_node x, cel_node gamma, cel_node beta, float eps, cel_node *out) {
  return norm (g, CEL_NORM_LAYER, "layer_norm", x, gamma, beta, eps, out);
}

/* ---- norm_apply_bwd_x: (dy, stats, gamma?) -> dy * gamma / sqrt (var + eps); fp[0] eps ----------- */

cel_status norm_apply_bwd_x_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status norm_apply_bwd_x_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_node stats = n->in[1], gamma = n->in[2];
  uint32_t spec[1] = { gamma != CEL_NO_NODE };
  norm_apply_push p = apply_push (g, n->shape, stats, n->fp[0]);
  cel_node bind[4] = { n->in[0], stats, spec[0] ? gamma : stats, self };
  return cel_exec_dispatch_planes (ex, CEL_SHADER_NORM_APPLY_BWD_X, spec, 1, bind, 4, &p, sizeof p, n->shape);
}

/* ---- norm_apply_bwd_stats: (x, stats, gamma?, dy) -> (dmean, dvar) (N,G,1,2); fp[0] eps --------- */

typedef struct { uint32_t groups, m, hw, c; float eps; } norm_apply_bwd_stats_push;
_Static_assert (sizeof (norm_apply_bwd_stats_push) == 20, "mirror of norm_apply_bwd_stats.comp");

cel_status norm_apply_bwd_stats_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[1]);
  uint32_t groups = (uint32_t) (n->shape.n * n->shape.c);
  uint32_t parts = cel_reduce_parts (groups, row_size (cel_node_shape (g, n->in[0]), n->shape.c));
  n->scratch = parts > 1 ? 2 * (int64_t) groups * parts : 0;
  return CEL_OK;
}

cel_status norm_apply_bwd_stats_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  cel_node stats = n->in[1], gamma = n->in[2];
  norm_apply_bwd_stats_push p = { (uint32_t) (n->shape.n * n->shape.c), row_size (xs, n->shape.c),
                                  (uint32_t) (xs.h * xs.w), (uint32_t) xs.c, n->fp[0] };
  uint32_t spec[2] = { gamma != CEL_NO_NODE, cel_reduce_parts (p.groups, p.m) };
  cel_node bind[5] = { n->in[0], stats, spec[0] ? gamma : stats, n->in[3], self };
  cel_status st = cel_exec_dispatch_groups (ex, CEL_SHADER_NORM_APPLY_BWD_STATS, spec, 2, bind, 5, &p, sizeof p,
                                      p.groups * spec[1]);
  if (st || spec[1] == 1)
    return st;
  cel_node fold[2] = { stats, self };
  return cel_exec_dispatch_groups (ex, CEL_SHADER_NORM_APPLY_BWD_STATS_COMBINE, &spec[1], 1, fold, 2, &p, sizeof p, p.groups);
}

/* ---- norm_apply_bwd_gamma: (x, stats, dy) -> sum over (n, h, w) of dy * xhat (1,C,1,1); fp[0] eps - */

typedef struct { uint32_t n, c, hw, groups_per_sample; float eps; } norm_apply_bwd_gamma_push;
_Static_assert (sizeof (norm_apply_bwd_gamma_push) == 20, "mirror of norm_apply_bwd_gamma.comp");

cel_status norm_apply_bwd_gamma_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]);
  n->shape = (cel_shape) { 1, xs.c, 1, 1 };
  uint32_t parts = cel_reduce_parts ((uint32_t) xs.c, (uint32_t) (xs.n * xs.h * xs.w));
  n->scratch = parts > 1 ? (int64_t) xs.c * parts : 0;
  return CEL_OK;
}

cel_status norm_apply_bwd_gamma_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  norm_apply_bwd_gamma_push p = { (uint32_t) xs.n, (uint32_t) xs.c, (uint32_t) (xs.h * xs.w),
                                  (uint32_t) cel_node_shape (g, n->in[1]).c, n->fp[0] };
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  uint32_t spec[1] = { cel_reduce_parts (p.c, p.n * p.hw) };
  cel_status st = cel_exec_dispatch_groups (ex, CEL_SHADER_NORM_APPLY_BWD_GAMMA, spec, 1, bind, 4, &p, sizeof p, p.c * spec[0]);
  return st || spec[0] == 1 ? st : cel_exec_fold_parts (ex, self, p.c, spec[0], 1.0f);
}
