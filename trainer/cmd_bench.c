/* celgan bench: times a model's forward pass on the device at given sizes (planning excluded, median of
 * several runs), optionally a tiled run with its peak device memory, and the device's FMA throughput (the limit
 * the runs are a fraction of). Used by bench/run.sh and bench/speed.sh. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double (const void *a, const void *b) {
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static char *read_file (const char *path) {
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  fseek (f, 0, SEEK_END);
  long n = ftell (f);
  fseek (f, 0, SEEK_SET);
  char *s = malloc ((size_t) n + 1);
  if (s && fread (s, 1, (size_t) n, f) == (size_t) n)
    s[n] = 0;
  else {
    free (s);
    s = NULL;
  }
  fclose (f);
  return s;
}

int cmd_bench (int argc, char **argv) {
  const char *model_path = NULL, *config = NULL, *device = NULL, *sizes = "256,512";
  int runs = 5, tiled = 0, tiled_h = 0, tile = 1024, profile = 0, fma = 0;
  static const struct option opts[] = { { "model", required_argument, NULL, 'm' }, { "config", required_argument, NULL, 'c' },
                                        { "sizes", required_argument, NULL, 's' }, { "runs", required_argument, NULL, 'n' },
                                        { "gpu", required_argument, NULL, 'g' },   { "tiled", required_argument, NULL, 'T' },
                                        { "tile", required_argument, NULL, 't' },  { "help", no_argument, NULL, 'h' },
                                        { "profile", no_argument, NULL, 'P' },   { "fma", no_argument, NULL, 'F' },
                                        { 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "m:c:s:n:g:t:T:h", opts, NULL)) != -1) {
    switch (c) {
    case 'm': model_path = optarg; break;
    case 'c': config = optarg; break;
    case 's': sizes = optarg; break;
    case 'n': runs = atoi (optarg); break;
    case 'g': device = optarg; break;
    case 'T': { /* S or WxH */
      char *end = NULL;
      tiled = tiled_h = (int) strtol (optarg, &end, 10);
      if (end && (*end == 'x' || *end == 'X'))
        tiled_h = (int) strtol (end + 1, &end, 10);
      if (!end || *end || tiled < 1 || tiled_h < 1) {
        cli_error ("bad --tiled size '%s' (S or WxH)", optarg);
        return EXIT_USAGE;
      }
      break;
    }
    case 't': tile = atoi (optarg); break;
    case 'P': profile = 1; break;
    case 'F': fma = 1; break;
    default:
      puts ("Usage: celgan bench (-m MODEL | -c CONFIG.json) [-s 256,512x288,...] [-n RUNS] [-g DEVICE]\n"
            "                    [--tiled SIZE [-t TILE]] [--profile] [--fma]\n"
            "       celgan bench --fma [-g DEVICE]\n\n"
            "Times the model's forward pass at each size (S for S x S, or WxH): planning once, then the median of\n"
            "RUNS runs (inputs uploaded, output read back). With -c, a model with fresh random weights is made\n"
            "from an architecture file. --tiled SIZE (S or WxH) also stylizes an image of that size through the tiled\n"
            "path and reports its time and peak device memory. --fma first measures the device's fp32 FMA throughput (a\n"
            "shader of independent vec4 FMAs, best of a few chain counts). Prints one line per measurement:\n"
            "  fma gflops=F chains=C\n"
            "  bench size=S plan_ms=P run_ms=R gmac=G            (size=WxH when not square)\n"
            "  tiled size=S ms=T tile=N tiles=K segments=M peak_mib=X gmac=G   (size=WxH when not square)\n"
            "  tiled_host build_ms=B plan_ms=P copy_in_ms=I run_ms=R copy_out_ms=O memory_ms=M   (host time of the tiled\n"
            "             run's phases; memory: taking and freeing the host memory of what segments hand on)\n"
            "--profile adds each size's GPU time per shader over the timed runs (device timestamps).");
      return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
  }
  char err[1024], tmp[] = "/tmp/celgan-bench-XXXXXX.safetensors";
  bool made = false;
  if (config) {
    char *arch = read_file (config);
    int fd = mkstemps (tmp, 12);
    if (!arch || fd < 0) {
      cli_error ("cannot read '%s'", config);
      free (arch);
      return EXIT_IO;
    }
    close (fd);
    cel_status st = cel_model_create_file (tmp, arch, 1, NULL, 0, err, sizeof err);
    free (arch);
    if (st) {
      cli_error ("%s", err);
      return EXIT_BAD_MODEL;
    }
    model_path = tmp;
    made = true;
  }
  if (!model_path && !fma) {
    cli_error ("bench needs -m MODEL, -c CONFIG or --fma");
    return EXIT_USAGE;
  }
  if (runs < 1) {
    cli_error ("--runs must be at least 1");
    return EXIT_USAGE;
  }
  cel_model *m = NULL;
  cel_status st = model_path ? cel_model_load (model_path, &m, err, sizeof err) : CEL_OK;
  if (made)
    remove (tmp);
  if (st) {
    cli_error ("%s", err);
    return EXIT_BAD_MODEL;
  }
  cel_context *ctx = cli_context (device);
  if (!ctx) {
    cel_model_free (m);
    return EXIT_NO_DEVICE;
  }
  if (fma) {
    double gflops;
    uint32_t chains;
    if ((st = cel_device_fma_gflops (ctx, &gflops, &chains))) {
      cli_error ("fma: %s", cel_context_last_error (ctx));
      cel_context_destroy (ctx);
      cel_model_free (m);
      return cli_exit_code (st);
    }
    printf ("device: %s\nfma gflops=%.1f chains=%u\n", cel_context_device (ctx)->name, gflops, chains);
    fflush (stdout);
    if (!m) {
      cel_context_destroy (ctx);
      return EXIT_OK;
    }
  }
  if (profile && cel_context_set_profiling (ctx, true)) {
    cli_error ("%s", cel_context_last_error (ctx));
    cel_context_destroy (ctx);
    cel_model_free (m);
    return EXIT_NO_DEVICE;
  }
  const cel_model_info *mi = cel_model_get_info (m);
  printf ("device: %s\nmodel: %s (%lld parameters)\n", cel_context_device (ctx)->name, mi->name[0] ? mi->name : model_path,
          (long long) mi->parameters);
  int code = EXIT_OK;
  char *list = strdup (sizes);
  for (char *save = NULL, *tok = strtok_r (list, ",", &save); tok && code == EXIT_OK; tok = strtok_r (NULL, ",", &save)) {
    /* S or WxH */
    char *end = NULL;
    int32_t w = (int32_t) strtol (tok, &end, 10), h = w;
    if (end && (*end == 'x' || *end == 'X'))
      h = (int32_t) strtol (end + 1, &end, 10);
    if (!end || *end || w < 1 || h < 1) {
      cli_error ("bad size '%s' (S or WxH)", tok);
      code = EXIT_USAGE;
      break;
    }
    cel_graph *g = NULL;
    cel_node x, r = CEL_NO_NODE, y;
    size_t n = (size_t) mi->in_channels * h * w, no = (size_t) mi->out_channels * h * mi->scale * w * mi->scale;
    float *in = malloc (n * sizeof *in), *out = malloc (no * sizeof *out);
    for (size_t i = 0; i < n; i++)
      in[i] = (float) ((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    double t0 = now (), t1 = 0;
    st = cel_graph_create (ctx, &g);
    if (!st) st = cel_graph_input (g, "image", (cel_shape) { 1, mi->in_channels, h, w }, &x);
    /* reference-guided models: a reference of the image's size (the input reversed), timed with the image */
    if (!st && mi->needs_reference) st = cel_graph_input (g, "reference", (cel_shape) { 1, mi->in_channels, h, w }, &r);
    if (!st) st = cel_model_build (m, g, x, r, &y);
    if (!st) st = cel_graph_mark_output (g, y);
    if (!st) st = cel_graph_set_data (g, x, in, n);
    for (size_t i = 0; i < n / 2 && r != CEL_NO_NODE; i++) {
      float t = in[i];
      in[i] = in[n - 1 - i];
      in[n - 1 - i] = t;
    }
    if (!st && r != CEL_NO_NODE) st = cel_graph_set_data (g, r, in, n);
    if (!st) st = cel_graph_plan (g);
    if (!st) {
      t1 = now ();
      st = cel_graph_run (g); /* warm-up (pipeline compilation on first use, parameter upload) */
      cel_context_profile_report (ctx, NULL);
      cel_context_profile_report_ops (ctx, NULL, 0);
    }
    double *ms = calloc ((size_t) runs, sizeof *ms);
    for (int r = 0; r < runs && !st; r++) {
      double a = now ();
      st = cel_graph_run (g);
      if (!st)
        st = cel_graph_get_data (g, y, out, no);
      ms[r] = (now () - a) * 1e3;
    }
    char label[32];
    if (w == h)
      snprintf (label, sizeof label, "%d", w);
    else
      snprintf (label, sizeof label, "%dx%d", w, h);
    if (st) {
      cli_error ("size %s: %s", label, cel_context_last_error (ctx));
      code = cli_exit_code (st);
    } else {
      qsort (ms, (size_t) runs, sizeof *ms, cmp_double);
      double macs = 0;
      cel_model_macs (m, w, h, &macs);
      printf ("bench size=%s plan_ms=%.1f run_ms=%.2f gmac=%.3f\n", label, (t1 - t0) * 1e3, ms[runs / 2], macs / 1e9);
      if (profile) {
        printf ("profile size=%s, %d runs:\n", label, runs);
        cel_context_profile_report (ctx, stdout);
        cel_context_profile_report_ops (ctx, stdout, 30);
      }
      fflush (stdout);
    }
    free (ms);
    free (in);
    free (out);
    cel_graph_destroy (g);
  }
  free (list);
  if (tiled > 0 && code == EXIT_OK) {
    size_t n = (size_t) tiled * tiled_h * 3;
    float *img = malloc (n * sizeof *img), *out = malloc (n * (size_t) mi->scale * mi->scale * sizeof *out);
    cel_stylizer *sty = NULL;
    if (!img || !out) {
      cli_error ("out of host memory for a %dx%d image", tiled, tiled_h);
      code = EXIT_FAILURE_GENERIC;
    } else {
      for (size_t i = 0; i < n; i++)
        img[i] = (float) ((i * 2654435761u) % 1000) / 1000.0f;
      cel_stylize_options o = { .tile = tile };
      cel_stylize_report rep;
      double a = now ();
      st = cel_stylizer_create (ctx, m, &sty);
      if (!st)
        st = cel_stylize (sty, img, tiled, tiled_h, 3, mi->needs_reference ? img : NULL, mi->needs_reference ? tiled : 0,
                          mi->needs_reference ? tiled_h : 0, 3, &o, out, &rep);
      if (st) {
        cli_error ("tiled %dx%d: %s", tiled, tiled_h, cel_context_last_error (ctx));
        code = cli_exit_code (st);
      } else {
        double ms = (now () - a) * 1e3, macs = 0;
        cel_model_macs (m, tiled, tiled_h, &macs);
        char label[32];
        if (tiled == tiled_h)
          snprintf (label, sizeof label, "%d", tiled);
        else
          snprintf (label, sizeof label, "%dx%d", tiled, tiled_h);
        printf ("tiled size=%s ms=%.0f tile=%d tiles=%d segments=%d peak_mib=%.1f gmac=%.3f\n", label, ms, rep.tile,
                rep.tiles, rep.segments, cel_context_peak_device_bytes (ctx) / 1048576.0, macs / 1e9);
        printf ("tiled_host build_ms=%.0f plan_ms=%.0f copy_in_ms=%.0f run_ms=%.0f copy_out_ms=%.0f memory_ms=%.0f\n",
                rep.build_ms, rep.plan_ms, rep.copy_in_ms, rep.run_ms, rep.copy_out_ms, rep.memory_ms);
      }
    }
    cel_stylizer_destroy (sty);
    free (img);
    free (out);
  }
  cel_context_destroy (ctx);
  cel_model_free (m);
  return code;
}
