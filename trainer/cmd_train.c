/* celgan train: headless GAN training of a style-generator (or, with --reference-guided, a reference-gan
 * generator) from a folder of photos and a folder of style images (docs/training.md). The networks and losses
 * are in train_net.c and train_reference.c, the data pipeline in train_data.c, the sample grids and the loss
 * plot in train_report.c. */
#include "cli.h"
#include "image.h"
#include "mpi_comm.h"
#include "train_data.h"
#include "train_files.h"
#include "train_net.h"
#include "train_parallel.h"
#include "train_report.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct train_opts {
  const char *photos, *styles, *out, *config, *ckpt_dir, *device, *vgg, *dump_dir, *weights;
  const char *name, *description, *license;
  int64_t steps, warmup, checkpoint_every, sample_every, log_every;
  int32_t crop, batch, d_width, d_layers, d_scales, threads, samples;
  uint64_t seed, cache_mb;
  float lr_g, lr_d, lr_warmup;
  double comm_timeout, time_limit;
  bool resume, quiet, reference, config_given, profile, d_luma;
} train_opts;

static void usage (FILE *out) {
  fputs ("Usage: celgan train --photos DIR --styles DIR --out MODEL [options]\n"
         "\n"
         "Trains a style-generator (photo -> style) as a GAN on random crops of two folders of PNG/JPEG images,\n"
         "then writes the generator as a model file usable by 'celgan apply' and the GIMP plug-in.\n"
         "\n"
         "  --photos DIR            photos (the content domain)\n"
         "  --styles DIR            style images (e.g. anime frames); the references when reference-guided\n"
         "  --out MODEL             the model file to write (.safetensors)\n"
         "  --reference-guided      train a reference-guided generator (content and style encoders, AdaIN decoder;\n"
         "                          'celgan apply -r REFERENCE'), config reference-gan by default\n"
         "  --config NAME|FILE      generator architecture: unet (default: small, U-Net skips, no norms),\n"
         "                          fast (unet's widths, no skips, instance norms), animeganv2,\n"
         "                          reference-gan, or a JSON file\n"
         "  --steps N               training steps in all, warm-up included (default 10000)\n"
         "  --profile               at the end, the GPU time of every shader over the run, then of the slowest\n"
         "                          layers by op and shapes (timestamps after each dispatch; CELGAN_PROFILE=1 too)\n"
         "  --time-limit S          stop after S seconds of training as if --steps were reached: checkpoint,\n"
         "                          samples and model file are written (a later --resume --steps N goes on)\n"
         "  --warmup N              first N steps train the generator on the content loss only (default 1000)\n"
         "  --crop N                crop edge in pixels (default 256); smaller images are skipped\n"
         "  --batch N               images per step from each folder (default 4)\n"
         "  --lr-g X, --lr-d X      Adam learning rates of generator and discriminator (default 2e-5, 4e-5)\n"
         "  --lr-warmup X           learning rate of the warm-up (default 2e-4)\n"
         "  --weights K=V,...       loss weights (defaults: adv_g=300,adv_d=300,content=1.5,style=2.5,color=10,\n"
         "                          tv=1,fm=0,warmup_content=1.5,d_real=1.2,d_fake=1.2,d_gray=1.2,d_blur=0.8);\n"
         "                          fm > 0 adds discriminator feature matching to the generator's loss;\n"
         "                          reference-guided: adv_g=1,adv_d=1,content=1,style_rec=1,self_rec=10,cycle=5,\n"
         "                          fm=1,warmup_content=1,d_real=1,d_fake=1\n"
         "  --vgg FILE              VGG19 weights (safetensors, torchvision names features.N.weight/bias) for the\n"
         "                          content and style losses; default a fixed random network from the seed\n"
         "  --d-width N             discriminator's first width (default 32)\n"
         "  --d-layers N            discriminator's stride-2 layers (default 3)\n"
         "  --d-scales N            discriminators on the crop, half of it, ... (default 1; reference-guided 2)\n"
         "  --d-luma                the discriminator sees only the luma of every image (style images, generated\n"
         "                          and edge-smoothed): it judges lines, shading and texture, and the colours\n"
         "                          stay the photo's (no d_gray term); style-generator training only\n"
         "  --checkpoint-dir DIR    checkpoint, metrics.jsonl, samples/ and loss.png (default MODEL.train)\n"
         "  --checkpoint-every N    steps between checkpoints (default 500; one is always written at the end)\n"
         "  --resume                continue from the checkpoint in the checkpoint folder\n"
         "  --sample-every N        steps between sample grids (default 500; 0: none)\n"
         "  --seed N                seed of weights, data order, crops (default 1)\n"
         "  --threads N             image decoding threads (default 2)\n"
         "  --cache-mb N            memory for decoded images (default 1024)\n"
         "  --log-every N           steps between progress lines when stderr is not a terminal (default 10)\n"
         "  --name S, --description S, --license S   metadata of the model file\n"
         "  -g, --gpu DEVICE        Vulkan device index or name part; default automatic\n"
         "      --quiet             no progress line\n"
         "      --comm-timeout S    MPI: stop every rank when one gives no answer for S seconds (default 600)\n"
         "  -h, --help\n"
         "\n"
         "Data parallel (mpirun -n N celgan train ..., when built with MPI): --batch is per rank (the global batch\n"
         "is N times it); -g takes a comma-separated list indexed by the local rank; rank 0 writes every output.\n"
         "\n"
         "Exit status: 0 trained; 2 bad command line; 3 no usable Vulkan device; 5 unreadable input or\n"
         "unwritable output; 6 device error; 7 a loss became NaN or infinite (the last checkpoint is kept);\n"
         "8 another rank failed, died or hung (MPI).\n",
         out);
}

static double now (void) {
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool parse_i64 (const char *s, int64_t min, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll (s, &end, 10);
  if (errno || !end || *end || end == s || v < min)
    return false;
  *out = v;
  return true;
}

static void zero_g_moments (host_store *s) {
  for (size_t i = 0; i < s->n; i++)
    if (strncmp (s->t[i].name, "g.m/", 4) == 0 || strncmp (s->t[i].name, "g.v/", 4) == 0)
      memset (s->t[i].data, 0, s->t[i].count * sizeof (float));
}

static bool dump_batch (const char *dir, const train_batch *b, int32_t batch, int32_t crop, char *err, size_t errlen) {
  char path[4096];
  snprintf (path, sizeof path, "%s/batch-%06lld.safetensors", dir, (long long) b->step);
  const float *d[4] = { b->photo, b->style, b->gray, b->smooth };
  static const char *const names[4] = { "photo", "style", "gray", "smooth" };
  cel_tensor_entry e[4];
  for (int i = 0; i < 4; i++)
    e[i] = (cel_tensor_entry) { .name = names[i], .dtype = CEL_DTYPE_F32, .rank = 4, .shape = { batch, 3, crop, crop },
                                .data = d[i] };
  return cel_safetensors_save (path, e, 4, NULL, 0, err, errlen) == CEL_OK;
}

static void format_duration (double s, char *out, size_t len) {
  if (s < 60)
    snprintf (out, len, "%.0fs", s);
  else if (s < 3600)
    snprintf (out, len, "%dm%02ds", (int) s / 60, (int) s % 60);
  else
    snprintf (out, len, "%dh%02dm", (int) s / 3600, (int) s % 3600 / 60);
}

static int train_main (int argc, char **argv, mpi_comm *comm, bool *all_know) {
  int rank = mpi_comm_rank (comm), ranks = mpi_comm_size (comm);
  bool root = rank == 0;
  train_opts o = { .config = "unet", .steps = 10000, .warmup = 1000, .checkpoint_every = 500, .sample_every = 500,
                   .log_every = 10, .crop = 256, .batch = 4, .d_width = 32, .d_layers = 3, .threads = 2, .samples = 4,
                   .seed = 1, .cache_mb = 1024, .lr_g = 2e-5f, .lr_d = 4e-5f, .lr_warmup = 2e-4f, .comm_timeout = 600,
                   .name = "celgan-trained", .description = NULL,
                   .license = "unspecified (the weights derive from the training images: check their licenses)" };
  enum { O_PHOTOS = 256, O_STYLES, O_OUT, O_CONFIG, O_STEPS, O_WARMUP, O_CROP, O_BATCH, O_CKDIR, O_CKEVERY, O_RESUME,
         O_SEED, O_LRG, O_LRD, O_LRW, O_SAMPLE, O_WEIGHTS, O_VGG, O_DW, O_DL, O_THREADS, O_NAME, O_DESC, O_LICENSE,
         O_QUIET, O_DUMP, O_LOG, O_CACHE, O_COMM_TIMEOUT, O_TIME_LIMIT, O_REFERENCE, O_DS, O_PROFILE, O_DLUMA };
  static const struct option opts[] = {
    { "photos", required_argument, NULL, O_PHOTOS }, { "styles", required_argument, NULL, O_STYLES },
    { "out", required_argument, NULL, O_OUT }, { "config", required_argument, NULL, O_CONFIG },
    { "steps", required_argument, NULL, O_STEPS }, { "warmup", required_argument, NULL, O_WARMUP },
    { "crop", required_argument, NULL, O_CROP }, { "batch", required_argument, NULL, O_BATCH },
    { "checkpoint-dir", required_argument, NULL, O_CKDIR }, { "checkpoint-every", required_argument, NULL, O_CKEVERY },
    { "resume", no_argument, NULL, O_RESUME }, { "seed", required_argument, NULL, O_SEED },
    { "lr-g", required_argument, NULL, O_LRG }, { "lr-d", required_argument, NULL, O_LRD },
    { "lr-warmup", required_argument, NULL, O_LRW }, { "sample-every", required_argument, NULL, O_SAMPLE },
    { "weights", required_argument, NULL, O_WEIGHTS }, { "vgg", required_argument, NULL, O_VGG },
    { "d-width", required_argument, NULL, O_DW }, { "d-layers", required_argument, NULL, O_DL },
    { "threads", required_argument, NULL, O_THREADS }, { "name", required_argument, NULL, O_NAME },
    { "description", required_argument, NULL, O_DESC }, { "license", required_argument, NULL, O_LICENSE },
    { "quiet", no_argument, NULL, O_QUIET }, { "dump-batches", required_argument, NULL, O_DUMP },
    { "log-every", required_argument, NULL, O_LOG }, { "cache-mb", required_argument, NULL, O_CACHE },
    { "comm-timeout", required_argument, NULL, O_COMM_TIMEOUT }, { "time-limit", required_argument, NULL, O_TIME_LIMIT },
    { "reference-guided", no_argument, NULL, O_REFERENCE }, { "d-scales", required_argument, NULL, O_DS },
    { "profile", no_argument, NULL, O_PROFILE }, { "d-luma", no_argument, NULL, O_DLUMA },
    { "gpu", required_argument, NULL, 'g' }, { "help", no_argument, NULL, 'h' }, { 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "g:h", opts, NULL)) != -1) {
    int64_t v = 0;
    float f = 0;
    char *end = NULL;
    bool ok = true;
    switch (c) {
    case O_PHOTOS: o.photos = optarg; break;
    case O_STYLES: o.styles = optarg; break;
    case O_OUT: o.out = optarg; break;
    case O_CONFIG: o.config = optarg; o.config_given = true; break;
    case O_REFERENCE: o.reference = true; break;
    case O_CKDIR: o.ckpt_dir = optarg; break;
    case O_RESUME: o.resume = true; break;
    case O_WEIGHTS: o.weights = optarg; break;
    case O_VGG: o.vgg = optarg; break;
    case O_NAME: o.name = optarg; break;
    case O_DESC: o.description = optarg; break;
    case O_LICENSE: o.license = optarg; break;
    case O_QUIET: o.quiet = true; break;
    case O_PROFILE: o.profile = true; break;
    case O_DLUMA: o.d_luma = true; break;
    case O_DUMP: o.dump_dir = optarg; break;
    case 'g': o.device = optarg; break;
    case O_STEPS: ok = parse_i64 (optarg, 1, &o.steps); break;
    case O_WARMUP: ok = parse_i64 (optarg, 0, &o.warmup); break;
    case O_CKEVERY: ok = parse_i64 (optarg, 0, &o.checkpoint_every); break;
    case O_SAMPLE: ok = parse_i64 (optarg, 0, &o.sample_every); break;
    case O_LOG: ok = parse_i64 (optarg, 1, &o.log_every); break;
    case O_SEED: ok = parse_i64 (optarg, 0, &v); o.seed = (uint64_t) v; break;
    case O_CACHE: ok = parse_i64 (optarg, 0, &v); o.cache_mb = (uint64_t) v; break;
    case O_CROP: ok = parse_i64 (optarg, 8, &v) && v <= 8192; o.crop = (int32_t) v; break;
    case O_BATCH: ok = parse_i64 (optarg, 1, &v) && v <= 1024; o.batch = (int32_t) v; break;
    case O_DW: ok = parse_i64 (optarg, 1, &v) && v <= 1024; o.d_width = (int32_t) v; break;
    case O_DL: ok = parse_i64 (optarg, 1, &v) && v <= 6; o.d_layers = (int32_t) v; break;
    case O_DS: ok = parse_i64 (optarg, 1, &v) && v <= MAX_D_SCALES; o.d_scales = (int32_t) v; break;
    case O_THREADS: ok = parse_i64 (optarg, 1, &v) && v <= 64; o.threads = (int32_t) v; break;
    case O_LRG: case O_LRD: case O_LRW:
      f = strtof (optarg, &end);
      ok = end && !*end && end != optarg && f >= 0 && isfinite (f);
      *(c == O_LRG ? &o.lr_g : c == O_LRD ? &o.lr_d : &o.lr_warmup) = f;
      break;
    case O_COMM_TIMEOUT: case O_TIME_LIMIT: {
      double d = strtod (optarg, &end);
      ok = end && !*end && end != optarg && d > 0 && isfinite (d);
      *(c == O_COMM_TIMEOUT ? &o.comm_timeout : &o.time_limit) = d;
      break;
    }
    case 'h': usage (stdout); return EXIT_OK;
    default: usage (stderr); return EXIT_USAGE;
    }
    if (!ok) {
      const char *name = "?";
      for (const struct option *q = opts; q->name; q++)
        if (q->val == c)
          name = q->name;
      cli_error ("bad value '%s' for --%s (see 'celgan train --help')", optarg, name);
      return EXIT_USAGE;
    }
  }
  if (optind < argc || !o.photos || !o.styles || !o.out) {
    cli_error ("train needs --photos DIR, --styles DIR and --out MODEL (see 'celgan train --help')");
    return EXIT_USAGE;
  }
  if (o.reference && !o.config_given)
    o.config = "reference-gan";
  if (!root)
    o.quiet = true; /* rank 0 reports; the others speak only of their own failures */
  if (ranks > 1 && o.time_limit > 0) { /* the ranks' clocks would end them at different steps */
    cli_error ("--time-limit needs a single process");
    return EXIT_USAGE;
  }
  if (ranks > 1 && o.dump_dir) {
    cli_error ("--dump-batches needs a single process");
    return EXIT_USAGE;
  }
  train_setup s = { .crop = o.crop, .batch = o.batch * ranks, .d_width = o.d_width, .d_layers = o.d_layers, .seed = o.seed,
                    .vgg = o.vgg, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f };
  train_weights_default (&s.w);
  char err[2048];
  if (o.weights && !train_weights_parse (&s.w, o.weights, err, sizeof err)) {
    cli_error ("%s", err);
    return EXIT_USAGE;
  }
  if (s.crop % 8) {
    cli_error ("--crop must be a multiple of 8 (the discriminator and the generator halve it several times)");
    return EXIT_USAGE;
  }

  int code = EXIT_OK;
  char ckdir[4096], ckpath[4200], metrics_path[4200], outdir[4096], tmpmodel[4300];
  snprintf (ckdir, sizeof ckdir, "%s", o.ckpt_dir ? o.ckpt_dir : "");
  if (!o.ckpt_dir)
    snprintf (ckdir, sizeof ckdir, "%s.train", o.out);
  snprintf (ckpath, sizeof ckpath, "%s/checkpoint.safetensors", ckdir);
  snprintf (metrics_path, sizeof metrics_path, "%s/metrics.jsonl", ckdir);
  snprintf (tmpmodel, sizeof tmpmodel, "%s/.initial-model.safetensors", ckdir);
  if (ranks > 1) /* every rank makes its own (the same) */
    snprintf (tmpmodel, sizeof tmpmodel, "%s/.initial-model-rank%d.safetensors", ckdir, rank);
  train_dir_of (o.out, outdir, sizeof outdir);

  train_data *data = NULL;
  cel_context *ctx = NULL;
  cel_model *model = NULL;
  cel_safetensors *ck = NULL;
  char *arch = NULL;
  host_store state = { 0 };
  train_graph tg = { 0 };
  train_sampler sampler = { 0 };
  train_parallel *par = NULL;
  train_setup rs; /* this rank's: its share of the batch; external optimizer when data parallel */
  char devbuf[64];
  FILE *metrics = NULL;
  float *fixed_photos = NULL, *fixed_refs = NULL;
  int32_t n_fixed = 0;
  int64_t step = 0, last_ckpt = -1;
  cel_status st;

  /* outputs first: a run must not train for hours and then find it cannot write */
  struct stat sb;
  if (stat (outdir, &sb) != 0 || !S_ISDIR (sb.st_mode) || access (outdir, W_OK) != 0) {
    cli_error ("cannot write the model to the folder '%s': %s", outdir, stat (outdir, &sb) ? strerror (errno) :
               S_ISDIR (sb.st_mode) ? strerror (EACCES) : "not a folder");
    return EXIT_IO;
  }
  if (!train_make_dir (ckdir, err, sizeof err)) {
    cli_error ("%s", err);
    return EXIT_IO;
  }
  {
    char samples[4300], base[4096];
    snprintf (samples, sizeof samples, "%s/samples", ckdir);
    const char *slash = strrchr (o.out, '/');
    snprintf (base, sizeof base, "%s.tmp-", slash ? slash + 1 : o.out);
    int removed = train_remove_stale_temporaries (ckdir, NULL) + train_remove_stale_temporaries (samples, NULL) +
                  train_remove_stale_temporaries (outdir, base);
    if (removed && !o.quiet)
      fprintf (stderr, "celgan: removed %d temporary file%s left by an interrupted run\n", removed, removed > 1 ? "s" : "");
  }
  bool have_ckpt = stat (ckpath, &sb) == 0;
  if (o.resume && !have_ckpt) {
    cli_error ("--resume: no checkpoint at '%s'", ckpath);
    return EXIT_IO;
  }
  if (!o.resume && have_ckpt) {
    cli_error ("'%s' holds a checkpoint: add --resume to continue it, or remove it (or choose another "
               "--checkpoint-dir) to start again", ckpath);
    return EXIT_USAGE;
  }

  /* the generator's architecture, and the state to start from */
  uint64_t moments_gan = 0;
  if (o.resume) {
    if (!train_checkpoint_load (ckpath, &state, &ck, err, sizeof err)) {
      cli_error ("%s", err);
      code = EXIT_IO;
      goto done;
    }
    const char *a = cel_safetensors_metadata (ck, "celgan.train.architecture");
    const char *keys[] = { "celgan.train.step", "celgan.train.crop", "celgan.train.batch", "celgan.train.seed",
                           "celgan.train.d_width", "celgan.train.d_layers", "celgan.train.warmup",
                           "celgan.train.g_moments_gan" };
    int64_t vals[8];
    for (int i = 0; i < 8; i++) {
      const char *v = cel_safetensors_metadata (ck, keys[i]);
      if (!a || !v || !parse_i64 (v, 0, &vals[i])) {
        cli_error ("%s: not a celgan train checkpoint (no %s)", ckpath, !a ? "celgan.train.architecture" : keys[i]);
        code = EXIT_BAD_MODEL;
        goto done;
      }
    }
    step = last_ckpt = vals[0];
    s.crop = o.crop = (int32_t) vals[1];
    s.batch = o.batch = (int32_t) vals[2];
    s.seed = o.seed = (uint64_t) vals[3];
    s.d_width = (int32_t) vals[4];
    s.d_layers = (int32_t) vals[5];
    o.warmup = vals[6];
    moments_gan = (uint64_t) vals[7];
    const char *ds = cel_safetensors_metadata (ck, "celgan.train.d_scales"); /* absent before reference-guided runs */
    if (ds && (!parse_i64 (ds, 1, &vals[0]) || vals[0] > MAX_D_SCALES)) {
      cli_error ("%s: bad celgan.train.d_scales", ckpath);
      code = EXIT_BAD_MODEL;
      goto done;
    }
    o.d_scales = ds ? (int32_t) vals[0] : 1;
    /* what D has learnt to see; a warm-up checkpoint's D is untrained, so there the option may still change */
    const char *dl = cel_safetensors_metadata (ck, "celgan.train.d_luma");
    bool ck_luma = dl && strcmp (dl, "1") == 0;
    if (moments_gan && ck_luma != o.d_luma) {
      cli_error ("%s: its discriminator was trained %s --d-luma: resume it %s", ckpath, ck_luma ? "with" : "without",
                 ck_luma ? "with --d-luma" : "without --d-luma");
      code = EXIT_USAGE;
      goto done;
    }
    arch = strdup (a);
    if (!o.quiet)
      fprintf (stderr, "celgan: resuming from step %lld (crop %d, batch %d, seed %llu from the checkpoint)\n",
               (long long) step, s.crop, s.batch, (unsigned long long) s.seed);
  } else if (!(arch = train_resolve_config (o.config))) {
    cli_error ("no configuration '%s' (not a file, not in CELGAN_CONFIG_PATH or the installed configs)", o.config);
    code = EXIT_USAGE;
    goto done;
  }
  if (s.batch % ranks) {
    cli_error ("the checkpoint's batch of %d cannot be split evenly over %d ranks", s.batch, ranks);
    code = EXIT_USAGE;
    goto done;
  }
  if ((st = cel_model_create_file (tmpmodel, arch, o.seed, NULL, 0, err, sizeof err)) ||
      (st = cel_model_load (tmpmodel, &model, err, sizeof err))) {
    unlink (tmpmodel);
    cli_error ("configuration '%s': %s", o.config, err);
    code = st == CEL_ERROR_IO ? EXIT_IO : EXIT_USAGE;
    goto done;
  }
  unlink (tmpmodel);
  const cel_model_info *mi = cel_model_get_info (model);
  s.reference = strcmp (mi->family, "reference-gan") == 0;
  if ((strcmp (mi->family, "style-generator") != 0 && !s.reference) || mi->in_channels != 3 || mi->out_channels != 3) {
    cli_error ("configuration '%s': the trainer trains RGB style-generator and reference-gan models (this is a %s)", o.config,
               mi->family);
    code = EXIT_USAGE;
    goto done;
  }
  if (o.reference && !s.reference) {
    cli_error ("--reference-guided trains reference-gan models; configuration '%s' is a %s", o.config, mi->family);
    code = EXIT_USAGE;
    goto done;
  }
  if (s.reference) { /* the reference-guided defaults, then --weights over them (parsed once above already) */
    train_weights_default_reference (&s.w);
    if (o.weights)
      train_weights_parse (&s.w, o.weights, err, sizeof err);
  }
  s.d_scales = o.d_scales ? o.d_scales : s.reference ? 2 : 1;
  if (o.d_luma && s.reference) {
    cli_error ("--d-luma is for style-generator training, not --reference-guided");
    code = EXIT_USAGE;
    goto done;
  }
  s.d_luma = o.d_luma;
  if (!o.description)
    o.description = s.reference ? "A reference-guided generator trained with celgan train --reference-guided: "
                                  "celgan apply -r REFERENCE puts the reference's look onto the input."
                                : "A photo-to-style generator trained with celgan train.";
  if ((s.crop >> (s.d_scales - 1)) < (2 << s.d_layers)) {
    cli_error ("--crop %d is too small for %d discriminator scales of %d stride-2 layers", s.crop, s.d_scales, s.d_layers);
    code = EXIT_USAGE;
    goto done;
  }
  if (s.crop % mi->stride) {
    cli_error ("--crop %d must be a multiple of the generator's stride %d", s.crop, mi->stride);
    code = EXIT_USAGE;
    goto done;
  }
  s.model = model;
  if (!o.resume && (st = train_initial_state (&s, &state, err, sizeof err))) {
    cli_error ("%s", err);
    code = cli_exit_code (st);
    goto done;
  }
  if (o.resume && step >= o.warmup && !moments_gan)
    zero_g_moments (&state); /* the checkpoint was written at the end of the warm-up: a fresh optimizer */

  /* data: s.batch is the global batch, of which this rank takes [rank * rs.batch, (rank + 1) * rs.batch) */
  rs = s;
  rs.batch = s.batch / ranks;
  rs.external_optimizer = ranks > 1;
  if (ranks > 1 && !(par = train_parallel_create (comm))) {
    cli_error ("out of host memory");
    code = EXIT_FAILURE_GENERIC;
    goto done;
  }
  train_data_options dopt = { .photos = o.photos, .styles = o.styles, .crop = s.crop, .batch = s.batch,
                              .shard_first = rank * rs.batch, .shard_count = rs.batch,
                              .threads = o.threads, .seed = s.seed, .cache_bytes = o.cache_mb << 20, .quiet = o.quiet };
  if (!train_data_open (&dopt, &data, err, sizeof err)) {
    cli_error ("%s", err);
    code = EXIT_IO;
    goto done;
  }
  int64_t n_photos, n_styles;
  uint64_t data_hash;
  train_data_listing (data, &n_photos, &n_styles, &data_hash);
  if (ck) {
    const char *h = cel_safetensors_metadata (ck, "celgan.train.data_hash");
    char mine[32];
    snprintf (mine, sizeof mine, "%016llx", (unsigned long long) data_hash);
    if (h && strcmp (h, mine) && !o.quiet)
      fprintf (stderr, "celgan: warning: the image folders changed since the checkpoint: the data order differs\n");
  }
  if (!train_data_start (data, step, err, sizeof err)) {
    cli_error ("%s", err);
    code = EXIT_FAILURE_GENERIC;
    goto done;
  }
  if (o.dump_dir && !train_make_dir (o.dump_dir, err, sizeof err)) {
    cli_error ("%s", err);
    code = EXIT_IO;
    goto done;
  }

  if (!(ctx = cli_context (mpi_comm_device (comm, o.device, devbuf, sizeof devbuf)))) {
    code = EXIT_NO_DEVICE;
    goto done;
  }
  if (o.profile && (st = cel_context_set_profiling (ctx, true)) && root)
    fprintf (stderr, "celgan: warning: no profile: %s\n", cel_context_last_error (ctx));
  if (o.sample_every && root) {
    fixed_photos = malloc ((size_t) o.samples * 3 * s.crop * s.crop * sizeof (float));
    n_fixed = fixed_photos ? train_data_fixed_photos (data, o.samples, s.crop, fixed_photos) : 0;
    if (s.reference) { /* photo k with reference k */
      fixed_refs = malloc ((size_t) o.samples * 3 * s.crop * s.crop * sizeof (float));
      int32_t n_refs = fixed_refs ? train_data_fixed_styles (data, o.samples, s.crop, fixed_refs) : 0;
      n_fixed = n_refs < n_fixed ? n_refs : n_fixed;
    }
  }
  if (o.resume && root)
    train_truncate_metrics (metrics_path, step);
  if (!(metrics = fopen (root ? metrics_path : "/dev/null", o.resume ? "a" : "w"))) {
    cli_error ("cannot write '%s': %s", metrics_path, strerror (errno));
    code = EXIT_IO;
    goto done;
  }

  double t_start = now (), t_rate = 0;
  int64_t first_step = step;
  char ckmeta_vals[16][4096];
  for (; step < o.steps; step++) {
    bool gan = step >= o.warmup;
    if (!tg.g || tg.gan != gan) {
      if (tg.g) {
        if ((st = train_graph_download (&tg, &state)))
          goto device_error;
        train_graph_destroy (&tg);
        zero_g_moments (&state); /* the warm-up's optimizer ends with it */
      }
      if ((st = train_graph_build (ctx, &rs, gan, &state, &tg, err, sizeof err))) {
        cli_error ("%s", err);
        code = st == CEL_ERROR_FORMAT || st == CEL_ERROR_IO ? EXIT_IO : cli_exit_code (st);
        goto done;
      }
      if (par && !train_parallel_bind (par, &tg, &state, err, sizeof err)) {
        cli_error ("%s", err);
        code = EXIT_FAILURE_GENERIC;
        goto done;
      }
      if (par && (code = train_parallel_check (par, &state, step, err, sizeof err))) { /* the same start everywhere */
        if (root)
          cli_error ("%s", err);
        *all_know = true;
        goto done;
      }
      if (o.dump_dir) {
        host_store all = { 0 };
        bool ok = true;
        for (size_t i = 0; i < state.n && ok; i++)
          ok = host_store_put (&all, state.t[i].name, state.t[i].shape, state.t[i].data) != NULL;
        for (size_t i = 0; i < tg.fixed.n && ok; i++)
          ok = host_store_put (&all, tg.fixed.t[i].name, tg.fixed.t[i].shape, tg.fixed.t[i].data) != NULL;
        char path[4200];
        snprintf (path, sizeof path, "%s/state-%06lld.safetensors", o.dump_dir, (long long) step);
        ok = ok && train_checkpoint_save (path, &all, NULL, 0, err, sizeof err);
        host_store_free (&all);
        if (!ok) {
          cli_error ("%s", err);
          code = EXIT_IO;
          goto done;
        }
      }
    }
    double t0 = now ();
    const train_batch *b = train_data_get (data, step, err, sizeof err);
    double losses[LOSS_COUNT];
    if (par) {
      bool here;
      code = train_parallel_step (par, &tg, &state, b, err, step, gan ? o.lr_g : o.lr_warmup, o.lr_d,
                                  gan ? step - o.warmup + 1 : step + 1, step - o.warmup + 1, &rs, losses, &here, err,
                                  sizeof err);
      if (b)
        train_data_release (data, step);
      if (code) {
        if (here || root)
          cli_error ("%s", err);
        *all_know = code != EXIT_COMM;
        goto done;
      }
    } else if (!b) {
      cli_error ("%s", err);
      code = EXIT_IO;
      goto done;
    }
    if (o.dump_dir && !dump_batch (o.dump_dir, b, s.batch, s.crop, err, sizeof err)) {
      cli_error ("%s", err);
      code = EXIT_IO;
      goto done;
    }
    if (!par) {
      st = train_graph_step (&tg, b->photo, b->style, b->gray, b->smooth, gan ? o.lr_g : o.lr_warmup, o.lr_d,
                             gan ? step - o.warmup + 1 : step + 1, step - o.warmup + 1, &rs, losses);
      train_data_release (data, step);
      if (st)
        goto device_error;
    }
    for (int i = 0; i < LOSS_COUNT; i++)
      if (!isfinite (losses[i])) {
        if (!o.quiet)
          fputc ('\n', stderr);
        if (root) /* the losses are the ranks' mean: every rank stops here */
          cli_error ("step %lld: the %s loss is %s: training diverged and stopped (try lower learning rates). %s",
                     (long long) step + 1, train_loss_names[i], isnan (losses[i]) ? "NaN" : "infinite",
                     last_ckpt >= 0 ? "The last good checkpoint is kept:" : "No checkpoint was written yet.");
        *all_know = true;
        if (last_ckpt >= 0 && root)
          fprintf (stderr, "  %s (step %lld)\n", ckpath, (long long) last_ckpt);
        code = EXIT_DIVERGED;
        goto done;
      }
    double dt = now () - t0;
    t_rate = step == first_step ? dt : 0.9 * t_rate + 0.1 * dt;
    double ips = s.batch / (dt > 0 ? dt : 1e-9);
    fprintf (metrics, "{\"step\":%lld,\"phase\":\"%s\"", (long long) step + 1, gan ? "gan" : "warmup");
    for (int i = 0; i < LOSS_COUNT; i++)
      if (tg.loss[i] != CEL_NO_NODE)
        fprintf (metrics, ",\"%s\":%.9g", train_loss_names[i], losses[i]);
    fprintf (metrics, ",\"images_per_s\":%.4g,\"seconds\":%.3f}\n", ips, now () - t_start);
    if (fflush (metrics) != 0 || ferror (metrics)) {
      if (!o.quiet)
        fputc ('\n', stderr);
      cli_error ("cannot write '%s': %s%s", metrics_path, strerror (errno),
                 last_ckpt >= 0 ? " (the last checkpoint is intact)" : "");
      code = EXIT_IO;
      goto done;
    }

    bool tty = isatty (STDERR_FILENO);
    if (!o.quiet && (tty || (step + 1) % o.log_every == 0 || step + 1 == o.steps || step == first_step)) {
      char eta[32];
      format_duration (t_rate * (double) (o.steps - step - 1), eta, sizeof eta);
      if (gan && s.reference)
        fprintf (stderr, "%sstep %lld/%lld  G %.4g (adv %.3g con %.3g sty-rec %.3g self %.3g cyc %.3g)  D %.4g  %.2f img/s  "
                 "ETA %s%s", tty ? "\r" : "", (long long) step + 1, (long long) o.steps, losses[LOSS_G], losses[LOSS_G_ADV],
                 losses[LOSS_CONTENT], losses[LOSS_STYLE_REC], losses[LOSS_SELF_REC], losses[LOSS_CYCLE], losses[LOSS_D],
                 s.batch / t_rate, eta, tty ? "   " : "\n");
      else if (gan)
        fprintf (stderr, "%sstep %lld/%lld  G %.4g (adv %.3g con %.3g sty %.3g col %.3g tv %.3g)  D %.4g  %.2f img/s  ETA %s%s",
                 tty ? "\r" : "", (long long) step + 1, (long long) o.steps, losses[LOSS_G], losses[LOSS_G_ADV],
                 losses[LOSS_CONTENT], losses[LOSS_STYLE], losses[LOSS_COLOR], losses[LOSS_TV], losses[LOSS_D],
                 s.batch / t_rate, eta, tty ? "   " : "\n");
      else if (s.reference)
        fprintf (stderr, "%sstep %lld/%lld  warm-up content %.4g self %.4g  %.2f img/s  ETA %s%s", tty ? "\r" : "",
                 (long long) step + 1, (long long) o.steps, losses[LOSS_CONTENT], losses[LOSS_SELF_REC], s.batch / t_rate, eta,
                 tty ? "   " : "\n");
      else
        fprintf (stderr, "%sstep %lld/%lld  warm-up content %.4g  %.2f img/s  ETA %s%s", tty ? "\r" : "",
                 (long long) step + 1, (long long) o.steps, losses[LOSS_CONTENT], s.batch / t_rate, eta, tty ? "   " : "\n");
    }

    if (o.time_limit > 0 && step + 1 < o.steps && now () - t_start >= o.time_limit) {
      if (!o.quiet)
        fprintf (stderr, "%scelgan: --time-limit of %gs reached at step %lld of %lld\n", tty ? "\n" : "", o.time_limit,
                 (long long) step + 1, (long long) o.steps);
      o.steps = step + 1; /* this step is the last: checkpoint, samples and model file as at the end */
    }
    bool last = step + 1 == o.steps;
    bool do_ckpt = last || (o.checkpoint_every && (step + 1) % o.checkpoint_every == 0);
    if (par && (do_ckpt || (step + 1) % 100 == 0) && (code = train_parallel_check (par, &state, step + 1, err, sizeof err))) {
      if (root)
        cli_error ("%s", err);
      *all_know = true;
      goto done;
    }
    bool ckpt_step = do_ckpt;
    do_ckpt = do_ckpt && root;
    bool do_sample = n_fixed > 0 && (last || (step + 1) % o.sample_every == 0);
    if (do_ckpt || do_sample) {
      if ((st = train_graph_download (&tg, &state)))
        goto device_error;
    }
    if (do_sample) {
      char path[4300];
      snprintf (path, sizeof path, "%s/samples", ckdir);
      if (!train_make_dir (path, err, sizeof err)) {
        cli_error ("%s", err);
        code = EXIT_IO;
        goto done;
      }
      snprintf (path, sizeof path, "%s/samples/step-%06lld.png", ckdir, (long long) step + 1);
      if ((st = train_sample_grid (&sampler, ctx, model, &state, fixed_photos, fixed_refs, n_fixed, s.crop, path, err,
                                    sizeof err))) {
        cli_error ("%s", err);
        code = st == CEL_ERROR_IO ? EXIT_IO : cli_exit_code (st);
        goto done;
      }
    }
    if (do_ckpt) {
      snprintf (ckmeta_vals[0], sizeof ckmeta_vals[0], "%lld", (long long) step + 1);
      snprintf (ckmeta_vals[1], sizeof ckmeta_vals[1], "%d", s.crop);
      snprintf (ckmeta_vals[2], sizeof ckmeta_vals[2], "%d", s.batch);
      snprintf (ckmeta_vals[3], sizeof ckmeta_vals[3], "%llu", (unsigned long long) s.seed);
      snprintf (ckmeta_vals[4], sizeof ckmeta_vals[4], "%d", s.d_width);
      snprintf (ckmeta_vals[5], sizeof ckmeta_vals[5], "%d", s.d_layers);
      snprintf (ckmeta_vals[6], sizeof ckmeta_vals[6], "%lld", (long long) o.warmup);
      snprintf (ckmeta_vals[7], sizeof ckmeta_vals[7], "%d", gan ? 1 : 0);
      snprintf (ckmeta_vals[8], sizeof ckmeta_vals[8], "%016llx", (unsigned long long) data_hash);
      snprintf (ckmeta_vals[9], sizeof ckmeta_vals[9], "%lld photos in %s, %lld style images in %s", (long long) n_photos,
                o.photos, (long long) n_styles, o.styles);
      snprintf (ckmeta_vals[10], sizeof ckmeta_vals[10], "%d", s.d_scales);
      const char *meta[] = { "celgan.checkpoint", "1", "celgan.train.architecture", arch,
                             "celgan.train.step", ckmeta_vals[0], "celgan.train.crop", ckmeta_vals[1],
                             "celgan.train.batch", ckmeta_vals[2], "celgan.train.seed", ckmeta_vals[3],
                             "celgan.train.d_width", ckmeta_vals[4], "celgan.train.d_layers", ckmeta_vals[5],
                             "celgan.train.warmup", ckmeta_vals[6], "celgan.train.g_moments_gan", ckmeta_vals[7],
                             "celgan.train.data_hash", ckmeta_vals[8], "celgan.train.data", ckmeta_vals[9],
                             "celgan.train.d_scales", ckmeta_vals[10], "celgan.train.d_luma", s.d_luma ? "1" : "0",
                             "celgan.train.rng", "counter-based: the data order, crops and flips of step t are "
                             "functions of (seed, t)" };
      if (!train_checkpoint_save (ckpath, &state, meta, sizeof meta / sizeof meta[0] / 2, err, sizeof err)) {
        if (!o.quiet)
          fputc ('\n', stderr);
        cli_error ("writing the checkpoint: %s%s", err, last_ckpt >= 0 ? " (the previous checkpoint is intact)" : "");
        code = EXIT_IO;
        goto done;
      }
      last_ckpt = step + 1;
    }
    if (ckpt_step)
      mpi_comm_set_note (comm, "the last checkpoint (step %lld) is intact in %s: continue with --resume",
                         (long long) step + 1, ckdir);
  }
  if (!o.quiet && isatty (STDERR_FILENO))
    fputc ('\n', stderr);

  /* the model file */
  if (root) {
    int64_t unreadable, too_small;
    train_data_skipped (data, &unreadable, &too_small);
    time_t t = time (NULL);
    const char *sde = getenv ("SOURCE_DATE_EPOCH"); /* reproducible model files, as reproducible builds do it */
    int64_t epoch;
    if (sde && parse_i64 (sde, 0, &epoch))
      t = (time_t) epoch;
    char date[64], training[8192];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime (&t));
    snprintf (training, sizeof training,
              "{\"tool\": \"celgan train %s\", \"date\": \"%s\", \"steps\": %lld, \"warmup\": %lld, \"crop\": %d, "
              "\"batch\": %d, \"seed\": %llu, \"photos\": %lld, \"styles\": %lld, \"skipped_images\": %lld, "
              "\"features\": \"%s\", \"lr_g\": %g, \"lr_d\": %g, \"mode\": \"%s\", \"d_scales\": %d, "
              "\"d_input\": \"%s\"}",
              CELGAN_VERSION, date, (long long) o.steps, (long long) o.warmup, s.crop, s.batch, (unsigned long long) s.seed,
              (long long) n_photos, (long long) n_styles, (long long) (unreadable + too_small),
              s.vgg ? "vgg19" : "random", o.lr_g, o.lr_d, s.reference ? "reference-guided" : "style", s.d_scales,
              s.d_luma ? "luma" : "rgb");
    const char *meta[] = { "celgan.format", "1", "celgan.architecture", arch, "celgan.name", o.name,
                           "celgan.description", o.description, "celgan.license", o.license, "celgan.training", training };
    if (tg.g && (st = train_graph_download (&tg, &state)))
      goto device_error;
    if (!train_export_model (o.out, model, &state, meta, 6, err, sizeof err)) {
      cli_error ("writing the model: %s", err);
      code = EXIT_IO;
      goto done;
    }
    char plot[4300];
    snprintf (plot, sizeof plot, "%s/loss.png", ckdir);
    if (!train_plot_losses (metrics_path, plot, err, sizeof err) && !o.quiet)
      fprintf (stderr, "celgan: warning: no loss plot: %s\n", err);
    if (!o.quiet)
      fprintf (stderr, "celgan: wrote %s (%lld steps, %.1fs%s); checkpoint, metrics, samples and loss.png in %s\n", o.out,
               (long long) o.steps, now () - t_start,
               unreadable + too_small ? ", some images skipped" : "", ckdir);
    if (unreadable + too_small && !o.quiet)
      fprintf (stderr, "celgan: skipped %lld unreadable images and %lld smaller than the crop\n", (long long) unreadable,
               (long long) too_small);
    if (par && !o.quiet) {
      uint64_t bytes;
      int32_t buckets;
      double compute, wait, exchange;
      train_parallel_stats (par, &bytes, &buckets, &compute, &wait, &exchange);
      fprintf (stderr, "celgan: data parallel over %d ranks: %.3f MB of gradients per step in %d buckets; mean step "
               "%.3f s in the graph, %.3f s waiting for the slowest rank, %.3f s exchanging (download, all-reduce, "
               "Adam, upload)\n", ranks, bytes / 1e6, buckets, compute, wait, exchange);
    }
  }
  goto done;

device_error:
  cli_error ("%s", cel_context_last_error (ctx));
  code = cli_exit_code (st);
done:
  if (ctx && root && (o.profile || getenv ("CELGAN_PROFILE"))) {
    fprintf (stderr, "celgan: GPU time per shader over the run (training steps and sample grids):\n");
    cel_context_profile_report (ctx, stderr);
    fprintf (stderr, "celgan: GPU time per op and shapes over the run:\n");
    cel_context_profile_report_ops (ctx, stderr, 40);
  }
  train_parallel_destroy (par);
  if (metrics)
    fclose (metrics);
  train_sampler_destroy (&sampler);
  train_graph_destroy (&tg);
  train_data_close (data);
  cel_safetensors_close (ck);
  host_store_free (&state);
  cel_model_free (model);
  cel_context_destroy (ctx);
  free (arch);
  free (fixed_photos);
  free (fixed_refs);
  return code;
}

int cmd_train (int argc, char **argv) {
  /* --comm-timeout is needed before MPI starts (train_main parses it again with the rest) */
  double timeout = 600;
  for (int i = 1; i < argc; i++)
    if (strncmp (argv[i], "--comm-timeout", 14) == 0) {
      const char *v = argv[i][14] == '=' ? argv[i] + 15 : argv[i][14] == 0 && i + 1 < argc ? argv[i + 1] : NULL;
      if (v && strtod (v, NULL) > 0)
        timeout = strtod (v, NULL);
    }
  mpi_comm *comm = mpi_comm_start (timeout);
  bool all_know = false;
  int code = train_main (argc, argv, comm, &all_know);
  mpi_comm_finish (comm, code, all_know);
  return code;
}
