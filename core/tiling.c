/* Exact tiled execution of a model.
 *
 * Untiled when the whole image fits the memory budget: the model's graph as it is. Otherwise tiled, exactly:
 * - The layers are split into segments at every op that needs whole-image statistics (norms, AdaIN, global
 *   pooling): such an op runs in the segment after the one that produced its input, once the statistics of
 *   that input have been accumulated over every tile.
 * - Tensors produced in one segment and used in a later one live on the host at full size ("boundaries").
 * - Each segment runs tile by tile. A tile owns a rectangle of every tensor (its rectangle of the image
 *   scaled to the tensor's resolution); walking the segment's layers backwards gives the window of each
 *   tensor the tile needs (the receptive field, from each op's geometry). The tile's graph crops what a
 *   consumer needs from its producer's window, pads only where a window meets the tensor's true border (so
 *   zero and reflect padding are those of the whole image), runs convolutions unpadded, crops transposed
 *   convolutions, and resizes with the whole image's sampling (resize_window). Statistics are combined over
 *   tiles with Chan's formula in double.
 * - Layers that depend only on the reference image run once, untiled, before the segments.
 */
#include "internal.h"
#include "model.h"
#include "tiling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static win win_union (win a, win b) {
  if (a.h <= 0 || a.w <= 0)
    return b;
  if (b.h <= 0 || b.w <= 0)
    return a;
  int32_t y1 = a.y0 + a.h > b.y0 + b.h ? a.y0 + a.h : b.y0 + b.h, x1 = a.x0 + a.w > b.x0 + b.w ? a.x0 + a.w : b.x0 + b.w;
  win r = { a.y0 < b.y0 ? a.y0 : b.y0, a.x0 < b.x0 ? a.x0 : b.x0, 0, 0 };
  r.h = y1 - r.y0;
  r.w = x1 - r.x0;
  return r;
}

static bool win_empty (win a) {
  return a.h <= 0 || a.w <= 0;
}

static bool win_equal (win a, win b) {
  return a.y0 == b.y0 && a.x0 == b.x0 && a.h == b.h && a.w == b.w;
}

/* ---- the tiled run ---------------------------------------------------------------------------- */

typedef struct run {
  cel_stylizer *s;
  const cel_model *m;
  lstate *ls;
  int32_t H, W, in_ch;
  const float *image;        /* planar network input */
  const float *ref;          /* planar reference (or NULL) */
  int32_t RH, RW;
  uint64_t budget; /* device bytes for one tile's intermediates and staging */
  /* run_tile's windows of host tensors, copied straight into the planned graph's staging once it is planned
   * (build_and_run_tile) */
  struct pending {
    cel_node node;
    const float *host;
    int32_t C, gh, gw;
    win w;
  } *pending;
  int32_t n_pending, cap_pending;
  bool defer; /* upload_window records a pending window instead of copying it through cel_graph_set_data */
  cel_stylize_report *rep; /* its host-time fields add up each tile's phases */
  cel_host_pool pool; /* host buffers of boundaries whose last segment has passed, for the next ones */
} run;

/* Chan's parallel combination of (n, mean, M2). */
static void acc_add (stats_acc *a, int32_t c, double n, double mean, double m2) {
  double na = a->count[c];
  if (n <= 0)
    return;
  double delta = mean - a->mean[c], nt = na + n;
  a->mean[c] += delta * n / nt;
  a->m2[c] += m2 + delta * delta * na * n / nt;
  a->count[c] = nt;
}

/* Copies window w of a host tensor (C x gh x gw planar) to dst (C x w.h x w.w). */
static void copy_window (const cel_context *ctx, float *dst, const float *host, int32_t C, int32_t gh, int32_t gw, win w) {
  cel_copy_planes (ctx, (cel_plane_copy) { .dst = dst, .src = host + (size_t) w.y0 * gw + w.x0, .dst_plane = (size_t) w.h * w.w,
                                   .dst_row = (size_t) w.w, .src_plane = (size_t) gh * gw, .src_row = (size_t) gw, .C = C,
                                   .h = w.h, .w = w.w, .c0 = 0, .c1 = C });
}

/* Host node for a window of a host tensor (C x gh x gw planar) as a graph input: copied now, or, while
 * r->defer, once the graph is planned (build_and_run_tile), straight into its staging buffer. */
static cel_status upload_window (run *r, cel_graph *g, const float *host, int32_t C, int32_t gh, int32_t gw, win wv,
                                 cel_node *out) {
  cel_status st = cel_graph_input (g, NULL, (cel_shape) { 1, C, wv.h, wv.w }, out);
  if (st)
    return st;
  if (r->defer) {
    if (r->n_pending == r->cap_pending) {
      int32_t cap = r->cap_pending ? 2 * r->cap_pending : 32;
      struct pending *p = realloc (r->pending, (size_t) cap * sizeof *p);
      if (!p)
        return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
      r->pending = p;
      r->cap_pending = cap;
    }
    r->pending[r->n_pending++] = (struct pending) { *out, host, C, gh, gw, wv };
    return CEL_OK;
  }
  size_t n = (size_t) C * wv.h * wv.w;
  float *buf = malloc (n * sizeof *buf);
  if (!buf)
    return cel_graph_error (g, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  copy_window (r->s->ctx, buf, host, C, gh, gw, wv);
  st = cel_graph_set_data (g, *out, buf, n);
  free (buf);
  return st;
}

/* A node holding window `want` of a tensor available as node `n` over window `have`. */
static cel_status window_of (cel_graph *g, cel_node n, win have, win want, cel_node *out) {
  if (win_equal (have, want)) {
    *out = n;
    return CEL_OK;
  }
  if (want.y0 < have.y0 || want.x0 < have.x0 || want.y0 + want.h > have.y0 + have.h || want.x0 + want.w > have.x0 + have.w)
    return cel_graph_error (g, CEL_ERROR_INVALID_ARGUMENT, "internal: tile window outside what was computed");
  return cel_crop (g, n, want.y0 - have.y0, want.x0 - have.x0, want.h, want.w, out);
}

static const float *input_host (run *r, int32_t j, int32_t *C, int32_t *gh, int32_t *gw) {
  if (j == -1) {
    *C = r->in_ch;
    *gh = r->H;
    *gw = r->W;
    return r->image;
  }
  *C = r->m->layers[j].channels;
  *gh = r->ls[j].gh;
  *gw = r->ls[j].gw;
  return r->ls[j].host;
}

/* The node of input j of the current tile (computed in this segment, or uploaded from the host). */
static cel_status tile_input (run *r, cel_graph *g, int32_t j, int32_t seg, win want, cel_node *out) {
  /* per-channel vectors: pooled from the image (vec) or from the reference (its pre-pass), broadcast whole */
  if (j >= 0 && (r->ls[j].vec || (!r->ls[j].on_image && r->ls[j].gh == 1 && r->ls[j].gw == 1)))
    return upload_window (r, g, r->ls[j].host, r->m->layers[j].channels, 1, 1, (win) { 0, 0, 1, 1 }, out);
  if (j >= 0 && r->ls[j].seg == seg && r->ls[j].on_image)
    return window_of (g, r->ls[j].node, r->ls[j].node_win, want, out);
  int32_t C, gh, gw;
  const float *host = input_host (r, j, &C, &gh, &gw);
  return upload_window (r, g, host, C, gh, gw, want, out);
}

/* The stats tensor (1, G, 1, 2) = (mean, var) of a layer's accumulated statistics. */
static cel_status stats_node (cel_graph *g, const stats_acc *a, int32_t C, bool layer_kind, bool unbiased, cel_node *out) {
  int32_t G = layer_kind ? 1 : C;
  float v[2 * 4096];
  if (G > 4096)
    return CEL_ERROR_INVALID_ARGUMENT;
  for (int32_t k = 0; k < G; k++) {
    double n = 0, mean = 0, m2 = 0;
    if (layer_kind) { /* combine the channels */
      for (int32_t c = 0; c < C; c++) {
        double nb = a->count[c], delta = a->mean[c] - mean, nt = n + nb;
        if (nb <= 0)
          continue;
        mean += delta * nb / nt;
        m2 += a->m2[c] + delta * delta * n * nb / nt;
        n = nt;
      }
    } else {
      n = a->count[k];
      mean = a->mean[k];
      m2 = a->m2[k];
    }
    v[2 * k] = (float) mean;
    v[2 * k + 1] = (float) (m2 / (unbiased ? (n > 1 ? n - 1 : 1) : (n > 0 ? n : 1)));
  }
  cel_status st = cel_graph_input (g, NULL, (cel_shape) { 1, G, 1, 2 }, out);
  return st ? st : cel_graph_set_data (g, *out, v, (size_t) G * 2);
}

static cel_status param_of (cel_graph *g, const cel_tensor_info *t, cel_node *out) {
  *out = CEL_NO_NODE;
  return t ? cel_graph_find (g, t->name, out) : CEL_OK;
}

static cel_status build_and_run_tile (run *r, int32_t seg, int32_t ty0, int32_t ty1, int32_t tx0, int32_t tx1);

/* Builds and runs one tile of one segment. */
static cel_status run_tile (run *r, int32_t seg, int32_t ty0, int32_t ty1, int32_t tx0, int32_t tx1) {
  cel_graph *g = r->s->g;
  cel_status st = cel_graph_truncate (g, r->s->base);
  if (st)
    return st;
  r->n_pending = 0;
  r->defer = true;
  st = build_and_run_tile (r, seg, ty0, ty1, tx0, tx1);
  r->defer = false;
  return st;
}

static cel_status build_and_run_tile (run *r, int32_t seg, int32_t ty0, int32_t ty1, int32_t tx0, int32_t tx1) {
  const cel_model *m = r->m;
  lstate *ls = r->ls;
  cel_graph *g = r->s->g;
  cel_status st = CEL_OK;
  double t0 = cel_now ();
  /* owned windows and required windows, backwards */
  for (int32_t i = 0; i < m->n_layers; i++) {
    ls[i].req = (win) { 0, 0, 0, 0 };
    ls[i].node = CEL_NO_NODE;
  }
  for (int32_t i = m->n_layers - 1; i >= 0; i--) {
    const layer *L = &m->layers[i];
    lstate *l = &ls[i];
    if (l->seg != seg || !l->on_image || l->vec)
      continue;
    if (l->boundary || l->stats) {
      tile_span oy = tile_owned_span (ty0, ty1, r->H, L->res, l->gh), ox = tile_owned_span (tx0, tx1, r->W, L->res, l->gw);
      if (L->op == L_GLOBAL_AVG_POOL)
        continue;
      l->req = win_union (l->req, (win) { oy.lo, ox.lo, oy.hi - oy.lo, ox.hi - ox.lo });
    }
    if (win_empty (l->req))
      continue;
    tile_span ry = { l->req.y0, l->req.y0 + l->req.h }, rx = { l->req.x0, l->req.x0 + l->req.w };
    for (int k = 0; k < L->n_in; k++) {
      int32_t j = L->in[k];
      if (j == -2 || (j >= 0 && (!ls[j].on_image || ls[j].vec)))
        continue; /* reference layers and vectors: whole, from the host */
      int32_t ih = j == -1 ? r->H : ls[j].gh, iw = j == -1 ? r->W : ls[j].gw;
      tile_span ny = ry, nx = rx;
      if (L->op == L_CONV2D) {
        bool refl = L->pad_mode == CEL_PAD_REFLECT;
        ny = tile_conv_need (tile_conv_ideal (ry, L->stride[0], L->pad[0], (int32_t) L->weight->shape[2], L->dilation[0]), ih, refl);
        nx = tile_conv_need (tile_conv_ideal (rx, L->stride[1], L->pad[2], (int32_t) L->weight->shape[3], L->dilation[1]), iw, refl);
      } else if (L->op == L_CONV_TRANSPOSE2D) {
        ny = tile_convt_need (ry, ih, L->stride[0], L->pad[0], (int32_t) L->weight->shape[2], L->dilation[0]);
        nx = tile_convt_need (rx, iw, L->stride[1], L->pad[1], (int32_t) L->weight->shape[3], L->dilation[1]);
      } else if (L->op == L_RESIZE) {
        ny = tile_resize_need (ry, ih, l->gh, L->resize_mode);
        nx = tile_resize_need (rx, iw, l->gw, L->resize_mode);
      } else if (L->op == L_PAD) {
        bool refl = L->pad_mode == CEL_PAD_REFLECT;
        ny = tile_pad_need (tile_conv_ideal (ry, 1, L->pad[0], 1, 1), ih, refl);
        nx = tile_pad_need (tile_conv_ideal (rx, 1, L->pad[2], 1, 1), iw, refl);
      } else if (L->op == L_CROP && k == 0) {
        ny = (tile_span) { ry.lo + L->crop[0], ry.hi + L->crop[0] };
        nx = (tile_span) { rx.lo + L->crop[2], rx.hi + L->crop[2] };
      } else if (L->op == L_CROP) {
        continue; /* size_of: only the size is used */
      } else if (L->op == L_PIXEL_SHUFFLE) {
        ny = (tile_span) { ry.lo / L->factor, (ry.hi + L->factor - 1) / L->factor };
        nx = (tile_span) { rx.lo / L->factor, (rx.hi + L->factor - 1) / L->factor };
      }
      win need = { ny.lo, nx.lo, ny.hi - ny.lo, nx.hi - nx.lo };
      if (win_empty (need))
        continue;
      if (j >= 0 && ls[j].seg == seg)
        ls[j].req = win_union (ls[j].req, need);
    }
  }

  /* forwards: build the tile's graph */
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    lstate *l = &ls[i];
    if (l->seg != seg || !l->on_image || win_empty (l->req) || l->vec)
      continue;
    tile_span ry = { l->req.y0, l->req.y0 + l->req.h }, rx = { l->req.x0, l->req.x0 + l->req.w };
    int32_t j0 = L->in[0];
    int32_t ih = j0 == -1 ? r->H : j0 == -2 ? r->RH : ls[j0].gh, iw = j0 == -1 ? r->W : j0 == -2 ? r->RW : ls[j0].gw;
    cel_node w = CEL_NO_NODE, b = CEL_NO_NODE, x = CEL_NO_NODE, y = CEL_NO_NODE;
    if ((st = param_of (g, L->weight, &w)) || (st = param_of (g, L->bias, &b)))
      break;
    switch (L->op) {
    case L_CONV2D: {
      int32_t kh = (int32_t) L->weight->shape[2], kw = (int32_t) L->weight->shape[3];
      tile_span iy = tile_conv_ideal (ry, L->stride[0], L->pad[0], kh, L->dilation[0]);
      tile_span ix = tile_conv_ideal (rx, L->stride[1], L->pad[2], kw, L->dilation[1]);
      bool refl = L->pad_mode == CEL_PAD_REFLECT;
      tile_span ny = tile_conv_need (iy, ih, refl), nx = tile_conv_need (ix, iw, refl);
      win have = { ny.lo, nx.lo, ny.hi - ny.lo, nx.hi - nx.lo };
      if ((st = tile_input (r, g, j0, seg, have, &x)))
        break;
      int32_t pt = iy.lo < 0 ? -iy.lo : 0, pb = iy.hi > ih ? iy.hi - ih : 0;
      int32_t pl = ix.lo < 0 ? -ix.lo : 0, pr = ix.hi > iw ? ix.hi - iw : 0;
      if (pt || pb || pl || pr) {
        if ((st = cel_pad (g, x, pt, pb, pl, pr, L->pad_mode, &x)))
          break;
        have = (win) { have.y0 - pt, have.x0 - pl, have.h + pt + pb, have.w + pl + pr };
      }
      win ideal = { iy.lo, ix.lo, iy.hi - iy.lo, ix.hi - ix.lo };
      if ((st = window_of (g, x, have, ideal, &x)))
        break;
      cel_conv2d_params p = { .stride_h = L->stride[0], .stride_w = L->stride[1], .dilation_h = L->dilation[0],
                              .dilation_w = L->dilation[1], .groups = L->groups };
      st = cel_conv2d (g, x, w, b, &p, &y);
      break;
    }
    case L_CONV_TRANSPOSE2D: {
      int32_t kh = (int32_t) L->weight->shape[2], kw = (int32_t) L->weight->shape[3];
      tile_span ny = tile_convt_need (ry, ih, L->stride[0], L->pad[0], kh, L->dilation[0]);
      tile_span nx = tile_convt_need (rx, iw, L->stride[1], L->pad[1], kw, L->dilation[1]);
      win have = { ny.lo, nx.lo, ny.hi - ny.lo, nx.hi - nx.lo };
      if ((st = tile_input (r, g, j0, seg, have, &x)))
        break;
      cel_conv_transpose2d_params p = { .stride_h = L->stride[0], .stride_w = L->stride[1], .dilation_h = L->dilation[0],
                                        .dilation_w = L->dilation[1], .groups = L->groups };
      if ((st = cel_conv_transpose2d (g, x, w, b, &p, &y)))
        break;
      cel_shape fs;
      cel_graph_shape (g, y, &fs);
      win full = { ny.lo * L->stride[0] - L->pad[0], nx.lo * L->stride[1] - L->pad[1], fs.h, fs.w };
      if (l->req.y0 < full.y0 || l->req.x0 < full.x0 || l->req.y0 + l->req.h > full.y0 + full.h ||
          l->req.x0 + l->req.w > full.x0 + full.w) {
        st = cel_set_error (r->s->ctx, CEL_ERROR_UNSUPPORTED, "layer '%s': this transposed convolution's output padding "
                            "cannot be tiled; use a larger tile", L->name);
        break;
      }
      st = window_of (g, y, full, l->req, &y);
      break;
    }
    case L_RESIZE: {
      tile_span ny = tile_resize_need (ry, ih, l->gh, L->resize_mode), nx = tile_resize_need (rx, iw, l->gw, L->resize_mode);
      win have = { ny.lo, nx.lo, ny.hi - ny.lo, nx.hi - nx.lo };
      if ((st = tile_input (r, g, j0, seg, have, &x)))
        break;
      int32_t ip[11] = { l->req.h, l->req.w, (int32_t) L->resize_mode, ih, iw, l->gh, l->gw, have.y0, have.x0, l->req.y0,
                         l->req.x0 };
      st = cel_graph_add_op (g, CEL_OP_RESIZE_WINDOW, &x, 1, ip, 11, NULL, 0, &y);
      break;
    }
    case L_PAD: {
      tile_span iy = tile_conv_ideal (ry, 1, L->pad[0], 1, 1), ix = tile_conv_ideal (rx, 1, L->pad[2], 1, 1);
      bool refl = L->pad_mode == CEL_PAD_REFLECT;
      tile_span ny = tile_pad_need (iy, ih, refl), nx = tile_pad_need (ix, iw, refl);
      win have = { ny.lo, nx.lo, ny.hi - ny.lo, nx.hi - nx.lo };
      if ((st = tile_input (r, g, j0, seg, have, &x)))
        break;
      /* pad the window to cover the ideal span: by the true border's padding where it meets a border, else
       * the window already holds those rows */
      int32_t pt = iy.lo < have.y0 ? have.y0 - iy.lo : 0, pb = iy.hi > have.y0 + have.h ? iy.hi - have.y0 - have.h : 0;
      int32_t pl = ix.lo < have.x0 ? have.x0 - ix.lo : 0, pr = ix.hi > have.x0 + have.w ? ix.hi - have.x0 - have.w : 0;
      if (pt || pb || pl || pr) {
        if ((have.y0 > 0 && pt) || (have.y0 + have.h < ih && pb) || (have.x0 > 0 && pl) || (have.x0 + have.w < iw && pr)) {
          st = cel_set_error (r->s->ctx, CEL_ERROR_INVALID_ARGUMENT, "internal: pad window");
          break;
        }
        if ((st = cel_pad (g, x, pt, pb, pl, pr, L->pad_mode, &x)))
          break;
        have = (win) { have.y0 - pt, have.x0 - pl, have.h + pt + pb, have.w + pl + pr };
      }
      win ideal = { iy.lo, ix.lo, iy.hi - iy.lo, ix.hi - ix.lo };
      st = window_of (g, x, have, ideal, &y);
      break;
    }
    case L_CROP:
      st = tile_input (r, g, j0, seg, (win) { l->req.y0 + L->crop[0], l->req.x0 + L->crop[2], l->req.h, l->req.w }, &y);
      break;
    case L_PIXEL_SHUFFLE: {
      int32_t f = L->factor;
      win have = { ry.lo / f, rx.lo / f, (ry.hi + f - 1) / f - ry.lo / f, (rx.hi + f - 1) / f - rx.lo / f };
      if ((st = tile_input (r, g, j0, seg, have, &x)) || (st = cel_pixel_shuffle (g, x, f, false, &y)))
        break;
      st = window_of (g, y, (win) { have.y0 * f, have.x0 * f, have.h * f, have.w * f }, l->req, &y);
      break;
    }
    case L_PRELU:
      if ((st = tile_input (r, g, j0, seg, l->req, &x)))
        break;
      st = cel_prelu (g, x, w, &y);
      break;
    case L_INSTANCE_NORM:
    case L_LAYER_NORM: {
      cel_node sn;
      if ((st = tile_input (r, g, j0, seg, l->req, &x)))
        break;
      if ((st = stats_node (g, &ls[j0].acc, m->layers[j0].channels, L->op == L_LAYER_NORM, false, &sn)))
        break;
      st = cel_norm_apply (g, x, sn, w, b, L->eps, &y);
      break;
    }
    case L_ADAIN: {
      cel_node cs, ss;
      int32_t j1 = L->in[1];
      if ((st = tile_input (r, g, j0, seg, l->req, &x)))
        break;
      if ((st = stats_node (g, &ls[j0].acc, m->layers[j0].channels, false, true, &cs)))
        break;
      if (j1 < 0) /* the style is the reference image itself: not a supported model shape for tiling */
        st = cel_set_error (r->s->ctx, CEL_ERROR_UNSUPPORTED, "layer '%s': AdaIN straight on the reference image", L->name);
      else /* style statistics: accumulated over tiles, or from the reference pre-pass */
        st = stats_node (g, &ls[j1].acc, m->layers[j1].channels, false, true, &ss);
      if (!st)
        st = cel_adain_apply (g, x, cs, ss, L->eps, &y);
      break;
    }
    case L_RELU:
    case L_LEAKY_RELU:
    case L_TANH:
    case L_SIGMOID:
    case L_SCALE_SHIFT: {
      if ((st = tile_input (r, g, j0, seg, l->req, &x)))
        break;
      /* as cel_model_build: a relu or leaky relu alone reading a norm or a convolution of this tile runs in its
       * pass */
      cel_activation fa = L->op == L_RELU ? CEL_ACT_RELU : CEL_ACT_LEAKY_RELU;
      if ((L->op == L_RELU || L->op == L_LEAKY_RELU) && j0 >= 0 && ls[j0].seg == seg && x == ls[j0].node &&
          !ls[j0].boundary && !ls[j0].stats && cel_model_sole_reader (m, j0, i) &&
          (((m->layers[j0].op == L_INSTANCE_NORM || m->layers[j0].op == L_LAYER_NORM) &&
            cel_norm_apply_fuse_act (g, x, fa, L->slope)) ||
           (m->layers[j0].op == L_CONV2D && cel_conv2d_fuse_act (g, x, fa, L->slope)))) {
        y = x;
        break;
      }
      if (L->op == L_SCALE_SHIFT)
        st = cel_scale_shift (g, x, L->scale_f, L->shift_f, &y);
      else
        st = cel_activate (g, x,
                           L->op == L_RELU ? CEL_ACT_RELU : L->op == L_LEAKY_RELU ? CEL_ACT_LEAKY_RELU
                                                          : L->op == L_TANH       ? CEL_ACT_TANH
                                                                                  : CEL_ACT_SIGMOID,
                           L->slope, &y);
      break;
    }
    case L_ADD:
    case L_MUL:
    case L_CONCAT: {
      cel_node x1;
      int32_t j1 = L->in[1];
      if ((st = tile_input (r, g, j0, seg, l->req, &x)))
        break;
      if ((st = tile_input (r, g, j1, seg, l->req, &x1)))
        break;
      st = L->op == L_ADD ? cel_add (g, x, x1, L->alpha, L->beta, &y) : L->op == L_MUL ? cel_mul (g, x, x1, &y)
                                                                                         : cel_concat (g, x, x1, &y);
      break;
    }
    default:
      st = cel_set_error (r->s->ctx, CEL_ERROR_UNSUPPORTED, "layer '%s': op cannot be tiled", L->name);
    }
    if (st) {
      char msg[sizeof r->s->ctx->error];
      snprintf (msg, sizeof msg, "%s", r->s->ctx->error);
      cel_set_error (r->s->ctx, st, "tile of layer '%s': %s", L->name, msg);
      break;
    }
    l->node = y;
    l->node_win = l->req;
  }
  if (st)
    return st;

  /* outputs: owned windows of boundary tensors, statistics of owned windows */
  typedef struct out_rec { int32_t layer; cel_node node; win w; bool stats; } out_rec;
  out_rec outs[2 * MAX_NODES];
  int32_t n_outs = 0;
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    lstate *l = &ls[i];
    const layer *L = &m->layers[i];
    if (l->seg != seg || !l->on_image || l->vec || l->node == CEL_NO_NODE || (!l->boundary && !l->stats))
      continue;
    tile_span oy = tile_owned_span (ty0, ty1, r->H, L->res, l->gh), ox = tile_owned_span (tx0, tx1, r->W, L->res, l->gw);
    win own = { oy.lo, ox.lo, oy.hi - oy.lo, ox.hi - ox.lo };
    if (win_empty (own))
      continue;
    cel_node o;
    if ((st = window_of (g, l->node, l->node_win, own, &o)))
      break;
    if (l->boundary) {
      if (!(st = cel_graph_mark_output (g, o)))
        outs[n_outs++] = (out_rec) { i, o, own, false };
    }
    if (l->stats && !st) {
      cel_node sn;
      if (!(st = cel_norm_stats (g, o, CEL_NORM_INSTANCE, false, &sn)) && !(st = cel_graph_mark_output (g, sn)))
        outs[n_outs++] = (out_rec) { i, sn, own, true };
    }
  }
  if (st)
    return st;
  uint64_t arena = 0, staging = 0;
  if ((st = cel_plan_estimate (g, &arena, &staging)))
    return st;
  if (r->budget && arena + staging > r->budget)
    return cel_set_error (r->s->ctx, CEL_ERROR_OUT_OF_DEVICE_MEMORY, "a %dx%d tile needs %.1f MiB, over the %.1f MiB budget",
                          ty1 - ty0, tx1 - tx0, (arena + staging) / 1048576.0, r->budget / 1048576.0);
  /* the windows of host tensors go straight into staging, the outputs come straight from it: a window of a
   * 64-channel tensor at full resolution is hundreds of MiB, and each copy through a fresh malloc faulted in
   * its pages again (2048x2048 on the H200: 35 s of host copies for 0.2 s of GPU work) */
  double t1 = cel_now ();
  if ((st = cel_graph_plan (g)))
    return st;
  double t2 = cel_now ();
  for (int32_t k = 0; k < r->n_pending; k++) {
    const struct pending *p = &r->pending[k];
    if (g->nodes[p->node].staging_in == (VkDeviceSize) -1)
      continue; /* an input nothing reads */
    float *dst = cel_plan_input_staging (g, p->node);
    if (!dst)
      return CEL_ERROR_INVALID_ARGUMENT;
    copy_window (r->s->ctx, dst, p->host, p->C, p->gh, p->gw, p->w);
  }
  double t3 = cel_now ();
  if ((st = cel_graph_run (g)))
    return st;
  double t4 = cel_now ();
  for (int32_t k = 0; k < n_outs && !st; k++) {
    const out_rec *o = &outs[k];
    lstate *l = &ls[o->layer];
    int32_t C = m->layers[o->layer].channels;
    const float *v = cel_plan_output_data (g, o->node);
    if (!v)
      return cel_set_error (r->s->ctx, CEL_ERROR_INVALID_ARGUMENT, "internal: tile output not in staging");
    if (o->stats) {
      double n = (double) o->w.h * o->w.w;
      for (int32_t c = 0; c < C; c++)
        acc_add (&l->acc, c, n, v[2 * c], (double) v[2 * c + 1] * n);
    } else {
      cel_copy_planes (r->s->ctx, (cel_plane_copy) { .dst = l->host + (size_t) o->w.y0 * l->gw + o->w.x0, .src = v,
                                             .dst_plane = (size_t) l->gh * l->gw, .dst_row = (size_t) l->gw,
                                             .src_plane = (size_t) o->w.h * o->w.w, .src_row = (size_t) o->w.w, .C = C,
                                             .h = o->w.h, .w = o->w.w, .c0 = 0, .c1 = C });
    }
  }
  r->rep->build_ms += (t1 - t0) * 1e3;
  r->rep->plan_ms += (t2 - t1) * 1e3;
  r->rep->copy_in_ms += (t3 - t2) * 1e3;
  r->rep->run_ms += (t4 - t3) * 1e3;
  r->rep->copy_out_ms += (cel_now () - t4) * 1e3;
  return st;
}

/* Global pools computed from the statistics of their input once its segment is done. */
static void finish_pools (run *r, int32_t seg) {
  for (int32_t i = 0; i < r->m->n_layers; i++) {
    const layer *L = &r->m->layers[i];
    if (L->op != L_GLOBAL_AVG_POOL || !r->ls[i].on_image || r->ls[L->in[0]].seg != seg)
      continue;
    for (int32_t c = 0; c < L->channels; c++)
      r->ls[i].host[c] = (float) r->ls[L->in[0]].acc.mean[c];
  }
}

cel_status cel_model_build_layer (const cel_model *m, cel_graph *g, int32_t i, const cel_node *in, cel_node image,
                                  const cel_node *nodes, cel_node *out); /* model.c */

/* The vectors of a segment (what is computed from global pools), untiled, before its tiles. */
static cel_status vector_pass (run *r, int32_t seg) {
  const cel_model *m = r->m;
  cel_graph *g = r->s->g;
  bool any = false;
  for (int32_t i = 0; i < m->n_layers; i++)
    any |= r->ls[i].vec && r->ls[i].seg == seg && m->layers[i].op != L_GLOBAL_AVG_POOL;
  if (!any)
    return CEL_OK;
  cel_status st = cel_graph_truncate (g, r->s->base);
  cel_node *nodes = malloc ((size_t) m->n_layers * sizeof *nodes);
  if (!nodes)
    return cel_set_error (r->s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  for (int32_t i = 0; i < m->n_layers; i++)
    nodes[i] = CEL_NO_NODE;
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    if (!r->ls[i].vec || r->ls[i].seg != seg || L->op == L_GLOBAL_AVG_POOL)
      continue;
    cel_node in[MAX_NODE_INPUTS];
    for (int k = 0; k < L->n_in && !st; k++) {
      int32_t j = L->in[k];
      if (j >= 0 && nodes[j] != CEL_NO_NODE)
        in[k] = nodes[j];
      else if (j >= 0 && r->ls[j].vec)
        st = upload_window (r, g, r->ls[j].host, m->layers[j].channels, 1, 1, (win) { 0, 0, 1, 1 }, &in[k]);
      else
        st = cel_set_error (r->s->ctx, CEL_ERROR_UNSUPPORTED, "layer '%s' mixes pooled and spatial inputs in a way "
                            "that cannot be tiled", L->name);
    }
    if (!st)
      st = cel_model_build_layer (m, g, i, in, CEL_NO_NODE, nodes, &nodes[i]);
    if (!st)
      st = cel_graph_mark_output (g, nodes[i]);
  }
  if (!st)
    st = cel_graph_run (g);
  for (int32_t i = 0; i < m->n_layers && !st; i++)
    if (nodes[i] != CEL_NO_NODE)
      st = cel_graph_get_data (g, nodes[i], r->ls[i].host, (size_t) m->layers[i].channels);
  free (nodes);
  return st;
}

/* The reference pre-pass: every layer that depends only on the reference runs once, untiled; those that
 * image layers use are kept on the host, with their per-channel statistics (for AdaIN's style side). */
static cel_status reference_pass (run *r) {
  const cel_model *m = r->m;
  lstate *ls = r->ls;
  bool any = false;
  for (int32_t i = 0; i < m->n_layers; i++)
    any |= !ls[i].on_image && ls[i].boundary;
  if (!any)
    return CEL_OK;
  if (!r->ref)
    return cel_set_error (r->s->ctx, CEL_ERROR_INVALID_ARGUMENT, "model '%s' needs a reference image", m->info.name);
  cel_graph *g = r->s->g;
  cel_status st = cel_graph_truncate (g, r->s->base);
  cel_node *nodes = malloc ((size_t) m->n_layers * sizeof *nodes), ref = CEL_NO_NODE;
  if (!nodes)
    return cel_set_error (r->s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  if (!st)
    st = cel_graph_input (g, NULL, (cel_shape) { 1, m->info.in_channels, r->RH, r->RW }, &ref);
  if (!st)
    st = cel_graph_set_data (g, ref, r->ref, (size_t) m->info.in_channels * r->RH * r->RW);
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    nodes[i] = CEL_NO_NODE;
    if (ls[i].on_image)
      continue;
    cel_node in[MAX_NODE_INPUTS];
    for (int k = 0; k < L->n_in; k++)
      in[k] = L->in[k] == -2 ? ref : nodes[L->in[k]];
    st = cel_model_build_layer (m, g, i, in, CEL_NO_NODE, nodes, &nodes[i]);
    if (!st && ls[i].boundary)
      st = cel_graph_mark_output (g, nodes[i]);
  }
  if (!st)
    st = cel_graph_run (g);
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    if (ls[i].on_image || !ls[i].boundary)
      continue;
    int32_t C = m->layers[i].channels;
    size_t plane = (size_t) ls[i].gh * ls[i].gw;
    if (!(ls[i].host = malloc ((size_t) C * plane * sizeof (float))) || !(ls[i].acc.count = calloc ((size_t) C, sizeof (double))) ||
        !(ls[i].acc.mean = calloc ((size_t) C, sizeof (double))) || !(ls[i].acc.m2 = calloc ((size_t) C, sizeof (double)))) {
      st = cel_set_error (r->s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
      break;
    }
    if ((st = cel_graph_get_data (g, nodes[i], ls[i].host, (size_t) C * plane)))
      break;
    for (int32_t c = 0; c < C; c++) { /* two passes in double: mean, then squared deviations */
      const float *p = ls[i].host + (size_t) c * plane;
      double mean = 0, m2 = 0;
      for (size_t k = 0; k < plane; k++)
        mean += p[k];
      mean /= (double) plane;
      for (size_t k = 0; k < plane; k++)
        m2 += (p[k] - mean) * (p[k] - mean);
      ls[i].acc.count[c] = (double) plane;
      ls[i].acc.mean[c] = mean;
      ls[i].acc.m2[c] = m2;
    }
  }
  free (nodes);
  cel_graph_truncate (g, r->s->base);
  return st;
}

cel_status cel_tiled_run (cel_stylizer *s, const float *net_in, int32_t H, int32_t W, const float *net_ref, int32_t RH,
                          int32_t RW, int32_t tile, uint64_t budget, const cel_stylize_options *o, float *net_out,
                          cel_stylize_report *rep) {
  const cel_model *m = s->model;
  cel_status st = CEL_OK;
  lstate *ls = calloc ((size_t) m->n_layers, sizeof *ls);
  if (!ls)
    return cel_set_error (s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  run r = { .s = s, .m = m, .ls = ls, .H = H, .W = W, .in_ch = m->info.in_channels, .image = net_in, .ref = net_ref,
            .RH = RH, .RW = RW, .budget = budget, .rep = rep };
  if ((st = cel_tile_global_sizes (s, ls, H, W, RH, RW)))
    goto done;
  int32_t max_seg = cel_tile_assign_segments (m, ls);
  for (int32_t i = 0; i < m->n_layers; i++) {
    const layer *L = &m->layers[i];
    int32_t C = L->channels;
    if ((ls[i].boundary && ls[i].on_image) || ls[i].vec) {
      size_t n = (size_t) C * ls[i].gh * ls[i].gw;
      ls[i].host_floats = n;
      if (i == m->output)
        ls[i].host = net_out;
      /* other boundaries on the image are taken when their segment starts (cel_host_pool_take) */
      else if (ls[i].vec && !(ls[i].host = malloc (n * sizeof (float)))) {
        st = cel_set_error (s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a %dx%dx%d intermediate", C,
                            ls[i].gh, ls[i].gw);
        goto done;
      }
    }
    if (ls[i].stats && ls[i].on_image) {
      ls[i].acc.count = calloc ((size_t) C, sizeof (double));
      ls[i].acc.mean = calloc ((size_t) C, sizeof (double));
      ls[i].acc.m2 = calloc ((size_t) C, sizeof (double));
      if (!ls[i].acc.count || !ls[i].acc.mean || !ls[i].acc.m2) {
        st = cel_set_error (s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        goto done;
      }
    }
  }
  if ((st = reference_pass (&r)))
    goto done;
  int32_t ny = (H + tile - 1) / tile, nx = (W + tile - 1) / tile;
  rep->tile = tile;
  rep->tiles = ny * nx;
  rep->segments = max_seg + 1;
  double total = (double) (max_seg + 1) * ny * nx, done = 0;
  for (int32_t seg = 0; seg <= max_seg && !st; seg++) {
    double t0 = cel_now ();
    for (int32_t i = 0; i < m->n_layers && !st; i++)
      if (ls[i].seg == seg && ls[i].boundary && ls[i].on_image && !ls[i].vec && i != m->output &&
          !(ls[i].host = cel_host_pool_take (&r.pool, ls[i].host_floats, &ls[i].host_floats)))
        st = cel_set_error (s->ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a %dx%dx%d intermediate",
                            m->layers[i].channels, ls[i].gh, ls[i].gw);
    rep->memory_ms += (cel_now () - t0) * 1e3;
    if (!st)
      st = vector_pass (&r, seg);
    for (int32_t ty = 0; ty < ny && !st; ty++)
      for (int32_t tx = 0; tx < nx && !st; tx++) {
        int32_t y0 = ty * tile, x0 = tx * tile, y1 = y0 + tile < H ? y0 + tile : H, x1 = x0 + tile < W ? x0 + tile : W;
        st = run_tile (&r, seg, y0, y1, x0, x1);
        done += 1;
        if (!st && o && o->progress && o->progress (o->progress_user, done / total))
          st = cel_set_error (s->ctx, CEL_ERROR_CANCELLED, "cancelled");
      }
    if (!st)
      finish_pools (&r, seg);
    t0 = cel_now ();
    for (int32_t i = 0; i < m->n_layers; i++)
      if (ls[i].host && ls[i].last_seg == seg && ls[i].on_image && !ls[i].vec && ls[i].seg >= 0 && i != m->output) {
        cel_host_pool_give (&r.pool, ls[i].host, ls[i].host_floats);
        ls[i].host = NULL;
      }
    rep->memory_ms += (cel_now () - t0) * 1e3;
  }

done:;
  double t_free = cel_now ();
  for (int32_t i = 0; i < m->n_layers; i++) {
    if (ls[i].host != net_out)
      free (ls[i].host);
    free (ls[i].acc.count);
    free (ls[i].acc.mean);
    free (ls[i].acc.m2);
  }
  free (ls);
  free (r.pending);
  cel_host_pool_clear (&r.pool);
  rep->memory_ms += (cel_now () - t_free) * 1e3;
  cel_graph_truncate (s->g, s->base);
  return st;
}


cel_status cel_model_macs (const cel_model *m, int32_t width, int32_t height, double *macs) {
  *macs = 0;
  lstate *ls = calloc ((size_t) m->n_layers, sizeof *ls);
  if (!ls)
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  /* global_sizes only needs the model and a context for its error message; use a throwaway stylizer shell */
  cel_stylizer s = { .model = m };
  cel_context dummy;
  memset (&dummy, 0, sizeof dummy);
  s.ctx = &dummy;
  cel_status st = cel_tile_global_sizes (&s, ls, height, width, height, width);
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    if (L->op == L_CONV2D) {
      *macs += (double) ls[i].gh * ls[i].gw * L->channels * L->weight->shape[1] * L->weight->shape[2] * L->weight->shape[3];
    } else if (L->op == L_CONV_TRANSPOSE2D) {
      int32_t j = L->in[0];
      double ih = j == -1 ? height : ls[j].gh, iw = j == -1 ? width : ls[j].gw;
      *macs += ih * iw * L->weight->shape[0] * L->weight->shape[1] * L->weight->shape[2] * L->weight->shape[3];
    }
  }
  free (ls);
  return st;
}
