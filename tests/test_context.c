/* The context's start-up: the pipeline cache on disk is written where the XDG spec says, reused by the next
 * context, not rewritten when unchanged, and a corrupt, truncated or foreign file is ignored without an error
 * (and replaced); the start-up figures count what was created. Each context here is a fresh one, as a second
 * `celgan apply` run would make. And the device's FMA microbenchmark (core/peak.c). */
#include "opcheck.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 56 /* core/context.c cache_file_header */

static char cache_home[256];

static cel_context *new_context (const char *cache_path) {
  cel_context_options o = { .device = getenv ("CELGAN_TEST_DEVICE"), .pipeline_cache_path = cache_path };
  cel_context *ctx = NULL;
  if (cel_context_create (&o, &ctx) != CEL_OK) {
    printf ("Bail out! cannot create a Vulkan context: %s\n", cel_context_last_error (ctx));
    exit (1);
  }
  return ctx;
}

/* y = relu (2 x + 1) + x on a small input, checked: two pipelines. */
static bool run_small_graph (cel_context *ctx) {
  cel_graph *g = NULL;
  cel_node x, s, r, y;
  float in[16], out[16];
  for (int i = 0; i < 16; i++)
    in[i] = (float) i - 8.0f;
  bool ok = cel_graph_create (ctx, &g) == CEL_OK && cel_graph_input (g, "x", (cel_shape) { 1, 1, 4, 4 }, &x) == CEL_OK &&
            cel_scale_shift (g, x, 2, 1, &s) == CEL_OK && cel_activate (g, s, CEL_ACT_RELU, 0, &r) == CEL_OK &&
            cel_add (g, r, x, 1, 1, &y) == CEL_OK && cel_graph_mark_output (g, y) == CEL_OK &&
            cel_graph_set_data (g, x, in, 16) == CEL_OK && cel_graph_run (g) == CEL_OK &&
            cel_graph_get_data (g, y, out, 16) == CEL_OK;
  for (int i = 0; i < 16 && ok; i++) {
    float want = (2 * in[i] + 1 > 0 ? 2 * in[i] + 1 : 0) + in[i];
    ok = out[i] == want;
  }
  if (!ok)
    tap_diag ("  small graph failed: %s", cel_context_last_error (ctx));
  cel_graph_destroy (g);
  return ok;
}

/* The one cache file in $XDG_CACHE_HOME/celgan (into path); counts every file there, temporaries included. */
static int cache_files (char *path, size_t len) {
  char dir[512];
  snprintf (dir, sizeof dir, "%s/celgan", cache_home);
  DIR *d = opendir (dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir (d)))
    if (e->d_name[0] != '.') {
      n++;
      snprintf (path, len, "%s/%s", dir, e->d_name);
    }
  closedir (d);
  return n;
}

static long file_size (const char *path) {
  struct stat sb;
  return stat (path, &sb) == 0 ? (long) sb.st_size : -1;
}

static unsigned char *read_all (const char *path, long *len) {
  *len = file_size (path);
  FILE *f = fopen (path, "rb");
  unsigned char *p = *len > 0 && f ? malloc ((size_t) *len) : NULL;
  if (p && fread (p, 1, (size_t) *len, f) != (size_t) *len) {
    free (p);
    p = NULL;
  }
  if (f)
    fclose (f);
  return p;
}

static void write_all (const char *path, const void *p, long len) {
  FILE *f = fopen (path, "wb");
  if (!f || fwrite (p, 1, (size_t) len, f) != (size_t) len) {
    printf ("Bail out! cannot write %s\n", path);
    exit (1);
  }
  fclose (f);
}

static uint64_t fnv1a (const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* A context on a cache file changed by the caller: it must start without error, say the file was ignored,
 * compute correctly, and leave a good file behind (the next context loads it). */
static void check_ignored (const char *path, const char *name) {
  cel_context *ctx = new_context (NULL);
  cel_startup_stats s;
  cel_context_startup_stats (ctx, &s);
  tap_ok (s.cache_ignored && s.cache_loaded_bytes == 0, "/context/pipeline_cache/%s/ignored", name);
  tap_ok (run_small_graph (ctx), "/context/pipeline_cache/%s/computes", name);
  cel_context_destroy (ctx);
  ctx = new_context (NULL);
  cel_context_startup_stats (ctx, &s);
  tap_ok (!s.cache_ignored && s.cache_loaded_bytes > 0 && (long) s.cache_loaded_bytes == file_size (path) - HEADER_BYTES,
          "/context/pipeline_cache/%s/replaced_by_a_good_file", name);
  cel_context_destroy (ctx);
}

int main (void) {
  snprintf (cache_home, sizeof cache_home, "/tmp/celgan-test-context-XXXXXX");
  if (!mkdtemp (cache_home)) {
    printf ("Bail out! cannot make a temporary folder\n");
    return 1;
  }
  setenv ("XDG_CACHE_HOME", cache_home, 1);
  char path[1024] = "";

  /* first run: nothing on disk */
  cel_context *ctx = new_context (NULL);
  cel_startup_stats s;
  cel_context_startup_stats (ctx, &s);
  tap_diag ("device: %s", cel_context_device (ctx)->name);
  tap_ok (!s.cache_ignored && s.cache_loaded_bytes == 0 && s.pipelines_created == 0 && s.first_run_ms < 0,
          "/context/startup/fresh_context_has_no_cache_and_no_pipelines");
  tap_ok (run_small_graph (ctx), "/context/startup/computes");
  cel_context_startup_stats (ctx, &s);
  tap_ok (s.pipelines_created == 3 && s.first_run_ms >= 0 && s.instance_ms > 0,
          "/context/startup/counts_the_pipelines_and_the_first_run");
  tap_ok (run_small_graph (ctx) && (cel_context_startup_stats (ctx, &s), s.pipelines_created == 3),
          "/context/startup/pipelines_made_once_per_context");
  cel_context_destroy (ctx);
  int n = cache_files (path, sizeof path);
  tap_ok (n == 1 && strstr (path, "/celgan/pipelines-") && file_size (path) > HEADER_BYTES,
          "/context/pipeline_cache/written_under_xdg_cache_home");
  if (n != 1)
    tap_diag ("  %d files in %s/celgan", n, cache_home);

  /* second run: the file is read, and left alone when nothing new was compiled */
  struct stat before, after;
  stat (path, &before);
  ctx = new_context (NULL);
  cel_context_startup_stats (ctx, &s);
  tap_ok (!s.cache_ignored && (long) s.cache_loaded_bytes == file_size (path) - HEADER_BYTES,
          "/context/pipeline_cache/loaded_by_the_next_context");
  tap_ok (run_small_graph (ctx), "/context/pipeline_cache/computes_with_the_loaded_cache");
  cel_context_startup_stats (ctx, &s);
  tap_diag ("  %u pipelines, %u cache hits by the driver's account, %llu cache bytes", s.pipelines_created,
            s.pipeline_cache_hits, (unsigned long long) s.cache_loaded_bytes);
  cel_context_destroy (ctx);
  stat (path, &after);
  tap_ok (before.st_ino == after.st_ino && cache_files (path, sizeof path) == 1,
          "/context/pipeline_cache/unchanged_cache_not_rewritten");

  /* bad files: each ignored with no error, and replaced */
  long len;
  unsigned char *good = read_all (path, &len);
  if (!good) {
    printf ("Bail out! cannot read %s\n", path);
    return 1;
  }
  unsigned char *bad = malloc ((size_t) len + 1);
  for (long i = 0; i < len; i++)
    bad[i] = (unsigned char) (i * 131 + 7);
  write_all (path, bad, len);
  check_ignored (path, "garbage");
  write_all (path, bad, 0);
  check_ignored (path, "empty");
  write_all (path, good, len - 1);
  check_ignored (path, "truncated");
  memcpy (bad, good, (size_t) len);
  bad[len] = 0;
  write_all (path, bad, len + 1);
  check_ignored (path, "trailing_bytes");
  memcpy (bad, good, (size_t) len);
  bad[len - 1] ^= 0x40; /* in the driver's data: the checksum catches it */
  write_all (path, bad, len);
  check_ignored (path, "flipped_byte");
  memcpy (bad, good, (size_t) len);
  bad[48] ^= 1; /* the checksum */
  write_all (path, bad, len);
  check_ignored (path, "wrong_checksum");
  memcpy (bad, good, (size_t) len);
  bad[20] ^= 1; /* the driver version in our header: another driver build */
  write_all (path, bad, len);
  check_ignored (path, "other_driver_version");
  memcpy (bad, good, (size_t) len);
  bad[24] ^= 1; /* the pipeline cache UUID */
  write_all (path, bad, len);
  check_ignored (path, "other_cache_uuid");
  memcpy (bad, good, (size_t) len);
  bad[HEADER_BYTES + 8] ^= 1; /* the vendor in the driver's own header, with a checksum that matches */
  uint64_t h = fnv1a (bad + HEADER_BYTES, (size_t) (len - HEADER_BYTES));
  memcpy (bad + 48, &h, 8);
  write_all (path, bad, len);
  check_ignored (path, "driver_header_of_another_device");
  free (bad);
  free (good);

  /* "" keeps nothing on disk */
  remove (path);
  ctx = new_context ("");
  tap_ok (run_small_graph (ctx), "/context/pipeline_cache/none/computes");
  cel_context_destroy (ctx);
  tap_ok (cache_files (path, sizeof path) == 0, "/context/pipeline_cache/none/writes_nothing");

  /* the FMA microbenchmark: a positive rate, from one of the chain counts it tries */
  ctx = new_context ("");
  double gflops = 0;
  uint32_t chains = 0;
  cel_status st = cel_device_fma_gflops (ctx, &gflops, &chains);
  tap_ok (st == CEL_OK && gflops > 0 && (chains == 1 || chains == 2 || chains == 3 || chains == 4 || chains == 6 ||
          chains == 8), "/context/fma_peak/measures");
  tap_diag ("  %.1f GFLOP/s with %u chains", gflops, chains);
  cel_context_destroy (ctx);

  char dir[512];
  snprintf (dir, sizeof dir, "%s/celgan", cache_home);
  rmdir (dir);
  rmdir (cache_home);
  return tap_finish ();
}
