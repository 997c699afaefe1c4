/* Compute pipelines from the embedded shader table, created on first use and cached per
 * (shader, specialization constants). Layout convention: bindings 0..n-1 are storage buffers, one push
 * constant range of CEL_PUSH_BYTES. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static cel_status get_layouts (cel_context *ctx, uint32_t n_bind) {
  if (ctx->pipeline_layouts[n_bind])
    return CEL_OK;
  VkDescriptorSetLayoutBinding b[CEL_MAX_BINDINGS];
  for (uint32_t i = 0; i < n_bind; i++)
    b[i] = (VkDescriptorSetLayoutBinding) { .binding = i,
                                            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                            .descriptorCount = 1,
                                            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
  VkDescriptorSetLayoutCreateInfo sci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = n_bind,
                                          .pBindings = b };
  VkResult r = vkCreateDescriptorSetLayout (ctx->device, &sci, NULL, &ctx->set_layouts[n_bind]);
  if (r != VK_SUCCESS) {
    ctx->set_layouts[n_bind] = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkCreateDescriptorSetLayout");
  }
  VkPushConstantRange range = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = CEL_PUSH_BYTES };
  VkPipelineLayoutCreateInfo lci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &ctx->set_layouts[n_bind],
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &range };
  r = vkCreatePipelineLayout (ctx->device, &lci, NULL, &ctx->pipeline_layouts[n_bind]);
  if (r != VK_SUCCESS) {
    ctx->pipeline_layouts[n_bind] = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkCreatePipelineLayout");
  }
  return CEL_OK;
}

cel_status cel_pipeline_get (cel_context *ctx, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                             VkPipeline *out, VkPipelineLayout *layout, VkDescriptorSetLayout *set_layout) {
  const cel_shader_code *code = &cel_shader_table[shader];
  if (n_spec > 8)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "shader %s: too many specialization constants", code->name);
  if (code->n_bindings > CEL_MAX_BINDINGS)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "shader %s: too many bindings", code->name);
  cel_status st = get_layouts (ctx, code->n_bindings);
  if (st)
    return st;
  *layout = ctx->pipeline_layouts[code->n_bindings];
  *set_layout = ctx->set_layouts[code->n_bindings];

  for (uint32_t i = 0; i < ctx->n_pipelines; i++) {
    cel_pipeline_entry *e = &ctx->pipelines[i];
    if (e->shader == shader && e->n_spec == n_spec && (n_spec == 0 || memcmp (e->spec, spec, n_spec * sizeof *spec) == 0)) {
      *out = e->pipeline;
      return CEL_OK;
    }
  }

  VkResult r;
  if (!ctx->modules[shader]) {
    VkShaderModuleCreateInfo mci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                     .codeSize = code->size,
                                     .pCode = code->code };
    if ((r = vkCreateShaderModule (ctx->device, &mci, NULL, &ctx->modules[shader])) != VK_SUCCESS) {
      ctx->modules[shader] = VK_NULL_HANDLE;
      return cel_vk_error (ctx, r, "vkCreateShaderModule");
    }
  }
  if (ctx->n_pipelines == ctx->cap_pipelines) {
    uint32_t cap = ctx->cap_pipelines ? ctx->cap_pipelines * 2 : 64;
    cel_pipeline_entry *p = realloc (ctx->pipelines, cap * sizeof *p);
    if (!p)
      return cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    ctx->pipelines = p;
    ctx->cap_pipelines = cap;
  }

  VkSpecializationMapEntry map[8];
  for (uint32_t i = 0; i < n_spec; i++)
    map[i] = (VkSpecializationMapEntry) { .constantID = i, .offset = i * 4, .size = 4 };
  VkSpecializationInfo si = { .mapEntryCount = n_spec, .pMapEntries = map, .dataSize = n_spec * 4, .pData = spec };
  VkComputePipelineCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
               .stage = VK_SHADER_STAGE_COMPUTE_BIT,
               .module = ctx->modules[shader],
               .pName = "main",
               .pSpecializationInfo = n_spec ? &si : NULL },
    .layout = *layout };
  VkPipeline pipe;
  if ((r = vkCreateComputePipelines (ctx->device, ctx->pipeline_cache, 1, &pci, NULL, &pipe)) != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkCreateComputePipelines");
  cel_pipeline_entry *e = &ctx->pipelines[ctx->n_pipelines++];
  e->shader = shader;
  e->n_spec = n_spec;
  memset (e->spec, 0, sizeof e->spec);
  if (n_spec)
    memcpy (e->spec, spec, n_spec * sizeof *spec);
  e->pipeline = pipe;
  *out = pipe;
  return CEL_OK;
}
