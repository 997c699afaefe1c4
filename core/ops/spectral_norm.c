/* Spectral normalization (Miyato et al. 2018), as torch.nn.utils.spectral_norm: w (OC, ...) viewed as
 * W (OC, K), K = C*H*W, is divided by sigma, an estimate of its largest singular value kept up to date by
 * power iteration on a persistent state (1,1,1,OC+K+1) = u (OC), v (K), sigma.
 *
 * The forward is two dispatches: spectral_norm_power (one workgroup of 256 threads; reads W, reads and
 * writes the state in place, bound once) and spectral_norm_scale (y = w / sigma). The power iteration
 * costs 2*OC*K multiply-adds per iteration on that single workgroup (plus OC*K for sigma in eval mode):
 * fine for conv weights of up to a few million elements, and small next to the convolution using them.
 *
 * Start: a u that is all zero (a fresh state) is set to a fixed pseudo-random vector, then normalized:
 * u[o] = (sum over j < 4 of (hash (4o + j + 0x9e3779b9) >> 10)) / 2^22 - 2, with hash the 32-bit
 * "lowbias32" integer hash (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16):
 * an approximately normal vector, the same on every device and in the reference. In eval mode (update
 * false, or 0 iterations) a fresh state also gets v = normalize (W^T u), which is stored with u.
 *
 * The backward treats u and v as constants (as PyTorch) and reads them, and sigma, from the state the
 * forward left: dw = dy / sigma - (<dy, w> / sigma^2) u v^T. <dy, w> is a two-stage reduction: 256
 * partials (spectral_norm_bwd_dot), added up by every workgroup of spectral_norm_bwd. One state belongs
 * to one spectral_norm node: a second node on the same state would overwrite u, v before the first
 * node's backward reads them. */
#include "../internal.h"

#include <math.h>
#include <string.h>

enum { SN_PARTIALS = 256 }; /* partials of <dy, w>; spectral_norm_bwd.comp reads exactly this many */

typedef struct { uint32_t oc, k, iterations, update; float eps; } power_push;
_Static_assert (sizeof (power_push) == 20, "mirror of spectral_norm_power.comp");
typedef struct { uint32_t count, sigma_at; } scale_push;
_Static_assert (sizeof (scale_push) == 8, "mirror of spectral_norm_scale.comp");
typedef struct { uint32_t count, chunk; } dot_push;
_Static_assert (sizeof (dot_push) == 8, "mirror of spectral_norm_bwd_dot.comp");
typedef struct { uint32_t count, oc, k; } bwd_push;
_Static_assert (sizeof (bwd_push) == 12, "mirror of spectral_norm_bwd.comp");

/* W (OC, K) from w's shape. */
static void matrix_dims (cel_shape ws, uint32_t *oc, uint32_t *k) {
  *oc = (uint32_t) ws.n;
  *k = (uint32_t) ws.c * (uint32_t) ws.h * (uint32_t) ws.w;
}

static cel_status check_state (cel_graph *g, const char *op, cel_shape ws, cel_node u) {
  char s1[64], s2[64];
  cel_shape us = cel_node_shape (g, u);
  int64_t want = (int64_t) ws.n + (int64_t) ws.c * ws.h * ws.w + 1;
  if (us.n != 1 || us.c != 1 || us.h != 1 || us.w != want)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: state %s does not fit w %s: it must be (1, 1, 1, %lld) "
                            "(u, v, sigma)", op, cel_shape_str (us, s1), cel_shape_str (ws, s2), (long long) want);
  return CEL_OK;
}

/* ---- spectral_norm: in w, u (state) -> w / sigma; ip[0] iterations, ip[1] update, fp[0] eps ------- */

cel_status spectral_norm_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape ws = cel_node_shape (g, n->in[0]);
  n->shape = ws;
  if (cel_node_get (g, n->in[1])->kind != CEL_NODE_STATE)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "spectral_norm: u must be a state (cel_graph_state): the "
                            "forward updates it in place");
  if (n->ip[0] < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "spectral_norm: iterations must be >= 0, got %d", (int) n->ip[0]);
  if (!(n->fp[0] >= 0.0f) || isinf (n->fp[0]))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "spectral_norm: eps must be finite and >= 0, got %g",
                            (double) n->fp[0]);
  return check_state (g, "spectral_norm", ws, n->in[1]);
}

cel_status spectral_norm_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  power_push pp = { .iterations = (uint32_t) n->ip[0], .update = n->ip[1] != 0, .eps = n->fp[0] };
  matrix_dims (n->shape, &pp.oc, &pp.k);
  cel_node state_bind[2] = { n->in[0], n->in[1] };
  cel_status st = cel_exec_dispatch (ex, CEL_SHADER_SPECTRAL_NORM_POWER, NULL, 0, state_bind, 2, &pp, sizeof pp, 1, 1, 1);
  if (st)
    return st;
  scale_push sp = { (uint32_t) cel_shape_count (n->shape), pp.oc + pp.k };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_SPECTRAL_NORM_SCALE, bind, 3, &sp, sizeof sp, sp.count, 256);
}

cel_status spectral_norm_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  if (!need[0])
    return CEL_OK;
  cel_node in[2] = { dy, n.in[0] }, dots;
  cel_status st = cel_graph_add_op (g, CEL_OP_SPECTRAL_NORM_BWD_DOT, in, 2, NULL, 0, NULL, 0, &dots);
  if (st)
    return st;
  cel_node bwd_in[3] = { dy, n.in[1], dots };
  return cel_graph_add_op (g, CEL_OP_SPECTRAL_NORM_BWD, bwd_in, 3, NULL, 0, NULL, 0, &dx[0]);
}

cel_status cel_spectral_norm (cel_graph *g, cel_node w, cel_node u, int32_t iterations, bool update, float eps,
                              cel_node *out) {
  *out = CEL_NO_NODE;
  cel_status st;
  if ((st = cel_graph_check_node (g, w, false, "spectral_norm", "w")) ||
      (st = cel_graph_check_node (g, u, false, "spectral_norm", "u")))
    return st;
  cel_node in[2] = { w, u };
  int32_t ip[2] = { iterations, update };
  return cel_graph_add_op (g, CEL_OP_SPECTRAL_NORM, in, 2, ip, 2, &eps, 1, out);
}

/* ---- spectral_norm_bwd_dot: in dy, w -> (1,1,1,SN_PARTIALS) partial sums of dy * w --------------- */

cel_status spectral_norm_bwd_dot_infer (cel_graph *g, cel_node_rec *n) {
  char s1[64], s2[64];
  cel_shape ds = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]);
  n->shape = (cel_shape) { 1, 1, 1, SN_PARTIALS };
  if (memcmp (&ds, &ws, sizeof ds) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "spectral_norm backward: gradient %s does not match w %s",
                            cel_shape_str (ds, s1), cel_shape_str (ws, s2));
  return CEL_OK;
}

cel_status spectral_norm_bwd_dot_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (cel_node_shape (g, n->in[0]));
  dot_push p = { (uint32_t) count, (uint32_t) ((count + SN_PARTIALS - 1) / SN_PARTIALS) };
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch (ex, CEL_SHADER_SPECTRAL_NORM_BWD_DOT, NULL, 0, bind, 3, &p, sizeof p, SN_PARTIALS, 1, 1);
}

/* ---- spectral_norm_bwd: in dy (w's shape), u (state), dots -> dw ----------------------------------- */

cel_status spectral_norm_bwd_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape ds = cel_node_shape (g, n->in[2]);
  n->shape = cel_node_shape (g, n->in[0]);
  if (ds.n != 1 || ds.c != 1 || ds.h != 1 || ds.w != SN_PARTIALS)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "spectral_norm backward: %d partials expected", SN_PARTIALS);
  return check_state (g, "spectral_norm backward", n->shape, n->in[1]);
}

cel_status spectral_norm_bwd_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  bwd_push p = { .count = (uint32_t) cel_shape_count (n->shape) };
  matrix_dims (n->shape, &p.oc, &p.k);
  cel_node bind[4] = { n->in[0], n->in[1], n->in[2], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_SPECTRAL_NORM_BWD, bind, 4, &p, sizeof p, p.count, 256);
}
