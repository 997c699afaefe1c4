/* What conv2d (conv.c) shares with conv_transpose2d (conv_transpose.c), whose forward and weight gradient run
 * conv2d's blocked kernels. */
#ifndef CELGAN_OPS_CONV_H
#define CELGAN_OPS_CONV_H

#include "../internal.h"

typedef struct { int32_t v[4]; } ivec4_t;
static inline ivec4_t conv_iv (cel_shape s) {
  return (ivec4_t) { { s.n, s.c, s.h, s.w } };
}

/* Mirror of the push block of every conv2d_*.comp. */
typedef struct {
  ivec4_t xshape, yshape; /* (N,IC,H,W), (N,OC,OH,OW) */
  int32_t kernel[2], stride[2], dilation[2], pad[2]; /* (h, w); pad is (top, left) */
  int32_t groups, reflect, has_bias;
  uint32_t count; /* elements written */
  int32_t flip;   /* kernel rotated by 180 degrees: conv2d_fwd_depthwise.comp computing a gradient wrt x */
  /* the weight-gradient kernels (conv2d_bwd_weight_{blocked,depthwise}.comp): the range of pixel blocks this
   * dispatch sums, and whether it adds to dw (a later slice of a long reduction) rather than writing it */
  int32_t block_begin, block_end, accumulate;
  float out_scale; /* conv2d_bwd_weight_blocked.comp: dw scaled by it (1 but for the Gram matrices of loss.c) */
} conv2d_push;
_Static_assert (sizeof (conv2d_push) == 100, "mirror of conv2d_*.comp");

/* Pixel blocks per dispatch of the weight-gradient kernels, so that an invocation loops at most about 32768
 * times: the blocked kernel's subgroups take every 8th block, the depthwise kernel's 64 invocations every 64th. */
enum { CONV2D_WEIGHT_BLOCKS_BLOCKED = 8 << 15, CONV2D_WEIGHT_BLOCKS_DEPTHWISE = 64 << 15 };

/* Records a weight-gradient kernel that sums over `blocks` pixel blocks (binding 2 is dw), split into
 * dispatches of at most max_blocks blocks each, the later ones adding to dw: an invocation of one dispatch then
 * loops few enough times for llvmpipe, which ends every loop of an invocation after 65535 trips in all
 * (shaders/common.glsl). */
cel_status conv2d_dispatch_weight_slices (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                          const cel_node *bind, uint32_t n_bind, conv2d_push p, int64_t blocks,
                                          int64_t max_blocks, uint32_t gx);

/* The way a blocked kernel reads its inputs: where the context reads through texel buffers
 * (cel_context_set_texel_reads) and every input fits one, its _texel variant, whose bindings are `bind` (0
 * and 1 read as float views) followed by the nodes of `vec4_views` (read as vec4 views); else `storage` with
 * `bind` as it is. Fills out (n_bind + n_vec4 nodes at most) and *n_out; returns the shader. */
cel_shader_id conv_pick_reads (const cel_exec *ex, cel_shader_id storage, cel_shader_id texel, const cel_node *bind,
                               uint32_t n_bind, const cel_node *vec4_views, uint32_t n_vec4, cel_node *out,
                               uint32_t *n_out);

/* Floats of the packed weights (conv_weight_pack.comp) that the blocked kernels' texel-buffer variants read: groups
 * x ceil(na / blk) blocks x nb x taps x 8, for weights of na channels per group blocked by blk (8 or 4) and nb
 * others; 0 where the context does not read through texel buffers (GPUs: the kernels hand weights around by
 * subgroupBroadcast) or the blocked kernels do not run. Nodes plan them as their temporary storage. */
int64_t conv_pack_floats (const cel_graph *g, int32_t groups, int32_t na, int32_t nb, int32_t taps, int32_t blk);
/* The node's temporary storage as `floats` packed weights of a blocked kernel (filled into *out), or NULL where it
 * holds fewer floats than they take (none planned: a GPU, or shapes the planner saw otherwise). */
const cel_bind *conv_packed_range (const cel_node_rec *n, cel_node self, int64_t floats, cel_bind *out);
/* Records conv_weight_pack.comp: w into wp (wp.count floats, conv_pack_floats); transpose as its push block says. */
cel_status conv_pack_weights (cel_exec *ex, cel_bind w, cel_bind wp, int32_t groups, int32_t na, int32_t nb,
                              int32_t taps, bool transpose, int32_t blk);
/* The variant and bindings of conv2d_bwd_data_blocked.comp for dy and w (ws: its shape (OC, IC/groups, KH, KW)),
 * bias (or CEL_NO_NODE) and out, icb (8 or 4) input channels per invocation: the texel variant where wp (room for
 * the packed weights, or NULL) is given and dy and it fit texel buffers (then the packing is recorded here), else
 * the storage one. Fills shader, bind (5 at most) and n_bind. */
cel_status conv_bwd_data_blocked_bind (cel_exec *ex, cel_node dy, cel_node w, cel_node bias, cel_node out,
                                       const cel_bind *wp, cel_shape ws, int32_t groups, int32_t icb,
                                       cel_shader_id *shader, cel_bind bind[5], uint32_t *n_bind);

/* Whether the blocked weight gradient (conv2d_bwd_weight_blocked.comp) can run on the context's device: its lanes
 * work in groups of 8, which need subgroups of 8 or a multiple of 8 up to 64 with subgroupShuffle. */
bool conv_weight_blocked_runs (cel_graph *g);

/* The SHUFFLE specialization constant (index 10) of conv2d_bwd_weight_blocked.comp, which every caller must set:
 * lanes trade dy within groups of 8 by subgroupBroadcast where subgroups are 8 wide, else by subgroupShuffle
 * (CELGAN_TEST_SUBGROUP_SHUFFLE=1 takes the shuffle on lavapipe too, for the tests). Left at 0 on a 32-wide
 * subgroup, groups 1 to 3 of each subgroup would read group 0's dy. */
uint32_t conv_weight_shuffle (cel_graph *g);

/* The gradient of Gram matrices, dx[n] = S[n] x[n] (S (N*C, C, 1, 1), the symmetrized and scaled gradient of
 * the Gram matrices; x, dx (N,C,H,W)), as a 1x1 convolution with N groups of x viewed as (1,N*C,H,W) through the
 * blocked forward. *done is false where that kernel does not run (subgroups under 8): nothing recorded. */
cel_status conv2d_gram_bwd_blocked (cel_exec *ex, cel_graph *g, cel_node s, cel_node x, cel_node dx, cel_shape xs,
                                    bool *done);
/* The temporary storage (floats) a gram_bwd node of x (shape xs) plans for conv2d_gram_bwd_blocked. */
int64_t conv2d_gram_bwd_temp (const cel_graph *g, cel_shape xs);

/* Gram matrices y (N,1,C,C) = scale * x x^T per sample of x (N,C,H,W), through the blocked weight gradient: they
 * are the weight gradient of a 1x1 convolution with N groups of x, viewed as (1,N*C,H,W), with itself. *done is
 * false where that kernel does not run here (subgroups other than 8, too many tiles): nothing recorded. */
cel_status conv2d_gram_blocked (cel_exec *ex, cel_graph *g, cel_node x, cel_node y, cel_shape xs, float scale, bool *done);

#endif
