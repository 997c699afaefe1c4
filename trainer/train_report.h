/* What celgan train shows of a run: sample grids and the loss plot. */
#ifndef CELGAN_TRAIN_REPORT_H
#define CELGAN_TRAIN_REPORT_H

#include "celgan.h"
#include "train_net.h"

/* A graph that runs the generator on the fixed sample photos, built on first use. */
typedef struct train_sampler {
  cel_graph *g;
  cel_node image, reference, out;
} train_sampler;

/* Runs the generator with the store's current weights ("g/NAME") on `count` photos (NCHW, size x size, [-1, 1])
 * and, for reference-guided models, `refs` (the same shape; else NULL), and writes a PNG grid: the photos in the
 * first row, the references under them, the outputs in the last row. */
cel_status train_sample_grid (train_sampler *sp, cel_context *ctx, const cel_model *model, host_store *state,
                              const float *photos, const float *refs, int32_t count, int32_t size, const char *path,
                              char *err, size_t errlen);
void train_sampler_destroy (train_sampler *sp);

/* Draws the losses of a metrics file (JSON lines) as a PNG of stacked panels, one per loss the file has, each
 * scaled to its own range, the x axis the step: g_total, d_total, g_adv, content, style, color, tv, style_rec,
 * self_rec, cycle (top to bottom), with the warm-up shaded. Drawn with our own line rasterizer; no text. */
bool train_plot_losses (const char *metrics_path, const char *png_path, char *err, size_t errlen);

#endif
