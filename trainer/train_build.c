/* Graph-building helpers shared by the trainer's step graphs (train_build.h). */
#include "train_build.h"
#include "train_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random draws and shapes ------------------------------------------------------------------------ */

/* Uniform in [0, 1) and standard normal draws from a counter-based stream. */
double train_uniform (uint64_t seed, uint64_t tag, uint64_t i) {
  return (double) (train_mix64 (seed ^ train_mix64 (tag) ^ train_mix64 (i + 0x1234567ull)) >> 11) * 0x1.0p-53;
}

double train_normal (uint64_t seed, uint64_t tag, uint64_t i) {
  double u1 = train_uniform (seed, tag, 2 * i), u2 = train_uniform (seed, tag, 2 * i + 1);
  return sqrt (-2 * log (u1 + 1e-300)) * cos (6.283185307179586 * u2);
}

/* Discriminator layer l of s->d_layers + 1: (in, out, kernel). */
void train_d_layer (const train_setup *s, int32_t l, int32_t *ic, int32_t *oc, int32_t *k) {
  *ic = l == 0 ? 3 : s->d_width << (l - 1);
  *oc = l == s->d_layers ? 1 : s->d_width << l;
  *k = l == s->d_layers ? 3 : 4;
}

cel_shape train_model_tensor_shape (const cel_tensor_info *t) {
  if (t->rank == 4)
    return (cel_shape) { (int32_t) t->shape[0], (int32_t) t->shape[1], (int32_t) t->shape[2], (int32_t) t->shape[3] };
  if (t->rank == 1)
    return (cel_shape) { 1, (int32_t) t->shape[0], 1, 1 };
  return (cel_shape) { 1, 1, 1, (int32_t) t->count };
}

/* ---- graph building: a sticky status so the loss code reads as math ---------------------------- */

cel_node bld_conv (bld *b, cel_node x, cel_node w, cel_node bias, int32_t stride, int32_t pad, int32_t groups) {
  cel_conv2d_params p = { .stride_h = stride, .stride_w = stride, .pad_top = pad, .pad_bottom = pad, .pad_left = pad,
                          .pad_right = pad, .groups = groups };
  cel_node out = CEL_NO_NODE;
  return TRY (b, "conv2d", cel_conv2d (b->g, x, w, bias, &p, &out));
}

cel_node bld_act (bld *b, cel_node x, cel_activation a, float alpha) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "activation", cel_activate (b->g, x, a, alpha, &out));
}

cel_node bld_stop (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "stop_gradient", cel_stop_gradient (b->g, x, &out));
}

cel_node bld_mse (bld *b, cel_node x, cel_node y) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "mean_squared_error", cel_mean_squared_error (b->g, x, y, &out));
}

cel_node bld_mae (bld *b, cel_node x, cel_node y) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "mean_abs_error", cel_mean_abs_error (b->g, x, y, &out));
}

cel_node bld_add (bld *b, cel_node x, cel_node y, float alpha, float beta) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "add", cel_add (b->g, x, y, alpha, beta, &out));
}

cel_node bld_gram (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "gram", cel_gram (b->g, x, 0, &out));
}

cel_node bld_crop (bld *b, cel_node x, int32_t y0, int32_t x0, int32_t h, int32_t w) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "crop", cel_crop (b->g, x, y0, x0, h, w, &out));
}

/* mean ((x - value)^2) over x. */
cel_node bld_mse_to (bld *b, cel_node x, float value) {
  cel_shape s = { 0 };
  if (!b->st)
    b->st = cel_graph_shape (b->g, x, &s);
  cel_node out = CEL_NO_NODE;
  cel_node f = TRY (b, "fill", cel_fill (b->g, s, value, &out));
  return bld_mse (b, x, f);
}

cel_node bld_instance_norm (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "instance_norm", cel_instance_norm (b->g, x, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &out));
}

/* A fixed tensor: a state set once (kept in tg->fixed for dumps). Found by name when it exists. */
cel_node bld_fixed (bld *b, const char *name, cel_shape shape, const float *data) {
  cel_node out = CEL_NO_NODE;
  if (b->st || cel_graph_find (b->g, name, &out) == CEL_OK)
    return out;
  if ((b->st = cel_graph_state (b->g, name, shape, &out)) || (b->st = cel_graph_set_data (b->g, out, data, train_shape_count (shape)))) {
    b->what = name;
    return CEL_NO_NODE;
  }
  if (!host_store_put (&b->tg->fixed, name, shape, data)) {
    b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    b->what = name;
  }
  return out;
}

/* A persistent tensor of the store: a parameter or state, uploaded from the store (zero when absent). */
cel_node bld_persistent (bld *b, const char *store_name, const char *node_name, cel_shape shape, bool param,
                            const host_store *state) {
  cel_node out = CEL_NO_NODE;
  if (b->st)
    return out;
  if (cel_graph_find (b->g, node_name, &out) != CEL_OK &&
      (b->st = param ? cel_graph_param (b->g, node_name, shape, &out) : cel_graph_state (b->g, node_name, shape, &out))) {
    b->what = node_name;
    return CEL_NO_NODE;
  }
  host_tensor *h = host_store_find ((host_store *) state, store_name);
  if (h && h->count != train_shape_count (shape)) {
    b->st = CEL_ERROR_INVALID_ARGUMENT;
    b->what = store_name;
    return CEL_NO_NODE;
  }
  if (h && (b->st = cel_graph_set_data (b->g, out, h->data, h->count))) {
    b->what = store_name;
    return CEL_NO_NODE;
  }
  train_tensor *p = realloc (b->tg->t, (size_t) (b->tg->n_t + 1) * sizeof *p);
  if (!p || !(p[b->tg->n_t].store_name = strdup (store_name))) {
    b->tg->t = p ? p : b->tg->t;
    b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    return CEL_NO_NODE;
  }
  p[b->tg->n_t].node = out;
  b->tg->t = p;
  b->tg->n_t++;
  return out;
}

/* ---- the feature network --------------------------------------------------------------------------- */

/* VGG19 convolutions up to conv4_4 (torchvision features.N), with the average pools that replace its max
 * pools (no max-pool op in the core) after features 2, 7 and 16. */
static const int32_t vgg_index[] = { 0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25 };
static const int32_t vgg_width[] = { 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512 };

bool feature_net_load (const char *path, feature_net *f, char *err, size_t errlen) {
  cel_safetensors *st = NULL;
  if (cel_safetensors_open (path, &st, err, errlen))
    return false;
  bool ok = true;
  for (int i = 0; i < 12 && ok; i++) {
    int32_t ic = i == 0 ? 3 : vgg_width[i - 1], oc = vgg_width[i];
    char wn[64], bn[64];
    snprintf (wn, sizeof wn, "features.%d.weight", vgg_index[i]);
    snprintf (bn, sizeof bn, "features.%d.bias", vgg_index[i]);
    const cel_tensor_info *w = cel_safetensors_find (st, wn), *b = cel_safetensors_find (st, bn);
    if (!w || !b || w->count != (int64_t) oc * ic * 9 || b->count != oc || w->rank != 4 || w->shape[0] != oc) {
      snprintf (err, errlen, "%s: not VGG19 conv weights: need %s (%d, %d, 3, 3) and %s (%d) as in torchvision", path, wn, oc,
                ic, bn, oc);
      ok = false;
      break;
    }
    f->vgg_w[i] = malloc ((size_t) w->count * sizeof (float));
    f->vgg_b[i] = malloc ((size_t) b->count * sizeof (float));
    ok = f->vgg_w[i] && f->vgg_b[i] && !cel_safetensors_read_f32 (st, w, f->vgg_w[i], (size_t) w->count, err, errlen) &&
         !cel_safetensors_read_f32 (st, b, f->vgg_b[i], (size_t) b->count, err, errlen);
  }
  cel_safetensors_close (st);
  f->vgg = true;
  return ok;
}

void feature_net_free (feature_net *f) {
  for (int i = 0; i < 12; i++) {
    free (f->vgg_w[i]);
    free (f->vgg_b[i]);
  }
}

/* The random feature network: 3x3 convolutions 3->16 (stride 1), 16->32, 32->64 (stride 2), zero padding 1,
 * no bias, He-normal weights from the seed, ReLU between them; the features are each convolution's output
 * before its ReLU (three scales). */
static const int32_t random_width[] = { 16, 32, 64 };

/* Features of x (N,3,H,W in [-1, 1]); returns how many (scales). */
int bld_features (bld *b, const train_setup *s, const feature_net *f, cel_node x, cel_node out[MAX_FEATURES]) {
  char name[64];
  if (!f->vgg) {
    cel_node h = x;
    for (int i = 0; i < 3; i++) {
      int32_t ic = i == 0 ? 3 : random_width[i - 1], oc = random_width[i];
      cel_shape ws = { oc, ic, 3, 3 };
      snprintf (name, sizeof name, "feat.%d.weight", i);
      float *w = malloc (train_shape_count (ws) * sizeof *w);
      if (!w) {
        b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
      }
      for (size_t k = 0; k < train_shape_count (ws); k++)
        w[k] = (float) (train_normal (s->seed, 0xfea70000ull + (uint64_t) i, k) * sqrt (2.0 / (ic * 9)));
      cel_node wn = bld_fixed (b, name, ws, w);
      free (w);
      out[i] = bld_conv (b, i == 0 ? h : bld_act (b, h, CEL_ACT_RELU, 0), wn, CEL_NO_NODE, i == 0 ? 1 : 2, 1, 1);
      h = out[i];
    }
    return 3;
  }
  /* VGG: ImageNet normalization of (x + 1) / 2 as a fixed 1x1 convolution */
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
  float nw[9] = { 0 }, nb[3];
  for (int c = 0; c < 3; c++) {
    nw[c * 3 + c] = 0.5f / std[c];
    nb[c] = (0.5f - mean[c]) / std[c];
  }
  cel_node h = bld_conv (b, x, bld_fixed (b, "vgg.norm.weight", (cel_shape) { 3, 3, 1, 1 }, nw),
                     bld_fixed (b, "vgg.norm.bias", (cel_shape) { 1, 3, 1, 1 }, nb), 1, 0, 1);
  for (int i = 0; i < 12; i++) {
    int32_t ic = i == 0 ? 3 : vgg_width[i - 1], oc = vgg_width[i];
    snprintf (name, sizeof name, "vgg.%d.weight", vgg_index[i]);
    cel_node w = bld_fixed (b, name, (cel_shape) { oc, ic, 3, 3 }, f->vgg_w[i]);
    snprintf (name, sizeof name, "vgg.%d.bias", vgg_index[i]);
    cel_node bias = bld_fixed (b, name, (cel_shape) { 1, oc, 1, 1 }, f->vgg_b[i]);
    h = bld_conv (b, h, w, bias, 1, 1, 1);
    if (i == 11)
      break;
    h = bld_act (b, h, CEL_ACT_RELU, 0);
    if (i == 1 || i == 3 || i == 7) {
      float *pw = malloc ((size_t) oc * 4 * sizeof *pw);
      if (!pw) {
        b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
      }
      for (int32_t k = 0; k < oc * 4; k++)
        pw[k] = 0.25f;
      snprintf (name, sizeof name, "vgg.pool%d", oc);
      h = bld_conv (b, h, bld_fixed (b, name, (cel_shape) { oc, 1, 2, 2 }, pw), CEL_NO_NODE, 2, 0, oc);
      free (pw);
    }
  }
  out[0] = h; /* conv4_4 before its ReLU, as AnimeGAN */
  return 1;
}

/* ---- the discriminator ------------------------------------------------------------------------------ */

/* PatchGAN: 4x4 stride-2 convolutions (padding 1) with LeakyReLU 0.2, instance norm after all but the first,
 * then a 3x3 convolution to one channel; spectral norm on every weight. feat (NULL: not wanted) receives the
 * d->n - 1 hidden layers' outputs (after their LeakyReLU), for feature matching. */
cel_node bld_discriminate (bld *b, const disc *d, cel_node x, bool stopped, cel_node *feat) {
  cel_node h = x;
  for (int32_t l = 0; l < d->n; l++) {
    bool last = l == d->n - 1;
    h = bld_conv (b, h, stopped ? d->ws[l] : d->w[l], stopped ? d->bs[l] : d->b[l], last ? 1 : 2, 1, 1);
    if (last)
      break;
    if (l > 0)
      h = bld_instance_norm (b, h);
    h = bld_act (b, h, CEL_ACT_LEAKY_RELU, 0.2f);
    if (feat)
      feat[l] = h;
  }
  return h;
}

void train_d_name (char *buf, size_t len, int32_t scale, int32_t l, const char *what) {
  if (scale)
    snprintf (buf, len, "d%d.%d.%s", (int) scale, (int) l, what);
  else
    snprintf (buf, len, "d.%d.%s", (int) l, what);
}

void bld_disc (bld *b, const train_setup *s, int32_t scale, const host_store *state, disc *d) {
  *d = (disc) { .n = s->d_layers + 1, .scale = scale };
  for (int32_t l = 0; l < d->n && !b->st; l++) {
    int32_t ic, oc, k;
    train_d_layer (s, l, &ic, &oc, &k);
    char n[64], sn[72];
    train_d_name (n, sizeof n, scale, l, "weight");
    snprintf (sn, sizeof sn, "d/%s", n);
    d->pw[l] = bld_persistent (b, sn, sn, (cel_shape) { oc, ic, k, k }, true, state);
    train_d_name (n, sizeof n, scale, l, "bias");
    snprintf (sn, sizeof sn, "d/%s", n);
    d->b[l] = bld_persistent (b, sn, sn, (cel_shape) { 1, oc, 1, 1 }, true, state);
    train_d_name (n, sizeof n, scale, l, "u");
    snprintf (sn, sizeof sn, "d/%s", n);
    cel_node u = bld_persistent (b, sn, sn, (cel_shape) { 1, 1, 1, oc + ic * k * k + 1 }, false, state), out;
    d->w[l] = TRY (b, "spectral_norm", cel_spectral_norm (b->g, d->pw[l], u, 1, true, 1e-12f, &out));
    d->ws[l] = bld_stop (b, d->w[l]);
    d->bs[l] = bld_stop (b, d->b[l]);
  }
}

void bld_disc_adam (bld *b, const train_setup *s, const disc *d, cel_node hyper, const host_store *state) {
  for (int32_t l = 0; l < d->n && !b->st; l++) {
    char wn[64], bn[64];
    train_d_name (wn, sizeof wn, d->scale, l, "weight");
    train_d_name (bn, sizeof bn, d->scale, l, "bias");
    bld_adam (b, s, d->pw[l], wn, "d", hyper, state);
    bld_adam (b, s, d->b[l], bn, "d", hyper, state);
  }
}

/* x (N,C,H,W) -> (1,C,1,1): each channel's mean over the batch and the positions. */
cel_node bld_channel_means (bld *b, cel_node x) {
  cel_shape s = { 0 };
  if (!b->st)
    b->st = cel_graph_shape (b->g, x, &s);
  cel_node out = CEL_NO_NODE;
  cel_node m = TRY (b, "global_avg_pool", cel_global_avg_pool (b->g, x, &out));
  m = TRY (b, "sum_to", cel_sum_to (b->g, m, (cel_shape) { 1, s.c, 1, 1 }, &out));
  return TRY (b, "scale", cel_scale_shift (b->g, m, 1.0f / (float) (s.n ? s.n : 1), 0, &out));
}

/* ---- sums and the optimizer ---------------------------------------------------------------------------- */

cel_node bld_weighted_sum (bld *b, const cel_node *x, const float *w, int n) {
  cel_node s = CEL_NO_NODE;
  for (int i = 0; i < n; i++) {
    if (w[i] == 0)
      continue;
    if (s == CEL_NO_NODE) {
      cel_node out = CEL_NO_NODE;
      s = TRY (b, "scale", cel_scale_shift (b->g, x[i], w[i], 0, &out));
    } else {
      s = bld_add (b, s, x[i], 1, w[i]);
    }
  }
  if (s == CEL_NO_NODE) {
    cel_node out = CEL_NO_NODE;
    s = TRY (b, "scale", cel_scale_shift (b->g, x[0], 0, 0, &out));
  }
  return s;
}

/* Adam nodes for a parameter (moments named "PREFIX.m/NAME", "PREFIX.v/NAME" in the store). */
void bld_adam (bld *b, const train_setup *s, cel_node param, const char *name, const char *prefix, cel_node hyper,
                  const host_store *state) {
  cel_node grad = cel_graph_grad (b->g, param);
  cel_shape shape;
  if (b->st || grad == CEL_NO_NODE || (b->st = cel_graph_shape (b->g, param, &shape)))
    return;
  if (s->external_optimizer) { /* the caller reduces the gradient across ranks and steps Adam itself */
    train_tensor *t = NULL;
    for (int32_t i = 0; i < b->tg->n_t && !t; i++)
      t = b->tg->t[i].node == param ? &b->tg->t[i] : NULL;
    train_grad *p = realloc (b->tg->grads, (size_t) (b->tg->n_grads + 1) * sizeof *p);
    if (!t || !p || (b->st = cel_graph_mark_output (b->g, grad))) {
      b->tg->grads = p ? p : b->tg->grads;
      b->st = b->st ? b->st : t ? CEL_ERROR_OUT_OF_HOST_MEMORY : CEL_ERROR_INVALID_ARGUMENT;
      b->what = "gradient output";
      return;
    }
    p[b->tg->n_grads++] = (train_grad) { t->store_name, param, grad, prefix[0] == 'd' };
    b->tg->grads = p;
    return;
  }
  char mn[300], vn[300];
  snprintf (mn, sizeof mn, "%s.m/%s", prefix, name);
  snprintf (vn, sizeof vn, "%s.v/%s", prefix, name);
  cel_node m = bld_persistent (b, mn, mn, shape, false, state), v = bld_persistent (b, vn, vn, shape, false, state), out;
  cel_adam_params p = { s->beta1, s->beta2, s->eps, 0 };
  if (!b->st && (b->st = cel_adam_step (b->g, param, grad, m, v, hyper, &p, &out)))
    b->what = "adam_step";
}
