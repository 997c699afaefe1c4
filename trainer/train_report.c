/* Sample grids and the loss plot of celgan train (train_report.h). */
#include "train_report.h"
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cel_status train_sample_grid (train_sampler *sp, cel_context *ctx, const cel_model *model, host_store *state,
                              const float *photos, const float *refs, int32_t count, int32_t size, const char *path,
                              char *err, size_t errlen) {
  cel_status st = CEL_OK;
  if (!sp->g) {
    sp->reference = CEL_NO_NODE;
    if ((st = cel_graph_create (ctx, &sp->g)) ||
        (st = cel_graph_input (sp->g, "image", (cel_shape) { count, 3, size, size }, &sp->image)) ||
        (refs && (st = cel_graph_input (sp->g, "reference", (cel_shape) { count, 3, size, size }, &sp->reference))) ||
        (st = cel_model_build (model, sp->g, sp->image, sp->reference, &sp->out)) || (st = cel_graph_mark_output (sp->g, sp->out)))
      goto fail;
  }
  const cel_safetensors *mt = cel_model_tensors (model);
  for (size_t i = 0; i < cel_safetensors_count (mt); i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (mt, i);
    char name[300];
    snprintf (name, sizeof name, "g/%s", t->name);
    host_tensor *h = host_store_find (state, name);
    cel_node n;
    if (!h || (st = cel_graph_find (sp->g, t->name, &n)) || (st = cel_graph_set_data (sp->g, n, h->data, h->count)))
      goto fail;
  }
  size_t plane = (size_t) size * size, per = 3 * plane;
  float *out = malloc (count * per * sizeof *out);
  int32_t rows = refs ? 3 : 2;
  image grid = { .width = count * size, .height = rows * size, .channels = 3, .bit_depth = 8 };
  grid.data = malloc ((size_t) grid.width * grid.height * 3 * sizeof (float));
  if (!out || !grid.data) {
    free (out);
    free (grid.data);
    snprintf (err, errlen, "out of memory for the sample grid");
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  }
  if ((st = cel_graph_set_data (sp->g, sp->image, photos, count * per)) ||
      (refs && (st = cel_graph_set_data (sp->g, sp->reference, refs, count * per))) || (st = cel_graph_run (sp->g)) ||
      (st = cel_graph_get_data (sp->g, sp->out, out, count * per))) {
    free (out);
    free (grid.data);
    goto fail;
  }
  for (int32_t row = 0; row < rows; row++)
    for (int32_t k = 0; k < count; k++) {
      const float *src = (row == rows - 1 ? out : row == 0 ? photos : refs) + k * per;
      for (int32_t y = 0; y < size; y++)
        for (int32_t x = 0; x < size; x++)
          for (int c = 0; c < 3; c++) {
            float v = (src[c * plane + (size_t) y * size + x] + 1) * 0.5f;
            grid.data[(((size_t) (row * size + y)) * grid.width + k * size + x) * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
          }
    }
  bool ok = image_save (path, &grid, IMAGE_PNG, 8, 0, err, errlen);
  free (out);
  image_free (&grid);
  return ok ? CEL_OK : CEL_ERROR_IO;
fail:
  snprintf (err, errlen, "sample grid: %s", cel_context_last_error (ctx));
  return st ? st : CEL_ERROR_INVALID_ARGUMENT;
}

void train_sampler_destroy (train_sampler *sp) {
  cel_graph_destroy (sp->g);
  sp->g = NULL;
}

/* ---- the loss plot --------------------------------------------------------------------------------- */

#define PLOT_SERIES 10
static const char *const plot_keys[PLOT_SERIES] = { "g_total", "d_total", "g_adv", "content", "style", "color", "tv",
                                                    "style_rec", "self_rec", "cycle" };
static const float plot_colors[PLOT_SERIES][3] = {
  { 0.12f, 0.47f, 0.71f }, { 0.84f, 0.15f, 0.16f }, { 1.0f, 0.5f, 0.05f }, { 0.17f, 0.63f, 0.17f },
  { 0.58f, 0.4f, 0.74f }, { 0.55f, 0.34f, 0.29f }, { 0.5f, 0.5f, 0.5f },
  { 0.89f, 0.47f, 0.76f }, { 0.74f, 0.74f, 0.13f }, { 0.09f, 0.75f, 0.81f },
};

static void put_pixel (image *im, int32_t x, int32_t y, const float *rgb) {
  if (x < 0 || y < 0 || x >= im->width || y >= im->height)
    return;
  memcpy (im->data + ((size_t) y * im->width + x) * 3, rgb, 3 * sizeof (float));
}

/* Bresenham, two pixels thick. */
static void draw_line (image *im, int32_t x0, int32_t y0, int32_t x1, int32_t y1, const float *rgb) {
  int32_t dx = abs (x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -abs (y1 - y0), sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (;;) {
    put_pixel (im, x0, y0, rgb);
    put_pixel (im, x0, y0 + 1, rgb);
    if (x0 == x1 && y0 == y1)
      break;
    int32_t e2 = 2 * e;
    if (e2 >= dy) {
      e += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      e += dx;
      y0 += sy;
    }
  }
}

bool train_plot_losses (const char *metrics_path, const char *png_path, char *err, size_t errlen) {
  FILE *f = fopen (metrics_path, "r");
  if (!f) {
    snprintf (err, errlen, "cannot read '%s'", metrics_path);
    return false;
  }
  size_t n = 0, cap = 0;
  double *steps = NULL, *vals = NULL; /* vals[i * PLOT_SERIES + k], NAN when absent */
  bool *warm = NULL, present[PLOT_SERIES] = { false };
  char line[4096];
  while (fgets (line, sizeof line, f)) {
    double step;
    if (sscanf (line, "{\"step\":%lf", &step) != 1)
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      double *s2 = realloc (steps, cap * sizeof *s2), *v2 = s2 ? realloc (vals, cap * PLOT_SERIES * sizeof *v2) : NULL;
      bool *w2 = v2 ? realloc (warm, cap * sizeof *w2) : NULL;
      steps = s2 ? s2 : steps;
      vals = v2 ? v2 : vals;
      warm = w2 ? w2 : warm;
      if (!w2)
        break;
    }
    steps[n] = step;
    warm[n] = strstr (line, "\"phase\":\"warmup\"") != NULL;
    for (int k = 0; k < PLOT_SERIES; k++) {
      char key[64];
      snprintf (key, sizeof key, "\"%s\":", plot_keys[k]);
      const char *p = strstr (line, key);
      vals[n * PLOT_SERIES + k] = p ? strtod (p + strlen (key), NULL) : NAN;
      present[k] |= p != NULL;
    }
    n++;
  }
  fclose (f);
  bool ok = false;
  image im = { .width = 800, .channels = 3, .bit_depth = 8 };
  const int32_t panel = 100, gap = 12, margin = 10;
  int32_t panels = 0;
  for (int k = 0; k < PLOT_SERIES; k++)
    panels += present[k];
  im.height = (panels ? panels : 1) * (panel + gap) + gap;
  if (n < 1) {
    snprintf (err, errlen, "no steps in '%s'", metrics_path);
    goto done;
  }
  if (!(im.data = malloc ((size_t) im.width * im.height * 3 * sizeof (float)))) {
    snprintf (err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < (size_t) im.width * im.height * 3; i++)
    im.data[i] = 1;
  double s0 = steps[0], s1 = steps[n - 1] > s0 ? steps[n - 1] : s0 + 1;
  int32_t w = im.width - 2 * margin;
  static const float frame[3] = { 0.75f, 0.75f, 0.75f }, shade[3] = { 0.93f, 0.93f, 0.96f };
  for (int k = 0, row = 0; k < PLOT_SERIES; k++) {
    if (!present[k])
      continue;
    int32_t top = gap + row++ * (panel + gap), bottom = top + panel;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
      double v = vals[i * PLOT_SERIES + k];
      if (isfinite (v)) {
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
    }
    for (size_t i = 0; i < n; i++) /* the warm-up shaded */
      if (warm[i]) {
        int32_t x = margin + (int32_t) ((steps[i] - s0) / (s1 - s0) * (w - 1));
        int32_t x1 = i + 1 < n ? margin + (int32_t) ((steps[i + 1] - s0) / (s1 - s0) * (w - 1)) : x + 1;
        for (; x < x1; x++)
          for (int32_t y = top; y <= bottom; y++)
            put_pixel (&im, x, y, shade);
      }
    draw_line (&im, margin, top, margin + w - 1, top, frame);
    draw_line (&im, margin, bottom, margin + w - 1, bottom, frame);
    draw_line (&im, margin, top, margin, bottom, frame);
    draw_line (&im, margin + w - 1, top, margin + w - 1, bottom, frame);
    if (!(hi >= lo))
      continue;
    if (hi - lo < 1e-12)
      hi = lo + 1;
    int32_t px = -1, py = -1;
    for (size_t i = 0; i < n; i++) {
      double v = vals[i * PLOT_SERIES + k];
      if (!isfinite (v)) {
        px = -1;
        continue;
      }
      int32_t x = margin + (int32_t) ((steps[i] - s0) / (s1 - s0) * (w - 1));
      int32_t y = bottom - 2 - (int32_t) ((v - lo) / (hi - lo) * (panel - 4));
      if (px >= 0)
        draw_line (&im, px, py, x, y, plot_colors[k]);
      else
        put_pixel (&im, x, y, plot_colors[k]);
      px = x;
      py = y;
    }
  }
  ok = image_save (png_path, &im, IMAGE_PNG, 8, 0, err, errlen);
done:
  free (im.data);
  free (steps);
  free (vals);
  free (warm);
  return ok;
}
