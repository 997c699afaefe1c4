/* libcelgan: a Vulkan compute core for GAN style transfer (forward, backward, training).
 *
 * Conventions
 * - Every public function returns a cel_status (or is a destructor / getter that cannot fail). On failure
 *   the sentence is in cel_context_last_error (ctx). The library never aborts, prints or exits, and frees
 *   what it allocated on every error path.
 * - Tensors are 4-D, NCHW, fp32, row-major (w fastest). Smaller ranks use leading 1s: a bias is (1,C,1,1),
 *   a scalar (1,1,1,1). Convolution weights are (OC, IC/groups, KH, KW); transposed convolution weights are
 *   (IC, OC/groups, KH, KW), as in PyTorch.
 * - A graph is built from nodes (inputs, parameters, states, op results), planned once per set of input
 *   shapes (shapes inferred, intermediates packed into a device arena by lifetime, one command buffer
 *   recorded) and then run any number of times; each run uploads the inputs and submits.
 */
#ifndef CELGAN_H
#define CELGAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cel_status {
  CEL_OK = 0,
  CEL_ERROR_INVALID_ARGUMENT,     /* bad shapes, sizes, values or call order */
  CEL_ERROR_OUT_OF_HOST_MEMORY,
  CEL_ERROR_OUT_OF_DEVICE_MEMORY, /* includes exceeding the context's device memory budget */
  CEL_ERROR_DEVICE_LOST,
  CEL_ERROR_NO_DEVICE,            /* no Vulkan loader, no device, or no device matching the request */
  CEL_ERROR_UNSUPPORTED,          /* the device lacks something required */
  CEL_ERROR_VULKAN,               /* any other Vulkan failure */
  CEL_ERROR_IO,
  CEL_ERROR_FORMAT,               /* corrupt or unsupported file */
  CEL_ERROR_VALIDATION,           /* the Vulkan validation layer reported a message (CELGAN_VALIDATION=1) */
  CEL_ERROR_CANCELLED,            /* a progress callback asked to stop */
} cel_status;

/* A constant English name for a status ("out of device memory"). */
const char *cel_status_string (cel_status status);

/* ------------------------------------------------------------------------------------------------ */
/* Devices and context                                                                              */

typedef struct cel_device_info {
  uint32_t index;                 /* position in the physical device list */
  char name[256];
  uint32_t vendor_id, device_id;
  uint32_t api_version;           /* VK_MAKE_API_VERSION packed */
  bool is_cpu;                    /* lavapipe, swiftshader, ... */
  bool is_discrete;
  uint64_t device_local_bytes;    /* size of the largest device-local heap */
  uint32_t subgroup_size;
  bool shader_float16;            /* fp16 arithmetic */
  bool storage_16bit;             /* 16-bit storage buffer access */
  bool cooperative_matrix;        /* VK_KHR_cooperative_matrix */
  bool cooperative_matrix_nv;     /* VK_NV_cooperative_matrix */
  uint32_t max_workgroup_invocations;
  uint64_t max_storage_buffer_range;
  bool subgroup_shuffle;          /* subgroupShuffle in compute shaders */
} cel_device_info;

typedef struct cel_context cel_context;

typedef struct cel_context_options {
  /* NULL or "" or "auto": the first discrete GPU, else the first integrated, else the first device.
   * A decimal number: that index. Anything else: the first device whose name contains it (case-insensitive). */
  const char *device;
  /* Device memory budget in bytes for everything this context allocates (0: no limit but the device's).
   * Allocations past it fail with CEL_ERROR_OUT_OF_DEVICE_MEMORY, exactly as the device would. */
  uint64_t memory_budget;
  /* Pipeline cache file, read at creation and written (atomically, when it changed) at destruction. NULL:
   * $XDG_CACHE_HOME/celgan/pipelines-<vendor>-<device>-<pipeline cache UUID>.bin (or ~/.cache/...), one per
   * device and driver build; "": no cache on disk. A corrupt or foreign file is ignored and replaced. */
  const char *pipeline_cache_path;
  /* Enable the Khronos validation layer (also enabled by the environment variable CELGAN_VALIDATION=1).
   * Every message it reports is recorded; cel_context_validation_messages counts them. */
  bool validation;
} cel_context_options;

/* Lists the Vulkan devices. Writes up to `max` entries to `infos` and the total count to `count`.
 * On failure writes a sentence to `err` (if not NULL, `errlen` bytes). Returns CEL_ERROR_NO_DEVICE when
 * there is no Vulkan loader or no device. */
cel_status cel_device_list (cel_device_info *infos, uint32_t max, uint32_t *count, char *err, size_t errlen);

/* Creates a context on the chosen device. `options` may be NULL. Unless it returns
 * CEL_ERROR_OUT_OF_HOST_MEMORY, *out is set to a context even on failure: read the reason with
 * cel_context_last_error, then destroy it (a failed context is good for nothing else). */
cel_status cel_context_create (const cel_context_options *options, cel_context **out);
void cel_context_destroy (cel_context *ctx);

/* The message of the last failure on this context (or on a graph of it); "" if none. Owned by ctx. */
const char *cel_context_last_error (const cel_context *ctx);
const cel_device_info *cel_context_device (const cel_context *ctx);
/* Bytes of device memory allocated now / at most so far by this context. */
uint64_t cel_context_device_bytes (const cel_context *ctx);
uint64_t cel_context_peak_device_bytes (const cel_context *ctx);
/* Number of validation-layer messages seen so far (0 when validation is off). */
uint32_t cel_context_validation_messages (const cel_context *ctx);
/* The validation messages seen so far, one per line (capped at 64 KiB); "" if none. Owned by ctx. */
const char *cel_context_validation_log (const cel_context *ctx);

/* Lowers the largest single device allocation this context makes (0: the device's own limit, the default).
 * A graph whose intermediates outgrow it is planned into several allocations. For tests, and for leaving
 * room to other programs on a shared device. */
cel_status cel_context_limit_allocation (cel_context *ctx, uint64_t bytes);

/* Whether convolutions (input and weights), norms (statistics and their application) and activations read their
 * inputs through uniform texel buffers instead of storage buffers (and Gram matrices run as a convolution's
 * weight gradient). On by default on CPU devices, where it measured faster on lavapipe (a texel fetch is one
 * gather, a storage-buffer load a loop over the lanes); off on GPUs. The environment variable
 * CELGAN_TEXEL_READS=0 or 1 at creation overrides the default. Graphs planned afterwards follow the setting. CEL_ERROR_UNSUPPORTED
 * where the device lacks float texel buffers. */
cel_status cel_context_set_texel_reads (cel_context *ctx, bool on);
bool cel_context_texel_reads (const cel_context *ctx);

/* Per-shader GPU time. Once enabled (or with the environment variable CELGAN_PROFILE=1 at creation), graphs
 * planned afterwards write a device timestamp after each dispatch, and every run adds each dispatch's time to
 * its shader's total. Costs a little time per dispatch; off by default. CEL_ERROR_UNSUPPORTED where the
 * device's queue has no timestamps. */
cel_status cel_context_set_profiling (cel_context *ctx, bool enable);
/* Writes the totals so far, slowest shader first (shader, dispatches, total ms, share), then clears them.
 * out NULL: only clears. */
void cel_context_profile_report (cel_context *ctx, FILE *out);
/* The same times by op and shapes ("conv2d_bwd_weight (2, 64, 64, 64) (2, 64, 64, 64) -> (64, 64, 3, 3)": the
 * op, its inputs' shapes and its output's), slowest first, at most max_rows rows (0: all), then clears them.
 * out NULL: only clears. */
void cel_context_profile_report_ops (cel_context *ctx, FILE *out, int max_rows);

/* Where a context's start-up went, for finding what delays the first computation (`celgan apply` prints it
 * with --profile or CELGAN_PROFILE=1). Durations in ms of host wall time. */
typedef struct cel_startup_stats {
  double instance_ms;            /* vkCreateInstance: the loader, its layers and the drivers it opens */
  double device_ms;              /* reading the devices' properties, vkCreateDevice, command pool */
  double cache_load_ms;          /* reading the pipeline cache file and vkCreatePipelineCache */
  uint64_t cache_loaded_bytes;   /* driver data taken from the cache file; 0: no file, or one that was ignored */
  bool cache_ignored;            /* a cache file was there but unreadable, corrupt, or from another device or driver
                                  * version: it was not given to the driver, and is replaced at destruction */
  uint32_t pipelines_created;    /* compute pipelines created so far (each shader and constants once) */
  uint32_t pipeline_cache_hits;  /* of them, found in the pipeline cache by the driver's own account
                                  * (VK_EXT_pipeline_creation_feedback); 0 where the driver does not say */
  double pipelines_ms;           /* creating shader modules and pipelines */
  double first_run_ms;           /* from the start of cel_context_create to the first graph run's submission
                                  * (parameter uploads done); -1 before one */
} cel_startup_stats;
/* Copies the start-up figures so far. */
void cel_context_startup_stats (const cel_context *ctx, cel_startup_stats *out);

/* Measures the device's fp32 FMA throughput in GFLOP/s (2 FLOP per fused multiply-add): a compute shader of
 * independent vec4 FMAs and nothing else, the best over a few chain counts per invocation (written to
 * best_chains if not NULL). The limit that benchmarks state their fraction of. Takes about 3 s on lavapipe,
 * well under 1 s on a GPU. */
cel_status cel_device_fma_gflops (cel_context *ctx, double *gflops, uint32_t *best_chains);

/* ------------------------------------------------------------------------------------------------ */
/* Graph                                                                                            */

typedef struct cel_shape {
  int32_t n, c, h, w;
} cel_shape;

typedef struct cel_graph cel_graph;
typedef int32_t cel_node; /* index of a node in its graph; CEL_NO_NODE for "none" */
#define CEL_NO_NODE ((cel_node) -1)

cel_status cel_graph_create (cel_context *ctx, cel_graph **out);
void cel_graph_destroy (cel_graph *graph);
cel_context *cel_graph_context (cel_graph *graph);

/* An input: uploaded with cel_graph_set_data before each run. Its shape may be changed with
 * cel_graph_set_input_shape (then the graph is planned again). */
cel_status cel_graph_input (cel_graph *graph, const char *name, cel_shape shape, cel_node *out);
cel_status cel_graph_set_input_shape (cel_graph *graph, cel_node input, cel_shape shape);
/* Inputs do not get gradients unless asked for (parameters always do). */
cel_status cel_graph_set_requires_grad (cel_graph *graph, cel_node node, bool requires_grad);

/* A parameter: persistent across runs and plans, trainable, zero until set. */
cel_status cel_graph_param (cel_graph *graph, const char *name, cel_shape shape, cel_node *out);
/* A state: persistent, not trainable (optimizer moments, power-iteration vectors). Zero until set. */
cel_status cel_graph_state (cel_graph *graph, const char *name, cel_shape shape, cel_node *out);

/* Marks a node whose value is read after a run with cel_graph_get_data (keeps it alive to the end). */
cel_status cel_graph_mark_output (cel_graph *graph, cel_node node);

cel_status cel_graph_shape (const cel_graph *graph, cel_node node, cel_shape *out);
const char *cel_graph_node_name (const cel_graph *graph, cel_node node);
/* Finds an input, parameter or state by name. */
cel_status cel_graph_find (const cel_graph *graph, const char *name, cel_node *out);
int32_t cel_graph_node_count (const cel_graph *graph);
/* Removes the nodes created after the first n_nodes (never parameters or states) and clears every output
 * mark, so a graph can be rebuilt on the same parameters (tiled execution rebuilds per tile). Not after
 * cel_graph_backward. The device buffers are kept for the next plan when large enough. */
cel_status cel_graph_truncate (cel_graph *graph, int32_t n_nodes);

/* Reverse-mode autodiff: appends the gradient nodes of `output` with respect to every parameter and
 * every input that requires grad. `seed` is d(loss)/d(output): a node of the output's shape, or
 * CEL_NO_NODE when the output is a single element (seed 1). Call once per graph. */
cel_status cel_graph_backward (cel_graph *graph, cel_node output, cel_node seed);
/* The gradient node of `node` after cel_graph_backward; CEL_NO_NODE if it does not depend on the output. */
cel_node cel_graph_grad (const cel_graph *graph, cel_node node);

/* Infers shapes, packs intermediates, allocates device memory, creates pipelines and records the command
 * buffer. Called by cel_graph_run when needed; call it yourself to see errors early. */
cel_status cel_graph_plan (cel_graph *graph);
/* Runs the planned graph once (planning first if needed) and waits for it. */
cel_status cel_graph_run (cel_graph *graph);

/* Host data in and out, `count` floats in NCHW order (must equal the node's element count).
 * set_data: inputs (used by every later run), parameters and states (uploaded before the next run).
 * get_data: outputs marked with cel_graph_mark_output (values of the last run), parameters and states. */
cel_status cel_graph_set_data (cel_graph *graph, cel_node node, const float *data, size_t count);
cel_status cel_graph_get_data (cel_graph *graph, cel_node node, float *data, size_t count);

/* Device bytes of the planned arena (intermediates), of staging, and of persistent tensors; the arena's
 * allocations (more than one only where it outgrows the device's largest allocation). */
typedef struct cel_plan_stats {
  uint64_t arena_bytes, staging_bytes, persistent_bytes, unpacked_bytes;
  uint32_t dispatches, arena_chunks;
} cel_plan_stats;
cel_status cel_graph_plan_stats (const cel_graph *graph, cel_plan_stats *out);

/* ------------------------------------------------------------------------------------------------ */
/* Ops. Each appends one node (or a few) and returns it in *out. Shapes are checked at once against
 * the current input shapes and again at planning. All are differentiable unless said otherwise.       */

typedef enum cel_padding_mode {
  CEL_PAD_ZERO = 0,
  CEL_PAD_REFLECT = 1, /* PyTorch 'reflect' (edge not repeated); padding must be < the input size */
  CEL_PAD_REPLICATE = 2, /* PyTorch 'replicate' (edge repeated); cel_pad only */
} cel_padding_mode;

typedef struct cel_conv2d_params {
  int32_t stride_h, stride_w;          /* 0 means 1 */
  int32_t pad_top, pad_bottom, pad_left, pad_right;
  int32_t dilation_h, dilation_w;      /* 0 means 1 */
  int32_t groups;                      /* 0 means 1 */
  cel_padding_mode padding_mode;
} cel_conv2d_params;

/* y = conv2d (x, w) + b.  x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (1,OC,1,1) or CEL_NO_NODE. */
cel_status cel_conv2d (cel_graph *g, cel_node x, cel_node w, cel_node b, const cel_conv2d_params *p,
                       cel_node *out);

typedef struct cel_conv_transpose2d_params {
  int32_t stride_h, stride_w;          /* 0 means 1 */
  int32_t pad_h, pad_w;                /* PyTorch 'padding' (removed from both sides) */
  int32_t output_pad_h, output_pad_w;  /* PyTorch 'output_padding' (< stride or < dilation) */
  int32_t dilation_h, dilation_w;      /* 0 means 1 */
  int32_t groups;                      /* 0 means 1 */
} cel_conv_transpose2d_params;

/* y = conv_transpose2d (x, w) + b.  x (N,IC,H,W), w (IC,OC/groups,KH,KW), b (1,OC,1,1) or CEL_NO_NODE.
 * OH = (H-1)*stride - 2*pad + dilation*(KH-1) + output_pad + 1. */
cel_status cel_conv_transpose2d (cel_graph *g, cel_node x, cel_node w, cel_node b,
                                 const cel_conv_transpose2d_params *p, cel_node *out);

typedef enum cel_norm_kind {
  CEL_NORM_INSTANCE = 0, /* statistics per (n, c) over H,W */
  CEL_NORM_LAYER = 1,    /* statistics per n over C,H,W (PyTorch GroupNorm(1, C)) */
} cel_norm_kind;

/* Statistics of x for a norm: (N,G,1,2) holding (mean, variance) with G = C (instance) or 1 (layer).
 * Variance is biased (divide by M) unless `unbiased` (divide by M-1, as torch.var). */
cel_status cel_norm_stats (cel_graph *g, cel_node x, cel_norm_kind kind, bool unbiased, cel_node *out);
/* y = (x - mean) / sqrt (var + eps) * gamma + beta with stats from cel_norm_stats; gamma and beta are
 * (1,C,1,1) or CEL_NO_NODE (1 and 0). */
cel_status cel_norm_apply (cel_graph *g, cel_node x, cel_node stats, cel_node gamma, cel_node beta, float eps,
                           cel_node *out);
/* Convenience: stats + apply (biased variance), as torch InstanceNorm2d(affine) / GroupNorm(1, C). */
cel_status cel_instance_norm (cel_graph *g, cel_node x, cel_node gamma, cel_node beta, float eps, cel_node *out);
cel_status cel_layer_norm (cel_graph *g, cel_node x, cel_node gamma, cel_node beta, float eps, cel_node *out);

/* AdaIN: content renormalized to the style's per-channel mean and std:
 * y = (x - mean_x) / std_x * std_s + mean_s, std = sqrt (unbiased var + eps) as in the AdaIN paper's code.
 * content (N,C,H,W), style (N,C,H',W'). Builds stats nodes and an adain_apply node. */
cel_status cel_adain (cel_graph *g, cel_node content, cel_node style, float eps, cel_node *out);
/* AdaIN from precomputed stats (both from cel_norm_stats, instance kind). */
cel_status cel_adain_apply (cel_graph *g, cel_node content, cel_node content_stats, cel_node style_stats,
                            float eps, cel_node *out);

typedef enum cel_activation {
  CEL_ACT_RELU = 0,
  CEL_ACT_LEAKY_RELU, /* slope = alpha */
  CEL_ACT_TANH,
  CEL_ACT_SIGMOID,
} cel_activation;
cel_status cel_activate (cel_graph *g, cel_node x, cel_activation act, float alpha, cel_node *out);
/* Folds y = act (node) into node, a cel_norm_apply result, so that one pass computes both: afterwards node holds
 * the activated values (forward and backward). Taken only for relu and leaky relu with alpha > 0, before
 * cel_graph_backward, where no other node reads node and it is not an output (false: nothing changed; build a
 * cel_activate instead). The caller promises that nothing will read the un-activated values later. */
bool cel_norm_apply_fuse_act (cel_graph *g, cel_node node, cel_activation act, float alpha);
/* The same for a cel_conv2d result: the convolution's kernel writes act (y). Taken under the same conditions, and
 * only where the device runs its forward on the register-blocked or Winograd kernels (not depthwise; subgroups
 * of 8 or more). */
bool cel_conv2d_fuse_act (cel_graph *g, cel_node node, cel_activation act, float alpha);
/* PReLU: y = x > 0 ? x : slope * x, slope (1,C,1,1) per channel or (1,1,1,1) shared (a parameter). */
cel_status cel_prelu (cel_graph *g, cel_node x, cel_node slope, cel_node *out);

typedef enum cel_resize_mode {
  CEL_RESIZE_NEAREST = 0,          /* PyTorch 'nearest': src = floor (dst * in / out) */
  CEL_RESIZE_BILINEAR,             /* half-pixel centers, align_corners = False (PyTorch default) */
  CEL_RESIZE_BILINEAR_ALIGN_CORNERS,
  CEL_RESIZE_BILINEAR_ASYMMETRIC,  /* TF1 convention: src = dst * in / out, no half-pixel offset */
  CEL_RESIZE_BICUBIC,              /* half-pixel, A = -0.75, taps clamped to the edge (PyTorch bicubic,
                                    * align_corners = False; ncnn Interp bicubic when no tap falls two
                                    * or more pixels outside, as in its downscaling) */
} cel_resize_mode;
/* Resize x to (out_h, out_w). */
cel_status cel_resize (cel_graph *g, cel_node x, int32_t out_h, int32_t out_w, cel_resize_mode mode, cel_node *out);

/* y = alpha * a + beta * b. b has a's shape or broadcasts to it (each dim equal or 1). */
cel_status cel_add (cel_graph *g, cel_node a, cel_node b, float alpha, float beta, cel_node *out);
/* y = a * b (elementwise), b broadcasting to a as in cel_add. */
cel_status cel_mul (cel_graph *g, cel_node a, cel_node b, cel_node *out);
/* y = scale * x + shift. */
cel_status cel_scale_shift (cel_graph *g, cel_node x, float scale, float shift, cel_node *out);
/* Concatenation on channels: (N,C1,H,W) and (N,C2,H,W) -> (N,C1+C2,H,W). */
cel_status cel_concat (cel_graph *g, cel_node a, cel_node b, cel_node *out);
/* Channels [c0, c0+count) of x. */
cel_status cel_slice_channels (cel_graph *g, cel_node x, int32_t c0, int32_t count, cel_node *out);
/* Pads H and W by (top, bottom, left, right) >= 0 with zeros, reflection or the edge (each reflect pad < that side's
 * size). Used by tiled execution to pad only at the image's true borders. */
cel_status cel_pad (cel_graph *g, cel_node x, int32_t top, int32_t bottom, int32_t left, int32_t right,
                    cel_padding_mode mode, cel_node *out);
/* The window of x starting at (y0, x0) of size (h, w), which must lie inside x. */
cel_status cel_crop (cel_graph *g, cel_node x, int32_t y0, int32_t x0, int32_t h, int32_t w, cel_node *out);
/* Pixel shuffle (depth to space, PyTorch F.pixel_shuffle, ncnn PixelShuffle mode 0): (N,C*r*r,H,W) ->
 * (N,C,H*r,W*r), y[n,c,h*r+i,w*r+j] = x[n,(c*r+i)*r+j,h,w]. inverse: space to depth (F.pixel_unshuffle). */
cel_status cel_pixel_shuffle (cel_graph *g, cel_node x, int32_t factor, bool inverse, cel_node *out);
/* Global average pool: (N,C,H,W) -> (N,C,1,1). */
cel_status cel_global_avg_pool (cel_graph *g, cel_node x, cel_node *out);
/* Sum of x over the dims where `shape` is 1 (each dim of shape must be 1 or equal x's). */
cel_status cel_sum_to (cel_graph *g, cel_node x, cel_shape shape, cel_node *out);
/* y = x, but no gradient flows back through y: GAN training computes the discriminator's loss on a
 * stopped copy of the generator's output, and the generator's loss through stopped discriminator weights,
 * so one backward pass gives each network the gradient of its own loss. */
cel_status cel_stop_gradient (cel_graph *g, cel_node x, cel_node *out);
/* A tensor filled with `value` (no gradient). */
cel_status cel_fill (cel_graph *g, cel_shape shape, float value, cel_node *out);

/* Gram matrix per sample: x (N,C,H,W) -> (N,1,C,C), G[i][j] = scale * sum_hw x_i x_j.
 * scale 0 means 1 / (C*H*W). */
cel_status cel_gram (cel_graph *g, cel_node x, float scale, cel_node *out);

/* Losses: mean over all elements -> (1,1,1,1). */
cel_status cel_mean_abs_error (cel_graph *g, cel_node a, cel_node b, cel_node *out);
cel_status cel_mean_squared_error (cel_graph *g, cel_node a, cel_node b, cel_node *out);
/* Mean of all elements -> (1,1,1,1). */
cel_status cel_mean (cel_graph *g, cel_node x, cel_node *out);

/* Spectral normalization (Miyato et al., as torch.nn.utils.spectral_norm): w viewed as (OC, K);
 * `u` is a state of shape (1,1,1,OC+K+1) holding u, then v and sigma of the last forward. When
 * `update` is true each forward runs `iterations` power iterations and stores u back. A u state that is
 * all zero is initialized from a fixed pseudo-random vector. Returns w / sigma; the backward treats u and v
 * as constants, as PyTorch does. */
cel_status cel_spectral_norm (cel_graph *g, cel_node w, cel_node u, int32_t iterations, bool update, float eps,
                              cel_node *out);

typedef struct cel_adam_params {
  float beta1, beta2, eps, weight_decay;
} cel_adam_params;
/* Adam step as an op (no output, no gradient): updates `param`, `m` and `v` (states of param's shape) in
 * place from `grad`. `hyper` is an input (1,1,1,4) set before each run: (lr, 1 - beta1^t, 1 - beta2^t, 0)
 * so the step count lives on the host. Runs after every node created before it. */
cel_status cel_adam_step (cel_graph *g, cel_node param, cel_node grad, cel_node m, cel_node v, cel_node hyper,
                          const cel_adam_params *p, cel_node *out);

/* ------------------------------------------------------------------------------------------------ */
/* Tensor files (safetensors: 8-byte little-endian header length, JSON header, raw little-endian data).
 * These need no device; errors go to `err` (errlen bytes) when it is not NULL.                        */

typedef enum cel_dtype {
  CEL_DTYPE_F32 = 0,
  CEL_DTYPE_F16 = 1,
} cel_dtype;

#define CEL_MAX_RANK 8

typedef struct cel_tensor_info {
  const char *name;
  cel_dtype dtype;
  int32_t rank;
  int64_t shape[CEL_MAX_RANK];
  int64_t count;               /* product of shape (1 for rank 0) */
  uint64_t offset, size;       /* byte range inside the data section */
} cel_tensor_info;

typedef struct cel_safetensors cel_safetensors;

/* Opens and fully validates a file: header length, JSON, dtypes, shapes, offsets inside the data section,
 * no overlaps and no holes, metadata values are strings. Returns CEL_ERROR_IO (cannot read) or
 * CEL_ERROR_FORMAT (corrupt, with the problem named) on failure. */
cel_status cel_safetensors_open (const char *path, cel_safetensors **out, char *err, size_t errlen);
/* The same from memory (copied). `what` names the source in messages. */
cel_status cel_safetensors_open_memory (const void *data, size_t size, const char *what, cel_safetensors **out,
                                        char *err, size_t errlen);
void cel_safetensors_close (cel_safetensors *st);
size_t cel_safetensors_count (const cel_safetensors *st);
const cel_tensor_info *cel_safetensors_tensor (const cel_safetensors *st, size_t i);
const cel_tensor_info *cel_safetensors_find (const cel_safetensors *st, const char *name);
/* Converts a tensor to fp32; `count` must equal its element count. */
cel_status cel_safetensors_read_f32 (const cel_safetensors *st, const cel_tensor_info *t, float *out, size_t count,
                                     char *err, size_t errlen);
/* __metadata__ entries: value by key (NULL if absent), and by index. */
const char *cel_safetensors_metadata (const cel_safetensors *st, const char *key);
size_t cel_safetensors_metadata_count (const cel_safetensors *st);
void cel_safetensors_metadata_at (const cel_safetensors *st, size_t i, const char **key, const char **value);

typedef struct cel_tensor_entry {
  const char *name;
  cel_dtype dtype;              /* how to store it; data is always given as fp32 */
  int32_t rank;
  int64_t shape[CEL_MAX_RANK];
  const float *data;
} cel_tensor_entry;

/* Writes a file atomically (temporary file in the same folder, fsync, rename, fsync of the folder):
 * a crash at any moment leaves either the old file or the new one. meta is n_meta (key, value) pairs. */
cel_status cel_safetensors_save (const char *path, const cel_tensor_entry *tensors, size_t n_tensors,
                                 const char *const *meta, size_t n_meta, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------------------ */
/* PyTorch legacy checkpoints (torch.save before 1.6, or _use_new_zipfile_serialization=False), read for
 * importers (core/torch_pickle.c). A data-only pickle reader: it never runs code, allows only the globals a
 * state_dict of tensors needs, and refuses anything else with the file offset named. No device needed;
 * errors go to `err` (errlen bytes) when it is not NULL.                                              */

typedef struct cel_torch_file cel_torch_file;

typedef struct cel_torch_tensor {
  const char *name;              /* the state_dict key */
  int32_t rank;
  int64_t shape[CEL_MAX_RANK];
  int64_t count;                 /* product of shape (1 for rank 0) */
  const float *data;             /* count floats, row-major, converted from float, half or double storage */
} cel_torch_tensor;

/* Reads a checkpoint whose object is a state_dict (an OrderedDict of tensors), or a dict holding exactly one
 * dict of tensors ({'state_dict': ..., 'epoch': ...}). Returns CEL_ERROR_IO (cannot read),
 * CEL_ERROR_FORMAT (corrupt or not understood, with the file and offset named) or
 * CEL_ERROR_OUT_OF_HOST_MEMORY. Zip-based checkpoints (torch.save since 1.6) are refused. */
cel_status cel_torch_open (const char *path, cel_torch_file **out, char *err, size_t errlen);
/* The same from memory (not kept after the call). `what` names the source in messages. */
cel_status cel_torch_open_memory (const void *data, size_t size, const char *what, cel_torch_file **out, char *err,
                                  size_t errlen);
void cel_torch_close (cel_torch_file *file);
/* The tensors in the state_dict's order; find returns NULL when there is no such key. */
size_t cel_torch_count (const cel_torch_file *file);
const cel_torch_tensor *cel_torch_tensor_at (const cel_torch_file *file, size_t i);
const cel_torch_tensor *cel_torch_find (const cel_torch_file *file, const char *name);

/* ------------------------------------------------------------------------------------------------ */
/* Models: a safetensors file whose metadata holds the architecture (docs/model-format.md).           */

typedef struct cel_model cel_model;

typedef struct cel_model_info {
  const char *name, *description, *license, *family; /* owned by the model; "" when absent */
  int32_t in_channels, out_channels;  /* of the image input and output */
  int32_t scale;                      /* output size = input size * scale (1 for style models) */
  int32_t stride;                     /* input sizes that are multiples of this give exact size maps */
  int32_t halo;                       /* input pixels of context each output pixel depends on, per side */
  bool needs_reference;               /* reference-guided: a second (style) image input */
  bool global_statistics;             /* has norms over the whole image (tiling accumulates them) */
  float input_range[2], output_range[2]; /* pixel value range the network expects / produces */
  bool feature_strength;              /* blends in feature space by cel_model_set_strength (graph "add" nodes with
                                       * "blend": "strength"); else strength is a pixel blend (cel_postprocess) */
  bool alpha_bicubic_ncnn;            /* scale models: alpha is resized with ncnn's bicubic (the peers' programs
                                       * do; architecture key "alpha_resize": "bicubic-ncnn"), else bilinearly */
  int64_t parameters;
} cel_model_info;

/* Reads and validates a model file: the tensor file, the metadata, the architecture, and every tensor's
 * dtype and shape against what the architecture needs, with no device work. CEL_ERROR_IO / CEL_ERROR_FORMAT
 * with a sentence in `err` on failure. */
cel_status cel_model_load (const char *path, cel_model **out, char *err, size_t errlen);
cel_status cel_model_load_memory (const void *data, size_t size, const char *what, cel_model **out, char *err,
                                  size_t errlen);
void cel_model_free (cel_model *model);
const cel_model_info *cel_model_get_info (const cel_model *model);
/* The strength of models with info.feature_strength, 0..1 (default 1): their "blend" nodes compute
 * strength * a + (1 - strength) * b. Takes effect in the next cel_model_build / cel_stylize. */
cel_status cel_model_set_strength (cel_model *model, float strength);
const cel_safetensors *cel_model_tensors (const cel_model *model);
/* The architecture expanded to the generic graph form (JSON text, owned by the model). */
const char *cel_model_graph_json (const cel_model *model);

/* Adds the model's network to `graph`: parameters named after the tensors (created once, weights set),
 * and its nodes applied to `image` (N, in_channels, H, W) and, for reference-guided models, `reference`
 * (N, in_channels, H', W'; CEL_NO_NODE otherwise). The output is (N, out_channels, H*scale, W*scale),
 * in output_range. Errors name the layer. */
cel_status cel_model_build (const cel_model *model, cel_graph *graph, cel_node image, cel_node reference,
                            cel_node *out);

/* Adds only what the architecture's nodes `names` (n of them, named as in cel_model_graph_json) depend on, and
 * returns them in outs[i] (a NULL name: the model's output). Parameters are shared with earlier builds of the
 * model on the same graph. For losses on a network's inner tensors: celgan train --reference-guided compares the
 * style code ("style.code") of its output with the reference's. image or reference may be CEL_NO_NODE when no
 * named node depends on it. CEL_ERROR_INVALID_ARGUMENT for an unknown name or a missing input. */
cel_status cel_model_build_nodes (const cel_model *model, cel_graph *graph, cel_node image, cel_node reference, int32_t n,
                                  const char *const *names, cel_node *outs);

/* ------------------------------------------------------------------------------------------------ */
/* Stylizing images of any size: tiled execution with exact whole-image statistics.                  */

typedef struct cel_stylizer cel_stylizer;

/* Progress in [0, 1]; return nonzero to cancel (cel_stylize then returns CEL_ERROR_CANCELLED). */
typedef int (*cel_progress_fn) (void *user, double fraction);

typedef struct cel_stylize_options {
  /* Largest tile edge in input pixels (rounded down to the model's stride); 0: automatic. A model whose
   * whole-image pass fits the memory budget runs untiled. */
  int32_t tile;
  /* Device memory for one tile's intermediates; 0: the context's budget, else half the device's memory,
   * at most 2 GiB. */
  uint64_t memory_budget;
  cel_progress_fn progress;
  void *progress_user;
} cel_stylize_options;

typedef struct cel_stylize_report {
  int32_t tile;       /* the tile edge used (0: untiled) */
  int32_t tiles;      /* tiles per segment */
  int32_t segments;   /* passes over the image (1 + one per layer of whole-image statistics) when tiled */
  int32_t retries;    /* times the tile was halved after running out of device memory */
  uint64_t peak_device_bytes;
  /* where a tiled run's time went, host clock, ms over all tiles and segments: building and planning the tile
   * graphs, copying windows of the host tensors into staging, running them (upload, GPU, wait), copying the
   * results out of staging, taking and freeing the host memory of the tensors kept between segments */
  double build_ms, plan_ms, copy_in_ms, run_ms, copy_out_ms, memory_ms;
} cel_stylize_report;

/* A stylizer holds a model's parameters on the device (uploaded once) and the plans of its graphs. */
cel_status cel_stylizer_create (cel_context *ctx, const cel_model *model, cel_stylizer **out);
void cel_stylizer_destroy (cel_stylizer *st);
cel_context *cel_stylizer_context (const cel_stylizer *st);

/* Runs the model on `image` (height x width x channels floats in [0, 1], interleaved; channels 1 gray,
 * 2 gray+alpha, 3 RGB, 4 RGBA) and writes (height*scale) x (width*scale) x channels floats to `out`.
 * Alpha is passed through (resized bilinearly for scale models, or as the model's info says). Gray images go through RGB models as
 * gray RGB and come back as their luma. `reference` (same layout) is the style image of reference-guided
 * models, else NULL. Tiled and untiled results are equal (max difference 1e-4 in the network's range).
 * Returns CEL_ERROR_OUT_OF_DEVICE_MEMORY only when even the smallest tile does not fit; CEL_ERROR_CANCELLED
 * when the progress callback asked to stop (out is then incomplete). */
cel_status cel_stylize (cel_stylizer *st, const float *image, int32_t width, int32_t height, int32_t channels,
                        const float *reference, int32_t ref_width, int32_t ref_height, int32_t ref_channels,
                        const cel_stylize_options *options, float *out, cel_stylize_report *report);

/* Multiply-accumulates of one forward pass on a height x width image (convolutions and transposed
 * convolutions, which dominate), for benchmarks' FLOP rates. */
cel_status cel_model_macs (const cel_model *model, int32_t width, int32_t height, double *macs);

/* Post-ops on interleaved [0,1] images of the same size and channels: out = original + strength * (out -
 * original) on the color channels; keep_colors keeps the original's chroma (YCbCr, BT.601) and takes the
 * stylized luma. Alpha is left as it is in out. */
void cel_postprocess (const float *original, float *out, int32_t width, int32_t height, int32_t channels, float strength,
                      bool keep_colors);

/* Writes a model file for `architecture` (celgan.architecture JSON) with fresh weights: PyTorch's default
 * initialization (conv weights and biases uniform in +-1/sqrt(fan_in); norm weights 1, biases 0),
 * deterministic from `seed`. meta: n_meta (key, value) pairs added to the metadata. */
cel_status cel_model_create_file (const char *path, const char *architecture, uint64_t seed, const char *const *meta,
                                  size_t n_meta, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------------------ */
/* Importing ncnn models (the .param/.bin of waifu2x-, realesrgan- and realcugan-ncnn-vulkan).         */

typedef struct cel_ncnn_import_info {
  int32_t scale;       /* output size / input size */
  int32_t prepadding;  /* pixels the program pads the image with on each side before the network */
  int32_t layers;      /* ncnn layers read */
} cel_ncnn_import_info;

/* Converts an ncnn model into a CelGAN model file at out_path (atomically): the network as an explicit op
 * graph, wrapped in the pre- and post-processing of `program` ("waifu2x", "realesrgan" or "realcugan"), with
 * scale, pre-padding, provenance and the upstream license in the metadata. A strict reader: an unsupported
 * layer, param, flag or size is CEL_ERROR_FORMAT with the file, line and value in err; CEL_ERROR_IO when a
 * file cannot be read or written; CEL_ERROR_INVALID_ARGUMENT for an unknown program. info may be NULL. */
cel_status cel_ncnn_import (const char *param_path, const char *bin_path, const char *program, const char *out_path,
                            cel_ncnn_import_info *info, char *err, size_t errlen);
/* The same from memory; the names are used in messages and the metadata. */
cel_status cel_ncnn_import_memory (const char *param, size_t param_size, const void *bin, size_t bin_size, const char *param_name,
                                   const char *bin_name, const char *program, const char *out_path, cel_ncnn_import_info *info,
                                   char *err, size_t errlen);
/* The program a model path belongs to when the path says so unambiguously (a folder or file name such as
 * models-cunet, realesr..., models-se), else NULL. */
const char *cel_ncnn_guess_program (const char *path);

/* IEEE half <-> float, round to nearest even. */
float cel_half_to_float (uint16_t h);
uint16_t cel_float_to_half (float f);

#ifdef __cplusplus
}
#endif
#endif
