/* Stylizing images of any size: pixels in and out of the network's range, post-ops, and the choice
 * between the model's own graph (untiled, when the image fits the memory budget) and exact tiled
 * execution (tiling.c). */
#include "tiling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ------------------------------------------------------------------------------- */

cel_status cel_model_create_params (const cel_model *m, cel_graph *g); /* model.c */

cel_status cel_stylizer_create (cel_context *ctx, const cel_model *model, cel_stylizer **out) {
  *out = NULL;
  cel_stylizer *s = calloc (1, sizeof *s);
  if (!s)
    return cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
  s->ctx = ctx;
  s->model = model;
  cel_status st = cel_graph_create (ctx, &s->g);
  if (!st)
    st = cel_model_create_params (model, s->g);
  if (st) {
    cel_stylizer_destroy (s);
    return st;
  }
  s->base = cel_graph_node_count (s->g);
  *out = s;
  return CEL_OK;
}

cel_context *cel_stylizer_context (const cel_stylizer *s) {
  return s->ctx;
}

void cel_stylizer_destroy (cel_stylizer *s) {
  if (!s)
    return;
  cel_graph_destroy (s->g);
  free (s);
}

/* ---- pixels in and out ------------------------------------------------------------------------ */

static float luma (float r, float g, float b) {
  return 0.299f * r + 0.587f * g + 0.114f * b;
}

/* Interleaved [0,1] image -> planar (C, H, W) network input in the model's range. */
static float *to_network (const float *img, int32_t w, int32_t h, int32_t ch, int32_t net_ch, const float range[2]) {
  size_t plane = (size_t) w * h;
  float *p = malloc (plane * (size_t) net_ch * sizeof *p);
  if (!p)
    return NULL;
  bool has_rgb = ch >= 3;
  float a = range[1] - range[0], b = range[0];
  for (size_t i = 0; i < plane; i++) {
    const float *px = img + i * (size_t) ch;
    for (int32_t c = 0; c < net_ch; c++) {
      float v;
      if (net_ch >= 3)
        v = has_rgb ? px[c < 3 ? c : 0] : px[0];
      else
        v = has_rgb ? luma (px[0], px[1], px[2]) : px[0];
      p[(size_t) c * plane + i] = v * a + b;
    }
  }
  return p;
}

/* ncnn's bicubic taps along one axis of an n -> n*scale upscale (its Interp layer, which the peers' programs
 * use for alpha): A = -0.75, half-pixel centers, and ncnn's own folding of taps beyond the edges. Output o reads
 * inputs ofs[o]-1 .. ofs[o]+2 with weights wt[4*o ..]. Needs n >= 4. */
static void ncnn_cubic_taps (int32_t n, int32_t scale, int32_t *ofs, float *wt) {
  double step = (double) n / (n * scale);
  const float A = -0.75f;
  for (int32_t o = 0; o < n * scale; o++) {
    float fx = (float) ((o + 0.5) * step - 0.5);
    int32_t sx = (int32_t) floor (fx);
    fx -= (float) sx;
    float *a = wt + 4 * o, f0 = fx + 1, f1 = fx, f2 = 1 - fx;
    a[0] = A * f0 * f0 * f0 - 5 * A * f0 * f0 + 8 * A * f0 - 4 * A;
    a[1] = (A + 2) * f1 * f1 * f1 - (A + 3) * f1 * f1 + 1;
    a[2] = (A + 2) * f2 * f2 * f2 - (A + 3) * f2 * f2 + 1;
    a[3] = 1.f - a[0] - a[1] - a[2];
    if (sx <= -1) {
      sx = 1;
      a[0] = 1.f - a[3];
      a[1] = a[3];
      a[2] = a[3] = 0.f;
    }
    if (sx == 0) {
      sx = 1;
      a[0] = a[0] + a[1];
      a[1] = a[2];
      a[2] = a[3];
      a[3] = 0.f;
    }
    if (sx == n - 2) {
      sx = n - 3;
      a[3] = a[2] + a[3];
      a[2] = a[1];
      a[1] = a[0];
      a[0] = 0.f;
    }
    if (sx >= n - 1) {
      sx = n - 3;
      a[3] = 1.f - a[0];
      a[2] = a[0];
      a[1] = a[0] = 0.f;
    }
    ofs[o] = sx;
  }
}

/* Alpha of an interleaved image upscaled with ncnn's bicubic, into channel ch-1 of out (clamped to [0, 1]).
 * Returns false (out of memory or an image under 4 pixels) to fall back to bilinear. */
static bool alpha_ncnn_bicubic (const float *img, int32_t w, int32_t h, int32_t ch, int32_t scale, float *out) {
  int32_t ow = w * scale, oh = h * scale;
  int32_t *xo = malloc ((size_t) ow * sizeof *xo), *yo = malloc ((size_t) oh * sizeof *yo);
  float *xa = malloc ((size_t) ow * 4 * sizeof *xa), *ya = malloc ((size_t) oh * 4 * sizeof *ya);
  float *rows = malloc ((size_t) h * ow * sizeof *rows);
  bool ok = xo && yo && xa && ya && rows && w >= 4 && h >= 4;
  if (ok) {
    ncnn_cubic_taps (w, scale, xo, xa);
    ncnn_cubic_taps (h, scale, yo, ya);
    for (int32_t y = 0; y < h; y++) /* horizontal pass */
      for (int32_t x = 0; x < ow; x++) {
        float s = 0;
        for (int k = 0; k < 4; k++)
          s += xa[4 * x + k] * img[((size_t) y * w + xo[x] - 1 + k) * (size_t) ch + (size_t) ch - 1];
        rows[(size_t) y * ow + x] = s;
      }
    for (int32_t y = 0; y < oh; y++)
      for (int32_t x = 0; x < ow; x++) {
        float s = 0;
        for (int k = 0; k < 4; k++)
          s += ya[4 * y + k] * rows[(size_t) (yo[y] - 1 + k) * ow + x];
        out[((size_t) y * ow + x) * (size_t) ch + (size_t) ch - 1] = s < 0 ? 0 : s > 1 ? 1 : s;
      }
  }
  free (xo);
  free (yo);
  free (xa);
  free (ya);
  free (rows);
  return ok;
}

/* Planar network output -> interleaved [0,1]; alpha from the input (bilinear when scaled, unless the model
 * asks for ncnn's bicubic: then alpha_done is set and the alpha channel is left to alpha_ncnn_bicubic). */
static void from_network (const float *net, int32_t net_ch, const float range[2], const float *img, int32_t w, int32_t h,
                          int32_t ch, int32_t scale, bool alpha_done, float *out) {
  int32_t ow = w * scale, oh = h * scale;
  size_t plane = (size_t) ow * oh;
  float a = 1.0f / (range[1] - range[0]), b = -range[0];
  bool alpha = ch == 2 || ch == 4;
  int32_t color = alpha ? ch - 1 : ch;
  if (alpha_done)
    alpha = false;
  for (int32_t y = 0; y < oh; y++)
    for (int32_t x = 0; x < ow; x++) {
      size_t i = (size_t) y * ow + x;
      float *px = out + i * (size_t) ch;
      float v[4] = { 0, 0, 0, 0 };
      for (int32_t c = 0; c < net_ch && c < 4; c++) {
        float t = (net[(size_t) c * plane + i] + b) * a;
        v[c] = t < 0 ? 0 : t > 1 ? 1 : t;
      }
      if (color >= 3) {
        for (int32_t c = 0; c < 3; c++)
          px[c] = net_ch >= 3 ? v[c] : v[0];
      } else {
        px[0] = net_ch >= 3 ? luma (v[0], v[1], v[2]) : v[0];
      }
      if (alpha) {
        if (scale == 1) {
          px[ch - 1] = img[i * (size_t) ch + (size_t) ch - 1];
        } else { /* bilinear, half-pixel centers */
          float sy = (y + 0.5f) / scale - 0.5f, sx = (x + 0.5f) / scale - 0.5f;
          sy = sy < 0 ? 0 : sy;
          sx = sx < 0 ? 0 : sx;
          int32_t y0 = (int32_t) sy, x0 = (int32_t) sx, y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
          float fy = sy - y0, fx = sx - x0;
#define A(yy, xx) img[((size_t) (yy) * w + (xx)) * (size_t) ch + (size_t) ch - 1]
          px[ch - 1] = (1 - fy) * ((1 - fx) * A (y0, x0) + fx * A (y0, x1)) + fy * ((1 - fx) * A (y1, x0) + fx * A (y1, x1));
#undef A
        }
      }
    }
}

void cel_postprocess (const float *orig, float *out, int32_t w, int32_t h, int32_t ch, float strength, bool keep_colors) {
  bool alpha = ch == 2 || ch == 4;
  int32_t color = alpha ? ch - 1 : ch;
  for (size_t i = 0; i < (size_t) w * h; i++) {
    const float *o = orig + i * (size_t) ch;
    float *p = out + i * (size_t) ch;
    if (keep_colors && color == 3) {
      float y = luma (p[0], p[1], p[2]);
      float cb = -0.168736f * o[0] - 0.331264f * o[1] + 0.5f * o[2];
      float cr = 0.5f * o[0] - 0.418688f * o[1] - 0.081312f * o[2];
      p[0] = y + 1.402f * cr;
      p[1] = y - 0.344136f * cb - 0.714136f * cr;
      p[2] = y + 1.772f * cb;
    }
    for (int32_t c = 0; c < color; c++) {
      float v = o[c] + strength * (p[c] - o[c]);
      p[c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

static cel_status run_untiled (cel_stylizer *s, const float *net_in, int32_t H, int32_t W, const float *net_ref, int32_t RH,
                               int32_t RW, uint64_t budget, float *net_out) {
  const cel_model *m = s->model;
  cel_graph *g = s->g;
  cel_node x, ref = CEL_NO_NODE, y;
  cel_status st = cel_graph_truncate (g, s->base);
  if (!st)
    st = cel_graph_input (g, NULL, (cel_shape) { 1, m->info.in_channels, H, W }, &x);
  if (!st && m->info.needs_reference)
    st = cel_graph_input (g, NULL, (cel_shape) { 1, m->info.in_channels, RH, RW }, &ref);
  if (!st)
    st = cel_model_build (m, g, x, ref, &y);
  if (!st)
    st = cel_graph_mark_output (g, y);
  if (!st)
    st = cel_graph_set_data (g, x, net_in, (size_t) m->info.in_channels * H * W);
  if (!st && ref != CEL_NO_NODE)
    st = cel_graph_set_data (g, ref, net_ref, (size_t) m->info.in_channels * RH * RW);
  if (!st) {
    /* estimate before allocating anything: the planner's packing is host-side */
    uint64_t arena = 0, staging = 0;
    st = cel_plan_estimate (g, &arena, &staging);
    if (!st && arena + staging > budget)
      st = cel_set_error (s->ctx, CEL_ERROR_OUT_OF_DEVICE_MEMORY, "the untiled graph needs %.1f MiB, over the %.1f MiB budget",
                          (arena + staging) / 1048576.0, budget / 1048576.0);
  }
  if (!st)
    st = cel_graph_run (g);
  if (!st)
    st = cel_graph_get_data (g, y, net_out, (size_t) m->info.out_channels * H * m->info.scale * W * m->info.scale);
  cel_graph_truncate (g, s->base);
  if (st == CEL_ERROR_OUT_OF_DEVICE_MEMORY)
    cel_plan_release (g); /* give the memory back before tiling */
  return st;
}

cel_status cel_stylize (cel_stylizer *s, const float *image, int32_t width, int32_t height, int32_t channels,
                        const float *reference, int32_t ref_width, int32_t ref_height, int32_t ref_channels,
                        const cel_stylize_options *o, float *out, cel_stylize_report *report) {
  cel_context *ctx = s->ctx;
  const cel_model *m = s->model;
  const cel_model_info *mi = &m->info;
  cel_stylize_report rep_local = { 0 };
  cel_stylize_report *rep = report ? report : &rep_local;
  memset (rep, 0, sizeof *rep);
  if (!image || !out || width < 1 || height < 1 || channels < 1 || channels > 4)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "stylize: bad image (%dx%d, %d channels)", width, height, channels);
  if ((int64_t) width * height > ((int64_t) 1 << 30) / (mi->scale * mi->scale))
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "stylize: %dx%d is too large", width, height);
  if (mi->needs_reference && (!reference || ref_width < 1 || ref_height < 1 || ref_channels < 1 || ref_channels > 4))
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "model '%s' needs a reference image", mi->name);
  int32_t min_side = 2 * mi->stride > 8 ? 2 * mi->stride : 8;
  if (width < min_side || height < min_side)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "stylize: the image (%dx%d) is smaller than this model's minimum of "
                          "%dx%d", width, height, min_side, min_side);
  if (mi->needs_reference && (ref_width < min_side || ref_height < min_side))
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "stylize: the reference image (%dx%d) is smaller than this model's "
                          "minimum of %dx%d", ref_width, ref_height, min_side, min_side);
  uint64_t budget = o && o->memory_budget ? o->memory_budget : ctx->budget;
  if (!budget) {
    budget = ctx->info.device_local_bytes / 2;
    if (budget > ((uint64_t) 2 << 30))
      budget = (uint64_t) 2 << 30;
  }
  uint64_t peak0 = ctx->peak_device_bytes;
  (void) peak0;
  float *net_in = to_network (image, width, height, channels, mi->in_channels, mi->input_range);
  float *net_ref = mi->needs_reference ? to_network (reference, ref_width, ref_height, ref_channels, mi->in_channels,
                                                     mi->input_range) : NULL;
  size_t out_count = (size_t) mi->out_channels * width * mi->scale * height * mi->scale;
  float *net_out = malloc (out_count * sizeof *net_out);
  cel_status st = CEL_OK;
  if (!net_in || !net_out || (mi->needs_reference && !net_ref)) {
    st = cel_set_error (ctx, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a %dx%d image", width, height);
    goto done;
  }
  int32_t tile = o ? o->tile : 0;
  if (tile <= 0) {
    st = run_untiled (s, net_in, height, width, net_ref, ref_height, ref_width, budget, net_out);
    if (st != CEL_ERROR_OUT_OF_DEVICE_MEMORY)
      goto done;
    tile = 1024;
  }
  tile = tile / mi->stride * mi->stride;
  if (tile < 4 * mi->stride)
    tile = 4 * mi->stride;
  for (;;) {
    uint64_t saved = ctx->budget;
    if (!ctx->budget || ctx->budget > budget + ctx->device_bytes)
      ctx->budget = budget + ctx->device_bytes; /* the tile's plan must fit what is left of the budget */
    st = cel_tiled_run (s, net_in, height, width, net_ref, ref_height, ref_width, tile, budget, o, net_out, rep);
    ctx->budget = saved;
    if (st != CEL_ERROR_OUT_OF_DEVICE_MEMORY || tile <= 4 * mi->stride)
      break;
    tile = tile / 2 / mi->stride * mi->stride;
    if (tile < 4 * mi->stride)
      tile = 4 * mi->stride;
    rep->retries++;
  }

done:
  if (!st) {
    bool alpha_done = (channels == 2 || channels == 4) && mi->scale > 1 && mi->alpha_bicubic_ncnn &&
                      alpha_ncnn_bicubic (image, width, height, channels, mi->scale, out);
    from_network (net_out, mi->out_channels, mi->output_range, image, width, height, channels, mi->scale, alpha_done, out);
  }
  rep->peak_device_bytes = ctx->peak_device_bytes;
  free (net_in);
  free (net_ref);
  free (net_out);
  return st;
}
