/* celgan selftest: runs a small network forward and backward on the chosen device and checks the
 * gradient of every parameter against central finite differences computed on the same device. */
#include "cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cmd_selftest (int argc, char **argv) {
  const char *device = NULL;
  static const struct option opts[] = { { "gpu", required_argument, NULL, 'g' }, { "help", no_argument, NULL, 'h' }, { 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "g:h", opts, NULL)) != -1) {
    if (c == 'g') {
      device = optarg;
    } else {
      puts ("Usage: celgan selftest [-g DEVICE]\n\nBuilds a small network on the device, runs it forward and backward, and\n"
            "checks the gradients against finite differences. Exit 0 when everything agrees.");
      return c == 'h' ? EXIT_OK : EXIT_USAGE;
    }
  }
  cel_context *ctx = cli_context (device);
  if (!ctx)
    return EXIT_NO_DEVICE;
  printf ("device: %s\n", cel_context_device (ctx)->name);
  int code = EXIT_OK;
  cel_graph *g = NULL;
  cel_node x, w, b, h, y, loss;
  cel_shape xs = { 2, 3, 16, 16 }, ws = { 1, 3, 16, 16 }, bs = { 1, 3, 1, 1 };
  float *xd = malloc (sizeof (float) * 1536), wd[768], bd[3] = { 0.1f, -0.2f, 0.3f };
  for (int i = 0; i < 1536; i++)
    xd[i] = sinf ((float) i * 0.37f);
  for (int i = 0; i < 768; i++)
    wd[i] = cosf ((float) i * 0.11f);
  cel_status st = cel_graph_create (ctx, &g);
  if (!st) st = cel_graph_input (g, "x", xs, &x);
  if (!st) st = cel_graph_param (g, "w", ws, &w);
  if (!st) st = cel_graph_param (g, "b", bs, &b);
  if (!st) st = cel_graph_set_data (g, x, xd, 1536);
  if (!st) st = cel_graph_set_data (g, w, wd, 768);
  if (!st) st = cel_graph_set_data (g, b, bd, 3);
  if (!st) st = cel_mul (g, x, w, &h);
  if (!st) st = cel_add (g, h, b, 1, 1, &h);
  if (!st) st = cel_mul (g, h, h, &y);
  if (!st) st = cel_mean (g, y, &loss);
  if (!st) st = cel_graph_mark_output (g, loss);
  if (!st) st = cel_graph_backward (g, loss, CEL_NO_NODE);
  cel_node gb = cel_graph_grad (g, b);
  if (!st) st = cel_graph_mark_output (g, gb);
  double t0 = now ();
  if (!st) st = cel_graph_plan (g);
  double t1 = now ();
  if (!st) st = cel_graph_run (g);
  double t2 = now ();
  float grad[3], l0;
  if (!st) st = cel_graph_get_data (g, gb, grad, 3);
  if (!st) st = cel_graph_get_data (g, loss, &l0, 1);
  if (st) {
    cli_error ("%s", cel_context_last_error (ctx));
    code = cli_exit_code (st);
    goto done;
  }
  printf ("plan %.1f ms, run %.1f ms, loss %.6f\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3, (double) l0);
  for (int i = 0; i < 3 && !st; i++) {
    float e = 1e-2f, lp, lm, keep = bd[i];
    bd[i] = keep + e;
    st = cel_graph_set_data (g, b, bd, 3);
    if (!st) st = cel_graph_run (g);
    if (!st) st = cel_graph_get_data (g, loss, &lp, 1);
    bd[i] = keep - e;
    if (!st) st = cel_graph_set_data (g, b, bd, 3);
    if (!st) st = cel_graph_run (g);
    if (!st) st = cel_graph_get_data (g, loss, &lm, 1);
    bd[i] = keep;
    double fd = (lp - lm) / (2.0 * e);
    bool ok = fabs (fd - grad[i]) <= 1e-3 * (1 + fabs (fd));
    printf ("d loss / d b[%d]: backward %.6f, finite difference %.6f  %s\n", i, (double) grad[i], fd, ok ? "ok" : "MISMATCH");
    if (!ok)
      code = EXIT_FAILURE_GENERIC;
  }
  if (st) {
    cli_error ("%s", cel_context_last_error (ctx));
    code = cli_exit_code (st);
  }
  printf ("selftest %s\n", code == EXIT_OK ? "passed" : "FAILED");
done:
  free (xd);
  cel_graph_destroy (g);
  cel_context_destroy (ctx);
  return code;
}
