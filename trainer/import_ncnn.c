/* celgan import ncnn: the peers' ncnn models (.param/.bin) as CelGAN model files (called by cmd_import.c). */
#include "cli.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage (FILE *out) {
  fputs ("Usage: celgan import ncnn MODEL.param [MODEL.bin] -o OUT.safetensors [--program PROGRAM]\n"
         "       celgan import ncnn FOLDER -o OUT_FOLDER [--program PROGRAM]\n"
         "\n"
         "Converts an ncnn model of waifu2x-, realesrgan- or realcugan-ncnn-vulkan into a CelGAN model that\n"
         "'celgan apply' and the GIMP plug-in run as the program does (its pixel range, padding and cropping).\n"
         "MODEL.bin defaults to the .param's name with .bin. A FOLDER converts every .param in it (with its\n"
         ".bin) into OUT_FOLDER/<name>.safetensors.\n"
         "\n"
         "  -o, --output PATH       output file, or folder for a FOLDER\n"
         "  -p, --program NAME      waifu2x, realesrgan or realcugan: whose pre- and post-processing the model\n"
         "                          was made for (default: from the path when it says so unambiguously)\n"
         "      --quiet             no summary lines\n"
         "  -h, --help\n"
         "\n"
         "Exit status: 0 all converted; 1 some failed; 2 bad command line; 4 a model is unsupported or corrupt;\n"
         "5 a file cannot be read or written.\n",
         out);
}

static int import_one (const char *param, const char *bin, const char *program, const char *out, bool quiet) {
  char binbuf[4096], err[1024];
  if (!bin) {
    size_t n = strlen (param);
    if (n > 6 && strcmp (param + n - 6, ".param") == 0)
      snprintf (binbuf, sizeof binbuf, "%.*s.bin", (int) (n - 6), param);
    else
      snprintf (binbuf, sizeof binbuf, "%s.bin", param);
    bin = binbuf;
  }
  if (!program)
    program = cel_ncnn_guess_program (param);
  if (!program) {
    cli_error ("%s: cannot tell which program the model is for; give --program waifu2x|realesrgan|realcugan", param);
    return EXIT_USAGE;
  }
  cel_ncnn_import_info info;
  cel_status st = cel_ncnn_import (param, bin, program, out, &info, err, sizeof err);
  if (st) {
    cli_error ("%s", err);
    return st == CEL_ERROR_INVALID_ARGUMENT ? EXIT_USAGE : cli_exit_code (st);
  }
  if (!quiet)
    printf ("%s -> %s (%s, %dx, pre-padding %d, %d ncnn layers)\n", param, out, program, info.scale, info.prepadding, info.layers);
  return EXIT_OK;
}

/* mkdir -p */
static void make_folders (const char *path) {
  char buf[4096];
  snprintf (buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir (buf, 0777);
      *p = '/';
    }
  mkdir (buf, 0777);
}

static int cmp_str (const void *a, const void *b) {
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static int import_folder (const char *dir, const char *program, const char *outdir, bool quiet) {
  DIR *d = opendir (dir);
  if (!d) {
    cli_error ("%s: cannot open the folder", dir);
    return EXIT_IO;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir (d));) {
    size_t len = strlen (e->d_name);
    if (len <= 6 || strcmp (e->d_name + len - 6, ".param"))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 32;
      char **nn = realloc (names, cap * sizeof *nn);
      if (!nn)
        break;
      names = nn;
    }
    names[n++] = strdup (e->d_name);
  }
  closedir (d);
  if (!n) {
    cli_error ("%s: no .param files", dir);
    free (names);
    return EXIT_IO;
  }
  qsort (names, n, sizeof *names, cmp_str);
  make_folders (outdir);
  int worst = EXIT_OK, failed = 0;
  for (size_t i = 0; i < n; i++) {
    char param[4096], out[4096];
    size_t len = strlen (names[i]);
    snprintf (param, sizeof param, "%s/%s", dir, names[i]);
    snprintf (out, sizeof out, "%s/%.*s.safetensors", outdir, (int) (len - 6), names[i]);
    int rc = import_one (param, NULL, program ? program : cel_ncnn_guess_program (param), out, quiet);
    if (rc) {
      failed++;
      worst = rc == EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE_GENERIC;
    }
    free (names[i]);
  }
  free (names);
  if (failed && !quiet)
    fprintf (stderr, "celgan: %d of %zu models failed\n", failed, n);
  return worst;
}

int import_ncnn (int argc, char **argv) {
  static const struct option longopts[] = {
    { "output", required_argument, NULL, 'o' }, { "program", required_argument, NULL, 'p' },
    { "quiet", no_argument, NULL, 'Q' },        { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *out = NULL, *program = NULL;
  bool quiet = false;
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "o:p:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 'p': program = optarg; break;
    case 'Q': quiet = true; break;
    case 'h': usage (stdout); return EXIT_OK;
    default: usage (stderr); return EXIT_USAGE;
    }
  }
  int rest = argc - optind;
  if (rest < 2 || rest > 3 || strcmp (argv[optind], "ncnn") || !out) {
    if (rest >= 1 && strcmp (argv[optind], "ncnn"))
      cli_error ("unknown format '%s' (only 'ncnn' is supported)", argv[optind]);
    usage (stderr);
    return EXIT_USAGE;
  }
  if (program && strcmp (program, "waifu2x") && strcmp (program, "realesrgan") && strcmp (program, "realcugan")) {
    cli_error ("--program is waifu2x, realesrgan or realcugan, not '%s'", program);
    return EXIT_USAGE;
  }
  const char *src = argv[optind + 1];
  struct stat sb;
  if (stat (src, &sb) == 0 && S_ISDIR (sb.st_mode)) {
    if (rest != 2) {
      usage (stderr);
      return EXIT_USAGE;
    }
    return import_folder (src, program, out, quiet);
  }
  return import_one (src, rest == 3 ? argv[optind + 2] : NULL, program, out, quiet);
}
