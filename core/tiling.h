/* Private: exact tiled execution of a model (tiling.c), used by the stylizer (stylize.c). */
#ifndef CELGAN_TILING_H
#define CELGAN_TILING_H

#include "internal.h"
#include "model.h"

struct cel_stylizer {
  cel_context *ctx;
  const cel_model *model;
  cel_graph *g;
  int32_t base;
};

/* Runs the model on planar network input (in_channels x H x W, network range) in tiles of `tile` input pixels,
 * writing the planar output to net_out. net_ref: planar reference (RH x RW) or NULL. Statuses as cel_stylize. */
cel_status cel_tiled_run (cel_stylizer *s, const float *net_in, int32_t H, int32_t W, const float *net_ref, int32_t RH,
                          int32_t RW, int32_t tile, uint64_t budget, const cel_stylize_options *o, float *net_out,
                          cel_stylize_report *rep);

#endif
