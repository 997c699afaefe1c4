/* Writes the images the CLI tests use into a folder: RGB, RGBA, gray, gray+alpha 8-bit PNGs, a 16-bit
 * RGB PNG, a JPEG, a corrupt PNG and a text file with an image name. With an architecture file and a model
 * name after the folder, also a model of that architecture with fresh weights (reference-guided models for
 * the -r tests, without shipping one) and a 5x4 image too small to be a reference. */
#include "celgan.h"
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static bool write_image (const char *dir, const char *name, int32_t w, int32_t h, int32_t ch, int32_t depth, image_format f) {
  image img = { w, h, ch, depth, malloc ((size_t) w * h * ch * sizeof (float)) };
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++)
      for (int32_t c = 0; c < ch; c++)
        img.data[((size_t) y * w + x) * ch + c] =
          (float) (c == ch - 1 && (ch == 2 || ch == 4) ? (x + y) % 7 / 6.0 : 0.5 + 0.45 * sin (0.21 * x + 1.3 * c) * cos (0.17 * y));
  char path[1024], err[512];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  bool ok = image_save (path, &img, f, depth, 92, err, sizeof err);
  if (!ok)
    fprintf (stderr, "%s\n", err);
  image_free (&img);
  return ok;
}

int main (int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf (stderr, "usage: make-test-images DIR [ARCHITECTURE.json MODEL.safetensors]\n");
    return 2;
  }
  if (argc == 4) {
    FILE *a = fopen (argv[2], "rb");
    static char arch[1 << 16];
    size_t n = a ? fread (arch, 1, sizeof arch - 1, a) : 0;
    if (a)
      fclose (a);
    arch[n] = 0;
    char err[512], path[1024];
    snprintf (path, sizeof path, "%s/%s", argv[1], argv[3]);
    const char *meta[] = { "celgan.name", "test reference model" };
    if (!n || cel_model_create_file (path, arch, 7, meta, 1, err, sizeof err)) {
      fprintf (stderr, "%s: %s\n", argv[2], n ? err : "cannot read");
      return 1;
    }
    if (!write_image (argv[1], "tiny.png", 5, 4, 3, 8, IMAGE_PNG)) /* smaller than any model's minimum */
      return 1;
  }
  const char *d = argv[1];
  bool ok = write_image (d, "rgb.png", 67, 45, 3, 8, IMAGE_PNG) && write_image (d, "rgba.png", 40, 52, 4, 8, IMAGE_PNG) &&
            write_image (d, "gray.png", 33, 29, 1, 8, IMAGE_PNG) && write_image (d, "graya.png", 30, 31, 2, 8, IMAGE_PNG) &&
            write_image (d, "deep.png", 36, 24, 3, 16, IMAGE_PNG) && write_image (d, "photo.jpg", 48, 40, 3, 8, IMAGE_JPEG);
  char path[1024];
  snprintf (path, sizeof path, "%s/corrupt.png", d);
  FILE *f = fopen (path, "wb");
  if (f) {
    const unsigned char bad[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 1, 2, 3 };
    fwrite (bad, 1, sizeof bad, f);
    fclose (f);
  }
  return ok && f ? 0 : 1;
}
