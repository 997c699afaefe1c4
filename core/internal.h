/* Private structures of libcelgan shared by context, graph, planner and ops. */
#ifndef CELGAN_INTERNAL_H
#define CELGAN_INTERNAL_H

#include "celgan.h"
#include "shader_table.h"

#include <stdarg.h>
#include <vulkan/vulkan.h>

#define CEL_MAX_INPUTS 6
#define CEL_MAX_BINDINGS 8
#define CEL_PUSH_BYTES 128
#define CEL_MAX_ELEMENTS ((int64_t) 1 << 31) /* per tensor: indices stay in int32 in shaders */

/* ---- context ---------------------------------------------------------------------------------- */

enum { CEL_MAX_SPEC = 12 };

typedef struct cel_pipeline_key {
  cel_shader_id shader;
  uint32_t n_spec;
  uint32_t spec[CEL_MAX_SPEC]; /* specialization constants 0..n_spec-1 */
} cel_pipeline_key;

typedef struct cel_pipeline_entry {
  cel_pipeline_key key;
  VkPipeline pipeline;
} cel_pipeline_entry;

struct cel_context {
  char error[1024];
  cel_status failed; /* set when creation failed: the context is unusable */

  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkCommandPool command_pool;
  VkFence fence;
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  uint64_t cache_loaded_hash; /* of the driver data loaded from the file: an unchanged cache is not rewritten */
  bool pipeline_feedback;     /* VK_EXT_pipeline_creation_feedback enabled: the driver reports cache hits */
  double created_at;          /* cel_now () when cel_context_create began */
  cel_startup_stats startup;

  cel_device_info info;
  VkPhysicalDeviceMemoryProperties memory;
  VkDeviceSize min_storage_align;
  uint64_t max_allocation, device_max_allocation; /* the limit in force; the device's own */

  uint64_t budget, device_bytes, peak_device_bytes;

  bool validation;
  uint32_t validation_count;
  char *validation_log;
  size_t validation_log_len;

  VkShaderModule modules[CEL_SHADER_COUNT];
  VkDescriptorSetLayout set_layouts[CEL_MAX_BINDINGS + 1]; /* by binding count (storage buffers only) */
  VkPipelineLayout pipeline_layouts[CEL_MAX_BINDINGS + 1];
  VkDescriptorSetLayout shader_set_layouts[CEL_SHADER_COUNT]; /* shaders with texel-buffer bindings: their own */
  VkPipelineLayout shader_pipeline_layouts[CEL_SHADER_COUNT];
  /* Ops read some inputs through uniform texel buffers (cel_context_set_texel_reads): on by default on CPU
   * devices, where lavapipe turns every storage-buffer load whose address is not a constant into a loop over
   * the SIMD lanes but a texel fetch into one gather. */
  bool texel_reads, texel_supported;
  uint64_t max_texel_elements;
  cel_pipeline_entry *pipelines;
  uint32_t n_pipelines, cap_pipelines;

  /* profiling (cel_context_set_profiling) */
  bool profiling;
  uint32_t timestamp_bits;
  float timestamp_period; /* ns per tick */
  double prof_ns[CEL_SHADER_COUNT];
  uint64_t prof_calls[CEL_SHADER_COUNT];
  /* the same times by op and shapes (cel_context_profile_report_ops): rows kept across reports, so that the
   * graphs' cached row numbers stay valid; a report clears their times */
  struct cel_prof_op *prof_ops;
  uint32_t n_prof_ops, cap_prof_ops;
};

typedef struct cel_prof_op {
  char key[192]; /* "op (n, c, h, w) ... -> (n, c, h, w)" */
  double ns;
  uint64_t calls;
} cel_prof_op;

/* The context's per-op profile row of node `node` (its op and shapes), added if new; UINT32_MAX when out of
 * host memory (profile.c). */
uint32_t cel_profile_row (cel_graph *g, cel_node node);

/* Monotonic host clock in seconds. */
double cel_now (void);

/* Records a formatted message as the context's last error and returns `status`. */
cel_status cel_set_error (cel_context *ctx, cel_status status, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Maps a VkResult to a status, with `what` naming the failed call. */
cel_status cel_vk_error (cel_context *ctx, VkResult r, const char *what);

typedef struct cel_buffer {
  VkBuffer buffer;
  VkDeviceMemory memory;
  VkDeviceSize size;
  void *mapped; /* host-visible buffers stay mapped */
} cel_buffer;

/* Device-local (host_visible false) or host-visible coherent (true) storage+transfer buffer. Counts
 * against the budget. `what` names it in errors. */
cel_status cel_buffer_create (cel_context *ctx, VkDeviceSize size, bool host_visible, const char *what,
                              cel_buffer *out);
void cel_buffer_destroy (cel_context *ctx, cel_buffer *buf);

/* One-time command buffer: begin, record, submit-and-wait. */
cel_status cel_oneshot_begin (cel_context *ctx, VkCommandBuffer *cmd);
cel_status cel_oneshot_submit (cel_context *ctx, VkCommandBuffer cmd);
cel_status cel_submit_and_wait (cel_context *ctx, VkCommandBuffer cmd);

/* Creates the pipelines of `keys` the context does not have yet (on GPUs several at once, on threads). */
cel_status cel_pipelines_prepare (cel_context *ctx, const cel_pipeline_key *keys, uint32_t n);
/* A compute pipeline for a shader with specialization constants 0..n_spec-1 (cached in ctx). */
cel_status cel_pipeline_get (cel_context *ctx, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                             VkPipeline *out, VkPipelineLayout *layout, VkDescriptorSetLayout *set_layout);
cel_status cel_validation_check (cel_context *ctx);

/* ---- graph ------------------------------------------------------------------------------------ */

typedef enum cel_node_kind {
  CEL_NODE_INPUT,
  CEL_NODE_PARAM,
  CEL_NODE_STATE,
  CEL_NODE_OP,
} cel_node_kind;

/* The op enum is generated from the per-family lists core/ops/<family>.def, each line one of
 *   CEL_OP (ENUM, "name", prefix)         differentiable: prefix_infer, prefix_record, prefix_backward
 *   CEL_OP_NOGRAD (ENUM, "name", prefix)  no gradient:    prefix_infer, prefix_record
 * Adding an op touches its family's .def, .c, shaders, reference and test. */
typedef enum cel_op {
  CEL_OP_NONE = 0,
#define CEL_OP(e, name, prefix) e,
#define CEL_OP_NOGRAD(e, name, prefix) e,
#include "ops/all.def"
#undef CEL_OP
#undef CEL_OP_NOGRAD
  CEL_OP_COUNT
} cel_op;

typedef struct cel_node_rec {
  cel_node_kind kind;
  cel_op op;
  char *name;
  int32_t n_in;
  cel_node in[CEL_MAX_INPUTS];
  int32_t ip[16]; /* integer op parameters, meaning per op */
  float fp[8];    /* float op parameters, meaning per op */
  cel_shape shape;
  int64_t scratch;    /* floats after the tensor that only the op's own dispatches use (per-workgroup partial
                       * sums of a split reduction); set by infer, 0 for most ops */
  int64_t temp;       /* floats of working memory that only the op's own dispatches use, planned apart from the tensor
                       * and live only while the op runs (Winograd's transformed tiles); set by infer, 0 for most */
  bool no_output;     /* side-effect op (Adam): no tensor of its own */
  bool requires_grad; /* depends on a parameter or on an input that requires grad */
  bool is_output;
  /* data */
  float *host;        /* persistent nodes: host mirror for set/get, and dirty flag */
  bool host_dirty;
  bool staged;        /* input data written straight into staging (cel_plan_input_staging): run copies no host */
  /* planning */
  int32_t last_use;
  VkDeviceSize offset, bytes; /* in its arena chunk, or in the persistent buffer */
  int32_t chunk;              /* which arena chunk (intermediates and inputs) */
  VkDeviceSize temp_offset;   /* the temporary storage (temp): offset and chunk in the arena */
  int32_t temp_chunk;
  VkDeviceSize staging_in, staging_out; /* offsets in staging (inputs / outputs), or (VkDeviceSize) -1 */
} cel_node_rec;

#define CEL_MAX_ARENA_CHUNKS 16

struct cel_graph {
  cel_context *ctx;
  cel_node_rec *nodes;
  int32_t n_nodes, cap_nodes;
  cel_node *grads; /* after backward: grads[i] is the gradient node of node i */
  bool has_backward;

  /* persistent tensors */
  cel_buffer persist;
  VkDeviceSize persist_used;
  int32_t persist_nodes; /* how many nodes had storage when persist was allocated */

  /* plan */
  bool planned;
  bool ran; /* outputs hold values of a run */
  /* The arena: intermediates and inputs, packed by lifetime into chunks of at most the device's largest
   * allocation (one chunk unless the graph needs more than that). */
  cel_buffer arena[CEL_MAX_ARENA_CHUNKS];
  int32_t n_chunks;
  cel_buffer staging;
  VkCommandBuffer cmd;
  VkDescriptorPool *pools;
  uint32_t n_pools;
  VkBufferView *views; /* the texel-buffer views the recording's descriptor sets use */
  uint32_t n_views, cap_views;
  /* profiling: a timestamp before the first dispatch and after each; the shader of each dispatch */
  VkQueryPool queries;
  uint32_t query_cap, query_used;
  cel_shader_id *query_shader;
  cel_node *query_node;  /* the node of each dispatch */
  uint32_t *query_row;   /* its row in the context's per-op profile (made at the first run) */
  uint32_t sets_in_pool;
  cel_plan_stats stats;
};

void cel_plan_release (cel_graph *g);
/* Device bytes a plan would need (intermediates, staging) without allocating anything. */
cel_status cel_plan_estimate (cel_graph *g, uint64_t *arena_bytes, uint64_t *staging_bytes);
/* Where input node's data goes in the staging buffer of the planned graph g, for a caller that writes it there
 * itself (cel_shape_count floats) instead of through cel_graph_set_data's host copy: the tiler's windows of
 * host tensors go there without two more copies of every window. NULL (with the error set) if g is not planned
 * or node is not an input. Valid until g is replanned; cel_graph_set_data on the node takes it back. */
float *cel_plan_input_staging (cel_graph *g, cel_node node);
/* The data of output node `node` in the staging buffer after the latest run; NULL if the graph has not run
 * since it was planned or the node is not an output. */
const float *cel_plan_output_data (cel_graph *g, cel_node node);

static inline int64_t cel_shape_count (cel_shape s) {
  return (int64_t) s.n * s.c * s.h * s.w;
}

cel_status cel_graph_error (cel_graph *g, cel_status st, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* Appends an op node and infers its shape. ip/fp may be NULL (zeros); n_ip/n_fp count what is copied. */
cel_status cel_graph_add_op (cel_graph *g, cel_op op, const cel_node *in, int32_t n_in, const int32_t *ip,
                             int32_t n_ip, const float *fp, int32_t n_fp, cel_node *out);
/* Validates a node id (CEL_NO_NODE allowed when optional). */
cel_status cel_graph_check_node (cel_graph *g, cel_node n, bool optional, const char *op, const char *what);
static inline const cel_node_rec *cel_node_get (const cel_graph *g, cel_node n) {
  return &g->nodes[n];
}
static inline cel_shape cel_node_shape (const cel_graph *g, cel_node n) {
  return g->nodes[n].shape;
}
/* Writes "(n, c, h, w)" into buf. */
const char *cel_shape_str (cel_shape s, char buf[64]);

/* ---- ops -------------------------------------------------------------------------------------- */

typedef struct cel_exec cel_exec;

typedef struct cel_op_info {
  const char *name;
  /* Sets node->shape from its inputs' shapes (already inferred); errors via cel_graph_error. */
  cel_status (*infer) (cel_graph *g, cel_node_rec *node);
  /* Records the node's dispatches with cel_exec_dispatch*. */
  cel_status (*record) (cel_exec *ex, cel_graph *g, cel_node self);
  /* Appends nodes computing the gradient of each input from dy (the gradient of the node's output).
   * need[i] says whether input i needs one; set dx[i] (CEL_NO_NODE where not needed). NULL: the op has
   * no gradient (its inputs get none). */
  cel_status (*backward) (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx);
} cel_op_info;

extern const cel_op_info cel_op_table[CEL_OP_COUNT];

/* Records one dispatch of `shader` with the given nodes bound at bindings 0..n_bind-1 (each node's whole
 * tensor), `push` copied into the push constants, and (gx, gy, gz) workgroups. */
cel_status cel_exec_dispatch (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                              const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                              uint32_t gx, uint32_t gy, uint32_t gz);
/* What a dispatch binds: a node's tensor (count 0), or floats [offset, offset + count) of the node's temporary
 * storage (cel_node_rec.temp); offsets of temporary ranges must be multiples of cel_exec_temp_align floats. */
typedef struct cel_bind {
  cel_node node;
  int64_t offset, count;
} cel_bind;
static inline cel_bind cel_bind_node (cel_node n) {
  return (cel_bind) { n, 0, 0 };
}
/* The alignment, in floats, of the ranges of a node's temporary storage that dispatches bind. */
uint32_t cel_exec_temp_align (const cel_graph *g);
/* cel_exec_dispatch with bindings that may be ranges of temporary storage. */
cel_status cel_exec_dispatch_bound (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                    const cel_bind *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                    uint32_t gx, uint32_t gy, uint32_t gz);
/* cel_exec_dispatch_1d with specialization constants and bindings that may be ranges of temporary storage. */
cel_status cel_exec_dispatch_1d_bound (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                       const cel_bind *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                       int64_t invocations, uint32_t local_size);
/* Whether a binding fits a texel buffer where the context reads through them (cel_exec_texel_fits for ranges). */
bool cel_exec_bind_texel_fits (const cel_exec *ex, cel_bind b);
/* Whether a shader variant that reads node n through a texel buffer may be used: the context reads through
 * texel buffers (cel_context_set_texel_reads) and n fits the device's texel-buffer size. */
bool cel_exec_texel_fits (const cel_exec *ex, cel_node n);
/* An op's shader variant: `texel` (its inputs read through texel buffers) where every one of the n nodes it reads
 * so fits (cel_exec_texel_fits), else `storage`. */
cel_shader_id cel_exec_pick_reads (const cel_exec *ex, cel_shader_id storage, cel_shader_id texel, const cel_node *reads,
                                   uint32_t n);
/* 1-D dispatch over `invocations` threads in groups of `local_size`: splits into x and y when the group
 * count exceeds 65535. Shaders recover the linear index with cel_linear_index () (shaders/common.glsl). */
cel_status cel_exec_dispatch_1d (cel_exec *ex, cel_shader_id shader, const cel_node *bind, uint32_t n_bind,
                                 const void *push, uint32_t push_size, int64_t invocations, uint32_t local_size);

/* Prototypes of every op's functions. */
#define CEL_OP(e, name, prefix)                                                                        \
  cel_status prefix##_infer (cel_graph *g, cel_node_rec *node);                                         \
  cel_status prefix##_record (cel_exec *ex, cel_graph *g, cel_node self);                               \
  cel_status prefix##_backward (cel_graph *g, cel_node self, cel_node dy, const bool *need, cel_node *dx);
#define CEL_OP_NOGRAD(e, name, prefix)                                                                 \
  cel_status prefix##_infer (cel_graph *g, cel_node_rec *node);                                         \
  cel_status prefix##_record (cel_exec *ex, cel_graph *g, cel_node self);
#include "ops/all.def"
#undef CEL_OP
#undef CEL_OP_NOGRAD

/* Source step per output pixel of a resize axis, in float exactly as PyTorch computes it (resize.c); shared
 * by resize, resize_window and the tiler's receptive fields so all three sample alike. */
float cel_resize_axis_scale (int32_t in, int32_t out, int32_t mode);

/* Broadcasting helper used by add/mul: can b broadcast to a? */
bool cel_shape_broadcasts (cel_shape b, cel_shape a);

/* A dispatch over the N*C planes of shape s, in workgroups of 256 along each plane's H*W elements (x, looping where
 * past 65535 workgroups) and planes over y and z: shaders take CEL_PLANE_INDEX and CEL_PLANE_FIRST / STEP
 * (common.glsl) and divide nothing per element. */
cel_status cel_exec_dispatch_planes (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                     const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                     cel_shape s);
/* One workgroup per element of count, split over x and y where count passes the grid's 65535. */
cel_status cel_exec_dispatch_groups (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                     const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                     uint32_t count);
/* The second pass of a split reduction whose first wrote `parts` partial sums per output after node's `count`
 * outputs (in its scratch): adds them (fold_parts.comp) and scales. */
cel_status cel_exec_fold_parts (cel_exec *ex, cel_node node, uint32_t count, uint32_t parts, float scale);

/* Workgroups per row of a split reduction over `rows` rows of m elements (norm_stats, norm_apply_bwd_stats,
 * sum_to): one per row leaves a GPU nearly idle where rows are few and long (layer norm: one row per sample;
 * on the H200 norm_apply_bwd_stats took a quarter of a 256x256 batch-8 training step that way). Parts until
 * about 1024 workgroups run, each part at least 8192 elements, at most 256 parts (one combine workgroup folds
 * them). The same on every device, so lavapipe runs the split path the GPUs do. */
static inline uint32_t cel_reduce_parts (uint32_t rows, uint32_t m) {
  uint32_t want = rows >= 1024 ? 1 : (1024 + rows - 1) / rows, most = m / 8192;
  uint32_t parts = want < most ? want : most;
  return parts < 1 ? 1 : parts > 256 ? 256 : parts;
}

#endif
