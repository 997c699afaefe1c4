/* What the device can do at best, measured, for benchmarks to compare with: fp32 FMA throughput
 * (shaders/fma_peak.comp). */
#include "internal.h"

#include <string.h>

typedef struct peak_run {
  cel_buffer out;
  VkDescriptorPool pool;
  VkDescriptorSet set;
  VkQueryPool queries; /* two timestamps; VK_NULL_HANDLE: host time */
  uint32_t groups;
} peak_run;

/* One dispatch of fma_peak with `chains` chains and `rounds` rounds; its time in seconds. */
static cel_status time_dispatch (cel_context *ctx, peak_run *pr, uint32_t chains, int32_t rounds, double *seconds) {
  VkPipeline pipe;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
  cel_status st = cel_pipeline_get (ctx, CEL_SHADER_FMA_PEAK, &chains, 1, &pipe, &layout, &set_layout);
  if (st)
    return st;
  VkCommandBuffer cmd;
  if ((st = cel_oneshot_begin (ctx, &cmd)))
    return st;
  struct {
    float a, b;
    int32_t rounds;
  } push = { 0.999f, 1e-3f, rounds };
  uint8_t pc[CEL_PUSH_BYTES] = { 0 };
  memcpy (pc, &push, sizeof push);
  vkCmdBindPipeline (cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
  vkCmdBindDescriptorSets (cmd, VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, &pr->set, 0, NULL);
  vkCmdPushConstants (cmd, layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, CEL_PUSH_BYTES, pc);
  if (pr->queries) {
    vkCmdResetQueryPool (cmd, pr->queries, 0, 2);
    vkCmdWriteTimestamp (cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pr->queries, 0);
  }
  vkCmdDispatch (cmd, pr->groups, 1, 1);
  if (pr->queries)
    vkCmdWriteTimestamp (cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pr->queries, 1);
  double t0 = cel_now ();
  if ((st = cel_oneshot_submit (ctx, cmd)))
    return st;
  *seconds = cel_now () - t0;
  if (pr->queries) {
    uint64_t t[2];
    VkResult r = vkGetQueryPoolResults (ctx->device, pr->queries, 0, 2, sizeof t, t, sizeof t[0],
                                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
      return cel_vk_error (ctx, r, "vkGetQueryPoolResults");
    uint64_t mask = ctx->timestamp_bits >= 64 ? UINT64_MAX : ((uint64_t) 1 << ctx->timestamp_bits) - 1;
    *seconds = (double) ((t[1] - t[0]) & mask) * ctx->timestamp_period * 1e-9;
  }
  return CEL_OK;
}

cel_status cel_device_fma_gflops (cel_context *ctx, double *gflops, uint32_t *best_chains) {
  *gflops = 0;
  if (best_chains)
    *best_chains = 0;
  /* enough workgroups to fill every core of a CPU device or every multiprocessor of a GPU several times over */
  peak_run pr = { .groups = ctx->info.is_cpu ? 256 : 16384 };
  double target = ctx->info.is_cpu ? 0.15 : 0.02; /* seconds per timed dispatch */
  cel_status st = cel_buffer_create (ctx, (VkDeviceSize) pr.groups * 64 * sizeof (float), false,
                                     "the FMA benchmark's output", &pr.out);
  if (st)
    return st;
  VkPipeline pipe;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
  uint32_t one = 1;
  if ((st = cel_pipeline_get (ctx, CEL_SHADER_FMA_PEAK, &one, 1, &pipe, &layout, &set_layout)))
    goto done;
  VkDescriptorPoolSize size = { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 1 };
  VkDescriptorPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = 1,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &size };
  VkResult r = vkCreateDescriptorPool (ctx->device, &pci, NULL, &pr.pool);
  if (r != VK_SUCCESS) {
    pr.pool = VK_NULL_HANDLE;
    st = cel_vk_error (ctx, r, "vkCreateDescriptorPool");
    goto done;
  }
  VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                     .descriptorPool = pr.pool,
                                     .descriptorSetCount = 1,
                                     .pSetLayouts = &set_layout };
  if ((r = vkAllocateDescriptorSets (ctx->device, &ai, &pr.set)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkAllocateDescriptorSets");
    goto done;
  }
  VkDescriptorBufferInfo bi = { .buffer = pr.out.buffer, .offset = 0, .range = VK_WHOLE_SIZE };
  VkWriteDescriptorSet w = { .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                             .dstSet = pr.set,
                             .dstBinding = 0,
                             .descriptorCount = 1,
                             .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                             .pBufferInfo = &bi };
  vkUpdateDescriptorSets (ctx->device, 1, &w, 0, NULL);
  if (ctx->timestamp_bits) {
    VkQueryPoolCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                 .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                 .queryCount = 2 };
    if ((r = vkCreateQueryPool (ctx->device, &qi, NULL, &pr.queries)) != VK_SUCCESS) {
      pr.queries = VK_NULL_HANDLE;
      st = cel_vk_error (ctx, r, "vkCreateQueryPool");
      goto done;
    }
  }

  static const uint32_t chain_counts[] = { 1, 2, 3, 4, 6, 8 };
  for (size_t c = 0; c < sizeof chain_counts / sizeof chain_counts[0] && !st; c++) {
    uint32_t chains = chain_counts[c];
    int32_t rounds = 16;
    double s = 0;
    /* a first dispatch compiles the shader on some drivers (lavapipe); then grow the work until one dispatch
     * takes the target time, then keep the best of three */
    st = time_dispatch (ctx, &pr, chains, 1, &s);
    while (!st && !(st = time_dispatch (ctx, &pr, chains, rounds, &s)) && s < target / 2 && rounds < (1 << 24))
      rounds = (int32_t) (rounds * (s > 0 && target / s < 16 ? target / s : 16));
    for (int rep = 0; rep < 3 && !st; rep++) {
      if ((st = time_dispatch (ctx, &pr, chains, rounds, &s)))
        break;
      double flop = (double) pr.groups * 64 * rounds * 8 * chains * 8;
      if (s > 0 && flop / s * 1e-9 > *gflops) {
        *gflops = flop / s * 1e-9;
        if (best_chains)
          *best_chains = chains;
      }
    }
  }

done:
  if (pr.queries)
    vkDestroyQueryPool (ctx->device, pr.queries, NULL);
  if (pr.pool)
    vkDestroyDescriptorPool (ctx->device, pr.pool, NULL);
  cel_buffer_destroy (ctx, &pr.out);
  return st;
}
