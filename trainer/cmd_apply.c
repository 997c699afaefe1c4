/* celgan apply: stylize image files or folders with a model. */
#include "apply_batch.h"
#include "cli.h"
#include "image.h"
#include "mpi_comm.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Host times (now ()) of the start-up's steps, for --profile: where the time before the first dispatch goes. */
typedef struct startup_clock {
  double start, model_loaded, context_start, context_made, stylizer_made;
  double decode_start, decoded, stylize_start, stylized, saved;
} startup_clock;

typedef struct apply_opts {
  const char *input, *output, *model, *reference, *device, *format;
  float strength;
  bool keep_colors, skip_existing, quiet, profile;
  int32_t tile, jpeg_quality;
} apply_opts;

static void usage (FILE *out) {
  fputs ("Usage: celgan apply -i INPUT -o OUTPUT -m MODEL [options]\n"
         "\n"
         "Stylizes PNG and JPEG images. INPUT and OUTPUT are files, or folders (every image in the INPUT folder\n"
         "is written to the OUTPUT folder, created if needed, under the same name).\n"
         "\n"
         "  -i, --input PATH        image file or folder\n"
         "  -o, --output PATH       output file (.png, .jpg) or folder\n"
         "  -m, --model MODEL       model file (.safetensors) or the name of an installed model\n"
         "  -r, --reference PATH    style image for reference-guided models\n"
         "  -s, --strength S        0..1 style strength (default 1): a blend in feature space for models that have\n"
         "                          one (celgan info says so), else a blend with the original\n"
         "  -k, --keep-colors       keep the original colors, take the style's light and shade\n"
         "  -t, --tile N            tile edge in pixels (default 0: automatic from device memory)\n"
         "  -g, --gpu DEVICE        Vulkan device index or name part (see 'celgan devices'); default automatic\n"
         "  -f, --format png|jpg    output format for folders (default: the input's)\n"
         "  -q, --quality Q         JPEG quality 1..100 (default 95)\n"
         "      --skip-existing     leave outputs that already exist alone\n"
         "      --quiet             no progress output\n"
         "      --profile           print where the start-up went (up to the first dispatch) and the GPU time per\n"
         "                          shader and per layer (also with the environment variable CELGAN_PROFILE=1)\n"
         "  -h, --help\n"
         "\n"
         "Under MPI (mpirun -n N celgan apply -i DIR -o DIR ..., when built with MPI) the ranks share the folder's\n"
         "files, each taking the next one when it is free; -g takes a comma-separated list indexed by the local rank.\n"
         "\n"
         "Exit status: 0 all written; 1 some inputs failed (the others were written); 2 bad command line;\n"
         "3 no usable Vulkan device; 4 model missing or corrupt; 5 input or output unusable; 6 device error.\n"
         "Outputs are written to a temporary file and renamed: a failure never leaves a partial file.\n",
         out);
}

/* Installed and user model folders, then CELGAN_MODEL_PATH: MODEL may be a name without .safetensors. */
static char *resolve_model (const char *name) {
  struct stat sb;
  if (strchr (name, '/') || stat (name, &sb) == 0)
    return strdup (name);
  const char *dirs[8];
  int n = 0;
  char user[1024] = "";
  const char *env = getenv ("CELGAN_MODEL_PATH");
  char *envcopy = env ? strdup (env) : NULL;
  for (char *save = NULL, *d = envcopy ? strtok_r (envcopy, ":", &save) : NULL; d && n < 5; d = strtok_r (NULL, ":", &save))
    dirs[n++] = d;
  const char *xdg = getenv ("XDG_DATA_HOME"), *home = getenv ("HOME");
  if (xdg && *xdg)
    snprintf (user, sizeof user, "%s/celgan/models", xdg);
  else if (home)
    snprintf (user, sizeof user, "%s/.local/share/celgan/models", home);
  if (*user)
    dirs[n++] = user;
  dirs[n++] = CELGAN_MODELDIR;
  char *found = NULL;
  for (int i = 0; i < n && !found; i++) {
    char path[2048];
    snprintf (path, sizeof path, "%s/%s", dirs[i], name);
    if (stat (path, &sb) == 0 && S_ISREG (sb.st_mode)) {
      found = strdup (path);
      break;
    }
    snprintf (path, sizeof path, "%s/%s.safetensors", dirs[i], name);
    if (stat (path, &sb) == 0 && S_ISREG (sb.st_mode))
      found = strdup (path);
  }
  free (envcopy);
  return found;
}

typedef struct progress_state {
  bool show;
  const char *name;
  int index, count;
  double start;
} progress_state;

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int on_progress (void *user, double fraction) {
  progress_state *p = user;
  if (!p->show)
    return 0;
  int width = 30, filled = (int) (fraction * width + 0.5);
  double elapsed = now () - p->start;
  double eta = fraction > 0.01 ? elapsed / fraction - elapsed : 0;
  fprintf (stderr, "\r[%d/%d] %-24.24s [", p->index, p->count, p->name);
  for (int i = 0; i < width; i++)
    fputc (i < filled ? '#' : '.', stderr);
  fprintf (stderr, "] %3d%%  %.0fs left ", (int) (fraction * 100 + 0.5), eta);
  fflush (stderr);
  return 0;
}

static bool is_image_name (const char *name) {
  image_format f;
  return image_format_from_name (name, &f);
}

static int cmp_str (const void *a, const void *b) {
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void print_startup (cel_context *ctx, const startup_clock *t) {
  cel_startup_stats s;
  cel_context_startup_stats (ctx, &s);
  double first = t->context_start + s.first_run_ms / 1e3;
#define MS(a, b) (((b) - (a)) * 1e3)
  fprintf (stderr, "start-up, ms:\n");
  fprintf (stderr, "  %-34s %8.1f\n", "model file load", MS (t->start, t->model_loaded));
  fprintf (stderr, "  %-34s %8.1f\n", "Vulkan instance", s.instance_ms);
  fprintf (stderr, "  %-34s %8.1f\n", "device", s.device_ms);
  fprintf (stderr, "  %-34s %8.1f  (%s, %llu bytes)\n", "pipeline cache load", s.cache_load_ms,
           s.cache_ignored ? "file ignored" : s.cache_loaded_bytes ? "loaded" : "no file",
           (unsigned long long) s.cache_loaded_bytes);
  fprintf (stderr, "  %-34s %8.1f\n", "context, other", MS (t->context_start, t->context_made) - s.instance_ms -
           s.device_ms - s.cache_load_ms);
  fprintf (stderr, "  %-34s %8.1f\n", "stylizer (parameters)", MS (t->context_made, t->stylizer_made));
  fprintf (stderr, "  %-34s %8.1f\n", "image decode", MS (t->decode_start, t->decoded));
  fprintf (stderr, "  %-34s %8.1f\n", "graph build, plan, record, upload", MS (t->stylize_start, first) - s.pipelines_ms);
  fprintf (stderr, "  %-34s %8.1f  (%u created, %u cache hits by the driver's account)\n", "pipelines", s.pipelines_ms,
           s.pipelines_created, s.pipeline_cache_hits);
  fprintf (stderr, "  %-34s %8.1f\n", "= first dispatch submitted at", MS (t->start, first));
  fprintf (stderr, "  %-34s %8.1f\n", "compute and read back", MS (first, t->stylized));
  fprintf (stderr, "  %-34s %8.1f\n", "image encode and write", MS (t->stylized, t->saved));
#undef MS
}

/* One image: load, stylize, post-process, save. Returns an exit code. */
static int apply_one (cel_stylizer *sty, const cel_model_info *mi, const apply_opts *o, const char *in, const char *out,
                      const image *ref, progress_state *prog, startup_clock *clock) {
  char err[1024];
  image img, res = { 0 };
  image_format fmt;
  if (!image_format_from_name (out, &fmt)) {
    cli_error ("%s: the output name must end in .png, .jpg or .jpeg", out);
    return EXIT_USAGE;
  }
  if (clock)
    clock->decode_start = now ();
  if (!image_load (in, &img, 0, err, sizeof err)) {
    cli_error ("%s", err);
    return EXIT_IO;
  }
  if (clock)
    clock->decoded = now ();
  res = img;
  res.width = img.width * mi->scale;
  res.height = img.height * mi->scale;
  res.data = malloc ((size_t) res.width * res.height * res.channels * sizeof (float));
  if (!res.data) {
    cli_error ("%s: out of memory", in);
    image_free (&img);
    return EXIT_FAILURE_GENERIC;
  }
  cel_stylize_options so = { .tile = o->tile, .progress = on_progress, .progress_user = prog };
  cel_stylize_report rep;
  prog->start = now ();
  if (clock)
    clock->stylize_start = prog->start;
  cel_status st = cel_stylize (sty, img.data, img.width, img.height, img.channels, ref ? ref->data : NULL,
                               ref ? ref->width : 0, ref ? ref->height : 0, ref ? ref->channels : 0, &so, res.data, &rep);
  if (clock)
    clock->stylized = now ();
  if (prog->show)
    fputc ('\n', stderr);
  int code = EXIT_OK;
  if (st) {
    cli_error ("%s: %s", in, cel_context_last_error (cel_stylizer_context (sty)));
    code = cli_exit_code (st);
  } else {
    /* strength: in feature space inside the network where the model blends there, else a pixel blend */
    float pixel_strength = mi->feature_strength ? 1.0f : o->strength;
    if (mi->scale == 1 && (pixel_strength < 1.0f || o->keep_colors))
      cel_postprocess (img.data, res.data, img.width, img.height, img.channels, pixel_strength, o->keep_colors);
    if (!image_save (out, &res, fmt, img.bit_depth, o->jpeg_quality, err, sizeof err)) {
      cli_error ("%s", err);
      code = EXIT_IO;
    } else if (!o->quiet) {
      fprintf (stderr, "%s -> %s (%dx%d, %.2fs%s)\n", in, out, res.width, res.height, now () - prog->start,
               rep.tile ? ", tiled" : "");
    }
  }
  if (clock && code == EXIT_OK) {
    clock->saved = now ();
    print_startup (cel_stylizer_context (sty), clock);
  }
  image_free (&img);
  image_free (&res);
  return code;
}

static int apply_main (int argc, char **argv, mpi_comm *comm, bool *all_know) {
  startup_clock clock = { .start = now () };
  apply_opts o = { .strength = 1.0f, .jpeg_quality = 95 };
  const char *env_profile = getenv ("CELGAN_PROFILE");
  o.profile = env_profile && *env_profile && strcmp (env_profile, "0") != 0;
  static const struct option opts[] = {
    { "input", required_argument, NULL, 'i' },   { "output", required_argument, NULL, 'o' },
    { "model", required_argument, NULL, 'm' },   { "reference", required_argument, NULL, 'r' },
    { "strength", required_argument, NULL, 's' }, { "keep-colors", no_argument, NULL, 'k' },
    { "tile", required_argument, NULL, 't' },    { "gpu", required_argument, NULL, 'g' },
    { "format", required_argument, NULL, 'f' },  { "quality", required_argument, NULL, 'q' },
    { "skip-existing", no_argument, NULL, 1 },   { "quiet", no_argument, NULL, 2 },
    { "profile", no_argument, NULL, 3 },
    { "help", no_argument, NULL, 'h' },          { 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "i:o:m:r:s:kt:g:f:q:h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'i': o.input = optarg; break;
    case 'o': o.output = optarg; break;
    case 'm': o.model = optarg; break;
    case 'r': o.reference = optarg; break;
    case 's':
      o.strength = strtof (optarg, &end);
      if (!end || *end || !(o.strength >= 0 && o.strength <= 1)) {
        cli_error ("--strength must be a number from 0 to 1");
        return EXIT_USAGE;
      }
      break;
    case 'k': o.keep_colors = true; break;
    case 't':
      o.tile = (int32_t) strtol (optarg, &end, 10);
      if (!end || *end || o.tile < 0) {
        cli_error ("--tile must be 0 (automatic) or a size in pixels");
        return EXIT_USAGE;
      }
      break;
    case 'g': o.device = optarg; break;
    case 'f':
      if (strcmp (optarg, "png") && strcmp (optarg, "jpg")) {
        cli_error ("--format is png or jpg");
        return EXIT_USAGE;
      }
      o.format = optarg;
      break;
    case 'q':
      o.jpeg_quality = (int32_t) strtol (optarg, &end, 10);
      if (!end || *end || o.jpeg_quality < 1 || o.jpeg_quality > 100) {
        cli_error ("--quality must be 1..100");
        return EXIT_USAGE;
      }
      break;
    case 1: o.skip_existing = true; break;
    case 2: o.quiet = true; break;
    case 3: o.profile = true; break;
    case 'h': usage (stdout); return EXIT_OK;
    default: usage (stderr); return EXIT_USAGE;
    }
  }
  if (optind < argc || !o.input || !o.output || !o.model) {
    cli_error ("apply needs -i INPUT, -o OUTPUT and -m MODEL (see 'celgan apply --help')");
    return EXIT_USAGE;
  }

  /* inputs: a file, or the images of a folder */
  struct stat sb;
  if (stat (o.input, &sb) != 0) {
    cli_error ("cannot read '%s': %s", o.input, strerror (errno));
    return EXIT_IO;
  }
  bool folder = S_ISDIR (sb.st_mode);
  char **names = NULL;
  size_t n_names = 0;
  if (folder) {
    DIR *d = opendir (o.input);
    if (!d) {
      cli_error ("cannot read the folder '%s': %s", o.input, strerror (errno));
      return EXIT_IO;
    }
    struct dirent *e;
    while ((e = readdir (d))) {
      if (e->d_name[0] == '.' || !is_image_name (e->d_name))
        continue;
      char **p = realloc (names, (n_names + 1) * sizeof *p);
      if (!p)
        break;
      names = p;
      names[n_names++] = strdup (e->d_name);
    }
    closedir (d);
    qsort (names, n_names, sizeof *names, cmp_str);
    if (n_names == 0) {
      cli_error ("no PNG or JPEG images in '%s'", o.input);
      free (names);
      return EXIT_IO;
    }
    if (mkdir (o.output, 0755) != 0 && errno != EEXIST) {
      cli_error ("cannot create the folder '%s': %s", o.output, strerror (errno));
      for (size_t i = 0; i < n_names; i++)
        free (names[i]);
      free (names);
      return EXIT_IO;
    }
  } else if (stat (o.output, &sb) == 0 && S_ISDIR (sb.st_mode)) {
    cli_error ("'%s' is a folder; give an output file name for a single input", o.output);
    return EXIT_USAGE;
  }

  int code = EXIT_OK;
  char err[1024];
  char *model_path = resolve_model (o.model);
  cel_model *model = NULL;
  cel_context *ctx = NULL;
  cel_stylizer *sty = NULL;
  image ref = { 0 };
  bool have_ref = false;
  if (!model_path) {
    cli_error ("no model '%s' (not a file, and not in CELGAN_MODEL_PATH, the user or the installed model folder)", o.model);
    code = EXIT_BAD_MODEL;
    goto done;
  }
  clock.start = now (); /* the command line and folder listing are not start-up */
  cel_status st = cel_model_load (model_path, &model, err, sizeof err);
  clock.model_loaded = now ();
  if (st) {
    cli_error ("%s", err);
    code = st == CEL_ERROR_IO ? EXIT_BAD_MODEL : cli_exit_code (st);
    goto done;
  }
  const cel_model_info *mi = cel_model_get_info (model);
  if (mi->feature_strength)
    cel_model_set_strength (model, o.strength);
  if (mi->needs_reference && !o.reference) {
    cli_error ("model '%s' is reference-guided: give a style image with -r", mi->name);
    code = EXIT_USAGE;
    goto done;
  }
  if (o.reference && !mi->needs_reference && !o.quiet)
    fprintf (stderr, "celgan: note: model '%s' is not reference-guided; -r is ignored\n", mi->name);
  if (o.reference && mi->needs_reference) {
    if (!image_load (o.reference, &ref, 0, err, sizeof err)) {
      cli_error ("reference image: %s", err);
      code = EXIT_IO;
      goto done;
    }
    have_ref = true;
  }
  if (mi->scale != 1 && (o.strength < 1 || o.keep_colors) && !o.quiet)
    fprintf (stderr, "celgan: note: strength and keep-colors apply to style models only; ignored for this %dx model\n",
             mi->scale);
  char devbuf[64];
  clock.context_start = now ();
  if (!(ctx = cli_context (mpi_comm_device (comm, o.device, devbuf, sizeof devbuf)))) {
    code = EXIT_NO_DEVICE;
    goto done;
  }
  clock.context_made = now ();
  if ((st = o.profile ? cel_context_set_profiling (ctx, true) : CEL_OK) || (st = cel_stylizer_create (ctx, model, &sty))) {
    cli_error ("%s", cel_context_last_error (ctx));
    code = cli_exit_code (st);
    goto done;
  }
  clock.stylizer_made = now ();
  progress_state prog = { .show = !o.quiet && isatty (STDERR_FILENO), .count = folder ? (int) n_names : 1 };
  if (!folder && mpi_comm_rank (comm) > 0) {
    /* one file: rank 0 does it */
  } else if (!folder) {
    prog.index = 1;
    prog.name = o.input;
    code = apply_one (sty, mi, &o, o.input, o.output, have_ref ? &ref : NULL, &prog, o.profile ? &clock : NULL);
  } else {
    apply_batch batch;
    size_t i;
    if (!apply_batch_begin (&batch, comm, n_names, err, sizeof err)) {
      cli_error ("%s", err);
      code = EXIT_COMM;
      goto done;
    }
    while (apply_batch_next (&batch, &i)) {
      char in[4096], out[4096];
      snprintf (in, sizeof in, "%s/%s", o.input, names[i]);
      snprintf (out, sizeof out, "%s/%s", o.output, names[i]);
      if (o.format) {
        char *dot = strrchr (out, '.');
        snprintf (dot, sizeof out - (size_t) (dot - out), ".%s", o.format);
      }
      if (o.skip_existing && stat (out, &sb) == 0) {
        batch.skipped++;
        continue;
      }
      prog.index = (int) i + 1;
      prog.name = names[i];
      /* the start-up is the first image's */
      int r = apply_one (sty, mi, &o, in, out, have_ref ? &ref : NULL, &prog,
                         o.profile && batch.written + batch.failed == 0 ? &clock : NULL);
      batch.written += r == EXIT_OK;
      batch.failed += r != EXIT_OK;
      if (r == EXIT_DEVICE || r == EXIT_NO_DEVICE) { /* the device is gone: this rank stops, the others go on */
        batch.code = r;
        break;
      }
    }
    code = apply_batch_end (&batch, o.quiet);
    *all_know = true;
  }

  if (o.profile && ctx) {
    fprintf (stderr, "GPU time per shader, all images:\n");
    cel_context_profile_report (ctx, stderr);
    fprintf (stderr, "GPU time per op and shapes, all images:\n");
    cel_context_profile_report_ops (ctx, stderr, 30);
  }

done:
  if (have_ref)
    image_free (&ref);
  cel_stylizer_destroy (sty);
  cel_context_destroy (ctx);
  cel_model_free (model);
  free (model_path);
  for (size_t i = 0; i < n_names; i++)
    free (names[i]);
  free (names);
  return code;
}

int cmd_apply (int argc, char **argv) {
  mpi_comm *comm = mpi_comm_start (86400); /* the ranks wait for each other only at the end: no tight deadline */
  bool all_know = false;
  int code = apply_main (argc, argv, comm, &all_know);
  mpi_comm_finish (comm, code, all_know);
  return code;
}
