/* celgan import: turns other projects' models into CelGAN model files, once, offline. Each format has a file
 * of its own (import_<format>.c); the core only ever loads CelGAN files. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage (FILE *out) {
  fputs ("Usage: celgan import FORMAT SOURCE -o OUTPUT.safetensors [options]\n"
         "\n"
         "Formats:\n"
         "  ncnn MODEL.param [MODEL.bin] | FOLDER\n"
         "                  the peers' ncnn models: waifu2x-, realesrgan- and realcugan-ncnn-vulkan's\n"
         "  microast DIR    MicroAST (reference-guided style transfer): the folder with its four PyTorch checkpoints\n"
         "                  content_encoder_*.pth.tar, style_encoder_*.pth.tar, modulator_*.pth.tar, decoder_*.pth.tar\n"
         "\n"
         "Run 'celgan import FORMAT --help' for a format's options.\n",
         out);
}

int cmd_import (int argc, char **argv) {
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    usage (argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp (argv[1], "ncnn") == 0)
    return import_ncnn (argc, argv);
  if (strcmp (argv[1], "microast") == 0)
    return import_microast (argc - 1, argv + 1);
  cli_error ("import: unknown format '%s' (see 'celgan import --help')", argv[1]);
  return EXIT_USAGE;
}
