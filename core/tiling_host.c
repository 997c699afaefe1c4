/* Host memory of tiled execution (tiling.c): a pool of buffers for the tensors segments hand on, and copies of
 * planar windows, threaded on GPUs. */
#include "tiling.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A host buffer of at least n floats for a boundary tensor: the smallest pooled one that fits, else a new one.
 * A boundary lives from its segment to the last segment that reads it, so a model's 25 segments hold a few
 * full-size tensors at a time, not 25 (at 8192x8192 each 64-channel one is 16 GiB), and reused pages are not
 * faulted in again. */
float *cel_host_pool_take (cel_host_pool *pool, size_t n, size_t *got) {
  int32_t best = -1;
  for (int32_t k = 0; k < pool->n; k++)
    if (pool->entries[k].floats >= n && (best < 0 || pool->entries[k].floats < pool->entries[best].floats))
      best = k;
  if (best >= 0) {
    float *p = pool->entries[best].p;
    *got = pool->entries[best].floats;
    pool->entries[best] = pool->entries[--pool->n];
    return p;
  }
  /* none fits: the largest pooled one (too small) goes back to the system before a new one is taken */
  if (pool->n > 0) {
    int32_t big = 0;
    for (int32_t k = 1; k < pool->n; k++)
      if (pool->entries[k].floats > pool->entries[big].floats)
        big = k;
    free (pool->entries[big].p);
    pool->entries[big] = pool->entries[--pool->n];
  }
  *got = n;
  return malloc (n * sizeof (float));
}

void cel_host_pool_give (cel_host_pool *pool, float *p, size_t n) {
#ifndef NDEBUG
  /* debug builds (the tests) poison it: a boundary given back while a later segment still reads it would feed
   * NaN to that segment instead of passing unnoticed until a pooled buffer is reused */
  for (size_t k = 0; k < n; k++)
    p[k] = NAN;
#endif
  if (pool->n < CEL_HOST_POOL_MAX) {
    pool->entries[pool->n].p = p;
    pool->entries[pool->n++].floats = n;
  } else {
    free (p);
  }
}

void cel_host_pool_clear (cel_host_pool *pool) {
  for (int32_t k = 0; k < pool->n; k++)
    free (pool->entries[k].p);
  pool->n = 0;
}

static void *plane_copy_run (void *arg) {
  const cel_plane_copy *pc = arg;
  for (int32_t c = pc->c0; c < pc->c1; c++)
    for (int32_t y = 0; y < pc->h; y++)
      memcpy (pc->dst + c * pc->dst_plane + y * pc->dst_row, pc->src + c * pc->src_plane + y * pc->src_row,
              (size_t) pc->w * sizeof (float));
  return NULL;
}

/* Runs a plane copy on up to 8 threads (planes split between them) where it moves more than 16 MiB and the
 * device is a GPU: the windows of a 64-channel tensor at full resolution are hundreds of MiB, which one
 * thread copies at a few GB/s. On lavapipe the cores are the device's, so one thread. CELGAN_COPY_THREADS
 * sets the count for copies of any size (1: serial), for measuring and for the tests. */
void cel_copy_planes (const cel_context *ctx, cel_plane_copy pc) {
  long n = ctx->info.is_cpu ? 1 : sysconf (_SC_NPROCESSORS_ONLN);
  const char *env = getenv ("CELGAN_COPY_THREADS");
  if (env && *env)
    n = strtol (env, NULL, 10); /* for any size: the tests split their small windows too */
  else if ((size_t) pc.C * pc.h * pc.w * sizeof (float) < ((size_t) 16 << 20))
    n = 1;
  n = n < 1 ? 1 : n > 8 ? 8 : n;
  if (n > pc.C)
    n = pc.C;
  pthread_t th[8];
  cel_plane_copy part[8];
  bool started[8] = { false };
  for (int32_t t = 0; t < n; t++) {
    part[t] = pc;
    part[t].c0 = (int32_t) ((int64_t) pc.C * t / n);
    part[t].c1 = (int32_t) ((int64_t) pc.C * (t + 1) / n);
  }
  for (int32_t t = 1; t < n; t++)
    started[t] = pthread_create (&th[t], NULL, plane_copy_run, &part[t]) == 0;
  for (int32_t t = 0; t < n; t++)
    if (!started[t]) /* this thread's share, and those of threads that did not start */
      plane_copy_run (&part[t]);
  for (int32_t t = 1; t < n; t++)
    if (started[t])
      pthread_join (th[t], NULL);
}
