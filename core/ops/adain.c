/* AdaIN (Huang & Belongie 2017): the content's per-(n, c) statistics replaced by the style's.
 * cel_adain builds two norm_stats nodes (unbiased variance, as the paper's code) and one adain_apply node;
 * gradients reach the style through its stats and norm_stats' backward. */
#include "../internal.h"

#include <math.h>

static cel_status check_eps (cel_graph *g, const char *op, float eps) {
  if (!(eps >= 0.0f) || isinf (eps))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: eps must be finite and >= 0 (got %g)", op, (double) eps);
  return CEL_OK;
}

/* ---- adain_apply: (x, content stats, style stats) -> y; fp[0] eps -------------------------------
 * x, y (N,C,H,W); stats (N,C,1,2) = (mean, var).
 * y = (x - mean_x) / sqrt (var_x + eps) * sqrt (var_s + eps) + mean_s. */

typedef struct { uint32_t count, hw; float eps; } adain_apply_push;
_Static_assert (sizeof (adain_apply_push) == 12, "mirror of adain_apply.comp and adain_apply_bwd_x.comp");

cel_status adain_apply_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), want = { xs.n, xs.c, 1, 2 };
  const char *what[2] = { "content stats", "style stats" };
  char b1[64], b2[64], b3[64];
  for (int i = 0; i < 2; i++) {
    cel_shape s = cel_node_shape (g, n->in[1 + i]);
    if (s.n != want.n || s.c != want.c || s.h != want.h || s.w != want.w)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                              "adain_apply: %s %s must be %s for content %s (instance cel_norm_stats)", what[i],
                              cel_shape_str (s, b1), cel_shape_str (want, b2), cel_shape_str (xs, b3));
  }
  n->shape = xs;
  return check_eps (g, "adain_apply", n->fp[0]);
}

cel_status adain_apply_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  adain_apply_push p = { (uint32_t) cel_shape_count (n->shape), (uint32_t) (n->shape.h * n->shape.w), n->fp[0] };
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_ADAIN_APPLY, bind, 4, &p, sizeof p, p.count, 256);
}

cel_status adain_apply_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  if (need[0]) {
    cel_node in[3] = { dy, n.in[1], n.in[2] };
    if ((st = cel_graph_add_op (g, CEL_OP_ADAIN_APPLY_BWD_X, in, 3, NULL, 0, n.fp, 1, &dx[0])))
      return st;
  }
  for (int32_t style = 0; style < 2; style++) {
    if (!need[1 + style])
      continue;
    cel_node in[4] = { n.in[0], n.in[1], n.in[2], dy };
    if ((st = cel_graph_add_op (g, CEL_OP_ADAIN_APPLY_BWD_STATS, in, 4, &style, 1, n.fp, 1, &dx[1 + style])))
      return st;
  }
  return st;
}

cel_status cel_adain_apply (cel_graph *g, cel_node content, cel_node content_stats, cel_node style_stats, float eps,
                            cel_node *out) {
  cel_status st;
  *out = CEL_NO_NODE;
  if ((st = cel_graph_check_node (g, content, false, "adain_apply", "content")) ||
      (st = cel_graph_check_node (g, content_stats, false, "adain_apply", "content stats")) ||
      (st = cel_graph_check_node (g, style_stats, false, "adain_apply", "style stats")))
    return st;
  cel_node in[3] = { content, content_stats, style_stats };
  return cel_graph_add_op (g, CEL_OP_ADAIN_APPLY, in, 3, NULL, 0, &eps, 1, out);
}

cel_status cel_adain (cel_graph *g, cel_node content, cel_node style, float eps, cel_node *out) {
  cel_status st;
  *out = CEL_NO_NODE;
  if ((st = cel_graph_check_node (g, content, false, "adain", "content")) ||
      (st = cel_graph_check_node (g, style, false, "adain", "style")) || (st = check_eps (g, "adain", eps)))
    return st;
  cel_shape cs = cel_node_shape (g, content), ss = cel_node_shape (g, style);
  char b1[64], b2[64];
  if (cs.n != ss.n || cs.c != ss.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "adain: content %s and style %s must have the same batch size and channel count",
                            cel_shape_str (cs, b1), cel_shape_str (ss, b2));
  if (cs.h * cs.w < 2 || ss.h * ss.w < 2)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "adain: content %s and style %s need at least 2 pixels each for the unbiased variance",
                            cel_shape_str (cs, b1), cel_shape_str (ss, b2));
  cel_node cstats, sstats;
  if ((st = cel_norm_stats (g, content, CEL_NORM_INSTANCE, true, &cstats)) ||
      (st = cel_norm_stats (g, style, CEL_NORM_INSTANCE, true, &sstats)))
    return st;
  return cel_adain_apply (g, content, cstats, sstats, eps, out);
}

/* ---- adain_apply_bwd_x: (dy, content stats, style stats) -> dy * sqrt (var_s + eps) / sqrt (var_x + eps) */

cel_status adain_apply_bwd_x_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[0]);
  return CEL_OK;
}

cel_status adain_apply_bwd_x_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  adain_apply_push p = { (uint32_t) cel_shape_count (n->shape), (uint32_t) (n->shape.h * n->shape.w), n->fp[0] };
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_ADAIN_APPLY_BWD_X, bind, 4, &p, sizeof p, p.count, 256);
}

/* ---- adain_apply_bwd_stats: (x, content stats, style stats, dy) -> gradient of the content stats
 * (ip[0] = 0) or of the style stats (ip[0] = 1), (N,C,1,2); fp[0] eps ------------------------------ */

typedef struct { uint32_t groups, hw; float eps; uint32_t style; } adain_apply_bwd_stats_push;
_Static_assert (sizeof (adain_apply_bwd_stats_push) == 16, "mirror of adain_apply_bwd_stats.comp");

cel_status adain_apply_bwd_stats_infer (cel_graph *g, cel_node_rec *n) {
  n->shape = cel_node_shape (g, n->in[1 + n->ip[0]]);
  return CEL_OK;
}

cel_status adain_apply_bwd_stats_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  cel_shape xs = cel_node_shape (g, n->in[0]);
  adain_apply_bwd_stats_push p = { (uint32_t) (xs.n * xs.c), (uint32_t) (xs.h * xs.w), n->fp[0], (uint32_t) n->ip[0] };
  cel_node bind[5] = { n->in[0], n->in[1], n->in[2], n->in[3], self };
  return cel_exec_dispatch_groups (ex, CEL_SHADER_ADAIN_APPLY_BWD_STATS, NULL, 0, bind, 5, &p, sizeof p, p.groups);
}
