/* Vulkan instance, device choice, features, validation, buffers and one-shot submission. */
#include "internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double cel_now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

const char *cel_status_string (cel_status status) {
  switch (status) {
  case CEL_OK: return "ok";
  case CEL_ERROR_INVALID_ARGUMENT: return "invalid argument";
  case CEL_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
  case CEL_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
  case CEL_ERROR_DEVICE_LOST: return "device lost";
  case CEL_ERROR_NO_DEVICE: return "no Vulkan device";
  case CEL_ERROR_UNSUPPORTED: return "unsupported";
  case CEL_ERROR_VULKAN: return "Vulkan error";
  case CEL_ERROR_IO: return "input/output error";
  case CEL_ERROR_FORMAT: return "bad file format";
  case CEL_ERROR_VALIDATION: return "Vulkan validation message";
  case CEL_ERROR_CANCELLED: return "cancelled";
  }
  return "unknown status";
}

cel_status cel_set_error (cel_context *ctx, cel_status status, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (ctx->error, sizeof ctx->error, fmt, ap);
  va_end (ap);
  return status;
}

static const char *vk_result_string (VkResult r) {
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
  case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
  case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
  case VK_TIMEOUT: return "VK_TIMEOUT";
  default: return "VkResult";
  }
}

cel_status cel_vk_error (cel_context *ctx, VkResult r, const char *what) {
  cel_status st = CEL_ERROR_VULKAN;
  const char *hint = "";
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY: st = CEL_ERROR_OUT_OF_HOST_MEMORY; break;
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    st = CEL_ERROR_OUT_OF_DEVICE_MEMORY;
    hint = " (try a smaller tile size)";
    break;
  case VK_ERROR_DEVICE_LOST:
    st = CEL_ERROR_DEVICE_LOST;
    hint = " (the GPU driver reset the device; the work was not done)";
    break;
  default: break;
  }
  return cel_set_error (ctx, st, "%s failed: %s (%d)%s", what, vk_result_string (r), (int) r, hint);
}

/* ---- validation messages ---------------------------------------------------------------------- */

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation (VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                     void *user) {
  (void) types;
  cel_context *ctx = user;
  if (!(severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
    return VK_FALSE;
  ctx->validation_count++;
  const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
  size_t add = strlen (msg) + 1, cap = 65536;
  if (ctx->validation_log_len + add + 1 <= cap) {
    char *p = realloc (ctx->validation_log, ctx->validation_log_len + add + 1);
    if (p) {
      ctx->validation_log = p;
      memcpy (p + ctx->validation_log_len, msg, add - 1);
      p[ctx->validation_log_len + add - 1] = '\n';
      ctx->validation_log_len += add;
      p[ctx->validation_log_len] = 0;
    }
  }
  return VK_FALSE;
}

uint32_t cel_context_validation_messages (const cel_context *ctx) {
  return ctx ? ctx->validation_count : 0;
}

const char *cel_context_validation_log (const cel_context *ctx) {
  return ctx && ctx->validation_log ? ctx->validation_log : "";
}

cel_status cel_validation_check (cel_context *ctx) {
  if (ctx->validation_count == 0)
    return CEL_OK;
  return cel_set_error (ctx, CEL_ERROR_VALIDATION, "Vulkan validation reported %u message(s): %.700s",
                        ctx->validation_count, cel_context_validation_log (ctx));
}

/* ---- devices ---------------------------------------------------------------------------------- */

static bool env_true (const char *name) {
  const char *v = getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

static bool has_extension (const VkExtensionProperties *ext, uint32_t n, const char *name) {
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (ext[i].extensionName, name) == 0)
      return true;
  return false;
}

static void read_device_info (VkPhysicalDevice pd, uint32_t index, cel_device_info *info) {
  memset (info, 0, sizeof *info);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (pd, &props);
  info->index = index;
  snprintf (info->name, sizeof info->name, "%s", props.deviceName);
  info->vendor_id = props.vendorID;
  info->device_id = props.deviceID;
  info->api_version = props.apiVersion;
  info->is_cpu = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  info->is_discrete = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
  info->max_workgroup_invocations = props.limits.maxComputeWorkGroupInvocations;
  info->max_storage_buffer_range = props.limits.maxStorageBufferRange;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties (pd, &mem);
  for (uint32_t i = 0; i < mem.memoryHeapCount; i++)
    if ((mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mem.memoryHeaps[i].size > info->device_local_bytes)
      info->device_local_bytes = mem.memoryHeaps[i].size;

  uint32_t n_ext = 0;
  vkEnumerateDeviceExtensionProperties (pd, NULL, &n_ext, NULL);
  VkExtensionProperties *ext = calloc (n_ext ? n_ext : 1, sizeof *ext);
  if (ext) {
    vkEnumerateDeviceExtensionProperties (pd, NULL, &n_ext, ext);
    info->cooperative_matrix = has_extension (ext, n_ext, "VK_KHR_cooperative_matrix");
    info->cooperative_matrix_nv = has_extension (ext, n_ext, "VK_NV_cooperative_matrix");
    free (ext);
  }

  if (props.apiVersion >= VK_API_VERSION_1_1) {
    VkPhysicalDeviceSubgroupProperties sub = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub };
    vkGetPhysicalDeviceProperties2 (pd, &p2);
    info->subgroup_size = sub.subgroupSize;
    info->subgroup_shuffle = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES };
    VkPhysicalDevice16BitStorageFeatures s16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                 .pNext = &f16 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16 };
    vkGetPhysicalDeviceFeatures2 (pd, &f2);
    info->shader_float16 = f16.shaderFloat16;
    info->storage_16bit = s16.storageBuffer16BitAccess;
  }
}

static VkResult create_instance (bool validation, VkInstance *out) {
  uint32_t api = VK_API_VERSION_1_1;
  VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                            .pApplicationName = "celgan",
                            .pEngineName = "libcelgan",
                            .apiVersion = api };
  const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
  const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
  VkValidationFeatureEnableEXT enables[] = { VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT };
  VkValidationFeaturesEXT features = { .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                       .enabledValidationFeatureCount = 1,
                                       .pEnabledValidationFeatures = enables };
  VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                              .pNext = validation ? &features : NULL,
                              .pApplicationInfo = &app,
                              .enabledLayerCount = validation ? 1 : 0,
                              .ppEnabledLayerNames = layers,
                              .enabledExtensionCount = validation ? 1 : 0,
                              .ppEnabledExtensionNames = exts };
  return vkCreateInstance (&ci, NULL, out);
}

cel_status cel_device_list (cel_device_info *infos, uint32_t max, uint32_t *count, char *err, size_t errlen) {
  VkInstance inst = VK_NULL_HANDLE;
  VkResult r = create_instance (false, &inst);
  if (r != VK_SUCCESS) {
    if (err)
      snprintf (err, errlen, "cannot create a Vulkan instance (%d): is a Vulkan driver installed?", (int) r);
    return CEL_ERROR_NO_DEVICE;
  }
  uint32_t n = 0;
  vkEnumeratePhysicalDevices (inst, &n, NULL);
  VkPhysicalDevice *pds = calloc (n ? n : 1, sizeof *pds);
  if (!pds) {
    vkDestroyInstance (inst, NULL);
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  }
  vkEnumeratePhysicalDevices (inst, &n, pds);
  for (uint32_t i = 0; i < n && i < max; i++)
    read_device_info (pds[i], i, &infos[i]);
  if (count)
    *count = n;
  free (pds);
  vkDestroyInstance (inst, NULL);
  if (n == 0) {
    if (err)
      snprintf (err, errlen, "no Vulkan device found (install mesa-vulkan-drivers for the CPU device)");
    return CEL_ERROR_NO_DEVICE;
  }
  return CEL_OK;
}

static bool contains_nocase (const char *hay, const char *needle) {
  size_t n = strlen (needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower ((unsigned char) hay[i]) == tolower ((unsigned char) needle[i]))
      i++;
    if (i == n)
      return true;
  }
  return n == 0;
}

static cel_status choose_device (cel_context *ctx, const char *want) {
  uint32_t n = 0;
  vkEnumeratePhysicalDevices (ctx->instance, &n, NULL);
  if (n == 0)
    return cel_set_error (ctx, CEL_ERROR_NO_DEVICE, "no Vulkan device found (install mesa-vulkan-drivers for the CPU device)");
  VkPhysicalDevice pds[64];
  if (n > 64)
    n = 64;
  vkEnumeratePhysicalDevices (ctx->instance, &n, pds);
  cel_device_info infos[64];
  for (uint32_t i = 0; i < n; i++)
    read_device_info (pds[i], i, &infos[i]);

  int pick = -1;
  if (!want || !*want || strcmp (want, "auto") == 0) {
    for (uint32_t i = 0; i < n && pick < 0; i++)
      if (infos[i].is_discrete)
        pick = (int) i;
    for (uint32_t i = 0; i < n && pick < 0; i++)
      if (!infos[i].is_cpu)
        pick = (int) i;
    if (pick < 0)
      pick = 0;
  } else {
    char *end = NULL;
    long idx = strtol (want, &end, 10);
    if (end && *end == 0 && end != want) {
      if (idx < 0 || idx >= (long) n)
        return cel_set_error (ctx, CEL_ERROR_NO_DEVICE, "device index %ld out of range: %u device(s) (see 'celgan devices')", idx, n);
      pick = (int) idx;
    } else {
      for (uint32_t i = 0; i < n && pick < 0; i++)
        if (contains_nocase (infos[i].name, want))
          pick = (int) i;
      if (pick < 0)
        return cel_set_error (ctx, CEL_ERROR_NO_DEVICE, "no Vulkan device whose name contains '%s' (see 'celgan devices')", want);
    }
  }
  if (infos[pick].api_version < VK_API_VERSION_1_1)
    return cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "device '%s' supports only Vulkan 1.0; CelGAN needs 1.1", infos[pick].name);
  ctx->physical = pds[pick];
  ctx->info = infos[pick];
  return CEL_OK;
}

/* The pipeline cache on disk: a header of ours, then the driver's data (vkGetPipelineCacheData). The header
 * keys the file to one device and driver build and carries a checksum, so a truncated, corrupt or foreign file
 * is never handed to the driver (drivers are not required to survive bad data). Host byte order. */
typedef struct cache_file_header {
  char magic[8]; /* "CELGANPC" */
  uint32_t version, vendor_id, device_id, driver_version;
  uint8_t cache_uuid[VK_UUID_SIZE]; /* VkPhysicalDeviceProperties.pipelineCacheUUID */
  uint64_t data_bytes, data_hash;   /* FNV-1a of the driver data */
} cache_file_header;
_Static_assert (sizeof (cache_file_header) == 56, "cache file header layout");
#define CACHE_FILE_VERSION 1u
#define CACHE_FILE_MAX_BYTES (256ull << 20)

static uint64_t fnv1a (const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void cache_header_for (const VkPhysicalDeviceProperties *props, cache_file_header *h) {
  memset (h, 0, sizeof *h);
  memcpy (h->magic, "CELGANPC", 8);
  h->version = CACHE_FILE_VERSION;
  h->vendor_id = props->vendorID;
  h->device_id = props->deviceID;
  h->driver_version = props->driverVersion;
  memcpy (h->cache_uuid, props->pipelineCacheUUID, VK_UUID_SIZE);
}

/* $XDG_CACHE_HOME/celgan/pipelines-VENDOR-DEVICE-UUID.bin: one file per device and driver build, so two
 * drivers (a GPU and lavapipe, two Mesa versions) never overwrite each other's cache. */
static char *default_cache_path (VkPhysicalDevice pd) {
  const char *xdg = getenv ("XDG_CACHE_HOME");
  const char *home = getenv ("HOME");
  char dir[1024];
  if (xdg && *xdg)
    snprintf (dir, sizeof dir, "%s/celgan", xdg);
  else if (home && *home)
    snprintf (dir, sizeof dir, "%s/.cache/celgan", home);
  else
    return NULL;
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (pd, &props);
  char uuid[2 * VK_UUID_SIZE + 1];
  for (unsigned i = 0; i < VK_UUID_SIZE; i++)
    snprintf (uuid + 2 * i, 3, "%02x", props.pipelineCacheUUID[i]);
  char *path = malloc (1200);
  if (path)
    snprintf (path, 1200, "%s/pipelines-%04x-%04x-%s.bin", dir, props.vendorID, props.deviceID, uuid);
  return path;
}

/* Reads the cache file's driver data if it is whole and made by this device and driver build; NULL (and
 * *ignored when a file was there) otherwise. */
static void *read_cache_file (const char *path, VkPhysicalDevice pd, size_t *size, bool *ignored) {
  *size = 0;
  *ignored = false;
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  *ignored = true;
  cache_file_header want, have;
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (pd, &props);
  cache_header_for (&props, &want);
  void *data = NULL;
  if (fread (&have, sizeof have, 1, f) != 1 || memcmp (&have, &want, offsetof (cache_file_header, data_bytes)) != 0 ||
      have.data_bytes < 16 + VK_UUID_SIZE || have.data_bytes > CACHE_FILE_MAX_BYTES)
    goto done;
  data = malloc (have.data_bytes);
  /* exactly data_bytes follow, no more */
  if (!data || fread (data, 1, have.data_bytes, f) != have.data_bytes || fgetc (f) != EOF ||
      fnv1a (data, have.data_bytes) != have.data_hash)
    goto done;
  /* the driver's own header (VkPipelineCacheHeaderVersionOne) must name this device too */
  const uint32_t *drv = data;
  if (drv[1] != VK_PIPELINE_CACHE_HEADER_VERSION_ONE || drv[2] != props.vendorID || drv[3] != props.deviceID ||
      memcmp (&drv[4], props.pipelineCacheUUID, VK_UUID_SIZE) != 0)
    goto done;
  *size = have.data_bytes;
  *ignored = false;

done:
  fclose (f);
  if (*ignored) {
    free (data);
    data = NULL;
  }
  return data;
}

static VkResult create_pipeline_cache (cel_context *ctx) {
  size_t size = 0;
  bool ignored = false;
  void *data = ctx->pipeline_cache_path ? read_cache_file (ctx->pipeline_cache_path, ctx->physical, &size, &ignored) : NULL;
  VkPipelineCacheCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                   .initialDataSize = size,
                                   .pInitialData = data };
  VkResult r = vkCreatePipelineCache (ctx->device, &ci, NULL, &ctx->pipeline_cache);
  if (r != VK_SUCCESS && data) { /* the driver refused data it wrote itself: start empty */
    ci.initialDataSize = 0;
    ci.pInitialData = NULL;
    size = 0;
    ignored = true;
    r = vkCreatePipelineCache (ctx->device, &ci, NULL, &ctx->pipeline_cache);
  }
  ctx->startup.cache_loaded_bytes = size;
  ctx->startup.cache_ignored = ignored;
  ctx->cache_loaded_hash = size ? fnv1a (data, size) : 0;
  free (data);
  return r;
}

static void mkdir_parents (const char *path) {
  char tmp[1200];
  snprintf (tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      (void) mkdir (tmp, 0755);
      *p = '/';
    }
  }
}

/* Writes the cache atomically (a temporary named by the PID, then rename) unless it is what was loaded. Best
 * effort: a cache that cannot be written costs only time next run. */
static void save_pipeline_cache (cel_context *ctx) {
  if (!ctx->pipeline_cache || !ctx->pipeline_cache_path)
    return;
  size_t size = 0;
  if (vkGetPipelineCacheData (ctx->device, ctx->pipeline_cache, &size, NULL) != VK_SUCCESS || size == 0 ||
      size > CACHE_FILE_MAX_BYTES)
    return;
  void *data = malloc (size);
  if (!data)
    return;
  if (vkGetPipelineCacheData (ctx->device, ctx->pipeline_cache, &size, data) != VK_SUCCESS)
    goto done;
  uint64_t hash = fnv1a (data, size);
  if (size == ctx->startup.cache_loaded_bytes && hash == ctx->cache_loaded_hash)
    goto done;
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (ctx->physical, &props);
  cache_file_header h;
  cache_header_for (&props, &h);
  h.data_bytes = size;
  h.data_hash = hash;
  mkdir_parents (ctx->pipeline_cache_path);
  char tmp[1300];
  snprintf (tmp, sizeof tmp, "%s.%ld.tmp", ctx->pipeline_cache_path, (long) getpid ());
  FILE *f = fopen (tmp, "wb");
  if (f) {
    bool ok = fwrite (&h, sizeof h, 1, f) == 1 && fwrite (data, 1, size, f) == size;
    ok = (fclose (f) == 0) && ok;
    if (ok)
      ok = rename (tmp, ctx->pipeline_cache_path) == 0;
    if (!ok)
      remove (tmp);
  }

done:
  free (data);
}

cel_status cel_context_create (const cel_context_options *options, cel_context **out) {
  cel_context_options defaults = { 0 };
  const cel_context_options *o = options ? options : &defaults;
  *out = NULL;
  cel_context *ctx = calloc (1, sizeof *ctx);
  if (!ctx)
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  *out = ctx;
  ctx->created_at = cel_now ();
  ctx->startup.first_run_ms = -1;
  ctx->budget = o->memory_budget;
  ctx->validation = o->validation || env_true ("CELGAN_VALIDATION");

  cel_status st;
  VkResult r = create_instance (ctx->validation, &ctx->instance);
  if (r == VK_ERROR_LAYER_NOT_PRESENT) {
    st = cel_set_error (ctx, CEL_ERROR_UNSUPPORTED,
                        "validation requested but VK_LAYER_KHRONOS_validation is not installed (vulkan-validationlayers)");
    goto fail;
  }
  if (r != VK_SUCCESS) {
    ctx->instance = VK_NULL_HANDLE;
    st = cel_set_error (ctx, CEL_ERROR_NO_DEVICE, "cannot create a Vulkan instance (%d): is a Vulkan driver installed?", (int) r);
    goto fail;
  }
  if (ctx->validation) {
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
      (PFN_vkCreateDebugUtilsMessengerEXT) vkGetInstanceProcAddr (ctx->instance, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerCreateInfoEXT mci = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = on_validation,
      .pUserData = ctx };
    if (!create_messenger || create_messenger (ctx->instance, &mci, NULL, &ctx->messenger) != VK_SUCCESS) {
      st = cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "cannot install the validation message callback");
      goto fail;
    }
  }

  double t = cel_now ();
  ctx->startup.instance_ms = (t - ctx->created_at) * 1e3;
  if ((st = choose_device (ctx, o->device)) != CEL_OK)
    goto fail;

  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (ctx->physical, &nq, NULL);
  VkQueueFamilyProperties qf[32];
  if (nq > 32)
    nq = 32;
  vkGetPhysicalDeviceQueueFamilyProperties (ctx->physical, &nq, qf);
  ctx->queue_family = UINT32_MAX;
  for (uint32_t i = 0; i < nq && ctx->queue_family == UINT32_MAX; i++)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      ctx->queue_family = i;
  if (ctx->queue_family == UINT32_MAX) {
    st = cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "device '%s' has no compute queue", ctx->info.name);
    goto fail;
  }

  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = ctx->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio };
  /* pipeline creation feedback, where offered, says which pipelines came from the cache */
  const char *feedback_ext = "VK_EXT_pipeline_creation_feedback";
  uint32_t n_ext = 0;
  vkEnumerateDeviceExtensionProperties (ctx->physical, NULL, &n_ext, NULL);
  VkExtensionProperties *ext = calloc (n_ext ? n_ext : 1, sizeof *ext);
  if (ext && vkEnumerateDeviceExtensionProperties (ctx->physical, NULL, &n_ext, ext) == VK_SUCCESS)
    ctx->pipeline_feedback = has_extension (ext, n_ext, feedback_ext);
  free (ext);
  VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qci,
                             .enabledExtensionCount = ctx->pipeline_feedback ? 1 : 0,
                             .ppEnabledExtensionNames = &feedback_ext };
  r = vkCreateDevice (ctx->physical, &dci, NULL, &ctx->device);
  if (r != VK_SUCCESS) {
    ctx->device = VK_NULL_HANDLE;
    st = cel_vk_error (ctx, r, "vkCreateDevice");
    goto fail;
  }
  vkGetDeviceQueue (ctx->device, ctx->queue_family, 0, &ctx->queue);

  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties (ctx->physical, &props);
  ctx->min_storage_align = props.limits.minStorageBufferOffsetAlignment;
  ctx->timestamp_bits = qf[ctx->queue_family].timestampValidBits;
  ctx->timestamp_period = props.limits.timestampPeriod;
  if (ctx->min_storage_align < 16)
    ctx->min_storage_align = 16;
  VkPhysicalDeviceMaintenance3Properties m3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3 };
  vkGetPhysicalDeviceProperties2 (ctx->physical, &p2);
  ctx->max_allocation = ctx->device_max_allocation = m3.maxMemoryAllocationSize;
  vkGetPhysicalDeviceMemoryProperties (ctx->physical, &ctx->memory);
  /* Texel-buffer reads: float views at tensor offsets, so those are aligned for them too. */
  VkFormatProperties f1, f4;
  vkGetPhysicalDeviceFormatProperties (ctx->physical, VK_FORMAT_R32_SFLOAT, &f1);
  vkGetPhysicalDeviceFormatProperties (ctx->physical, VK_FORMAT_R32G32B32A32_SFLOAT, &f4);
  VkDeviceSize texel_align = props.limits.minTexelBufferOffsetAlignment;
  ctx->texel_supported = (f1.bufferFeatures & f4.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) &&
                         texel_align && (texel_align & (texel_align - 1)) == 0 && texel_align <= 256;
  if (ctx->texel_supported && texel_align > ctx->min_storage_align)
    ctx->min_storage_align = texel_align;
  ctx->max_texel_elements = props.limits.maxTexelBufferElements;
  const char *tr = getenv ("CELGAN_TEXEL_READS");
  ctx->texel_reads = ctx->texel_supported && (tr && *tr ? strcmp (tr, "0") != 0 : ctx->info.is_cpu);

  VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = ctx->queue_family };
  if ((r = vkCreateCommandPool (ctx->device, &pci, NULL, &ctx->command_pool)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkCreateCommandPool");
    goto fail;
  }
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if ((r = vkCreateFence (ctx->device, &fci, NULL, &ctx->fence)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkCreateFence");
    goto fail;
  }

  t = cel_now ();
  ctx->startup.device_ms = (t - ctx->created_at) * 1e3 - ctx->startup.instance_ms;
  if (o->pipeline_cache_path)
    ctx->pipeline_cache_path = *o->pipeline_cache_path ? strdup (o->pipeline_cache_path) : NULL;
  else
    ctx->pipeline_cache_path = default_cache_path (ctx->physical);
  if ((r = create_pipeline_cache (ctx)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkCreatePipelineCache");
    goto fail;
  }
  ctx->startup.cache_load_ms = (cel_now () - t) * 1e3;
  if ((st = cel_validation_check (ctx)) != CEL_OK)
    goto fail;
  const char *prof = getenv ("CELGAN_PROFILE");
  if (prof && *prof && strcmp (prof, "0") != 0 && (st = cel_context_set_profiling (ctx, true)) != CEL_OK)
    goto fail;
  return CEL_OK;

fail:
  ctx->failed = st;
  return st;
}

void cel_context_destroy (cel_context *ctx) {
  if (!ctx)
    return;
  if (ctx->device) {
    vkDeviceWaitIdle (ctx->device);
    if (!ctx->failed)
      save_pipeline_cache (ctx);
    for (uint32_t i = 0; i < ctx->n_pipelines; i++)
      vkDestroyPipeline (ctx->device, ctx->pipelines[i].pipeline, NULL);
    for (int i = 0; i <= CEL_MAX_BINDINGS; i++) {
      if (ctx->pipeline_layouts[i])
        vkDestroyPipelineLayout (ctx->device, ctx->pipeline_layouts[i], NULL);
      if (ctx->set_layouts[i])
        vkDestroyDescriptorSetLayout (ctx->device, ctx->set_layouts[i], NULL);
    }
    for (int i = 0; i < CEL_SHADER_COUNT; i++) {
      if (ctx->shader_pipeline_layouts[i])
        vkDestroyPipelineLayout (ctx->device, ctx->shader_pipeline_layouts[i], NULL);
      if (ctx->shader_set_layouts[i])
        vkDestroyDescriptorSetLayout (ctx->device, ctx->shader_set_layouts[i], NULL);
      if (ctx->modules[i])
        vkDestroyShaderModule (ctx->device, ctx->modules[i], NULL);
    }
    if (ctx->pipeline_cache)
      vkDestroyPipelineCache (ctx->device, ctx->pipeline_cache, NULL);
    if (ctx->fence)
      vkDestroyFence (ctx->device, ctx->fence, NULL);
    if (ctx->command_pool)
      vkDestroyCommandPool (ctx->device, ctx->command_pool, NULL);
    vkDestroyDevice (ctx->device, NULL);
  }
  if (ctx->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
      (PFN_vkDestroyDebugUtilsMessengerEXT) vkGetInstanceProcAddr (ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy_messenger)
      destroy_messenger (ctx->instance, ctx->messenger, NULL);
  }
  if (ctx->instance)
    vkDestroyInstance (ctx->instance, NULL);
  free (ctx->pipelines);
  free (ctx->prof_ops);
  free (ctx->pipeline_cache_path);
  free (ctx->validation_log);
  free (ctx);
}

const char *cel_context_last_error (const cel_context *ctx) {
  return ctx ? ctx->error : "no context (out of host memory)";
}

void cel_context_startup_stats (const cel_context *ctx, cel_startup_stats *out) {
  *out = ctx->startup;
}

const cel_device_info *cel_context_device (const cel_context *ctx) {
  return &ctx->info;
}

cel_status cel_context_limit_allocation (cel_context *ctx, uint64_t bytes) {
  if (!ctx)
    return CEL_ERROR_INVALID_ARGUMENT;
  ctx->max_allocation = bytes && (!ctx->device_max_allocation || bytes < ctx->device_max_allocation)
                          ? bytes : ctx->device_max_allocation;
  return CEL_OK;
}

cel_status cel_context_set_texel_reads (cel_context *ctx, bool on) {
  if (!ctx)
    return CEL_ERROR_INVALID_ARGUMENT;
  if (on && !ctx->texel_supported)
    return cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "the device cannot read float uniform texel buffers");
  ctx->texel_reads = on;
  return CEL_OK;
}

bool cel_context_texel_reads (const cel_context *ctx) {
  return ctx && ctx->texel_reads;
}

uint64_t cel_context_device_bytes (const cel_context *ctx) {
  return ctx->device_bytes;
}

uint64_t cel_context_peak_device_bytes (const cel_context *ctx) {
  return ctx->peak_device_bytes;
}

/* ---- buffers and submission ------------------------------------------------------------------- */

static int32_t find_memory_type (cel_context *ctx, uint32_t bits, VkMemoryPropertyFlags want) {
  for (uint32_t i = 0; i < ctx->memory.memoryTypeCount; i++)
    if ((bits & (1u << i)) && (ctx->memory.memoryTypes[i].propertyFlags & want) == want)
      return (int32_t) i;
  return -1;
}

cel_status cel_buffer_create (cel_context *ctx, VkDeviceSize size, bool host_visible, const char *what,
                              cel_buffer *out) {
  memset (out, 0, sizeof *out);
  if (size == 0)
    size = 16;
  if (ctx->budget && ctx->device_bytes + size > ctx->budget)
    return cel_set_error (ctx, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                          "out of device memory: %s needs %.1f MiB but only %.1f MiB of the %.1f MiB budget are left "
                          "(try a smaller tile size)", what, size / 1048576.0,
                          (ctx->budget - ctx->device_bytes) / 1048576.0, ctx->budget / 1048576.0);
  if (ctx->max_allocation && size > ctx->max_allocation)
    return cel_set_error (ctx, CEL_ERROR_OUT_OF_DEVICE_MEMORY,
                          "%s needs %.1f MiB in one allocation; the device allows at most %.1f MiB (try a smaller tile size)",
                          what, size / 1048576.0, ctx->max_allocation / 1048576.0);
  VkBufferCreateInfo bci = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT |
                                      (ctx->texel_supported ? VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT : 0),
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
  VkResult r = vkCreateBuffer (ctx->device, &bci, NULL, &out->buffer);
  if (r != VK_SUCCESS) {
    out->buffer = VK_NULL_HANDLE;
    return cel_vk_error (ctx, r, "vkCreateBuffer");
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (ctx->device, out->buffer, &req);
  int32_t type;
  if (host_visible) {
    type = find_memory_type (ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                        VK_MEMORY_PROPERTY_HOST_COHERENT_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (type < 0)
      type = find_memory_type (ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
  } else {
    type = find_memory_type (ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0)
      type = find_memory_type (ctx, req.memoryTypeBits, 0);
  }
  cel_status st;
  if (type < 0) {
    st = cel_set_error (ctx, CEL_ERROR_UNSUPPORTED, "no suitable memory type for %s", what);
    goto fail;
  }
  VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t) type };
  r = vkAllocateMemory (ctx->device, &mai, NULL, &out->memory);
  if (r != VK_SUCCESS) {
    out->memory = VK_NULL_HANDLE;
    st = cel_vk_error (ctx, r, what);
    goto fail;
  }
  if ((r = vkBindBufferMemory (ctx->device, out->buffer, out->memory, 0)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkBindBufferMemory");
    goto fail;
  }
  if (host_visible && (r = vkMapMemory (ctx->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped)) != VK_SUCCESS) {
    st = cel_vk_error (ctx, r, "vkMapMemory");
    goto fail;
  }
  out->size = req.size;
  ctx->device_bytes += req.size;
  if (ctx->device_bytes > ctx->peak_device_bytes)
    ctx->peak_device_bytes = ctx->device_bytes;
  return CEL_OK;

fail:
  if (out->memory)
    vkFreeMemory (ctx->device, out->memory, NULL);
  vkDestroyBuffer (ctx->device, out->buffer, NULL);
  memset (out, 0, sizeof *out);
  return st;
}

void cel_buffer_destroy (cel_context *ctx, cel_buffer *buf) {
  if (!buf->buffer)
    return;
  vkDestroyBuffer (ctx->device, buf->buffer, NULL);
  if (buf->memory) {
    vkFreeMemory (ctx->device, buf->memory, NULL);
    ctx->device_bytes -= buf->size;
  }
  memset (buf, 0, sizeof *buf);
}

cel_status cel_oneshot_begin (cel_context *ctx, VkCommandBuffer *cmd) {
  VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                     .commandPool = ctx->command_pool,
                                     .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                     .commandBufferCount = 1 };
  VkResult r = vkAllocateCommandBuffers (ctx->device, &ai, cmd);
  if (r != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                  .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
  if ((r = vkBeginCommandBuffer (*cmd, &bi)) != VK_SUCCESS) {
    vkFreeCommandBuffers (ctx->device, ctx->command_pool, 1, cmd);
    return cel_vk_error (ctx, r, "vkBeginCommandBuffer");
  }
  return CEL_OK;
}

cel_status cel_submit_and_wait (cel_context *ctx, VkCommandBuffer cmd) {
  VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd };
  VkResult r = vkResetFences (ctx->device, 1, &ctx->fence);
  if (r != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkResetFences");
  if ((r = vkQueueSubmit (ctx->queue, 1, &si, ctx->fence)) != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkQueueSubmit");
  if ((r = vkWaitForFences (ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
    return cel_vk_error (ctx, r, "vkWaitForFences");
  return cel_validation_check (ctx);
}

cel_status cel_oneshot_submit (cel_context *ctx, VkCommandBuffer cmd) {
  VkResult r = vkEndCommandBuffer (cmd);
  cel_status st = r == VK_SUCCESS ? cel_submit_and_wait (ctx, cmd) : cel_vk_error (ctx, r, "vkEndCommandBuffer");
  vkFreeCommandBuffers (ctx->device, ctx->command_pool, 1, &cmd);
  return st;
}
