/* Helper of the GIMP tests: makes test models and stylizes PNG files through the library, the reference
 * the plug-in's output is compared with (the same as `celgan apply`).
 *
 *   celgan-gimp-helper model OUT.safetensors ARCH.json SEED [NAME [DESCRIPTION]]
 *   celgan-gimp-helper apply MODEL IN.png OUT.png [TILE [STRENGTH [KEEP_COLORS [REFERENCE.png]]]]
 *   celgan-gimp-helper compare A.png B.png [--rect X Y W H] [--outside] [--alpha]
 *                                                     the largest difference, in 1/255 steps
 */
#include "celgan.h"
#include "image.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_text (const char *path) {
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

static int make_model (int argc, char **argv) {
  if (argc < 4)
    return 2;
  char *arch = read_text (argv[3]), err[1024] = "";
  if (!arch) {
    fprintf (stderr, "cannot read %s\n", argv[3]);
    return 1;
  }
  const char *meta[] = { "celgan.name", argc > 5 ? argv[5] : "Test model", "celgan.description",
                         argc > 6 ? argv[6] : "Random weights, for tests", "celgan.license", "CC0-1.0" };
  cel_status st = cel_model_create_file (argv[2], arch, strtoull (argv[4], NULL, 10), meta, 3, err, sizeof err);
  free (arch);
  if (st) {
    fprintf (stderr, "%s\n", err);
    return 1;
  }
  return 0;
}

static int apply (int argc, char **argv) {
  if (argc < 5)
    return 2;
  char err[1024] = "";
  image img = { 0 }, ref = { 0 };
  cel_model *m = NULL;
  cel_context *ctx = NULL;
  cel_stylizer *s = NULL;
  int rc = 1;
  cel_stylize_options o = { .tile = argc > 5 ? atoi (argv[5]) : 0 };
  if (cel_model_load (argv[2], &m, err, sizeof err) || !image_load (argv[3], &img, 0, err, sizeof err) ||
      (argc > 8 && !image_load (argv[8], &ref, 0, err, sizeof err))) {
    fprintf (stderr, "%s\n", err);
    goto done;
  }
  if (cel_context_create (NULL, &ctx) || cel_stylizer_create (ctx, m, &s)) {
    fprintf (stderr, "%s\n", ctx ? cel_context_last_error (ctx) : "out of memory");
    goto done;
  }
  int32_t scale = cel_model_get_info (m)->scale;
  image out = img;
  out.width *= scale;
  out.height *= scale;
  out.data = malloc ((size_t) out.width * out.height * img.channels * sizeof (float));
  cel_stylize_report report = { 0 };
  if (cel_stylize (s, img.data, img.width, img.height, img.channels, ref.data, ref.width, ref.height, ref.channels,
                   &o, out.data, &report)) {
    fprintf (stderr, "%s\n", cel_context_last_error (ctx));
    free (out.data);
    goto done;
  }
  if (scale == 1) /* as celgan apply: strength and keep-colors do not apply to scaling models */
    cel_postprocess (img.data, out.data, img.width, img.height, img.channels, argc > 6 ? (float) atof (argv[6]) : 1.0f,
                     argc > 7 && atoi (argv[7]) != 0);
  fprintf (stderr, "stylized %dx%d (tile %d, %d tiles)\n", img.width, img.height, report.tile, report.tiles);
  out.bit_depth = 8;
  if (image_save (argv[4], &out, IMAGE_PNG, 8, 95, err, sizeof err))
    rc = 0;
  else
    fprintf (stderr, "%s\n", err);
  free (out.data);
done:
  cel_stylizer_destroy (s);
  cel_context_destroy (ctx);
  cel_model_free (m);
  image_free (&img);
  image_free (&ref);
  return rc;
}

/* Prints the largest difference of two PNGs in 1/255 steps: over all channels (--alpha: the alpha channel
 * only), inside the rectangle (--outside: outside it; default: the whole image). Exit status 1 if their sizes
 * or channels differ. */
static int compare (int argc, char **argv) {
  if (argc < 4)
    return 2;
  image a = { 0 }, b = { 0 };
  char err[1024] = "";
  int x0 = 0, y0 = 0, w = -1, h = -1;
  bool outside = false, alpha = false;
  for (int i = 4; i < argc; i++) {
    if (strcmp (argv[i], "--rect") == 0 && i + 4 < argc) {
      x0 = atoi (argv[i + 1]), y0 = atoi (argv[i + 2]), w = atoi (argv[i + 3]), h = atoi (argv[i + 4]);
      i += 4;
    } else if (strcmp (argv[i], "--outside") == 0)
      outside = true;
    else if (strcmp (argv[i], "--alpha") == 0)
      alpha = true;
    else
      return 2;
  }
  if (!image_load (argv[2], &a, 0, err, sizeof err) || !image_load (argv[3], &b, 0, err, sizeof err)) {
    fprintf (stderr, "%s\n", err);
    return 1;
  }
  if (a.width != b.width || a.height != b.height || a.channels != b.channels || (alpha && a.channels % 2)) {
    printf ("size %dx%dx%d != %dx%dx%d\n", a.width, a.height, a.channels, b.width, b.height, b.channels);
    return 1;
  }
  if (w < 0)
    w = a.width, h = a.height;
  double m = 0;
  for (int y = 0; y < a.height; y++)
    for (int x = 0; x < a.width; x++) {
      bool in = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
      if (in == outside)
        continue;
      for (int c = alpha ? a.channels - 1 : 0; c < a.channels; c++) {
        size_t i = ((size_t) y * a.width + x) * a.channels + c;
        double d = fabs ((double) a.data[i] - b.data[i]) * 255.0;
        if (d > m)
          m = d;
      }
    }
  printf ("%.3f\n", m);
  image_free (&a);
  image_free (&b);
  return 0;
}

int main (int argc, char **argv) {
  int rc = 2;
  if (argc > 1 && strcmp (argv[1], "model") == 0)
    rc = make_model (argc, argv);
  else if (argc > 1 && strcmp (argv[1], "apply") == 0)
    rc = apply (argc, argv);
  else if (argc > 1 && strcmp (argv[1], "compare") == 0)
    rc = compare (argc, argv);
  if (rc == 2)
    fprintf (stderr, "usage: %s model OUT ARCH SEED [NAME [DESC]] | apply MODEL IN OUT [TILE [STRENGTH [KEEP [REF]]]] | "
                     "compare A B [--rect X Y W H] [--outside] [--alpha]\n", argv[0]);
  return rc;
}
