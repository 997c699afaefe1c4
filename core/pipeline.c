/* Compute pipelines from the embedded shader table, cached per (shader, specialization constants) for the
 * context's life. A plan creates the ones its graph uses before recording, several at once on threads
 * (cel_pipelines_prepare): compiling them is most of a cold start. Layout convention: bindings 0..n-1 are
 * storage buffers, or uniform texel buffers where the shader table's masks say so (float views made at
 * recording, core/plan.c), one push constant range of CEL_PUSH_BYTES. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The layouts of a shader: shared by binding count where every binding is a storage buffer, else its own
 * (texel-buffer bindings, from the shader table's masks). */
static cel_status get_layouts (cel_context *ctx, cel_shader_id shader) {
  const cel_shader_code *code = &cel_shader_table[shader];
  uint32_t n_bind = code->n_bindings, texel = code->texel_mask | code->texel4_mask;
  VkDescriptorSetLayout *sl = texel ? &ctx->shader_set_layouts[shader] : &ctx->set_layouts[n_bind];
  VkPipelineLayout *pl = texel ? &ctx->shader_pipeline_layouts[shader] : &ctx->pipeline_layouts[n_bind];
  if (*pl)
    return CEL_OK;
  VkDescriptorSetLayoutBinding b[CEL_MAX_BINDINGS];
  for (uint32_t i = 0; i < n_bind; i++)
    b[i] = (VkDescriptorSetLayoutBinding) { .binding = i,
                                            .descriptorType = texel >> i & 1 ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                                             : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                            .descriptorCount = 1,
                                            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
  VkDescriptorSetLayoutCreateInfo sci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = n_bind,
                                          .pBindings = b };
  VkResult r = vkCreateDescriptorSetLayout (ctx->device, &sci, NULL, sl);
  if (r != VK_SUCCESS) {
    *sl = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkCreateDescriptorSetLayout");
  }
  VkPushConstantRange range = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = CEL_PUSH_BYTES };
  VkPipelineLayoutCreateInfo lci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = sl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &range };
  r = vkCreatePipelineLayout (ctx->device, &lci, NULL, pl);
  if (r != VK_SUCCESS) {
    *pl = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkCreatePipelineLayout");
  }
  return CEL_OK;
}

static VkPipelineLayout pipeline_layout_of (const cel_context *ctx, cel_shader_id shader) {
  const cel_shader_code *code = &cel_shader_table[shader];
  return code->texel_mask | code->texel4_mask ? ctx->shader_pipeline_layouts[shader]
                                              : ctx->pipeline_layouts[code->n_bindings];
}

static cel_pipeline_entry *find (cel_context *ctx, const cel_pipeline_key *k) {
  for (uint32_t i = 0; i < ctx->n_pipelines; i++) {
    cel_pipeline_entry *e = &ctx->pipelines[i];
    if (e->key.shader == k->shader && e->key.n_spec == k->n_spec &&
        memcmp (e->key.spec, k->spec, k->n_spec * sizeof *k->spec) == 0)
      return e;
  }
  return NULL;
}

/* Checks the key, creates the shader module and layouts it needs. */
static cel_status prepare_key (cel_context *ctx, const cel_pipeline_key *k) {
  const cel_shader_code *code = &cel_shader_table[k->shader];
  if (k->n_spec > CEL_MAX_SPEC)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "shader %s: too many specialization constants", code->name);
  if (code->n_bindings > CEL_MAX_BINDINGS)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "shader %s: too many bindings", code->name);
  cel_status st = get_layouts (ctx, k->shader);
  if (st)
    return st;
  if (!ctx->modules[k->shader]) {
    VkShaderModuleCreateInfo mci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                     .codeSize = code->size,
                                     .pCode = code->code };
    VkResult r = vkCreateShaderModule (ctx->device, &mci, NULL, &ctx->modules[k->shader]);
    if (r != VK_SUCCESS) {
      ctx->modules[k->shader] = VK_NULL_HANDLE;
      return cel_vk_error (ctx, r, "vkCreateShaderModule");
    }
  }
  return CEL_OK;
}

/* One pipeline to compile: its key in, its pipeline, result and the driver's feedback out. */
typedef struct build_job {
  cel_context *ctx;
  cel_pipeline_key key;
  VkPipeline pipeline;
  VkResult result;
  bool cache_hit;
} build_job;

static void build (build_job *j) {
  cel_context *ctx = j->ctx;
  const cel_pipeline_key *k = &j->key;
  VkSpecializationMapEntry map[CEL_MAX_SPEC];
  for (uint32_t i = 0; i < k->n_spec; i++)
    map[i] = (VkSpecializationMapEntry) { .constantID = i, .offset = i * 4, .size = 4 };
  VkSpecializationInfo si = { .mapEntryCount = k->n_spec, .pMapEntries = map, .dataSize = k->n_spec * 4, .pData = k->spec };
  VkPipelineCreationFeedbackEXT feedback = { 0 };
  VkPipelineCreationFeedbackCreateInfoEXT fci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO_EXT,
                                                  .pPipelineCreationFeedback = &feedback };
  VkComputePipelineCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .pNext = ctx->pipeline_feedback ? &fci : NULL,
    .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
               .stage = VK_SHADER_STAGE_COMPUTE_BIT,
               .module = ctx->modules[k->shader],
               .pName = "main",
               .pSpecializationInfo = k->n_spec ? &si : NULL },
    .layout = pipeline_layout_of (ctx, k->shader) };
  j->result = vkCreateComputePipelines (ctx->device, ctx->pipeline_cache, 1, &pci, NULL, &j->pipeline);
  if (j->result != VK_SUCCESS)
    j->pipeline = VK_NULL_HANDLE;
  j->cache_hit = (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT_EXT) &&
                 (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT_EXT);
}

typedef struct build_queue {
  build_job *jobs;
  uint32_t n, next;
  pthread_mutex_t lock;
} build_queue;

static void *build_worker (void *arg) {
  build_queue *q = arg;
  for (;;) {
    pthread_mutex_lock (&q->lock);
    uint32_t i = q->next < q->n ? q->next++ : q->n;
    pthread_mutex_unlock (&q->lock);
    if (i == q->n)
      return NULL;
    build (&q->jobs[i]);
  }
}

/* Compiles the jobs, all of them even past a failure: on a GPU on up to one thread per core (this one
 * included); on a CPU device (lavapipe) on this thread only, as two threads measured slower there (173 ms
 * against 146 ms for the 8 pipelines of toon.safetensors, 2 loaded cores). */
static void build_all (const cel_context *ctx, build_job *jobs, uint32_t n) {
  long cores = ctx->info.is_cpu ? 1 : sysconf (_SC_NPROCESSORS_ONLN);
  uint32_t n_threads = cores > 1 ? (uint32_t) (cores < 16 ? cores : 16) : 1;
  if (n_threads > n)
    n_threads = n;
  build_queue q = { .jobs = jobs, .n = n };
  pthread_t threads[16];
  uint32_t started = 0;
  if (n_threads > 1 && pthread_mutex_init (&q.lock, NULL) == 0) {
    for (; started + 1 < n_threads; started++)
      if (pthread_create (&threads[started], NULL, build_worker, &q) != 0)
        break;
    build_worker (&q);
    for (uint32_t i = 0; i < started; i++)
      pthread_join (threads[i], NULL);
    pthread_mutex_destroy (&q.lock);
    return;
  }
  for (uint32_t i = 0; i < n; i++)
    build (&jobs[i]);
}

cel_status cel_pipelines_prepare (cel_context *ctx, const cel_pipeline_key *keys, uint32_t n) {
  double t0 = cel_now ();
  build_job *jobs = calloc (n ? n : 1, sizeof *jobs);
  if (!jobs)
    return cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  uint32_t n_jobs = 0;
  cel_status st = CEL_OK;
  for (uint32_t i = 0; i < n && !st; i++) {
    if (find (ctx, &keys[i]))
      continue;
    bool dup = false; /* a key twice in the list: once */
    for (uint32_t j = 0; j < n_jobs && !dup; j++)
      dup = jobs[j].key.shader == keys[i].shader && jobs[j].key.n_spec == keys[i].n_spec &&
            memcmp (jobs[j].key.spec, keys[i].spec, keys[i].n_spec * sizeof *keys[i].spec) == 0;
    if (dup)
      continue;
    if (!(st = prepare_key (ctx, &keys[i])))
      jobs[n_jobs++] = (build_job) { .ctx = ctx, .key = keys[i] };
  }
  /* room for every new entry before any is added */
  while (!st && ctx->cap_pipelines < ctx->n_pipelines + n_jobs) {
    uint32_t cap = ctx->cap_pipelines ? ctx->cap_pipelines * 2 : 64;
    cel_pipeline_entry *p = realloc (ctx->pipelines, cap * sizeof *p);
    if (!p)
      st = cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    else {
      ctx->pipelines = p;
      ctx->cap_pipelines = cap;
    }
  }
  if (!st && n_jobs)
    build_all (ctx, jobs, n_jobs);
  for (uint32_t i = 0; i < n_jobs && !st; i++) {
    if (jobs[i].result != VK_SUCCESS) {
      st = cel_vk_error (ctx, jobs[i].result, "vkCreateComputePipelines");
      break;
    }
    ctx->pipelines[ctx->n_pipelines++] = (cel_pipeline_entry) { .key = jobs[i].key, .pipeline = jobs[i].pipeline };
    jobs[i].pipeline = VK_NULL_HANDLE;
    ctx->startup.pipelines_created++;
    ctx->startup.pipeline_cache_hits += jobs[i].cache_hit;
  }
  for (uint32_t i = 0; i < n_jobs; i++) /* those past a failure */
    if (jobs[i].pipeline)
      vkDestroyPipeline (ctx->device, jobs[i].pipeline, NULL);
  free (jobs);
  ctx->startup.pipelines_ms += (cel_now () - t0) * 1e3;
  return st;
}

cel_status cel_pipeline_get (cel_context *ctx, cel_shader_id shader, const uint32_t *spec, uint32_t n_spec,
                             VkPipeline *out, VkPipelineLayout *layout, VkDescriptorSetLayout *set_layout) {
  cel_pipeline_key k = { .shader = shader, .n_spec = n_spec };
  if (n_spec > CEL_MAX_SPEC)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "shader %s: too many specialization constants",
                          cel_shader_table[shader].name);
  if (n_spec)
    memcpy (k.spec, spec, n_spec * sizeof *spec);
  cel_pipeline_entry *e = find (ctx, &k);
  if (!e) {
    cel_status st = cel_pipelines_prepare (ctx, &k, 1);
    if (st)
      return st;
    e = &ctx->pipelines[ctx->n_pipelines - 1];
  }
  const cel_shader_code *code = &cel_shader_table[shader];
  *out = e->pipeline;
  *layout = pipeline_layout_of (ctx, shader);
  *set_layout = code->texel_mask | code->texel4_mask ? ctx->shader_set_layouts[shader] : ctx->set_layouts[code->n_bindings];
  return CEL_OK;
}
