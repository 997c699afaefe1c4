/* Sample grids and the loss plot of celgan train (train_report.h). */
#include "train_report.h"
#include "image.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define PLOT_SERIES 11
static const char *const plot_keys[PLOT_SERIES] = { "g_total", "d_total", "g_adv", "content", "style", "color", "tv", "fm",
                                                    "style_rec", "self_rec", "cycle" };
static const char *const plot_titles[PLOT_SERIES] = {
  "generator total", "discriminator total", "adversarial (G)", "content", "style (Gram)", "color (YUV)",
  "total variation", "feature matching", "style reconstruction", "self-reconstruction", "cycle",
};
static const double plot_colors[PLOT_SERIES][3] = {
  { 0.12, 0.47, 0.71 }, { 0.84, 0.15, 0.16 }, { 1.0, 0.5, 0.05 },  { 0.17, 0.63, 0.17 },
  { 0.58, 0.4, 0.74 },  { 0.55, 0.34, 0.29 }, { 0.5, 0.5, 0.5 },   { 0.09, 0.75, 0.81 },
  { 0.89, 0.47, 0.76 }, { 0.74, 0.74, 0.13 }, { 0.35, 0.35, 0.8 },
};

static int cmp_double (const void *a, const void *b) {
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* The value range shown: the 1st to 99th percentile of the finite values, widened by 5 % (a few spikes, such
 * as the first GAN steps, would otherwise flatten the rest of the curve); false when there are none. */
static bool robust_range (const double *vals, size_t n, int k, double *lo, double *hi) {
  double *v = malloc ((n ? n : 1) * sizeof *v);
  size_t m = 0;
  for (size_t i = 0; v && i < n; i++)
    if (isfinite (vals[i * PLOT_SERIES + k]))
      v[m++] = vals[i * PLOT_SERIES + k];
  if (!m) {
    free (v);
    return false;
  }
  qsort (v, m, sizeof *v, cmp_double);
  *lo = v[(size_t) (0.01 * (double) (m - 1))];
  *hi = v[(size_t) ceil (0.99 * (double) (m - 1))];
  free (v);
  double pad = 0.05 * (*hi - *lo);
  if (pad <= 0)
    pad = fabs (*hi) > 0 ? 0.05 * fabs (*hi) : 1;
  *lo -= pad;
  *hi += pad;
  return true;
}

static void text_at (cairo_t *cr, double x, double y, double align, const char *text) {
  cairo_text_extents_t e;
  cairo_text_extents (cr, text, &e);
  cairo_move_to (cr, x - align * e.x_advance, y);
  cairo_show_text (cr, text);
}

/* A "nice" tick spacing (1, 2 or 5 times a power of ten) for about `want` ticks over `span`. */
static double tick_step (double span, int want) {
  double raw = span / want, p = pow (10, floor (log10 (raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

bool train_plot_losses (const char *metrics_path, const char *png_path, char *err, size_t errlen) {
  FILE *f = fopen (metrics_path, "r");
  if (!f) {
    snprintf (err, errlen, "cannot read '%s'", metrics_path);
    return false;
  }
  size_t n = 0, cap = 0;
  double *steps = NULL, *vals = NULL; /* vals[i * PLOT_SERIES + k], NAN when absent */
  bool *warm = NULL;
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
    }
    n++;
  }
  fclose (f);
  bool ok = false;
  cairo_surface_t *surface = NULL;
  cairo_t *cr = NULL;
  char *tmp = NULL;
  if (n < 1) {
    snprintf (err, errlen, "no steps in '%s'", metrics_path);
    goto done;
  }
  /* the series that have values (feature matching and the reference-guided terms only where the run has them) */
  int shown[PLOT_SERIES], n_shown = 0;
  for (int k = 0; k < PLOT_SERIES; k++) {
    double lo, hi;
    if (robust_range (vals, n, k, &lo, &hi))
      shown[n_shown++] = k;
  }
  const double width = 900, left = 78, right = 16, top0 = 56, panel = 104, gap = 26, bottom_axis = 30;
  const double height = top0 + n_shown * (panel + gap) - gap + bottom_axis;
  surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, (int) width, (int) height);
  cr = cairo_create (surface);
  if (cairo_status (cr) != CAIRO_STATUS_SUCCESS) {
    snprintf (err, errlen, "cairo: %s", cairo_status_to_string (cairo_status (cr)));
    goto done;
  }
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  cairo_select_font_face (cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  double s0 = steps[0], s1 = steps[n - 1] > s0 ? steps[n - 1] : s0 + 1, w = width - left - right;
  size_t n_warm = 0;
  for (size_t i = 0; i < n; i++)
    n_warm += warm[i];
  char buf[160];
  cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
  cairo_set_font_size (cr, 14);
  snprintf (buf, sizeof buf, "celgan train: losses per step (%zu steps%s; thin: each step, thick: moving mean)", n,
            n_warm ? ", warm-up shaded" : "");
  text_at (cr, left, 22, 0, buf);
  /* the moving mean: a centred window of about 1/50 of the run */
  size_t half = n / 100;
  double xtick = tick_step (s1 - s0, 8);
  for (int j = 0; j < n_shown; j++) {
    int k = shown[j];
    double top = top0 + j * (panel + gap), bottom = top + panel, lo, hi;
    robust_range (vals, n, k, &lo, &hi);
#define PX(step) (left + ((step) - s0) / (s1 - s0) * w)
#define PY(v) (bottom - ((v) - lo) / (hi - lo) * panel)
    cairo_save (cr);
    cairo_rectangle (cr, left, top, w, panel);
    cairo_clip (cr);
    for (size_t i = 0; i < n; i++) /* the warm-up shaded */
      if (warm[i]) {
        double x0 = PX (steps[i]), x1 = i + 1 < n ? PX (steps[i + 1]) : x0 + 1;
        cairo_rectangle (cr, x0, top, x1 - x0 + 0.5, panel);
      }
    cairo_set_source_rgb (cr, 0.93, 0.93, 0.96);
    cairo_fill (cr);
    cairo_set_line_width (cr, 1);
    cairo_set_source_rgb (cr, 0.88, 0.88, 0.88); /* grid */
    for (double t = ceil (s0 / xtick) * xtick; t <= s1; t += xtick) {
      cairo_move_to (cr, floor (PX (t)) + 0.5, top);
      cairo_line_to (cr, floor (PX (t)) + 0.5, bottom);
    }
    double ytick = tick_step (hi - lo, 4);
    for (double t = ceil (lo / ytick) * ytick; t <= hi; t += ytick) {
      cairo_move_to (cr, left, floor (PY (t)) + 0.5);
      cairo_line_to (cr, left + w, floor (PY (t)) + 0.5);
    }
    cairo_stroke (cr);
    const double *c = plot_colors[k];
    for (int pass = 0; pass < 2; pass++) { /* the raw values, then the moving mean */
      cairo_set_source_rgba (cr, c[0], c[1], c[2], pass ? 1 : (n > 200 ? 0.25 : 0.6));
      cairo_set_line_width (cr, pass ? 2 : 1);
      bool pen = false;
      for (size_t i = 0; i < n; i++) {
        double v = vals[i * PLOT_SERIES + k];
        if (pass && isfinite (v)) {
          double sum = 0;
          size_t cnt = 0;
          for (size_t q = i > half ? i - half : 0; q <= i + half && q < n; q++)
            if (isfinite (vals[q * PLOT_SERIES + k]) && warm[q] == warm[i]) {
              sum += vals[q * PLOT_SERIES + k];
              cnt++;
            }
          v = sum / (double) cnt;
        }
        if (!isfinite (v)) {
          pen = false;
          continue;
        }
        if (pen)
          cairo_line_to (cr, PX (steps[i]), PY (v));
        else
          cairo_move_to (cr, PX (steps[i]), PY (v));
        pen = true;
      }
      cairo_stroke (cr);
      if (!half)
        break; /* short runs: no moving mean */
    }
    cairo_restore (cr);
    cairo_set_source_rgb (cr, 0.6, 0.6, 0.6);
    cairo_set_line_width (cr, 1);
    cairo_rectangle (cr, left + 0.5, top + 0.5, w - 1, panel - 1);
    cairo_stroke (cr);
    cairo_set_source_rgb (cr, 0.15, 0.15, 0.15);
    cairo_set_font_size (cr, 12);
    snprintf (buf, sizeof buf, "%s (%s)", plot_titles[k], plot_keys[k]);
    text_at (cr, left, top - 6, 0, buf);
    cairo_set_font_size (cr, 10);
    for (double t = ceil (lo / ytick) * ytick; t <= hi; t += ytick) {
      snprintf (buf, sizeof buf, "%.4g", fabs (t) < 1e-9 * ytick ? 0.0 : t);
      text_at (cr, left - 6, PY (t) + 3.5, 1, buf);
    }
    if (j == n_shown - 1)
      for (double t = ceil (s0 / xtick) * xtick; t <= s1; t += xtick) {
        snprintf (buf, sizeof buf, "%.0f", t);
        text_at (cr, PX (t), bottom + 14, 0.5, buf);
      }
#undef PX
#undef PY
  }
  cairo_set_font_size (cr, 11);
  text_at (cr, left + w, height - 4, 1, "step");
  cairo_surface_flush (surface);
  /* written beside the target and renamed over it: a reader never sees half a file */
  size_t plen = strlen (png_path) + 32;
  if (!(tmp = malloc (plen))) {
    snprintf (err, errlen, "out of memory");
    goto done;
  }
  snprintf (tmp, plen, "%s.tmp-%ld", png_path, (long) getpid ());
  cairo_status_t cs = cairo_surface_write_to_png (surface, tmp);
  if (cs != CAIRO_STATUS_SUCCESS) {
    snprintf (err, errlen, "cannot write '%s': %s", png_path, cairo_status_to_string (cs));
    remove (tmp);
    goto done;
  }
  if (rename (tmp, png_path) != 0) {
    snprintf (err, errlen, "cannot write '%s': %s", png_path, strerror (errno));
    remove (tmp);
    goto done;
  }
  ok = true;
done:
  if (cr)
    cairo_destroy (cr);
  if (surface)
    cairo_surface_destroy (surface);
  free (tmp);
  free (steps);
  free (vals);
  free (warm);
  return ok;
}
