/* Planning and running a graph: shapes, persistent storage, arena packing by lifetime, staging, and one
 * recorded command buffer (uploads, dispatches with barriers, readbacks). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cel_status cel_graph_infer_all (cel_graph *g); /* graph.c */

struct cel_exec {
  cel_graph *g;
  VkCommandBuffer cmd;
  uint32_t dispatches;
  /* collecting (cmd is NULL): the pipelines the dispatches would use, nothing recorded */
  bool collect;
  cel_pipeline_key *keys;
  uint32_t n_keys, cap_keys;
  cel_node node; /* the node being recorded */
};

static VkDeviceSize align_up (VkDeviceSize v, VkDeviceSize a) {
  return (v + a - 1) / a * a;
}

static bool is_persistent (const cel_node_rec *n) {
  return n->kind == CEL_NODE_PARAM || n->kind == CEL_NODE_STATE;
}

/* Frees the recording; the arena and staging buffers too unless keep_buffers (a re-plan reuses them when
 * they are large enough, so planning tile after tile does not allocate device memory each time). */
static void release_recording (cel_graph *g, bool keep_buffers) {
  cel_context *ctx = g->ctx;
  if (g->cmd) {
    vkFreeCommandBuffers (ctx->device, ctx->command_pool, 1, &g->cmd);
    g->cmd = VK_NULL_HANDLE;
  }
  for (uint32_t i = 0; i < g->n_pools; i++)
    vkDestroyDescriptorPool (ctx->device, g->pools[i], NULL);
  for (uint32_t i = 0; i < g->n_views; i++)
    vkDestroyBufferView (ctx->device, g->views[i], NULL);
  free (g->views);
  g->views = NULL;
  g->n_views = g->cap_views = 0;
  free (g->pools);
  g->pools = NULL;
  g->n_pools = 0;
  g->sets_in_pool = 0;
  if (g->queries)
    vkDestroyQueryPool (ctx->device, g->queries, NULL);
  g->queries = VK_NULL_HANDLE;
  free (g->query_shader);
  g->query_shader = NULL;
  free (g->query_node);
  g->query_node = NULL;
  free (g->query_row);
  g->query_row = NULL;
  g->query_cap = g->query_used = 0;
  if (!keep_buffers) {
    for (int32_t c = 0; c < CEL_MAX_ARENA_CHUNKS; c++)
      cel_buffer_destroy (ctx, &g->arena[c]);
    g->n_chunks = 0;
    cel_buffer_destroy (ctx, &g->staging);
  }
  g->planned = false;
  g->ran = false;
}

void cel_plan_release (cel_graph *g) {
  release_recording (g, false);
}

/* ---- persistent tensors ----------------------------------------------------------------------- */

static cel_status upload_dirty (cel_graph *g) {
  cel_context *ctx = g->ctx;
  VkDeviceSize bytes = 0;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (is_persistent (&g->nodes[i]) && g->nodes[i].host_dirty)
      bytes += g->nodes[i].bytes;
  if (bytes == 0)
    return CEL_OK;
  cel_buffer stage;
  cel_status st = cel_buffer_create (ctx, bytes, true, "parameter upload staging", &stage);
  if (st)
    return st;
  VkCommandBuffer cmd;
  if ((st = cel_oneshot_begin (ctx, &cmd))) {
    cel_buffer_destroy (ctx, &stage);
    return st;
  }
  VkMemoryBarrier before = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                             .srcAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT,
                             .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0, NULL, 0, NULL);
  VkDeviceSize off = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (!is_persistent (n) || !n->host_dirty)
      continue;
    memcpy ((char *) stage.mapped + off, n->host, (size_t) cel_shape_count (n->shape) * sizeof (float));
    VkBufferCopy region = { .srcOffset = off, .dstOffset = n->offset, .size = (VkDeviceSize) cel_shape_count (n->shape) * 4 };
    vkCmdCopyBuffer (cmd, stage.buffer, g->persist.buffer, 1, &region);
    off += n->bytes;
  }
  VkMemoryBarrier after = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                            .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        0, 1, &after, 0, NULL, 0, NULL);
  st = cel_oneshot_submit (ctx, cmd);
  cel_buffer_destroy (ctx, &stage);
  if (st)
    return st;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (is_persistent (&g->nodes[i]))
      g->nodes[i].host_dirty = false;
  return CEL_OK;
}

cel_status cel_plan_download_persistent (cel_graph *g, cel_node node) {
  cel_context *ctx = g->ctx;
  cel_node_rec *n = &g->nodes[node];
  if (n->host_dirty || !g->persist.buffer || n->bytes == 0)
    return CEL_OK; /* the host mirror is the newest copy */
  cel_buffer stage;
  cel_status st = cel_buffer_create (ctx, n->bytes, true, "parameter download staging", &stage);
  if (st)
    return st;
  VkCommandBuffer cmd;
  if ((st = cel_oneshot_begin (ctx, &cmd))) {
    cel_buffer_destroy (ctx, &stage);
    return st;
  }
  VkMemoryBarrier before = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                             .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                             .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0, NULL, 0, NULL);
  VkDeviceSize size = (VkDeviceSize) cel_shape_count (n->shape) * 4;
  VkBufferCopy region = { .srcOffset = n->offset, .dstOffset = 0, .size = size };
  vkCmdCopyBuffer (cmd, g->persist.buffer, stage.buffer, 1, &region);
  VkMemoryBarrier after = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                            .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                            .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &after, 0, NULL, 0, NULL);
  if ((st = cel_oneshot_submit (ctx, cmd)) == CEL_OK)
    memcpy (n->host, stage.mapped, (size_t) size);
  cel_buffer_destroy (ctx, &stage);
  return st;
}

/* (Re)allocates the persistent buffer when persistent nodes were added since the last plan. */
static cel_status plan_persistent (cel_graph *g) {
  int32_t count = 0;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (is_persistent (&g->nodes[i]))
      count++;
  if (g->persist.buffer && count == g->persist_nodes)
    return CEL_OK;
  cel_status st;
  /* Keep the newest values: pull what lives only on the device into the host mirrors first. */
  for (int32_t i = 0; i < g->n_nodes && g->persist.buffer; i++)
    if (is_persistent (&g->nodes[i]) && g->nodes[i].bytes && (st = cel_plan_download_persistent (g, i)))
      return st;
  cel_buffer_destroy (g->ctx, &g->persist);
  VkDeviceSize off = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (!is_persistent (n))
      continue;
    n->offset = off;
    n->bytes = align_up ((VkDeviceSize) cel_shape_count (n->shape) * 4, g->ctx->min_storage_align);
    n->host_dirty = true;
    off += n->bytes;
  }
  g->persist_used = off;
  g->persist_nodes = count;
  if (count == 0)
    return CEL_OK;
  return cel_buffer_create (g->ctx, off, false, "parameters", &g->persist);
}

/* ---- arena packing ---------------------------------------------------------------------------- */

typedef struct live_block {
  VkDeviceSize offset, bytes;
  int32_t end, chunk;
} live_block;

static int cmp_block (const void *a, const void *b) {
  const live_block *x = a, *y = b;
  return x->chunk != y->chunk ? (x->chunk < y->chunk ? -1 : 1) : x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The largest arena chunk: the device's largest allocation (a test may lower it). */
static VkDeviceSize chunk_limit (const cel_context *ctx) {
  return ctx->max_allocation ? ctx->max_allocation : (VkDeviceSize) -1;
}

/* First-fit placement of a block of `bytes` live until node `end` among the live blocks (sorted by chunk and
 * offset): the first gap of the first chunk where it fits under the chunk limit. Appends it to live. */
static cel_status place_block (cel_graph *g, live_block *live, int32_t *n_live, VkDeviceSize bytes, int32_t end,
                               VkDeviceSize limit, VkDeviceSize sizes[CEL_MAX_ARENA_CHUNKS], int32_t *chunks,
                               VkDeviceSize *offset, int32_t *chunk) {
  VkDeviceSize off = 0;
  int32_t c = 0;
  for (int32_t j = 0; j <= *n_live; j++) {
    if (j < *n_live && live[j].chunk < c)
      continue;
    if (j == *n_live || live[j].chunk > c || off + bytes <= live[j].offset) {
      if (off + bytes <= limit)
        break; /* fits before this block (or at the end of chunk c) */
      c++;     /* chunk c is full here: try the next one from its start */
      off = 0;
      j--;
      continue;
    }
    if (live[j].offset + live[j].bytes > off)
      off = live[j].offset + live[j].bytes;
  }
  if (c >= CEL_MAX_ARENA_CHUNKS)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                            "the graph's intermediate tensors need more than %d allocations of %.1f MiB (the device's "
                            "largest; use a smaller tile or batch)", CEL_MAX_ARENA_CHUNKS, limit / 1048576.0);
  *offset = off;
  *chunk = c;
  live[(*n_live)++] = (live_block) { off, bytes, end, c };
  if (off + bytes > sizes[c])
    sizes[c] = off + bytes;
  if (c + 1 > *chunks)
    *chunks = c + 1;
  return CEL_OK;
}

/* First-fit packing in node order: a node occupies [offset, offset+bytes) of a chunk from its creation to its
 * last use; inputs live from the start. A node goes to the first chunk where it fits under the chunk limit, so
 * a graph needs more than one chunk only where its live tensors outgrow one allocation. sizes[c] receives each
 * chunk's size. */
static cel_status pack_arena (cel_graph *g, VkDeviceSize sizes[CEL_MAX_ARENA_CHUNKS], int32_t *n_chunks,
                              VkDeviceSize *total, VkDeviceSize *unpacked) {
  int32_t n = g->n_nodes;
  for (int32_t i = 0; i < n; i++)
    g->nodes[i].last_use = -1;
  for (int32_t i = 0; i < n; i++)
    for (int32_t j = 0; j < g->nodes[i].n_in; j++)
      if (g->nodes[i].in[j] != CEL_NO_NODE)
        g->nodes[g->nodes[i].in[j]].last_use = i;
  live_block *live = malloc ((size_t) (2 * n + 1) * sizeof *live); /* a tensor and a temporary block per node */
  if (!live)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  int32_t n_live = 0, chunks = 0;
  VkDeviceSize sum = 0, align = g->ctx->min_storage_align, limit = chunk_limit (g->ctx);
  memset (sizes, 0, CEL_MAX_ARENA_CHUNKS * sizeof *sizes);
  cel_status st = CEL_OK;
  /* Inputs first (they are written before the first dispatch), then op results in order. */
  for (int pass = 0; pass < 2 && !st; pass++) {
    for (int32_t i = 0; i < n; i++) {
      cel_node_rec *r = &g->nodes[i];
      bool take = pass == 0 ? r->kind == CEL_NODE_INPUT : (r->kind == CEL_NODE_OP && !r->no_output);
      if (!take)
        continue;
      int32_t start = pass == 0 ? -1 : i;
      int32_t end = r->is_output ? n : (r->last_use < 0 ? i : r->last_use);
      if (pass == 0 && r->last_use < 0 && !r->is_output)
        end = -1;
      /* retire blocks that ended before this node starts */
      int32_t k = 0;
      for (int32_t j = 0; j < n_live; j++)
        if (live[j].end >= start)
          live[k++] = live[j];
      n_live = k;
      qsort (live, (size_t) n_live, sizeof *live, cmp_block);
      r->bytes = align_up ((VkDeviceSize) (cel_shape_count (r->shape) + r->scratch) * 4, align);
      sum += r->bytes;
      if (r->bytes > limit) {
        st = cel_graph_error (g, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                              "%s (node %d) needs %.1f MiB in one tensor; the device allows at most %.1f MiB in one "
                              "allocation (use a smaller tile)", r->kind == CEL_NODE_INPUT ? "an input" :
                              cel_op_table[r->op].name, (int) i, r->bytes / 1048576.0, limit / 1048576.0);
        break;
      }
      if ((st = place_block (g, live, &n_live, r->bytes, end, limit, sizes, &chunks, &r->offset, &r->chunk)))
        break;
      /* the op's temporary storage: live only while its own dispatches run */
      if (r->temp > 0) {
        VkDeviceSize tb = align_up ((VkDeviceSize) r->temp * 4, align);
        sum += tb;
        if (tb > limit) {
          st = cel_graph_error (g, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                                "%s (node %d) needs %.1f MiB of working memory; the device allows at most %.1f MiB in "
                                "one allocation (use a smaller tile)", cel_op_table[r->op].name, (int) i,
                                tb / 1048576.0, limit / 1048576.0);
          break;
        }
        qsort (live, (size_t) n_live, sizeof *live, cmp_block);
        if ((st = place_block (g, live, &n_live, tb, i, limit, sizes, &chunks, &r->temp_offset, &r->temp_chunk)))
          break;
      }
    }
  }
  free (live);
  *total = 0;
  for (int32_t c = 0; c < chunks; c++)
    *total += sizes[c];
  *n_chunks = chunks;
  *unpacked = sum;
  return st;
}

/* ---- recording -------------------------------------------------------------------------------- */

static cel_status alloc_set (cel_graph *g, VkDescriptorSetLayout layout, VkDescriptorSet *out) {
  cel_context *ctx = g->ctx;
  const uint32_t per_pool = 256;
  if (g->n_pools == 0 || g->sets_in_pool == per_pool) {
    VkDescriptorPoolSize sizes[2] = { { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = per_pool * CEL_MAX_BINDINGS },
                                      { .type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = per_pool * 4 } };
    VkDescriptorPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                       .maxSets = per_pool,
                                       .poolSizeCount = ctx->texel_supported ? 2 : 1,
                                       .pPoolSizes = sizes };
    VkDescriptorPool *p = realloc (g->pools, (g->n_pools + 1) * sizeof *p);
    if (!p)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    g->pools = p;
    VkResult r = vkCreateDescriptorPool (ctx->device, &pci, NULL, &g->pools[g->n_pools]);
    if (r != VK_SUCCESS)
      return cel_vk_error (ctx, r, "vkCreateDescriptorPool");
    g->n_pools++;
    g->sets_in_pool = 0;
  }
  VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                     .descriptorPool = g->pools[g->n_pools - 1],
                                     .descriptorSetCount = 1,
                                     .pSetLayouts = &layout };
  VkResult r = vkAllocateDescriptorSets (ctx->device, &ai, out);
  if (r != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkAllocateDescriptorSets");
  g->sets_in_pool++;
  return CEL_OK;
}

/* A float view of `count` floats at byte `offset` of a buffer for a texel-buffer binding (R32, or R32G32B32A32
 * for vec4 reads), kept until the recording is released. */
static cel_status texel_view (cel_graph *g, VkBuffer buffer, VkDeviceSize offset, int64_t count, bool vec4,
                              VkBufferView *out) {
  cel_context *ctx = g->ctx;
  VkDeviceSize texel = vec4 ? 16 : 4, range = (VkDeviceSize) count * 4;
  range = (range + texel - 1) / texel * texel; /* blocks are aligned to at least 16 bytes: the rounding stays inside */
  if (range / texel > ctx->max_texel_elements)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: a tensor of %llu floats is past the device's texel "
                            "buffer size", (unsigned long long) (range / 4));
  if (g->n_views == g->cap_views) {
    uint32_t cap = g->cap_views ? 2 * g->cap_views : 64;
    VkBufferView *v = realloc (g->views, cap * sizeof *v);
    if (!v)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    g->views = v;
    g->cap_views = cap;
  }
  VkBufferViewCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                .buffer = buffer,
                                .format = vec4 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
                                .offset = offset,
                                .range = range };
  VkResult r = vkCreateBufferView (ctx->device, &ci, NULL, out);
  if (r != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkCreateBufferView");
  g->views[g->n_views++] = *out;
  return CEL_OK;
}

uint32_t cel_exec_temp_align (const cel_graph *g) {
  VkDeviceSize a = g->ctx->min_storage_align < 64 ? 64 : g->ctx->min_storage_align;
  return (uint32_t) (a / 4);
}

bool cel_exec_bind_texel_fits (const cel_exec *ex, cel_bind b) {
  const cel_context *ctx = ex->g->ctx;
  int64_t count = b.count > 0 ? b.count : cel_shape_count (cel_node_shape (ex->g, b.node));
  return ctx->texel_reads && (uint64_t) count <= ctx->max_texel_elements;
}

bool cel_exec_texel_fits (const cel_exec *ex, cel_node n) {
  return cel_exec_bind_texel_fits (ex, cel_bind_node (n));
}

cel_status cel_exec_dispatch_groups (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                     const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                     uint32_t count) {
  uint32_t gx = count < 65535 ? count : 65535, gy = (count + gx - 1) / gx;
  return cel_exec_dispatch (ex, shader, spec, n_spec, bind, n_bind, push, push_size, gx, gy, 1);
}

cel_status cel_exec_dispatch_planes (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                     const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                     cel_shape s) {
  uint64_t per_plane = ((uint64_t) s.h * s.w + 255) / 256, planes = (uint64_t) s.n * s.c;
  uint32_t gx = (uint32_t) (per_plane < 65535 ? per_plane : 65535), gy = (uint32_t) (planes < 65535 ? planes : 65535);
  return cel_exec_dispatch (ex, shader, spec, n_spec, bind, n_bind, push, push_size, gx, gy,
                            gy ? (uint32_t) ((planes + gy - 1) / gy) : 0);
}

cel_status cel_exec_fold_parts (cel_exec *ex, cel_node node, uint32_t count, uint32_t parts, float scale) {
  struct { uint32_t count; float scale; } p = { count, scale }; /* mirror of fold_parts.comp */
  return cel_exec_dispatch_groups (ex, CEL_SHADER_FOLD_PARTS, &parts, 1, &node, 1, &p, sizeof p, count);
}

cel_shader_id cel_exec_pick_reads (const cel_exec *ex, cel_shader_id storage, cel_shader_id texel, const cel_node *reads,
                                   uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!cel_exec_texel_fits (ex, reads[i]))
      return storage;
  return texel;
}

static void compute_barrier (VkCommandBuffer cmd) {
  VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                         .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                         .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                        NULL, 0, NULL);
}

cel_status cel_exec_dispatch (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                              const cel_node *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                              uint32_t gx, uint32_t gy, uint32_t gz) {
  cel_bind b[CEL_MAX_BINDINGS];
  if (n_bind > CEL_MAX_BINDINGS)
    return cel_graph_error (ex->g, CEL_ERROR_INVALID_ARGUMENT, "internal: %u bindings", n_bind);
  for (uint32_t i = 0; i < n_bind; i++)
    b[i] = cel_bind_node (bind[i]);
  return cel_exec_dispatch_bound (ex, shader, spec, n_spec, b, n_bind, push, push_size, gx, gy, gz);
}

cel_status cel_exec_dispatch_bound (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                    const cel_bind *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                    uint32_t gx, uint32_t gy, uint32_t gz) {
  cel_graph *g = ex->g;
  cel_context *ctx = g->ctx;
  const cel_shader_code *code = &cel_shader_table[shader];
  if (n_bind != code->n_bindings)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: shader %s has %u bindings, %u given", code->name,
                            code->n_bindings, n_bind);
  if (push_size > CEL_PUSH_BYTES)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: push constants of %s too large", code->name);
  if (gx == 0 || gy == 0 || gz == 0)
    return CEL_OK;
  if (gx > 65535 || gy > 65535 || gz > 65535)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "%s: %u x %u x %u workgroups exceed the device limit (use tiling)",
                            code->name, gx, gy, gz);
  if (ex->collect) {
    if (n_spec > CEL_MAX_SPEC)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: %s has too many specialization constants", code->name);
    if (ex->n_keys == ex->cap_keys) {
      uint32_t cap = ex->cap_keys ? 2 * ex->cap_keys : 64;
      cel_pipeline_key *k = realloc (ex->keys, cap * sizeof *k);
      if (!k)
        return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
      ex->keys = k;
      ex->cap_keys = cap;
    }
    cel_pipeline_key *k = &ex->keys[ex->n_keys++];
    *k = (cel_pipeline_key) { .shader = shader, .n_spec = n_spec };
    if (n_spec)
      memcpy (k->spec, spec, n_spec * sizeof *spec);
    return CEL_OK;
  }
  VkPipeline pipe;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
  cel_status st = cel_pipeline_get (ctx, shader, spec, n_spec, &pipe, &layout, &set_layout);
  if (st)
    return st;
  VkDescriptorSet set = VK_NULL_HANDLE;
  if (n_bind) {
    if ((st = alloc_set (g, set_layout, &set)))
      return st;
    VkDescriptorBufferInfo infos[CEL_MAX_BINDINGS];
    VkBufferView views[CEL_MAX_BINDINGS];
    VkWriteDescriptorSet writes[CEL_MAX_BINDINGS];
    for (uint32_t i = 0; i < n_bind; i++) {
      const cel_node_rec *n = &g->nodes[bind[i].node];
      VkBuffer buffer = is_persistent (n) ? g->persist.buffer : g->arena[n->chunk].buffer;
      VkDeviceSize offset = n->offset, bytes = n->bytes;
      int64_t count = cel_shape_count (n->shape);
      if (bind[i].count > 0) { /* a range of the node's temporary storage */
        if (bind[i].offset < 0 || bind[i].offset % cel_exec_temp_align (g) || bind[i].offset + bind[i].count > n->temp)
          return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: %s binds floats %lld..%lld of %lld temporary",
                                  code->name, (long long) bind[i].offset, (long long) (bind[i].offset + bind[i].count),
                                  (long long) n->temp);
        buffer = g->arena[n->temp_chunk].buffer;
        offset = n->temp_offset + (VkDeviceSize) bind[i].offset * 4;
        count = bind[i].count;
        bytes = (VkDeviceSize) count * 4;
      }
      bool texel = (code->texel_mask | code->texel4_mask) >> i & 1;
      writes[i] = (VkWriteDescriptorSet) { .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                           .dstSet = set,
                                           .dstBinding = i,
                                           .descriptorCount = 1,
                                           .descriptorType = texel ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                                   : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER };
      if (texel) {
        if ((st = texel_view (g, buffer, offset, count, code->texel4_mask >> i & 1, &views[i])))
          return st;
        writes[i].pTexelBufferView = &views[i];
      } else {
        infos[i] = (VkDescriptorBufferInfo) { .buffer = buffer, .offset = offset, .range = bytes };
        writes[i].pBufferInfo = &infos[i];
      }
    }
    vkUpdateDescriptorSets (ctx->device, n_bind, writes, 0, NULL);
  }
  vkCmdBindPipeline (ex->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
  if (n_bind)
    vkCmdBindDescriptorSets (ex->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &set, 0, NULL);
  uint8_t pc[CEL_PUSH_BYTES] = { 0 };
  if (push && push_size)
    memcpy (pc, push, push_size);
  vkCmdPushConstants (ex->cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, CEL_PUSH_BYTES, pc);
  vkCmdDispatch (ex->cmd, gx, gy, gz);
  compute_barrier (ex->cmd);
  ex->dispatches++;
  if (g->queries && g->query_used < g->query_cap) {
    g->query_shader[g->query_used] = shader;
    g->query_node[g->query_used] = ex->node;
    vkCmdWriteTimestamp (ex->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g->queries, g->query_used++);
  }
  return CEL_OK;
}

cel_status cel_exec_dispatch_1d_bound (cel_exec *ex, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                                       const cel_bind *bind, uint32_t n_bind, const void *push, uint32_t push_size,
                                       int64_t invocations, uint32_t local_size) {
  int64_t groups = (invocations + local_size - 1) / local_size;
  uint32_t gx = (uint32_t) (groups < 65535 ? groups : 65535);
  uint32_t gy = gx ? (uint32_t) ((groups + gx - 1) / gx) : 0;
  return cel_exec_dispatch_bound (ex, shader, spec, n_spec, bind, n_bind, push, push_size, gx, gy, 1);
}

cel_status cel_exec_dispatch_1d (cel_exec *ex, cel_shader_id shader, const cel_node *bind, uint32_t n_bind,
                                 const void *push, uint32_t push_size, int64_t invocations, uint32_t local_size) {
  cel_bind b[CEL_MAX_BINDINGS];
  if (n_bind > CEL_MAX_BINDINGS)
    return cel_graph_error (ex->g, CEL_ERROR_INVALID_ARGUMENT, "internal: %u bindings", n_bind);
  for (uint32_t i = 0; i < n_bind; i++)
    b[i] = cel_bind_node (bind[i]);
  return cel_exec_dispatch_1d_bound (ex, shader, NULL, 0, b, n_bind, push, push_size, invocations, local_size);
}

/* Creates every pipeline the graph's dispatches use at once (in parallel on GPUs) before recording needs them
 * one by one: the ops' record functions run once with nothing recorded, collecting the (shader, constants) of
 * each dispatch; *dispatches receives their count. */
static cel_status prepare_pipelines (cel_graph *g, uint32_t *dispatches) {
  cel_exec ex = { .g = g, .collect = true };
  cel_status st = CEL_OK;
  for (int32_t i = 0; i < g->n_nodes && !st; i++)
    if (g->nodes[i].kind == CEL_NODE_OP)
      st = cel_op_table[g->nodes[i].op].record (&ex, g, i);
  if (!st)
    st = cel_pipelines_prepare (g->ctx, ex.keys, ex.n_keys);
  *dispatches = ex.n_keys;
  free (ex.keys);
  return st;
}

static cel_status record (cel_graph *g) {
  cel_context *ctx = g->ctx;
  uint32_t dispatches = 0;
  cel_status pst = prepare_pipelines (g, &dispatches);
  if (pst)
    return pst;
  VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = ctx->command_pool,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                     .commandBufferCount = 1 };
  VkResult r = vkAllocateCommandBuffers (ctx->device, &ai, &g->cmd);
  if (r != VK_SUCCESS) {
    g->cmd = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkAllocateCommandBuffers");
  }
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
  if ((r = vkBeginCommandBuffer (g->cmd, &bi)) != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkBeginCommandBuffer");

  /* Everything earlier on the queue (previous runs, parameter uploads) before anything here. */
  VkMemoryBarrier start = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                            .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                             VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
                            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                             VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT };
  VkPipelineStageFlags both = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier (g->cmd, both, both, 0, 1, &start, 0, NULL, 0, NULL);

  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (n->kind != CEL_NODE_INPUT || n->staging_in == (VkDeviceSize) -1)
      continue;
    VkBufferCopy region = { .srcOffset = n->staging_in, .dstOffset = n->offset,
                            .size = (VkDeviceSize) cel_shape_count (n->shape) * 4 };
    vkCmdCopyBuffer (g->cmd, g->staging.buffer, g->arena[n->chunk].buffer, 1, &region);
  }
  VkMemoryBarrier up = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                         .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                         .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT };
  vkCmdPipelineBarrier (g->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &up, 0, NULL,
                        0, NULL);

  if (ctx->profiling) {
    /* a timestamp before the first dispatch and after each (counted by prepare_pipelines) */
    g->query_cap = dispatches + 1;
    VkQueryPoolCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = g->query_cap };
    g->query_shader = malloc (sizeof *g->query_shader * g->query_cap);
    g->query_node = malloc (sizeof *g->query_node * g->query_cap);
    if (!g->query_shader || !g->query_node)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for the profile");
    if ((r = vkCreateQueryPool (ctx->device, &qi, NULL, &g->queries)) != VK_SUCCESS) {
      g->queries = VK_NULL_HANDLE;
      return cel_vk_error (ctx, r, "vkCreateQueryPool");
    }
    vkCmdResetQueryPool (g->cmd, g->queries, 0, g->query_cap);
    g->query_shader[0] = CEL_SHADER_COUNT; /* the start mark */
    g->query_node[0] = CEL_NO_NODE;
    vkCmdWriteTimestamp (g->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g->queries, 0);
    g->query_used = 1;
  }

  cel_exec ex = { .g = g, .cmd = g->cmd };
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].kind != CEL_NODE_OP)
      continue;
    const cel_op_info *info = &cel_op_table[g->nodes[i].op];
    ex.node = i;
    cel_status st = info->record (&ex, g, i);
    if (st)
      return st;
  }

  VkMemoryBarrier down = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT };
  vkCmdPipelineBarrier (g->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &down, 0,
                        NULL, 0, NULL);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (n->staging_out == (VkDeviceSize) -1)
      continue;
    VkBufferCopy region = { .srcOffset = n->offset, .dstOffset = n->staging_out,
                            .size = (VkDeviceSize) cel_shape_count (n->shape) * 4 };
    vkCmdCopyBuffer (g->cmd, g->arena[n->chunk].buffer, g->staging.buffer, 1, &region);
  }
  VkMemoryBarrier host = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                           .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
  vkCmdPipelineBarrier (g->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &host, 0, NULL, 0,
                        NULL);
  if ((r = vkEndCommandBuffer (g->cmd)) != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkEndCommandBuffer");
  g->stats.dispatches = ex.dispatches;
  return CEL_OK;
}

cel_status cel_plan_estimate (cel_graph *g, uint64_t *arena_bytes, uint64_t *staging_bytes) {
  cel_status st = cel_graph_infer_all (g);
  VkDeviceSize total = 0, unpacked = 0, stage = 0, sizes[CEL_MAX_ARENA_CHUNKS];
  int32_t chunks;
  if (!st)
    st = pack_arena (g, sizes, &chunks, &total, &unpacked);
  for (int32_t i = 0; i < g->n_nodes && !st; i++) {
    const cel_node_rec *n = &g->nodes[i];
    if ((n->kind == CEL_NODE_INPUT && n->last_use >= 0) ||
        (n->kind != CEL_NODE_PARAM && n->kind != CEL_NODE_STATE && n->is_output && !n->no_output))
      stage += n->bytes;
  }
  *arena_bytes = total;
  *staging_bytes = stage;
  return st;
}

cel_status cel_graph_plan (cel_graph *g) {
  cel_context *ctx = g->ctx;
  release_recording (g, true);
  memset (&g->stats, 0, sizeof g->stats);
  cel_status st;
  if ((st = cel_graph_infer_all (g)))
    return st;
  if ((st = plan_persistent (g)))
    return st;
  VkDeviceSize total = 0, unpacked = 0, sizes[CEL_MAX_ARENA_CHUNKS];
  int32_t chunks;
  if ((st = pack_arena (g, sizes, &chunks, &total, &unpacked)))
    goto fail;

  VkDeviceSize stage = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    n->staging_in = n->staging_out = (VkDeviceSize) -1;
    n->staged = false;
    if (n->kind == CEL_NODE_INPUT && n->last_use >= 0) {
      n->staging_in = stage;
      stage += n->bytes;
    }
    if (n->kind != CEL_NODE_PARAM && n->kind != CEL_NODE_STATE && n->is_output && !n->no_output) {
      n->staging_out = stage;
      stage += n->bytes;
    }
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (n->kind == CEL_NODE_INPUT && n->bytes > ctx->info.max_storage_buffer_range)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "input '%s' is larger than the device's storage buffer range",
                              n->name ? n->name : "");
    if (n->kind == CEL_NODE_OP && !n->no_output && n->bytes > ctx->info.max_storage_buffer_range)
      return cel_graph_error (g, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                              "%s (node %d) needs %.1f MiB in one tensor, more than the device's storage buffer range "
                              "(use a smaller tile)", cel_op_table[n->op].name, (int) i, n->bytes / 1048576.0);
  }
  for (int32_t c = 0; c < CEL_MAX_ARENA_CHUNKS; c++) /* kept where large enough (tile after tile) */
    if (g->arena[c].buffer && (c >= chunks || g->arena[c].size < sizes[c]))
      cel_buffer_destroy (ctx, &g->arena[c]);
  if (g->staging.buffer && g->staging.size < stage)
    cel_buffer_destroy (ctx, &g->staging);
  for (int32_t c = 0; c < chunks; c++)
    if (!g->arena[c].buffer &&
        (st = cel_buffer_create (ctx, sizes[c], false, "the graph's intermediate tensors", &g->arena[c])))
      goto fail;
  g->n_chunks = chunks;
  if (!g->staging.buffer && (st = cel_buffer_create (ctx, stage, true, "the graph's staging buffer", &g->staging)))
    goto fail;
  if ((st = record (g)))
    goto fail;
  g->stats.arena_bytes = total;
  g->stats.arena_chunks = (uint32_t) chunks;
  g->stats.unpacked_bytes = unpacked;
  g->stats.staging_bytes = stage;
  g->stats.persistent_bytes = g->persist_used;
  g->planned = true;
  return CEL_OK;

fail:
  cel_plan_release (g);
  return st;
}

/* Adds the last run's dispatch times to the context's per-shader and per-op totals. */
static cel_status add_profile (cel_graph *g) {
  cel_context *ctx = g->ctx;
  if (g->query_used < 2)
    return CEL_OK;
  if (!g->query_row) {
    if (!(g->query_row = malloc (sizeof *g->query_row * g->query_used)))
      return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for the profile");
    g->query_row[0] = UINT32_MAX;
    for (uint32_t i = 1; i < g->query_used; i++)
      if ((g->query_row[i] = cel_profile_row (g, g->query_node[i])) == UINT32_MAX)
        return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for the profile");
  }
  uint64_t *t = malloc (sizeof *t * g->query_used);
  if (!t)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for the profile");
  VkResult r = vkGetQueryPoolResults (ctx->device, g->queries, 0, g->query_used, sizeof *t * g->query_used, t,
                                      sizeof *t, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) {
    free (t);
    return cel_vk_error (ctx, r, "vkGetQueryPoolResults");
  }
  uint64_t mask = ctx->timestamp_bits >= 64 ? UINT64_MAX : ((uint64_t) 1 << ctx->timestamp_bits) - 1;
  for (uint32_t i = 1; i < g->query_used; i++) {
    cel_shader_id sh = g->query_shader[i];
    double ns = (double) ((t[i] - t[i - 1]) & mask) * ctx->timestamp_period;
    ctx->prof_ns[sh] += ns;
    ctx->prof_calls[sh]++;
    ctx->prof_ops[g->query_row[i]].ns += ns;
    ctx->prof_ops[g->query_row[i]].calls++;
  }
  free (t);
  return CEL_OK;
}

cel_status cel_graph_run (cel_graph *g) {
  cel_status st;
  if (!g->planned && (st = cel_graph_plan (g)))
    return st;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    cel_node_rec *n = &g->nodes[i];
    if (n->kind != CEL_NODE_INPUT || n->staging_in == (VkDeviceSize) -1 || n->staged)
      continue;
    if (!n->host)
      return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "run: input '%s' has no data (cel_graph_set_data)",
                              n->name ? n->name : "");
    memcpy ((char *) g->staging.mapped + n->staging_in, n->host, (size_t) cel_shape_count (n->shape) * 4);
  }
  if ((st = upload_dirty (g)))
    return st;
  g->ran = false;
  if (g->ctx->startup.first_run_ms < 0)
    g->ctx->startup.first_run_ms = (cel_now () - g->ctx->created_at) * 1e3;
  if ((st = cel_submit_and_wait (g->ctx, g->cmd)))
    return st;
  g->ran = true;
  return g->queries ? add_profile (g) : CEL_OK;
}

float *cel_plan_input_staging (cel_graph *g, cel_node node) {
  if (node < 0 || node >= g->n_nodes || g->nodes[node].kind != CEL_NODE_INPUT || !g->planned ||
      g->nodes[node].staging_in == (VkDeviceSize) -1) {
    cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: input_staging of node %d: not a planned input", (int) node);
    return NULL;
  }
  g->nodes[node].staged = true;
  return (float *) ((char *) g->staging.mapped + g->nodes[node].staging_in);
}

const float *cel_plan_output_data (cel_graph *g, cel_node node) {
  const cel_node_rec *n = &g->nodes[node];
  if (!g->planned || !g->ran || n->staging_out == (VkDeviceSize) -1)
    return NULL;
  return (const float *) ((const char *) g->staging.mapped + n->staging_out);
}

cel_status cel_graph_plan_stats (const cel_graph *g, cel_plan_stats *out) {
  if (!g->planned) {
    snprintf (g->ctx->error, sizeof g->ctx->error, "plan_stats: the graph is not planned");
    return CEL_ERROR_INVALID_ARGUMENT;
  }
  *out = g->stats;
  return CEL_OK;
}
