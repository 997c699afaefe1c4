/* conv2d: forward, gradient wrt x (gather; reflect padding folds back onto the interior), gradient wrt w, and the
 * bias gradient as a sum_to of dy. x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (1,OC,1,1), y (N,OC,OH,OW).
 * Kernels: where subgroups are 8 wide or more, register-blocked ones (conv2d_fwd_blocked.comp: 8 output channels x
 * 8 pixels per invocation; conv2d_fwd_depthwise.comp: 4 x 8 pixels of one channel; conv2d_bwd_data_blocked.comp:
 * 8 input channels x 8 pixels, zero padding only, so reflect padding gathers on the padded grid and folds with
 * pad_bwd.comp in a second node; conv2d_bwd_weight_blocked.comp (subgroups of exactly 8): 8 x 8*icl channels x kt
 * kernel rows per workgroup; conv2d_bwd_weight_depthwise.comp). The shapes they do not take, and devices with
 * narrower subgroups, run the plain ones: one invocation per output element (conv2d_fwd.comp,
 * conv2d_bwd_data.comp), one workgroup per weight element (conv2d_bwd_weight.comp).
 * 3x3 stride-1 convolutions of one group with at least 32 input and output channels, forward and gradient wrt x,
 * run as Winograd F(4x4, 3x3) where the blocked kernels run: winograd_{weight,input,output}.comp around the blocked
 * forward as 36 products of channel matrices, in chunks of tiles through the node's temporary storage. */
#include "conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ip[] of conv2d, conv2d_bwd_data and conv2d_bwd_weight nodes: the fields of cel_conv2d_params in order, zeros
 * replaced by ones (conv_transpose2d's backward builds conv2d nodes relying on this). Pads may be negative there
 * (a crop, zero padding only); the public entry point allows only pads >= 0. */
enum {
  IP_STRIDE_H, IP_STRIDE_W, IP_PAD_TOP, IP_PAD_BOTTOM, IP_PAD_LEFT, IP_PAD_RIGHT, IP_DILATION_H, IP_DILATION_W,
  IP_GROUPS, IP_REFLECT, IP_COUNT,
  IP_STAGE = IP_COUNT, /* conv2d_bwd_data only: one of the stages below */
  IP_ACT = IP_COUNT + 1 /* conv2d only: the fused activation (cel_conv2d_fuse_act), 0 none, else cel_activation + 1;
                         * fp[0] its slope */
};

/* Stages of a conv2d_bwd_data node. With reflect padding the blocked kernel computes the gradient of the padded
 * input (zero padding, on the padded grid) and a second node folds it back onto x with pad_bwd.comp; both nodes
 * take their shapes from x, so they follow a change of input shape. */
enum { STAGE_DX, STAGE_DX_PADDED, STAGE_FOLD };


static conv2d_push make_push (const int32_t *ip, cel_shape xs, cel_shape ws, cel_shape ys, bool has_bias, int64_t count) {
  return (conv2d_push) { conv_iv (xs), conv_iv (ys), { ws.h, ws.w }, { ip[IP_STRIDE_H], ip[IP_STRIDE_W] },
                         { ip[IP_DILATION_H], ip[IP_DILATION_W] }, { ip[IP_PAD_TOP], ip[IP_PAD_LEFT] }, ip[IP_GROUPS],
                         ip[IP_REFLECT], has_bias, (uint32_t) count, 0, 0, 0, 0, 1.0f };
}

/* Checks x (N,IC,H,W) against w (OC,IC/groups,KH,KW) and the geometry in ip; sets *ys to (N,OC,OH,OW). */
static cel_status check_geometry (cel_graph *g, cel_shape xs, cel_shape ws, const int32_t *ip, cel_shape *ys) {
  char s1[64], s2[64];
  int32_t groups = ip[IP_GROUPS];
  if (groups < 1 || ip[IP_STRIDE_H] < 1 || ip[IP_STRIDE_W] < 1 || ip[IP_DILATION_H] < 1 || ip[IP_DILATION_W] < 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: stride, dilation and groups must be positive");
  if (xs.c % groups != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: groups %d does not divide the %d input channels of x %s",
                            groups, xs.c, cel_shape_str (xs, s1));
  if (ws.n % groups != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: groups %d does not divide the %d output channels of w %s",
                            groups, ws.n, cel_shape_str (ws, s1));
  if (ws.c * groups != xs.c)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: x %s has %d channels but w %s expects %d (%d per group, %d groups)",
                            cel_shape_str (xs, s1), xs.c, cel_shape_str (ws, s2), ws.c * groups, ws.c, groups);
  int32_t pt = ip[IP_PAD_TOP], pb = ip[IP_PAD_BOTTOM], pl = ip[IP_PAD_LEFT], pr = ip[IP_PAD_RIGHT];
  if (ip[IP_REFLECT] && (pt < 0 || pb < 0 || pl < 0 || pr < 0 || pt >= xs.h || pb >= xs.h || pl >= xs.w || pr >= xs.w))
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: reflect padding (top %d, bottom %d, left %d, right %d) must be smaller than the "
                            "input's height %d and width %d (x %s)", pt, pb, pl, pr, xs.h, xs.w, cel_shape_str (xs, s1));
  int64_t span_h = (int64_t) ip[IP_DILATION_H] * (ws.h - 1) + 1, span_w = (int64_t) ip[IP_DILATION_W] * (ws.w - 1) + 1;
  int64_t padded_h = (int64_t) xs.h + pt + pb, padded_w = (int64_t) xs.w + pl + pr;
  if (span_h > padded_h || span_w > padded_w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: the kernel %dx%d with dilation %dx%d spans %lldx%lld, larger than the padded input "
                            "%lldx%lld (x %s)", ws.h, ws.w, ip[IP_DILATION_H], ip[IP_DILATION_W], (long long) span_h,
                            (long long) span_w, (long long) padded_h, (long long) padded_w, cel_shape_str (xs, s1));
  *ys = (cel_shape) { xs.n, ws.n, (int32_t) ((padded_h - span_h) / ip[IP_STRIDE_H] + 1),
                      (int32_t) ((padded_w - span_w) / ip[IP_STRIDE_W] + 1) };
  return CEL_OK;
}

/* ---- forward: in (x, w, b or none) ------------------------------------------------------------- */

/* The blocked kernels hand weights between lanes with subgroupBroadcast from lanes 0..7. */
static bool has_subgroups_of_8 (const cel_graph *g) {
  return cel_context_device (g->ctx)->subgroup_size >= 8;
}

bool conv_weight_blocked_runs (cel_graph *g) {
  const cel_device_info *d = cel_context_device (g->ctx);
  return d->subgroup_size == 8 || (d->subgroup_size % 8 == 0 && d->subgroup_size <= 64 && d->subgroup_shuffle);
}

uint32_t conv_weight_shuffle (cel_graph *g) {
  const char *force = getenv ("CELGAN_TEST_SUBGROUP_SHUFFLE");
  return cel_context_device (g->ctx)->subgroup_size != 8 || (force && strcmp (force, "1") == 0);
}

/* Grid of a blocked kernel: `blocks` invocations in workgroups of 64 along x (z when over 65535) times gy. */
static cel_status dispatch_blocks_bound (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                         const cel_bind *bind, uint32_t n_bind, const conv2d_push *p, int64_t blocks,
                                         uint32_t gy) {
  int64_t wgs = (blocks + 63) / 64;
  uint32_t gx = (uint32_t) (wgs < 65535 ? wgs : 65535), gz = (uint32_t) ((wgs + gx - 1) / gx);
  return cel_exec_dispatch_bound (ex, shader, spec, n_spec, bind, n_bind, p, sizeof *p, gx, gy, gz);
}

static cel_status dispatch_blocks (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                   const cel_node *bind, uint32_t n_bind, const conv2d_push *p, int64_t blocks, uint32_t gy) {
  cel_bind b[CEL_MAX_BINDINGS];
  for (uint32_t i = 0; i < n_bind && i < CEL_MAX_BINDINGS; i++)
    b[i] = cel_bind_node (bind[i]);
  return dispatch_blocks_bound (ex, shader, spec, n_spec, b, n_bind, p, blocks, gy);
}

/* Pixels per invocation along w for an output width: 8, fewer for narrow outputs. */
static int32_t pixels_per_invocation (int32_t width) {
  return width >= 8 ? 8 : width >= 4 ? 4 : width >= 2 ? 2 : 1;
}

/* Input columns a block of px output pixels reads (conv2d_fwd_*.comp's L); the kernels take up to 32. */
static int32_t span (int32_t px, int32_t stride, int32_t dilation, int32_t kernel) {
  return stride * (px - 1) + dilation * (kernel - 1) + 1;
}

/* dx columns per invocation of conv2d_bwd_data_blocked.comp: as forward, rounded up to a multiple of the stride. */
static int32_t bwd_data_pixels (int32_t width, int32_t stride) {
  int32_t px = pixels_per_invocation (width);
  return (px + stride - 1) / stride * stride;
}

/* dy columns a block of px dx columns reads (conv2d_bwd_data_blocked.comp's L, at most this). */
static int32_t bwd_data_span (int32_t px, int32_t stride, int32_t dilation, int32_t kernel) {
  return (px - 1 + dilation * (kernel - 1)) / stride + 2;
}

/* Whether conv2d_bwd_data_blocked.comp takes this weight shape and geometry (at any input size). */
static bool blocked_bwd_data_fits (cel_graph *g, cel_shape ws, const int32_t *ip) {
  return has_subgroups_of_8 (g) && ws.w <= 16 && ip[IP_STRIDE_W] <= 8
         && bwd_data_span (bwd_data_pixels (8, ip[IP_STRIDE_W]), ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) <= 32;
}

/* conv2d_fwd_depthwise.comp (py x px output pixels of one channel per invocation) for p's geometry, whose
 * output is ys; false in *done when the kernel does not take it. */
static cel_status dispatch_depthwise (cel_exec *ex, cel_graph *g, const conv2d_push *p, cel_shape ws, cel_shape ys,
                                      const cel_node *bind, bool *done) {
  int32_t sh = p->stride[0], sw = p->stride[1], dh = p->dilation[0], dw = p->dilation[1];
  int32_t py = ys.h >= 4 ? 4 : ys.h >= 2 ? 2 : 1, px = pixels_per_invocation (ys.w);
  while (px > 1 && span (px, sw, dw, ws.w) > 32)
    px /= 2;
  while (py > 1 && span (py, sh, dh, ws.h) > 32)
    py /= 2;
  *done = has_subgroups_of_8 (g) && span (px, sw, dw, ws.w) <= 32 && span (py, sh, dh, ws.h) <= 32 && ws.h * ws.w <= 64;
  if (!*done)
    return CEL_OK;
  uint32_t spec[8] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) sh, (uint32_t) sw, (uint32_t) dh, (uint32_t) dw,
                       (uint32_t) py, (uint32_t) px };
  int64_t blocks = (int64_t) ys.n * ((ys.h + py - 1) / py) * ((ys.w + px - 1) / px);
  return dispatch_blocks (ex, CEL_SHADER_CONV2D_FWD_DEPTHWISE, spec, 8, bind, 4, p, blocks, (uint32_t) ys.c);
}

/* Whether the blocked forward and weight-gradient kernels can read the middle columns of a block's input rows
 * as aligned vec4 (VEC4_ROWS; px must also be a multiple of 4): stride 1 along w, W a multiple of 4, OW <= W and
 * 0 <= pad_left <= DW*(KW-1), the other columns coming one by one. */
static bool rows_read_as_vec4 (const int32_t *ip, cel_shape xs, cel_shape ws, cel_shape ys) {
  return ip[IP_STRIDE_W] == 1 && xs.w % 4 == 0 && ys.w <= xs.w && ip[IP_PAD_LEFT] >= 0 &&
         ip[IP_PAD_LEFT] <= ip[IP_DILATION_W] * (ws.w - 1);
}

/* ---- packed weights for the blocked kernels' texel-buffer variants (conv_weight_pack.comp) ------------------ */

/* Mirror of the push block of conv_weight_pack.comp. */
typedef struct { int32_t groups, na, nb, taps, transpose, blk; uint32_t count; } pack_push;
_Static_assert (sizeof (pack_push) == 28, "mirror of conv_weight_pack.comp");

int64_t conv_pack_floats (const cel_graph *g, int32_t groups, int32_t na, int32_t nb, int32_t taps, int32_t blk) {
  if (!g->ctx->texel_reads || !has_subgroups_of_8 (g))
    return 0;
  return (int64_t) groups * ((na + blk - 1) / blk) * nb * taps * 8;
}

cel_status conv_pack_weights (cel_exec *ex, cel_bind w, cel_bind wp, int32_t groups, int32_t na, int32_t nb,
                              int32_t taps, bool transpose, int32_t blk) {
  pack_push p = { groups, na, nb, taps, transpose, blk, (uint32_t) wp.count };
  cel_bind b[2] = { w, wp };
  return cel_exec_dispatch_1d_bound (ex, CEL_SHADER_CONV_WEIGHT_PACK, NULL, 0, b, 2, &p, sizeof p, wp.count, 64);
}

const cel_bind *conv_packed_range (const cel_node_rec *n, cel_node self, int64_t floats, cel_bind *out) {
  if (floats <= 0 || n->temp < floats)
    return NULL;
  *out = (cel_bind) { self, 0, floats };
  return out;
}

/* Whether the blocked forward runs its texel variant (reading x and the packed weights wp through texel buffers)
 * for an input x: Winograd asks it too, to write its transformed kernel packed exactly when it will be read so. */
static bool fwd_blocked_texel (cel_exec *ex, cel_bind x, cel_bind wp) {
  return cel_exec_bind_texel_fits (ex, x) && cel_exec_bind_texel_fits (ex, wp);
}

/* The register-blocked forward (conv2d_fwd_blocked.comp) of x (shape xs) and w (ws) into y (ys), bound as
 * bind[] = { x, w, bias or w, y } with push constants p: 8 output channels x px pixels per invocation, kernel
 * rows unrolled while the loop body stays small. *done is false where its limits rule it out (nothing
 * recorded). Needs subgroups of 8 or more. */
static cel_status fwd_blocked (cel_exec *ex, cel_graph *g, const int32_t *ip, cel_shape xs, cel_shape ws, cel_shape ys,
                               const conv2d_push *p, const cel_bind *bind, const uint32_t act[2], const cel_bind *wp,
                               bool wp_ready, bool *done) {
  (void) g;
  *done = false;
  int32_t px = pixels_per_invocation (ys.w);
  while (px > 1 && span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) > 32)
    px /= 2;
  if (ws.w > 16 || span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) > 32)
    return CEL_OK;
  *done = true;
  /* Stride 1 along w, the width a multiple of 4, OW <= W and 0 <= pad_left <= DW*(KW-1): the middle px of a
   * block's columns are x's ow0 .. ow0+px-1, 16-byte aligned, read as vec4 (px 4 where the width is not a
   * multiple of 8, so that no block reads past its row); the DW*(KW-1) others one by one. On lavapipe: 1.4x
   * for a 1x1 256 -> 512 at 64x64 */
  int32_t pad_left = ip[IP_PAD_LEFT];
  uint32_t vec4_rows = px >= 4 && rows_read_as_vec4 (ip, xs, ws, ys);
  if (vec4_rows && xs.w % px != 0)
    px = 4;
  uint32_t unroll = ws.h * ws.w * px <= 128;
  uint32_t spec[11] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) ip[IP_STRIDE_W], (uint32_t) ip[IP_DILATION_W],
                        (uint32_t) px, unroll, vec4_rows, vec4_rows ? (uint32_t) pad_left : 0,
                        px % 4 == 0 && ys.w % 4 == 0, act ? act[0] : 0, act ? act[1] : 0 };
  int32_t groups = ip[IP_GROUPS], ocg = ys.c / groups;
  int64_t blocks = (int64_t) ys.n * ys.h * ((ys.w + px - 1) / px);
  /* Through texel buffers where the context reads so (CPU devices), the caller gave room for the packed weights
   * wp (packed here unless wp_ready) and x and they fit them: x at bindings 0 and 4 (float and vec4 views), wp at
   * 1. On lavapipe the AnimeGANv2 forward's convolutions took 1.48x less time (a texel fetch is one gather, a
   * storage-buffer load a loop over the lanes), and the packed weights another 1.6-2x on a 64 -> 64 3x3. */
  bool texel = wp && fwd_blocked_texel (ex, bind[0], *wp);
  if (texel && !wp_ready) {
    cel_status st = conv_pack_weights (ex, bind[1], *wp, groups, ocg, ws.c, ws.h * ws.w, false, 8);
    if (st)
      return st;
  }
  cel_bind tbind[5] = { bind[0], texel ? *wp : bind[1], bind[2], bind[3], bind[0] };
  return dispatch_blocks_bound (ex, texel ? CEL_SHADER_CONV2D_FWD_BLOCKED_TEXEL : CEL_SHADER_CONV2D_FWD_BLOCKED, spec,
                                11, tbind, texel ? 5 : 4, p, blocks, (uint32_t) (groups * ((ocg + 7) / 8)));
}

/* ---- Winograd F(4x4, 3x3): 3x3 stride-1 convolutions as 36 products of channel matrices ------------------ */

/* The geometry of a Winograd forward: output tiles of 4x4 (tw per row, t in all), processed in chunks of tp tiles
 * (a multiple of 8) through the node's temporary storage: the transformed kernel u (36*OC, IC, 1, 1), a chunk's
 * transformed input v (N, 36*IC, 1, tp) and its products m (N, 36*OC, 1, tp), at float offsets u_off, v_off,
 * m_off (aligned for binding); temp floats in all. */
typedef struct {
  int32_t tw, t, tp, chunks;
  int64_t u_off, v_off, m_off, temp;
} wino_geom;

/* Floats of one chunk's v or m that the chunk size aims at. Where the context reads through texel buffers (CPU
 * devices) 1 Mi (4 MiB), small enough to stay in the caches between the transforms and the products (on lavapipe a
 * 64-channel 256x256 layer took 1.7x less time than in chunks of 32 MiB); on GPUs 16 Mi (64 MiB), enough
 * workgroups to fill one, small beside the tensors of a tiled run. A chunk holds at least 512 tiles, the 64
 * invocations of 8 tiles of one workgroup of the products. */
enum { WINO_CHUNK_FLOATS_CPU = 1 << 20, WINO_CHUNK_FLOATS_GPU = 16 << 20, WINO_CHUNK_MIN_TILES = 512 };

static int64_t align_floats (int64_t v, int64_t a) {
  return (v + a - 1) / a * a;
}

/* A 3x3 stride-1 convolution of one group for Winograd: x (N,IC,H,W) padded (top, left, bottom, right; zero or
 * reflect) into y (N,OC,OH,OW), with w (OC,IC,3,3), or (flip) the gradient wrt x of a convolution with w
 * (IC,OC,3,3): w's channels swapped and its kernels rotated by 180 degrees. */
typedef struct {
  cel_shape xs, ys;
  int32_t pad[4]; /* top, left, bottom, right */
  int32_t reflect, flip;
} wino_conv;

/* The forward of conv2d node n as a wino_conv; false where it is not 3x3, stride 1, dilation 1, one group. */
static bool wino_forward (cel_graph *g, const cel_node_rec *n, wino_conv *c) {
  cel_shape ws = cel_node_shape (g, n->in[1]);
  const int32_t *ip = n->ip;
  *c = (wino_conv) { cel_node_shape (g, n->in[0]), n->shape, { ip[IP_PAD_TOP], ip[IP_PAD_LEFT], ip[IP_PAD_BOTTOM],
                     ip[IP_PAD_RIGHT] }, ip[IP_REFLECT], 0 };
  return ws.h == 3 && ws.w == 3 && ip[IP_STRIDE_H] == 1 && ip[IP_STRIDE_W] == 1 && ip[IP_DILATION_H] == 1 &&
         ip[IP_DILATION_W] == 1 && ip[IP_GROUPS] == 1;
}

/* Whether a convolution runs as Winograd F(4x4, 3x3), and its geometry: padding 0 .. 2 of zeros or reflected
 * (the kernels' source rows), at least 32 input and output channels (on lavapipe 16 -> 16 at 256x256 ran 1.25x
 * slower than directly, 32 -> 32 at 128x128 batch 2 1.2x faster, 64 -> 64 at 64x64 batch 2 1.6x faster), where the blocked kernels run (subgroups of 8 or more). CELGAN_WINOGRAD=0 turns it off
 * (for comparisons), =1 takes it from 1 channel on, and CELGAN_WINOGRAD_TILES=N makes chunks of N tiles (tests
 * of small shapes). */
static bool winograd_fits (cel_graph *g, const wino_conv *c, wino_geom *wg) {
  const char *env = getenv ("CELGAN_WINOGRAD");
  bool off = env && strcmp (env, "0") == 0, all = env && strcmp (env, "1") == 0;
  int32_t min_channels = all ? 1 : 32;
  cel_shape xs = c->xs, ys = c->ys;
  if (off || !has_subgroups_of_8 (g) || xs.c < min_channels || ys.c < min_channels)
    return false;
  for (int i = 0; i < 4; i++)
    if (c->pad[i] < 0 || c->pad[i] > 2)
      return false;
  const cel_context *ctx = g->ctx;
  int64_t th = (ys.h + 3) / 4, tw = (ys.w + 3) / 4, t = th * tw, widest = xs.c > ys.c ? xs.c : ys.c;
  int64_t most = INT32_MAX; /* floats that one binding may hold */
  if (ctx->info.max_storage_buffer_range / 4 < (uint64_t) most)
    most = (int64_t) (ctx->info.max_storage_buffer_range / 4);
  if (ctx->texel_reads && ctx->max_texel_elements < (uint64_t) most)
    most = (int64_t) ctx->max_texel_elements;
  int64_t per_tile = 36 * widest * xs.n, all_tp = align_floats (t, 8);
  int64_t aim = ctx->texel_reads ? WINO_CHUNK_FLOATS_CPU : WINO_CHUNK_FLOATS_GPU;
  int64_t tp = aim / per_tile / WINO_CHUNK_MIN_TILES * WINO_CHUNK_MIN_TILES;
  if (tp < WINO_CHUNK_MIN_TILES)
    tp = WINO_CHUNK_MIN_TILES;
  if (tp > most / per_tile)
    tp = most / per_tile / 8 * 8;
  const char *force_tp = getenv ("CELGAN_WINOGRAD_TILES"); /* tests: many chunks on small images */
  if (force_tp && atoi (force_tp) >= 8)
    tp = atoi (force_tp) / 8 * 8;
  if (tp > all_tp)
    tp = all_tp;
  int64_t u_count = 36 * align_floats (ys.c, 8) * xs.c; /* room for the packed layout (record_winograd) */
  if (tp < 8 || u_count > most || t > INT32_MAX)
    return false;
  int64_t a = cel_exec_temp_align (g);
  wg->tw = (int32_t) tw;
  wg->t = (int32_t) t;
  wg->tp = (int32_t) tp;
  wg->chunks = (int32_t) ((t + tp - 1) / tp);
  wg->u_off = 0;
  wg->v_off = align_floats (u_count, a);
  wg->m_off = wg->v_off + align_floats (36 * xs.n * xs.c * tp, a);
  wg->temp = wg->m_off + 36 * xs.n * ys.c * tp;
  return true;
}

/* Mirrors of the push blocks of winograd_weight.comp, winograd_input.comp and winograd_output.comp. */
typedef struct { int32_t oc, ic, flip, packed; } wino_w_push;
typedef struct { ivec4_t xshape; int32_t tw, t, tp, t0, pad_top, pad_left, padded_h, padded_w, reflect; } wino_in_push;
_Static_assert (sizeof (wino_in_push) == 52, "mirror of winograd_input.comp");
typedef struct { ivec4_t yshape; int32_t tw, ct, tp, t0, has_bias; } wino_out_push;
_Static_assert (sizeof (wino_out_push) == 36, "mirror of winograd_output.comp");

/* Records the Winograd convolution c of x with w (and bias b, or CEL_NO_NODE) into node self, whose temporary
 * storage wg lays out: the kernel transform, then per chunk of tiles the input transform, the 36 products as one
 * grouped 1x1 convolution through the blocked forward, and the output transform (adding the bias, then the fused
 * activation act: {ACT, ALPHA's bits} as in conv2d_fwd_blocked.comp). */
static cel_status record_winograd (cel_exec *ex, cel_graph *g, cel_node self, cel_node x, cel_node w, cel_node b,
                                   const wino_conv *c, const wino_geom *wg, const uint32_t act[2]) {
  cel_shape xs = c->xs, ys = c->ys;
  int64_t u_count = 36 * align_floats (ys.c, 8) * xs.c, v_count = 36 * (int64_t) xs.n * xs.c * wg->tp;
  int64_t m_count = 36 * (int64_t) xs.n * ys.c * wg->tp;
  cel_bind u = { self, wg->u_off, u_count }, v = { self, wg->v_off, v_count }, m = { self, wg->m_off, m_count };
  /* u in the packed layout of the products' texel variant where they run on it */
  bool packed = fwd_blocked_texel (ex, v, u);
  wino_w_push wp = { ys.c, xs.c, c->flip, packed };
  cel_bind wb[2] = { cel_bind_node (w), u };
  cel_status st = cel_exec_dispatch_1d_bound (ex, CEL_SHADER_WINOGRAD_WEIGHT, NULL, 0, wb, 2, &wp, sizeof wp,
                                              (packed ? align_floats (ys.c, 8) : ys.c) * xs.c, 64);
  /* the products: v (N, 36*IC, 1, tp) by u (36*OC, IC, 1, 1) in 36 groups */
  int32_t gip[IP_COUNT] = { 0 };
  gip[IP_STRIDE_H] = gip[IP_STRIDE_W] = gip[IP_DILATION_H] = gip[IP_DILATION_W] = 1;
  gip[IP_GROUPS] = 36;
  cel_shape vs = { xs.n, 36 * xs.c, 1, wg->tp }, us = { 36 * ys.c, xs.c, 1, 1 }, ms = { xs.n, 36 * ys.c, 1, wg->tp };
  conv2d_push gp = make_push (gip, vs, us, ms, false, cel_shape_count (ms));
  cel_bind gb[4] = { v, u, u, m };
  bool has_bias = b != CEL_NO_NODE;
  cel_bind ob[3] = { m, cel_bind_node (has_bias ? b : w), cel_bind_node (self) };
  /* x and m through texel buffers where the context reads so */
  cel_shader_id in_shader = cel_exec_bind_texel_fits (ex, cel_bind_node (x)) ? CEL_SHADER_WINOGRAD_INPUT_TEXEL
                                                                             : CEL_SHADER_WINOGRAD_INPUT;
  cel_shader_id out_shader = cel_exec_bind_texel_fits (ex, m) ? CEL_SHADER_WINOGRAD_OUTPUT_TEXEL : CEL_SHADER_WINOGRAD_OUTPUT;
  for (int32_t k = 0; k < wg->chunks && !st; k++) {
    int32_t t0 = k * wg->tp, ct = wg->t - t0 < wg->tp ? wg->t - t0 : wg->tp;
    wino_in_push inp = { conv_iv (xs), wg->tw, wg->t, wg->tp, t0, c->pad[0], c->pad[1], xs.h + c->pad[0] + c->pad[2],
                         xs.w + c->pad[1] + c->pad[3], c->reflect };
    cel_bind ib[2] = { cel_bind_node (x), v };
    /* 4 tiles per invocation */
    if ((st = cel_exec_dispatch_1d_bound (ex, in_shader, NULL, 0, ib, 2, &inp, sizeof inp,
                                          (int64_t) xs.n * xs.c * (wg->tp / 4), 64)))
      break;
    bool done;
    if ((st = fwd_blocked (ex, g, gip, vs, us, ms, &gp, gb, NULL, packed ? &u : NULL, true, &done)))
      break;
    if (!done)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: Winograd products without the blocked kernel");
    wino_out_push outp = { conv_iv (ys), wg->tw, ct, wg->tp, t0, has_bias };
    st = cel_exec_dispatch_1d_bound (ex, out_shader, act ? act : (const uint32_t[2]) { 0, 0 }, 2, ob, 3, &outp,
                                     sizeof outp, (int64_t) ys.n * ys.c * ((ct + 3) / 4), 64);
  }
  return st;
}

cel_status conv2d_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape xs = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]);
  cel_status st = check_geometry (g, xs, ws, n->ip, &n->shape);
  if (st)
    return st;
  wino_geom wg;
  wino_conv wc;
  int32_t groups = n->ip[IP_GROUPS];
  n->temp = wino_forward (g, n, &wc) && winograd_fits (g, &wc, &wg)
              ? wg.temp
              : conv_pack_floats (g, groups, ws.n / groups, ws.c, ws.h * ws.w, 8); /* fwd_blocked's packed weights */
  if (n->in[2] == CEL_NO_NODE)
    return st;
  cel_shape bs = cel_node_shape (g, n->in[2]);
  char s1[64];
  if (bs.n != 1 || bs.c != ws.n || bs.h != 1 || bs.w != 1)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: bias %s must be (1, %d, 1, 1)", cel_shape_str (bs, s1),
                            ws.n);
  return CEL_OK;
}

cel_status conv2d_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  bool has_bias = n->in[2] != CEL_NO_NODE;
  int64_t count = cel_shape_count (n->shape);
  cel_shape xs = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]), ys = n->shape;
  const int32_t *ip = n->ip;
  conv2d_push p = make_push (ip, xs, ws, ys, has_bias, count);
  /* Without a bias the shaders read nothing from binding 2; w fills it. */
  cel_node bind[4] = { n->in[0], n->in[1], has_bias ? n->in[2] : n->in[1], self };
  wino_geom wg;
  wino_conv wc;
  uint32_t act[2] = { n->ip[IP_ACT] == CEL_ACT_RELU + 1 ? 1u : n->ip[IP_ACT] == CEL_ACT_LEAKY_RELU + 1 ? 2u : 0u, 0 };
  memcpy (&act[1], &n->fp[0], sizeof act[1]);
  if (wino_forward (g, n, &wc) && winograd_fits (g, &wc, &wg) && wg.temp == n->temp)
    return record_winograd (ex, g, self, n->in[0], n->in[1], n->in[2], &wc, &wg, act);
  if (has_subgroups_of_8 (g)) {
    if (ws.c == 1) { /* depthwise */
      bool done;
      cel_status st = dispatch_depthwise (ex, g, &p, ws, ys, bind, &done);
      if (st || done)
        return st;
    }
    bool done;
    cel_bind bb[4] = { cel_bind_node (bind[0]), cel_bind_node (bind[1]), cel_bind_node (bind[2]), cel_bind_node (bind[3]) };
    cel_bind wp;
    int32_t groups = ip[IP_GROUPS];
    const cel_bind *pw = conv_packed_range (n, self, conv_pack_floats (g, groups, ws.n / groups, ws.c, ws.h * ws.w, 8), &wp);
    cel_status st = fwd_blocked (ex, g, ip, xs, ws, ys, &p, bb, act, pw, false, &done);
    if (st || done)
      return st;
  }
  if (act[0])
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: conv2d with a fused activation off the blocked kernels");
  /* one invocation per output element */
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONV2D_FWD, bind, 4, &p, sizeof p, count, 256);
}

cel_status conv2d_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx) {
  const cel_node_rec n = *cel_node_get (g, self);
  cel_status st = CEL_OK;
  if (n.ip[IP_ACT] != 0) { /* a fused relu or leaky relu: its gradient from y (same sign as the convolution's) first */
    int32_t act = n.ip[IP_ACT] - 1;
    if ((st = cel_graph_add_op (g, CEL_OP_ACTIVATE_BWD, (cel_node[2]) { self, dy }, 2, &act, 1, &n.fp[0], 1, &dy)))
      return st;
  }
  if (need[0]) {
    int32_t ip[IP_COUNT + 1];
    memcpy (ip, n.ip, sizeof ip);
    ip[IP_STAGE] = STAGE_DX;
    cel_node in[3] = { dy, n.in[1], n.in[0] };
    if (n.ip[IP_REFLECT] && blocked_bwd_data_fits (g, cel_node_shape (g, n.in[1]), n.ip)) {
      cel_node padded;
      ip[IP_STAGE] = STAGE_DX_PADDED;
      if ((st = cel_graph_add_op (g, CEL_OP_CONV2D_BWD_DATA, in, 3, ip, IP_COUNT + 1, NULL, 0, &padded)))
        return st;
      in[0] = padded;
      ip[IP_STAGE] = STAGE_FOLD;
    }
    if ((st = cel_graph_add_op (g, CEL_OP_CONV2D_BWD_DATA, in, 3, ip, IP_COUNT + 1, NULL, 0, &dx[0])))
      return st;
  }
  if (need[1]) {
    cel_node in[3] = { dy, n.in[0], n.in[1] };
    if ((st = cel_graph_add_op (g, CEL_OP_CONV2D_BWD_WEIGHT, in, 3, n.ip, IP_COUNT, NULL, 0, &dx[1])))
      return st;
  }
  if (need[2])
    st = cel_sum_to (g, dy, (cel_shape) { 1, n.shape.c, 1, 1 }, &dx[2]);
  return st;
}

cel_status cel_conv2d (cel_graph *g, cel_node x, cel_node w, cel_node b, const cel_conv2d_params *p, cel_node *out) {
  *out = CEL_NO_NODE;
  cel_status st;
  if ((st = cel_graph_check_node (g, x, false, "conv2d", "x")) || (st = cel_graph_check_node (g, w, false, "conv2d", "w"))
      || (st = cel_graph_check_node (g, b, true, "conv2d", "b")))
    return st;
  cel_conv2d_params d = { 0 };
  if (p)
    d = *p;
  if (d.stride_h < 0 || d.stride_w < 0 || d.dilation_h < 0 || d.dilation_w < 0 || d.groups < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: stride (%d, %d), dilation (%d, %d) and groups %d must be positive (0 means 1)",
                            d.stride_h, d.stride_w, d.dilation_h, d.dilation_w, d.groups);
  if (d.pad_top < 0 || d.pad_bottom < 0 || d.pad_left < 0 || d.pad_right < 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT,
                            "conv2d: padding (top %d, bottom %d, left %d, right %d) must not be negative", d.pad_top,
                            d.pad_bottom, d.pad_left, d.pad_right);
  if (d.padding_mode != CEL_PAD_ZERO && d.padding_mode != CEL_PAD_REFLECT)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d: unknown padding mode %d", (int) d.padding_mode);
  int32_t ip[IP_COUNT] = {
    [IP_STRIDE_H] = d.stride_h ? d.stride_h : 1, [IP_STRIDE_W] = d.stride_w ? d.stride_w : 1,
    [IP_PAD_TOP] = d.pad_top, [IP_PAD_BOTTOM] = d.pad_bottom, [IP_PAD_LEFT] = d.pad_left, [IP_PAD_RIGHT] = d.pad_right,
    [IP_DILATION_H] = d.dilation_h ? d.dilation_h : 1, [IP_DILATION_W] = d.dilation_w ? d.dilation_w : 1,
    [IP_GROUPS] = d.groups ? d.groups : 1, [IP_REFLECT] = d.padding_mode == CEL_PAD_REFLECT,
  };
  cel_node in[3] = { x, w, b };
  return cel_graph_add_op (g, CEL_OP_CONV2D, in, 3, ip, IP_COUNT, NULL, 0, out);
}

/* Folds y = act (node) into conv2d node: the kernel that writes the convolution's result writes it activated
 * (on lavapipe the separate pass took 11 % of waifu2x's upconv_7). As cel_norm_apply_fuse_act: relu, and leaky
 * relu with a slope above 0 (the backward differentiates the activation from the node's own output), where
 * nothing else reads the node yet, before cel_graph_backward; and only where the forward runs on the blocked or
 * Winograd kernels, which apply it (subgroups of 8 or more, not depthwise, kernels at most 16 wide). */
bool cel_conv2d_fuse_act (cel_graph *g, cel_node node, cel_activation act, float alpha) {
  if (node < 0 || node >= g->n_nodes || g->has_backward)
    return false;
  cel_node_rec *n = &g->nodes[node];
  if (n->kind != CEL_NODE_OP || n->op != CEL_OP_CONV2D || n->ip[IP_ACT] != 0 || n->is_output ||
      !(act == CEL_ACT_RELU || (act == CEL_ACT_LEAKY_RELU && alpha > 0.0f && isfinite (alpha))))
    return false;
  cel_shape ws = cel_node_shape (g, n->in[1]);
  if (!has_subgroups_of_8 (g) || ws.c == 1 || ws.w > 16 || span (1, n->ip[IP_STRIDE_W], n->ip[IP_DILATION_W], ws.w) > 32)
    return false;
  for (int32_t i = node + 1; i < g->n_nodes; i++)
    for (int32_t k = 0; k < g->nodes[i].n_in; k++)
      if (g->nodes[i].in[k] == node)
        return false;
  n->ip[IP_ACT] = (int32_t) act + 1;
  n->fp[0] = act == CEL_ACT_RELU ? 0.0f : alpha;
  g->planned = false;
  return true;
}

/* ---- gradient wrt x: in (dy, w, x); x only gives the shape (H and W are not recoverable from dy) ---------- */

/* The padded input's shape (reflect padding: the grid the gradient is gathered on before the fold). */
static cel_shape padded_shape (cel_shape xs, const int32_t *ip) {
  return (cel_shape) { xs.n, xs.c, xs.h + ip[IP_PAD_TOP] + ip[IP_PAD_BOTTOM], xs.w + ip[IP_PAD_LEFT] + ip[IP_PAD_RIGHT] };
}

/* The gradient wrt x of a 3x3 stride-1 convolution of one group (node n, stage DX with zero padding, or DX_PADDED)
 * as a wino_conv: the convolution of dy, zero-padded by 2 - pad on each side (2 on the padded grid), with w's
 * kernels rotated and its channels swapped. False for other geometries and stages. */
static bool wino_backward_data (cel_graph *g, const cel_node_rec *n, wino_conv *c) {
  cel_shape ws = cel_node_shape (g, n->in[1]);
  const int32_t *ip = n->ip;
  bool padded = ip[IP_STAGE] == STAGE_DX_PADDED;
  if (ws.h != 3 || ws.w != 3 || ip[IP_STRIDE_H] != 1 || ip[IP_STRIDE_W] != 1 || ip[IP_DILATION_H] != 1 ||
      ip[IP_DILATION_W] != 1 || ip[IP_GROUPS] != 1 || ip[IP_STAGE] == STAGE_FOLD || (ip[IP_REFLECT] && !padded))
    return false;
  *c = (wino_conv) { cel_node_shape (g, n->in[0]), n->shape,
                     { padded ? 2 : 2 - ip[IP_PAD_TOP], padded ? 2 : 2 - ip[IP_PAD_LEFT], padded ? 2 : 2 - ip[IP_PAD_BOTTOM],
                       padded ? 2 : 2 - ip[IP_PAD_RIGHT] }, 0, 1 };
  return true;
}

cel_status conv2d_bwd_data_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape dys = cel_node_shape (g, n->in[0]), ws = cel_node_shape (g, n->in[1]), xs = cel_node_shape (g, n->in[2]);
  char s1[64], s2[64];
  if (n->ip[IP_STAGE] == STAGE_FOLD) {
    cel_shape ps = padded_shape (xs, n->ip);
    if (memcmp (&ps, &dys, sizeof ps) != 0)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d backward: padded gradient %s does not match %s",
                              cel_shape_str (dys, s1), cel_shape_str (ps, s2));
    n->shape = xs;
    return CEL_OK;
  }
  cel_shape ys;
  cel_status st = check_geometry (g, xs, ws, n->ip, &ys);
  if (st)
    return st;
  if (memcmp (&ys, &dys, sizeof ys) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d backward: dy %s does not match the output %s",
                            cel_shape_str (dys, s1), cel_shape_str (ys, s2));
  n->shape = n->ip[IP_STAGE] == STAGE_DX_PADDED ? padded_shape (xs, n->ip) : xs;
  wino_geom wg;
  wino_conv wc;
  int32_t groups = n->ip[IP_GROUPS], icg = ws.c, icb = icg <= 4 ? 4 : 8;
  n->temp = wino_backward_data (g, n, &wc) && winograd_fits (g, &wc, &wg)
              ? wg.temp
              : conv_pack_floats (g, groups, icg, ws.n / groups, ws.h * ws.w, icb); /* the blocked kernel's packed weights */
  return CEL_OK;
}

/* Mirror of the push block of pad_bwd.comp (see spatial.c). */
typedef struct { ivec4_t xshape, yshape; int32_t top, left, mode; uint32_t count; } pad_bwd_push;
_Static_assert (sizeof (pad_bwd_push) == 48, "mirror of pad_bwd.comp");

cel_status conv2d_bwd_data_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  const int32_t *ip = n->ip;
  int64_t count = cel_shape_count (n->shape);
  if (ip[IP_STAGE] == STAGE_FOLD) {
    pad_bwd_push p = { conv_iv (n->shape), conv_iv (cel_node_shape (g, n->in[0])), ip[IP_PAD_TOP], ip[IP_PAD_LEFT], CEL_PAD_REFLECT,
                       (uint32_t) count };
    cel_node bind[2] = { n->in[0], self };
    return cel_exec_dispatch_planes (ex, CEL_SHADER_PAD_BWD, NULL, 0, bind, 2, &p, sizeof p, n->shape);
  }
  wino_geom wg;
  wino_conv wc;
  if (wino_backward_data (g, n, &wc) && winograd_fits (g, &wc, &wg) && wg.temp == n->temp)
    return record_winograd (ex, g, self, n->in[0], n->in[1], CEL_NO_NODE, &wc, &wg, NULL);
  cel_shape ws = cel_node_shape (g, n->in[1]), dys = cel_node_shape (g, n->in[0]), xs = n->shape;
  conv2d_push p = make_push (ip, xs, ws, dys, false, count);
  if (ip[IP_STAGE] == STAGE_DX_PADDED) /* zero padding 0 on the padded grid */
    p.pad[0] = p.pad[1] = p.reflect = 0;
  if (!p.reflect && ws.c == 1 && ws.n == xs.c && p.stride[0] == 1 && p.stride[1] == 1) {
    /* depthwise, stride 1: dx is the depthwise convolution of dy with the rotated kernel */
    conv2d_push f = make_push (ip, dys, ws, xs, false, count);
    f.pad[0] = p.dilation[0] * (ws.h - 1) - p.pad[0];
    f.pad[1] = p.dilation[1] * (ws.w - 1) - p.pad[1];
    f.reflect = 0;
    f.flip = 1;
    cel_node bind[4] = { n->in[0], n->in[1], n->in[1], self };
    bool done;
    cel_status st = dispatch_depthwise (ex, g, &f, ws, xs, bind, &done);
    if (st || done)
      return st;
  }
  int32_t px = bwd_data_pixels (xs.w, ip[IP_STRIDE_W]), sw = ip[IP_STRIDE_W];
  if (!p.reflect && blocked_bwd_data_fits (g, ws, ip) && bwd_data_span (px, sw, ip[IP_DILATION_W], ws.w) <= 32) {
    /* 8 (or 4) input channels x px pixels per invocation */
    int32_t plm = ((p.pad[1] % sw) + sw) % sw;
    /* stride 1, OW a multiple of 4, px of 4: dy's rows read as aligned vec4 */
    uint32_t win4 = sw == 1 && dys.w % 4 == 0 && px % 4 == 0;
    int32_t r = (((p.pad[1] - ip[IP_DILATION_W] * (ws.w - 1)) % 4) + 4) % 4;
    int32_t groups = ip[IP_GROUPS], icg = xs.c / groups, icb = icg <= 4 ? 4 : 8; /* dx channels per invocation */
    uint32_t spec[11] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) sw, (uint32_t) ip[IP_DILATION_W], (uint32_t) px,
                          (uint32_t) plm, ws.h * ws.w * px <= 128, (uint32_t) ip[IP_STRIDE_H], win4,
                          win4 ? (uint32_t) r : 0, (uint32_t) icb };
    int64_t blocks = (int64_t) xs.n * xs.h * ((xs.w + px - 1) / px);
    cel_bind wp, bind[5];
    uint32_t n_bind;
    cel_shader_id sh;
    const cel_bind *pw = conv_packed_range (n, self, conv_pack_floats (g, groups, icg, ws.n / groups, ws.h * ws.w, icb), &wp);
    cel_status st = conv_bwd_data_blocked_bind (ex, n->in[0], n->in[1], CEL_NO_NODE, self, pw, ws, groups, icb, &sh,
                                                bind, &n_bind);
    if (st)
      return st;
    return dispatch_blocks_bound (ex, sh, spec, 11, bind, n_bind, &p, blocks, (uint32_t) (groups * ((icg + icb - 1) / icb)));
  }
  /* one invocation per element of dx */
  cel_node bind[3] = { n->in[0], n->in[1], self };
  return cel_exec_dispatch_1d (ex, CEL_SHADER_CONV2D_BWD_DATA, bind, 3, &p, sizeof p, count, 256);
}

cel_status conv_bwd_data_blocked_bind (cel_exec *ex, cel_node dy, cel_node w, cel_node bias, cel_node out,
                                       const cel_bind *wp, cel_shape ws, int32_t groups, int32_t icb,
                                       cel_shader_id *shader, cel_bind bind[5], uint32_t *n_bind) {
  /* without a bias the shaders read nothing from binding 2: w fills it */
  cel_bind b2 = cel_bind_node (bias != CEL_NO_NODE ? bias : w);
  bool texel = wp && cel_exec_bind_texel_fits (ex, cel_bind_node (dy)) && cel_exec_bind_texel_fits (ex, *wp);
  if (!texel) {
    *shader = CEL_SHADER_CONV2D_BWD_DATA_BLOCKED;
    bind[0] = cel_bind_node (dy), bind[1] = cel_bind_node (w), bind[2] = b2, bind[3] = cel_bind_node (out);
    *n_bind = 4;
    return CEL_OK;
  }
  /* dy (also as vec4 at 4) and the packed weights through texel buffers */
  *shader = CEL_SHADER_CONV2D_BWD_DATA_BLOCKED_TEXEL;
  bind[0] = cel_bind_node (dy), bind[1] = *wp, bind[2] = b2, bind[3] = cel_bind_node (out), bind[4] = cel_bind_node (dy);
  *n_bind = 5;
  return conv_pack_weights (ex, cel_bind_node (w), *wp, groups, ws.c, ws.n / groups, ws.h * ws.w, true, icb);
}

/* ---- gradient wrt w: in (dy, x, w); w only gives the shape -------------------------------------- */

cel_status conv2d_bwd_weight_infer (cel_graph *g, cel_node_rec *n) {
  cel_shape dys = cel_node_shape (g, n->in[0]), xs = cel_node_shape (g, n->in[1]), ws = cel_node_shape (g, n->in[2]);
  cel_shape ys;
  cel_status st = check_geometry (g, xs, ws, n->ip, &ys);
  if (st)
    return st;
  char s1[64], s2[64];
  if (memcmp (&ys, &dys, sizeof ys) != 0)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "conv2d backward: dy %s does not match the output %s",
                            cel_shape_str (dys, s1), cel_shape_str (ys, s2));
  n->shape = ws;
  return CEL_OK;
}

cel_status conv2d_dispatch_weight_slices (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                          const cel_node *bind, uint32_t n_bind, conv2d_push p, int64_t blocks,
                                          int64_t max_blocks, uint32_t gx) {
  cel_status st = CEL_OK;
  for (int64_t b = 0; b < blocks && !st; b += max_blocks) {
    p.block_begin = (int32_t) b;
    p.block_end = (int32_t) (blocks - b < max_blocks ? blocks : b + max_blocks);
    p.accumulate = b > 0;
    st = cel_exec_dispatch (ex, shader, spec, n_spec, bind, n_bind, &p, sizeof p, gx, 1, 1);
  }
  return st;
}

cel_shader_id conv_pick_reads (const cel_exec *ex, cel_shader_id storage, cel_shader_id texel, const cel_node *bind,
                               uint32_t n_bind, const cel_node *vec4_views, uint32_t n_vec4, cel_node *out,
                               uint32_t *n_out) {
  memcpy (out, bind, n_bind * sizeof *bind);
  *n_out = n_bind;
  if (cel_exec_pick_reads (ex, storage, texel, bind, 2) == storage)
    return storage;
  memcpy (out + n_bind, vec4_views, n_vec4 * sizeof *vec4_views);
  *n_out = n_bind + n_vec4;
  return texel;
}

/* The blocked weight gradient (conv2d_bwd_weight_blocked.comp) of dy (shape ys) and x (xs) into dw (ws), scaled
 * by out_scale: a tile of 8 output x 8*icl input channels x kt kernel rows per workgroup, px pixels per step.
 * *done is false where the kernel's limits rule it out (nothing recorded). */
static cel_status weight_blocked (cel_exec *ex, cel_graph *g, const int32_t *ip, cel_node dy, cel_node x, cel_node dw,
                                  cel_shape ys, cel_shape xs, cel_shape ws, float out_scale, bool *done) {
  *done = false;
  if (!conv_weight_blocked_runs (g) || ws.c <= 1 || ws.w > 16)
    return CEL_OK;
  int32_t px = ys.w >= 4 ? 4 : pixels_per_invocation (ys.w);
  while (px > 1 && span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) > 32)
    px /= 2;
  /* each lane sums icl input channels x kt kernel rows x KW taps, at most 16 */
  int32_t kt = 16 / ws.w < ws.h ? 16 / ws.w : ws.h, groups = ip[IP_GROUPS];
  int32_t icl = 16 / (kt * ws.w), icl_max = (ws.c + 7) / 8;
  icl = icl < icl_max ? icl : icl_max;
  int64_t tiles = (int64_t) groups * ((ws.n / groups + 7) / 8) * ((ws.c + 8 * icl - 1) / (8 * icl)) * ((ws.h + kt - 1) / kt);
  if (span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) > 32 || tiles > 65535)
    return CEL_OK;
  *done = true;
  conv2d_push p = make_push (ip, xs, ws, ys, false, cel_shape_count (ws));
  p.out_scale = out_scale;
  /* vec4 loads of x's rows and of dy (as conv2d_record's) */
  int32_t pad_left = ip[IP_PAD_LEFT];
  uint32_t vec4_rows = px == 4 && rows_read_as_vec4 (ip, xs, ws, ys);
  uint32_t dy4 = px == 4 && ys.w % 4 == 0;
  uint32_t spec[11] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) ip[IP_STRIDE_W], (uint32_t) ip[IP_DILATION_W],
                        (uint32_t) px, (uint32_t) kt, (uint32_t) icl, vec4_rows, vec4_rows ? (uint32_t) pad_left : 0,
                        dy4, conv_weight_shuffle (g) };
  int64_t blocks = (int64_t) ys.n * ys.h * ((ys.w + px - 1) / px);
  cel_node bind[3] = { dy, x, dw }, tbind[5]; /* dy and x through texel buffers where the context reads so, their vec4 views at 3, 4 */
  uint32_t n_bind;
  cel_shader_id sh = conv_pick_reads (ex, CEL_SHADER_CONV2D_BWD_WEIGHT_BLOCKED, CEL_SHADER_CONV2D_BWD_WEIGHT_BLOCKED_TEXEL,
                                      bind, 3, bind, 2, tbind, &n_bind);
  return conv2d_dispatch_weight_slices (ex, sh, spec, 11, tbind, n_bind, p, blocks, CONV2D_WEIGHT_BLOCKS_BLOCKED,
                                        (uint32_t) tiles);
}

int64_t conv2d_gram_bwd_temp (const cel_graph *g, cel_shape xs) {
  return conv_pack_floats (g, xs.n, xs.c, xs.c, 1, 8);
}

cel_status conv2d_gram_bwd_blocked (cel_exec *ex, cel_graph *g, cel_node s, cel_node x, cel_node dx, cel_shape xs,
                                    bool *done) {
  *done = false;
  if (!has_subgroups_of_8 (g))
    return CEL_OK;
  int32_t ip[IP_COUNT] = { 0 };
  ip[IP_STRIDE_H] = ip[IP_STRIDE_W] = ip[IP_DILATION_H] = ip[IP_DILATION_W] = 1;
  ip[IP_GROUPS] = xs.n;
  cel_shape fs = { 1, xs.n * xs.c, xs.h, xs.w }, ws = { xs.n * xs.c, xs.c, 1, 1 };
  conv2d_push p = make_push (ip, fs, ws, fs, false, cel_shape_count (fs));
  cel_bind bind[4] = { cel_bind_node (x), cel_bind_node (s), cel_bind_node (s), cel_bind_node (dx) }, wp;
  const cel_bind *pw = conv_packed_range (cel_node_get (g, dx), dx, conv2d_gram_bwd_temp (g, xs), &wp);
  return fwd_blocked (ex, g, ip, fs, ws, fs, &p, bind, NULL, pw, false, done);
}

cel_status conv2d_gram_blocked (cel_exec *ex, cel_graph *g, cel_node x, cel_node y, cel_shape xs, float scale, bool *done) {
  int32_t ip[IP_COUNT] = { 0 };
  ip[IP_STRIDE_H] = ip[IP_STRIDE_W] = ip[IP_DILATION_H] = ip[IP_DILATION_W] = 1;
  ip[IP_GROUPS] = xs.n;
  cel_shape fs = { 1, xs.n * xs.c, xs.h, xs.w }, ws = { xs.n * xs.c, xs.c, 1, 1 };
  return weight_blocked (ex, g, ip, x, x, y, fs, fs, ws, scale, done);
}

cel_status conv2d_bwd_weight_record (cel_exec *ex, cel_graph *g, cel_node self) {
  const cel_node_rec *n = cel_node_get (g, self);
  int64_t count = cel_shape_count (n->shape);
  conv2d_push p = make_push (n->ip, cel_node_shape (g, n->in[1]), n->shape, cel_node_shape (g, n->in[0]), false, count);
  cel_node bind[3] = { n->in[0], n->in[1], self };
  cel_shape ws = n->shape, ys = cel_node_shape (g, n->in[0]);
  const int32_t *ip = n->ip;
  if (ws.c == 1 && ws.h * ws.w <= 64) {
    /* depthwise: one workgroup per output channel, 64 invocations splitting the pixels */
    int32_t px = pixels_per_invocation (ys.w);
    while (px > 1 && span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) > 32)
      px /= 2;
    if (span (px, ip[IP_STRIDE_W], ip[IP_DILATION_W], ws.w) <= 32 && ws.n <= 65535) {
      uint32_t spec[5] = { (uint32_t) ws.h, (uint32_t) ws.w, (uint32_t) ip[IP_STRIDE_W], (uint32_t) ip[IP_DILATION_W],
                           (uint32_t) px };
      int64_t blocks = (int64_t) ys.n * ys.h * ((ys.w + px - 1) / px);
      return conv2d_dispatch_weight_slices (ex, CEL_SHADER_CONV2D_BWD_WEIGHT_DEPTHWISE, spec, 5, bind, 3, p, blocks,
                                            CONV2D_WEIGHT_BLOCKS_DEPTHWISE, (uint32_t) ws.n);
    }
  }
  bool done;
  cel_status st = weight_blocked (ex, g, ip, n->in[0], n->in[1], self, ys, cel_node_shape (g, n->in[1]), ws, 1.0f, &done);
  if (st || done)
    return st;
  /* one workgroup per weight element */
  uint32_t gx = count < 65535 ? (uint32_t) count : 65535, gy = (uint32_t) ((count + gx - 1) / gx);
  return cel_exec_dispatch (ex, CEL_SHADER_CONV2D_BWD_WEIGHT, NULL, 0, bind, 3, &p, sizeof p, gx, gy, 1);
}
