/* celgan: stylize, train, import and inspect models on any Vulkan device. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int error_rank = -1;

void cli_set_rank (int rank) {
  error_rank = rank;
}

void cli_error (const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  fputs ("celgan: ", stderr);
  if (error_rank >= 0)
    fprintf (stderr, "rank %d: ", error_rank);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

int cli_exit_code (cel_status st) {
  switch (st) {
  case CEL_OK: return EXIT_OK;
  case CEL_ERROR_NO_DEVICE:
  case CEL_ERROR_UNSUPPORTED: return EXIT_NO_DEVICE;
  case CEL_ERROR_FORMAT: return EXIT_BAD_MODEL;
  case CEL_ERROR_IO: return EXIT_IO;
  case CEL_ERROR_OUT_OF_DEVICE_MEMORY:
  case CEL_ERROR_DEVICE_LOST:
  case CEL_ERROR_VULKAN:
  case CEL_ERROR_VALIDATION: return EXIT_DEVICE;
  default: return EXIT_FAILURE_GENERIC;
  }
}

cel_context *cli_context (const char *device) {
  cel_context_options o = { .device = device };
  cel_context *ctx = NULL;
  cel_status st = cel_context_create (&o, &ctx);
  if (st) {
    cli_error ("%s", cel_context_last_error (ctx));
    cel_context_destroy (ctx);
    return NULL;
  }
  return ctx;
}

static void usage (FILE *out) {
  fputs ("Usage: celgan COMMAND [OPTIONS]\n"
         "\n"
         "Commands:\n"
         "  apply       stylize images with a model\n"
         "  bench       time a model on a device (see bench/run.sh)\n"
         "  devices     list the Vulkan devices and the features CelGAN uses\n"
         "  import      convert another project's model (ncnn: waifu2x, Real-ESRGAN, Real-CUGAN; MicroAST)\n"
         "  info        show a model file's metadata, parameters and architecture\n"
         "  selftest    run a small network forward and backward on a device and check it\n"
         "  train       train a style model (a GAN) from a folder of photos and one of style images\n"
         "\n"
         "Run 'celgan COMMAND --help' for a command's options.\n",
         out);
}

int main (int argc, char **argv) {
  if (argc < 2) {
    usage (stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp (cmd, "--help") == 0 || strcmp (cmd, "-h") == 0 || strcmp (cmd, "help") == 0) {
    usage (stdout);
    return EXIT_OK;
  }
  if (strcmp (cmd, "--version") == 0) {
    printf ("celgan %s\n", CELGAN_VERSION);
    return EXIT_OK;
  }
  if (strcmp (cmd, "apply") == 0)
    return cmd_apply (argc - 1, argv + 1);
  if (strcmp (cmd, "bench") == 0)
    return cmd_bench (argc - 1, argv + 1);
  if (strcmp (cmd, "devices") == 0)
    return cmd_devices (argc - 1, argv + 1);
  if (strcmp (cmd, "import") == 0)
    return cmd_import (argc - 1, argv + 1);
  if (strcmp (cmd, "info") == 0)
    return cmd_info (argc - 1, argv + 1);
  if (strcmp (cmd, "selftest") == 0)
    return cmd_selftest (argc - 1, argv + 1);
  if (strcmp (cmd, "train") == 0)
    return cmd_train (argc - 1, argv + 1);
  cli_error ("unknown command '%s' (see 'celgan --help')", cmd);
  return EXIT_USAGE;
}
