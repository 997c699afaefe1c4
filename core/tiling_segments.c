/* Segment planning of the tiled run (tiling.c): every layer's size for the whole image, and which segment computes
 * it (a layer that needs whole-image statistics runs one segment after its input). */
#include "internal.h"
#include "model.h"
#include "tiling.h"

#include <math.h>

static int32_t conv_out (int32_t in, int32_t pad_lo, int32_t pad_hi, int32_t k, int32_t d, int32_t s) {
  return (in + pad_lo + pad_hi - d * (k - 1) - 1) / s + 1;
}

/* Global sizes of every layer for an image of h x w (reference layers: rh x rw). */
cel_status cel_tile_global_sizes (cel_stylizer *s, lstate *ls, int32_t h, int32_t w, int32_t rh, int32_t rw) {
  const cel_model *m = s->model;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const layer *L = &m->layers[i];
    int32_t ih, iw, s0 = L->in[0];
    ih = s0 == -1 ? h : s0 == -2 ? rh : ls[s0].gh;
    iw = s0 == -1 ? w : s0 == -2 ? rw : ls[s0].gw;
    switch (L->op) {
    case L_CONV2D:
      ih = conv_out (ih, L->pad[0], L->pad[1], (int32_t) L->weight->shape[2], L->dilation[0], L->stride[0]);
      iw = conv_out (iw, L->pad[2], L->pad[3], (int32_t) L->weight->shape[3], L->dilation[1], L->stride[1]);
      break;
    case L_CONV_TRANSPOSE2D:
      ih = (ih - 1) * L->stride[0] - 2 * L->pad[0] + L->dilation[0] * ((int32_t) L->weight->shape[2] - 1) + L->out_pad[0] + 1;
      iw = (iw - 1) * L->stride[1] - 2 * L->pad[1] + L->dilation[1] * ((int32_t) L->weight->shape[3] - 1) + L->out_pad[1] + 1;
      break;
    case L_RESIZE:
      if (L->size_of != INT32_MIN) {
        ih = L->size_of == -1 ? h : ls[L->size_of].gh;
        iw = L->size_of == -1 ? w : ls[L->size_of].gw;
      } else {
        ih = (int32_t) floor (ih * L->scale[0]);
        iw = (int32_t) floor (iw * L->scale[1]);
      }
      break;
    case L_GLOBAL_AVG_POOL:
      ih = iw = 1;
      break;
    case L_PIXEL_SHUFFLE:
      ih *= L->factor;
      iw *= L->factor;
      break;
    case L_PAD: {
      int32_t p[4];
      cel_model_pad_amounts (L, ih, iw, p);
      ih += p[0] + p[1];
      iw += p[2] + p[3];
      break;
    }
    case L_CROP: {
      int32_t win[4], so = L->size_of;
      int32_t th = so == INT32_MIN ? 0 : so == -1 ? h : ls[so].gh, tw = so == INT32_MIN ? 0 : so == -1 ? w : ls[so].gw;
      th *= L->size_ratio;
      tw *= L->size_ratio;
      if (cel_model_crop_window (L, ih, iw, th, tw, win))
        return cel_set_error (s->ctx, CEL_ERROR_INVALID_ARGUMENT, "the image (%dx%d) is too small for model layer '%s'", w, h,
                              L->name);
      ih = win[2];
      iw = win[3];
      break;
    }
    default: break;
    }
    if (ih < 1 || iw < 1)
      return cel_set_error (s->ctx, CEL_ERROR_INVALID_ARGUMENT, "the image (%dx%d) is too small for model layer '%s'", w, h,
                            L->name);
    ls[i].gh = ih;
    ls[i].gw = iw;
  }
  return CEL_OK;
}

static bool is_global_op (layer_op op) {
  return op == L_INSTANCE_NORM || op == L_LAYER_NORM || op == L_ADAIN || op == L_GLOBAL_AVG_POOL;
}

/* Segments: a global op runs one segment after its (image) input. */
int32_t cel_tile_assign_segments (const cel_model *m, lstate *ls) {
  int32_t max_seg = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const layer *L = &m->layers[i];
    bool on_image = false;
    int32_t seg = 0;
    for (int k = 0; k < L->n_in; k++) {
      int32_t j = L->in[k];
      bool img = j == -1 || (j >= 0 && ls[j].on_image);
      on_image |= img;
      if (j >= 0 && img && ls[j].seg > seg)
        seg = ls[j].seg;
      if (j >= 0 && img && is_global_op (L->op) && k == 0) {
        ls[j].stats = true;
        if (ls[j].seg + 1 > seg)
          seg = ls[j].seg + 1;
      }
    }
    if (L->op == L_RESIZE && L->size_of >= 0 && ls[L->size_of].on_image && ls[L->size_of].seg > seg)
      seg = ls[L->size_of].seg; /* only the size is used; keeps it simple */
    ls[i].vec = on_image && L->vec;
    ls[i].on_image = on_image;
    ls[i].seg = on_image ? seg : -1;
    if (on_image && seg > max_seg)
      max_seg = seg;
  }
  for (int32_t i = 0; i < m->n_layers; i++) {
    const layer *L = &m->layers[i];
    for (int k = 0; k < L->n_in; k++) {
      int32_t j = L->in[k];
      if (j >= 0 && ((ls[j].on_image && ls[j].seg != ls[i].seg) || (!ls[j].on_image && ls[i].on_image)))
        ls[j].boundary = true;
    }
  }
  ls[m->output].boundary = true;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const layer *L = &m->layers[i];
    ls[i].last_seg = ls[i].seg;
    for (int k = 0; k < L->n_in; k++)
      if (L->in[k] >= 0 && ls[i].seg > ls[L->in[k]].last_seg)
        ls[L->in[k]].last_seg = ls[i].seg;
  }
  return max_seg;
}
