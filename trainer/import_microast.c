/* celgan import microast: MicroAST (Zhizhong Wang et al., "MicroAST: Towards Super-Fast Ultra-Resolution
 * Arbitrary Style Transfer", AAAI 2023, MIT license) from its four legacy PyTorch checkpoints to a CelGAN
 * model in the generic graph form (docs/model-format.md).
 *
 * The network, as the original repository's net_microAST.py and test_microAST.py run it (pixels in [0, 1],
 * every convolution reflect-padded by kernel/2 and with a bias):
 *   encoder (content and style, same shape):  9x9 3->16, relu; 3x3 stride 2 16->32 groups 16, relu; 1x1,
 *     relu; 3x3 stride 2 32->64 groups 32, relu; 1x1, relu; residual block -> f1; residual block -> f2.
 *     A residual block is x + conv (relu (conv (x))), 3x3 64->64.
 *   modulator (on the style features):  w1, b1 = avgpool (depthwise 3x3 (s1)), w2, b2 = the same on s2.
 *   decoder:  t = AdaIN (c2, s2), blended alpha * t + (1 - alpha) * c2; a modulated residual block with (w2, b2);
 *     AdaIN to s1 and the blend again; a modulated residual block with (w1, b1); then bilinear 2x up,
 *     3x3 64->32 groups 32, relu, 1x1, relu, bilinear 2x up, 3x3 32->16 groups 16, relu, 1x1, relu, 9x9 16->3.
 *   A modulated residual block:  h = w * conv1 (x) + b * x;  r = relu (h);  y = x + w * conv2 (r) + b * r,
 *     with w, b per-channel (N, 64, 1, 1): the "filter modulation" is a per-sample channel scaling of
 *     activations plus a scaled skip, so it is exactly CelGAN's mul and add ops (no new op needed).
 * AdaIN is torch's var (unbiased) + 1e-5 under the square root, as CelGAN's adain op. The upsampling is
 * nn.Upsample (scale_factor=2, mode='bilinear'), i.e. align_corners=False.
 *
 * Sizes that are not multiples of 4: the stride-2 convolutions give ceil (n / 2), the two 2x upsamplings
 * double, so the original network returns 4 * ceil (n / 4) pixels (test_microAST.py saves that larger image).
 * The CelGAN model ends with a top-left crop to the input's size: its output is exactly the top-left
 * n x m of the original's output, and equal to it when the size is a multiple of 4.
 *
 * Why the graph family and not reference-generator: MicroAST has grouped convolutions, two AdaINs at two
 * feature levels, a modulator, modulated residual blocks, fixed-factor upsampling, relu rather than leaky
 * relu and no tanh; expressing all of that as reference-generator options would turn the family into a
 * second graph language. The graph form holds it exactly, and the model is still reference-guided
 * (inputs image and reference) everywhere CelGAN looks. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The notice the MIT license asks to keep with the weights (the repository's LICENSE file). */
static const char mit_notice[] =
  "MIT License\n\nCopyright (c) 2022 Zhizhong Wang\n\n"
  "Permission is hereby granted, free of charge, to any person obtaining a copy\n"
  "of this software and associated documentation files (the \"Software\"), to deal\n"
  "in the Software without restriction, including without limitation the rights\n"
  "to use, copy, modify, merge, publish, distribute, sublicense, and/or sell\n"
  "copies of the Software, and to permit persons to whom the Software is\n"
  "furnished to do so, subject to the following conditions:\n\n"
  "The above copyright notice and this permission notice shall be included in all\n"
  "copies or substantial portions of the Software.\n\n"
  "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n"
  "IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\n"
  "FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\n"
  "AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\n"
  "LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,\n"
  "OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE\n"
  "SOFTWARE.\n";

enum { F_CONTENT, F_STYLE, F_MODULATOR, F_DECODER, F_COUNT };
static const char *const part_names[F_COUNT] = { "content_encoder", "style_encoder", "modulator", "decoder" };

typedef struct text {
  char *d;
  size_t n, cap;
  bool failed;
} text;

static void tprintf (text *t, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void tprintf (text *t, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0 || t->failed)
    return;
  if (t->n + (size_t) n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->n + (size_t) n + 1)
      cap *= 2;
    char *d = realloc (t->d, cap);
    if (!d) {
      t->failed = true;
      return;
    }
    t->d = d;
    t->cap = cap;
  }
  va_start (ap, fmt);
  vsnprintf (t->d + t->n, t->cap - t->n, fmt, ap);
  va_end (ap);
  t->n += (size_t) n;
}

typedef struct importer {
  cel_torch_file *files[F_COUNT];
  char paths[F_COUNT][4096];
  size_t used[F_COUNT];
  text nodes, tensors;
  int n_nodes;
  cel_tensor_entry entries[128];
  char names[128][128];
  size_t n_entries;
  char err[1024];
} importer;

static bool fail (importer *im, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static bool fail (importer *im, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (im->err, sizeof im->err, fmt, ap);
  va_end (ap);
  return false;
}

/* Takes tensor `key` of part `f` with the expected shape into the model as "<part>.<key>". */
static bool take (importer *im, int f, const char *key, int32_t rank, const int64_t *shape) {
  const cel_torch_tensor *t = cel_torch_find (im->files[f], key);
  if (!t)
    return fail (im, "%s: no tensor '%s' (is this MicroAST's %s?)", im->paths[f], key, part_names[f]);
  bool ok = t->rank == rank;
  for (int32_t i = 0; ok && i < rank; i++)
    ok = t->shape[i] == shape[i];
  if (!ok)
    return fail (im, "%s: tensor '%s' has an unexpected shape (is this MicroAST's %s?)", im->paths[f], key, part_names[f]);
  if (im->n_entries == sizeof im->entries / sizeof im->entries[0])
    return fail (im, "too many tensors");
  char *name = im->names[im->n_entries];
  snprintf (name, sizeof im->names[0], "%s.%s", part_names[f], key);
  cel_tensor_entry *e = &im->entries[im->n_entries++];
  *e = (cel_tensor_entry) { .name = name, .dtype = CEL_DTYPE_F32, .rank = rank, .data = t->data };
  memcpy (e->shape, shape, (size_t) rank * sizeof *shape);
  tprintf (&im->tensors, "%s\"%s\":[", im->n_entries > 1 ? "," : "", name);
  for (int32_t i = 0; i < rank; i++)
    tprintf (&im->tensors, "%s%lld", i ? "," : "", (long long) shape[i]);
  tprintf (&im->tensors, "]");
  im->used[f]++;
  return true;
}

/* Starts node `name` = op (in0[, in1]); the caller may add keys, then closes it with "}". */
static void node (importer *im, const char *name, const char *op, const char *in0, const char *in1) {
  tprintf (&im->nodes, "%s{\"name\":\"%s\",\"op\":\"%s\",\"in\":[\"%s\"", im->n_nodes++ ? "," : "", name, op, in0);
  if (in1)
    tprintf (&im->nodes, ",\"%s\"", in1);
  tprintf (&im->nodes, "]");
}

/* A ConvLayer of part f: reflection padding kernel/2, then conv2d with bias. Node `out`. */
static bool conv (importer *im, int f, const char *key, const char *out, const char *in, int64_t cin, int64_t cout, int64_t k,
                  int32_t stride, int64_t groups) {
  char w[160], b[160];
  snprintf (w, sizeof w, "%s.conv_layer.weight", key);
  snprintf (b, sizeof b, "%s.conv_layer.bias", key);
  int64_t ws[4] = { cout, cin / groups, k, k }, bs[1] = { cout };
  if (!take (im, f, w, 4, ws) || !take (im, f, b, 1, bs))
    return false;
  node (im, out, "conv2d", in, NULL);
  tprintf (&im->nodes, ",\"weight\":\"%s.%s\",\"bias\":\"%s.%s\",\"stride\":%d,\"padding\":%d,\"padding_mode\":\"reflect\","
           "\"groups\":%d}", part_names[f], w, part_names[f], b, (int) stride, (int) (k / 2), (int) groups);
  return true;
}

static void unary (importer *im, const char *out, const char *op, const char *in) {
  node (im, out, op, in, NULL);
  tprintf (&im->nodes, "}");
}

/* ResidualLayer: x + conv2 (relu (conv1 (x))); with w, b (modulated):
 * h = w * conv1 (x) + b * x, r = relu (h), y = x + w * conv2 (r) + b * r. */
static bool residual (importer *im, int f, const char *key, const char *p, const char *x, const char *w, const char *b) {
  char k1[96], k2[96], c1[96], c2[96], h[96], r[96], y[96], t1[96], t2[96];
  snprintf (k1, sizeof k1, "%s.conv1", key);
  snprintf (k2, sizeof k2, "%s.conv2", key);
  snprintf (c1, sizeof c1, "%s.conv1", p);
  snprintf (c2, sizeof c2, "%s.conv2", p);
  snprintf (r, sizeof r, "%s.relu", p);
  if (!conv (im, f, k1, c1, x, 64, 64, 3, 1, 1))
    return false;
  const char *act_in = c1;
  if (w) {
    snprintf (t1, sizeof t1, "%s.conv1.scaled", p);
    snprintf (t2, sizeof t2, "%s.skip1.scaled", p);
    snprintf (h, sizeof h, "%s.mod1", p);
    node (im, t1, "mul", c1, w);
    tprintf (&im->nodes, "}");
    node (im, t2, "mul", x, b);
    tprintf (&im->nodes, "}");
    node (im, h, "add", t1, t2);
    tprintf (&im->nodes, "}");
    act_in = h;
  }
  unary (im, r, "relu", act_in);
  if (!conv (im, f, k2, c2, r, 64, 64, 3, 1, 1))
    return false;
  const char *body = c2;
  char m2[96];
  if (w) {
    snprintf (t1, sizeof t1, "%s.conv2.scaled", p);
    snprintf (t2, sizeof t2, "%s.skip2.scaled", p);
    snprintf (m2, sizeof m2, "%s.mod2", p);
    node (im, t1, "mul", c2, w);
    tprintf (&im->nodes, "}");
    node (im, t2, "mul", r, b);
    tprintf (&im->nodes, "}");
    node (im, m2, "add", t1, t2);
    tprintf (&im->nodes, "}");
    body = m2;
  }
  snprintf (y, sizeof y, "%s.sum", p);
  node (im, y, "add", x, body);
  tprintf (&im->nodes, "}");
  return true;
}

/* An encoder of part f (content or style) on `input`; its two features are nodes "<p>.f1" and "<p>.f2". */
static bool encoder (importer *im, int f, const char *p, const char *input) {
  static const struct {
    const char *key;
    int64_t cin, cout, k;
    int32_t stride;
    int64_t groups;
  } layers[] = {
    { "enc1.0", 3, 16, 9, 1, 1 }, { "enc1.2", 16, 32, 3, 2, 16 }, { "enc1.4", 32, 32, 1, 1, 1 },
    { "enc1.6", 32, 64, 3, 2, 32 }, { "enc1.8", 64, 64, 1, 1, 1 },
  };
  char in[96], c[96], a[96];
  snprintf (in, sizeof in, "%s", input);
  for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
    snprintf (c, sizeof c, "%s.%s", p, layers[i].key);
    snprintf (a, sizeof a, "%s.%s.relu", p, layers[i].key);
    if (!conv (im, f, layers[i].key, c, in, layers[i].cin, layers[i].cout, layers[i].k, layers[i].stride, layers[i].groups))
      return false;
    unary (im, a, "relu", c);
    snprintf (in, sizeof in, "%s", a);
  }
  char r1[96], r2[96], f1[96], f2[96];
  snprintf (r1, sizeof r1, "%s.enc1.10", p);
  snprintf (r2, sizeof r2, "%s.enc2.0", p);
  snprintf (f1, sizeof f1, "%s.enc1.10.sum", p);
  snprintf (f2, sizeof f2, "%s.enc2.0.sum", p);
  return residual (im, f, "enc1.10", r1, in, NULL, NULL) && residual (im, f, "enc2.0", r2, f1, NULL, NULL);
}

/* AdaIN of content node c to style node s, blended with c by alpha in feature space (alpha < 0: by the
 * strength the user chooses at run time, a "blend" node). Result in `out`. */
static void adain_blend (importer *im, const char *p, const char *c, const char *s, double alpha, char *out, size_t outlen) {
  char a[96];
  snprintf (a, sizeof a, "%s.adain", p);
  if (alpha >= 0 && alpha <= 0) { /* no style statistics at all: the content features as they are */
    snprintf (out, outlen, "%s", c);
    return;
  }
  node (im, a, "adain", c, s);
  tprintf (&im->nodes, ",\"eps\":1e-5}");
  if (alpha >= 1) {
    snprintf (out, outlen, "%s", a);
    return;
  }
  snprintf (out, outlen, "%s.blend", p);
  node (im, out, "add", a, c);
  if (alpha < 0)
    tprintf (&im->nodes, ",\"blend\":\"strength\"}");
  else
    tprintf (&im->nodes, ",\"alpha\":%.9g,\"beta\":%.9g}", alpha, 1 - alpha);
}

static bool build (importer *im, double alpha) {
  if (!encoder (im, F_CONTENT, "content", "image") || !encoder (im, F_STYLE, "style", "reference"))
    return false;
  /* modulator: per-channel scales and biases from the style features */
  static const struct {
    const char *key, *on;
  } mods[] = { { "weight1.0", "style.enc1.10.sum" }, { "bias1.0", "style.enc1.10.sum" }, { "weight2.0", "style.enc2.0.sum" },
               { "bias2.0", "style.enc2.0.sum" } };
  for (size_t i = 0; i < 4; i++) {
    char c[96], pool[96];
    snprintf (c, sizeof c, "modulator.%s", mods[i].key);
    snprintf (pool, sizeof pool, "modulator.%s.pool", mods[i].key);
    if (!conv (im, F_MODULATOR, mods[i].key, c, mods[i].on, 64, 64, 3, 1, 64))
      return false;
    unary (im, pool, "global_avg_pool", c);
  }
  char x1[96], x3[96];
  adain_blend (im, "decoder.level2", "content.enc2.0.sum", "style.enc2.0.sum", alpha, x1, sizeof x1);
  if (!residual (im, F_DECODER, "dec1", "decoder.dec1", x1, "modulator.weight2.0.pool", "modulator.bias2.0.pool"))
    return false;
  adain_blend (im, "decoder.level1", "decoder.dec1.sum", "style.enc1.10.sum", alpha, x3, sizeof x3);
  if (!residual (im, F_DECODER, "dec2", "decoder.dec2", x3, "modulator.weight1.0.pool", "modulator.bias1.0.pool"))
    return false;
  node (im, "decoder.dec3.0", "resize", "decoder.dec2.sum", NULL);
  tprintf (&im->nodes, ",\"scale\":2,\"mode\":\"bilinear\"}");
  if (!conv (im, F_DECODER, "dec3.1", "decoder.dec3.1", "decoder.dec3.0", 64, 32, 3, 1, 32))
    return false;
  unary (im, "decoder.dec3.2", "relu", "decoder.dec3.1");
  if (!conv (im, F_DECODER, "dec3.3", "decoder.dec3.3", "decoder.dec3.2", 32, 32, 1, 1, 1))
    return false;
  unary (im, "decoder.dec3.4", "relu", "decoder.dec3.3");
  node (im, "decoder.dec3.5", "resize", "decoder.dec3.4", NULL);
  tprintf (&im->nodes, ",\"scale\":2,\"mode\":\"bilinear\"}");
  if (!conv (im, F_DECODER, "dec3.6", "decoder.dec3.6", "decoder.dec3.5", 32, 16, 3, 1, 16))
    return false;
  unary (im, "decoder.dec3.7", "relu", "decoder.dec3.6");
  if (!conv (im, F_DECODER, "dec3.8", "decoder.dec3.8", "decoder.dec3.7", 16, 16, 1, 1, 1))
    return false;
  unary (im, "decoder.dec3.9", "relu", "decoder.dec3.8");
  if (!conv (im, F_DECODER, "dec3.10", "decoder.dec3.10", "decoder.dec3.9", 16, 3, 9, 1, 1))
    return false;
  /* 4 * ceil (n / 4) pixels back to the input's n: the top-left corner */
  node (im, "output", "crop", "decoder.dec3.10", NULL);
  tprintf (&im->nodes, ",\"size_of\":\"image\"}");
  for (int f = 0; f < F_COUNT; f++)
    if (im->used[f] != cel_torch_count (im->files[f]))
      return fail (im, "%s holds %zu tensors that MicroAST does not use (is this MicroAST's %s?)", im->paths[f],
                   cel_torch_count (im->files[f]) - im->used[f], part_names[f]);
  return true;
}

/* DIR/<part>_*.pth.tar (or .pth): exactly one per part. */
static int find_part (importer *im, const char *dir, int f) {
  char pattern[4096];
  glob_t g;
  for (int ext = 0; ext < 2; ext++) {
    snprintf (pattern, sizeof pattern, "%s/%s*%s", dir, part_names[f], ext ? ".pth" : ".pth.tar");
    int r = glob (pattern, 0, NULL, &g);
    if (r == GLOB_NOMATCH)
      continue;
    if (r != 0 || g.gl_pathc != 1) {
      cli_error ("%s: %s %s file", dir, g.gl_pathc > 1 ? "more than one" : "cannot list the", part_names[f]);
      globfree (&g);
      return EXIT_IO;
    }
    snprintf (im->paths[f], sizeof im->paths[f], "%s", g.gl_pathv[0]);
    globfree (&g);
    return EXIT_OK;
  }
  cli_error ("%s: no %s checkpoint (%s_*.pth.tar)", dir, part_names[f], part_names[f]);
  return EXIT_IO;
}

static void usage (FILE *out) {
  fputs ("Usage: celgan import microast DIR -o OUTPUT.safetensors [options]\n"
         "\n"
         "Converts MicroAST (Wang et al., AAAI 2023; MIT license) into a reference-guided CelGAN model. DIR holds its\n"
         "four PyTorch checkpoints (content_encoder_*.pth.tar, style_encoder_*, modulator_*, decoder_*, as in the\n"
         "original repository's models/ folder); they are read by CelGAN's own strict reader, never by unpickling.\n"
         "Apply the result with 'celgan apply -m OUTPUT -r STYLE_IMAGE'.\n"
         "\n"
         "  -o, --output FILE     the model file to write (.safetensors)\n"
         "  -a, --alpha A         style strength 0..1 baked into the model, blended in feature space as the\n"
         "                        original does (default 1; strength at apply time is then a pixel blend);\n"
         "                        'strength': the model blends in feature space by the strength chosen when it is\n"
         "                        applied (celgan apply -s, the plug-in's slider). MicroAST's decoder was trained\n"
         "                        at alpha 1: at middle values its output saturates on many images\n"
         "  -n, --name NAME       the model's name (default \"MicroAST\")\n"
         "  -h, --help\n"
         "\n"
         "Exit status: 0 written; 2 bad command line; 4 a checkpoint is corrupt or not MicroAST's; 5 files unreadable\n"
         "or the output unwritable.\n",
         out);
}

int import_microast (int argc, char **argv) {
  const char *output = NULL, *name = "MicroAST";
  double alpha = 1; /* < 0: the strength at run time */
  static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, { "alpha", required_argument, NULL, 'a' },
                                        { "name", required_argument, NULL, 'n' },   { "help", no_argument, NULL, 'h' },
                                        { 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long (argc, argv, "o:a:n:h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'o': output = optarg; break;
    case 'a':
      if (strcmp (optarg, "strength") == 0) {
        alpha = -1;
        break;
      }
      alpha = strtod (optarg, &end);
      if (!end || *end || end == optarg || !(alpha >= 0 && alpha <= 1)) {
        cli_error ("--alpha must be a number from 0 to 1, or 'strength'");
        return EXIT_USAGE;
      }
      break;
    case 'n': name = optarg; break;
    case 'h': usage (stdout); return EXIT_OK;
    default: usage (stderr); return EXIT_USAGE;
    }
  }
  if (optind != argc - 1 || !output) {
    cli_error ("import microast needs a folder and -o OUTPUT (see 'celgan import microast --help')");
    return EXIT_USAGE;
  }
  const char *dir = argv[optind];
  struct stat sb;
  if (stat (dir, &sb) != 0 || !S_ISDIR (sb.st_mode)) {
    cli_error ("'%s' is not a folder: %s", dir, stat (dir, &sb) != 0 ? strerror (errno) : "a file");
    return EXIT_IO;
  }
  importer *im = calloc (1, sizeof *im);
  if (!im) {
    cli_error ("out of memory");
    return EXIT_FAILURE_GENERIC;
  }
  int code = EXIT_OK;
  char *arch = NULL, *provenance = NULL;
  for (int f = 0; f < F_COUNT && !code; f++) {
    if ((code = find_part (im, dir, f)))
      break;
    char err[1024];
    cel_status st = cel_torch_open (im->paths[f], &im->files[f], err, sizeof err);
    if (st) {
      cli_error ("%s", err);
      code = st == CEL_ERROR_IO ? EXIT_IO : EXIT_BAD_MODEL;
    }
  }
  if (code)
    goto done;
  if (!build (im, alpha)) {
    cli_error ("%s", im->err);
    code = EXIT_BAD_MODEL;
    goto done;
  }
  text a = { 0 }, p = { 0 };
  tprintf (&a, "{\"family\":\"graph\",\"inputs\":[\"image\",\"reference\"],\"in_channels\":3,\"out_channels\":3,"
           "\"input_range\":[0,1],\"output_range\":[0,1],\"tensors\":{%s},\"nodes\":[%s],\"output\":\"output\"}",
           im->tensors.d ? im->tensors.d : "", im->nodes.d ? im->nodes.d : "");
  char date[32] = "";
  time_t now = time (NULL);
  strftime (date, sizeof date, "%Y-%m-%d", gmtime (&now));
  tprintf (&p, "{\"source\":\"MicroAST (Zhizhong Wang et al., AAAI 2023), pretrained weights of the repository "
           "EndyWon/MicroAST\",\"files\":[");
  for (int f = 0; f < F_COUNT; f++) {
    const char *base = strrchr (im->paths[f], '/');
    tprintf (&p, "%s\"%s\"", f ? "," : "", base ? base + 1 : im->paths[f]);
  }
  if (alpha < 0)
    tprintf (&p, "],\"alpha\":\"strength\"");
  else
    tprintf (&p, "],\"alpha\":%.9g", alpha);
  tprintf (&p, ",\"tool\":\"celgan import microast %s\",\"date\":\"%s\"}", CELGAN_VERSION, date);
  arch = a.d;
  provenance = p.d;
  if (a.failed || p.failed || im->nodes.failed || im->tensors.failed) {
    cli_error ("out of memory");
    code = EXIT_FAILURE_GENERIC;
    goto done;
  }
  char description[256];
  snprintf (description, sizeof description, "Puts the look of a reference image onto the input (arbitrary style "
            "transfer, MicroAST)%s.", alpha >= 0 && alpha < 1 ? ", at reduced style strength" : "");
  const char *meta[] = { "celgan.format", "1", "celgan.architecture", arch, "celgan.name", name, "celgan.description",
                         description, "celgan.license", mit_notice, "celgan.training", provenance };
  char err[1024];
  cel_status st = cel_safetensors_save (output, im->entries, im->n_entries, meta, sizeof meta / sizeof meta[0] / 2, err,
                                        sizeof err);
  if (st) {
    cli_error ("%s", err);
    code = st == CEL_ERROR_IO ? EXIT_IO : EXIT_FAILURE_GENERIC;
    goto done;
  }
  /* the file must load as a model; if it does not, this importer is wrong: leave nothing behind */
  cel_model *m = NULL;
  if ((st = cel_model_load (output, &m, err, sizeof err))) {
    cli_error ("internal error, the written model does not load: %s", err);
    unlink (output);
    code = EXIT_FAILURE_GENERIC;
    goto done;
  }
  const cel_model_info *mi = cel_model_get_info (m);
  if (alpha < 0)
    fprintf (stderr, "%s: MicroAST, %lld parameters, style strength chosen when applied (feature space)\n", output,
             (long long) mi->parameters);
  else
    fprintf (stderr, "%s: MicroAST, %lld parameters, style strength %g\n", output, (long long) mi->parameters, alpha);
  cel_model_free (m);

done:
  for (int f = 0; f < F_COUNT; f++)
    cel_torch_close (im->files[f]);
  free (im->nodes.d);
  free (im->tensors.d);
  free (arch);
  free (provenance);
  free (im);
  return code;
}
