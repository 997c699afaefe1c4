/* The trainer's networks, losses, optimizer nodes and checkpoints (train_net.h). */
#include "train_net.h"
#include "train_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const train_loss_names[LOSS_COUNT] = {
  "g_adv", "content", "style", "color", "tv", "fm", "g_total", "d_real", "d_fake", "d_gray", "d_blur", "d_total",
};

void train_weights_default (train_weights *w) {
  *w = (train_weights) { .adv_g = 300, .adv_d = 300, .content = 1.5f, .style = 2.5f, .color = 10, .tv = 1,
                         .warmup_content = 1.5f, .d_real = 1.2f, .d_fake = 1.2f, .d_gray = 1.2f, .d_blur = 0.8f };
}

bool train_weights_parse (train_weights *w, const char *text, char *err, size_t errlen) {
  static const struct { const char *key; size_t off; } keys[] = {
    { "adv_g", offsetof (train_weights, adv_g) },       { "adv_d", offsetof (train_weights, adv_d) },
    { "content", offsetof (train_weights, content) },   { "style", offsetof (train_weights, style) },
    { "color", offsetof (train_weights, color) },       { "tv", offsetof (train_weights, tv) },
    { "fm", offsetof (train_weights, fm) },
    { "warmup_content", offsetof (train_weights, warmup_content) },
    { "warmup_color", offsetof (train_weights, warmup_color) },
    { "d_real", offsetof (train_weights, d_real) },     { "d_fake", offsetof (train_weights, d_fake) },
    { "d_gray", offsetof (train_weights, d_gray) },     { "d_blur", offsetof (train_weights, d_blur) },
  };
  char *copy = strdup (text);
  bool ok = copy != NULL;
  for (char *save = NULL, *item = copy ? strtok_r (copy, ",", &save) : NULL; item && ok; item = strtok_r (NULL, ",", &save)) {
    char *eq = strchr (item, '='), *end = NULL;
    ok = false;
    if (eq) {
      *eq = 0;
      float v = strtof (eq + 1, &end);
      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp (item, keys[i].key) == 0 && end && !*end && end != eq + 1 && isfinite (v) && v >= 0) {
          *(float *) ((char *) w + keys[i].off) = v;
          ok = true;
        }
    }
    if (!ok)
      snprintf (err, errlen, "--weights: '%s' is not KEY=VALUE with a known key and a number >= 0 (keys: adv_g, adv_d, "
                "content, style, color, tv, fm, warmup_content, warmup_color, d_real, d_fake, d_gray, d_blur)", item);
  }
  free (copy);
  return ok;
}

/* ---- host store ---------------------------------------------------------------------------------- */

static size_t shape_count (cel_shape s) {
  return (size_t) s.n * s.c * s.h * s.w;
}

host_tensor *host_store_find (host_store *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp (s->t[i].name, name) == 0)
      return &s->t[i];
  return NULL;
}

host_tensor *host_store_put (host_store *s, const char *name, cel_shape shape, const float *data) {
  size_t count = shape_count (shape);
  host_tensor *t = host_store_find (s, name);
  if (!t) {
    host_tensor *p = realloc (s->t, (s->n + 1) * sizeof *p);
    if (!p)
      return NULL;
    s->t = p;
    t = &s->t[s->n];
    *t = (host_tensor) { .name = strdup (name) };
    if (!t->name)
      return NULL;
    s->n++;
  }
  if (t->count != count) {
    float *d = realloc (t->data, count * sizeof *d);
    if (!d)
      return NULL;
    t->data = d;
  }
  t->shape = shape;
  t->count = count;
  if (data)
    memcpy (t->data, data, count * sizeof *data);
  else
    memset (t->data, 0, count * sizeof *t->data);
  return t;
}

void host_store_free (host_store *s) {
  for (size_t i = 0; i < s->n; i++) {
    free (s->t[i].name);
    free (s->t[i].data);
  }
  free (s->t);
  *s = (host_store) { 0 };
}

/* ---- initial weights ----------------------------------------------------------------------------- */

/* Uniform in [0, 1) and standard normal draws from a counter-based stream. */
static double uniform (uint64_t seed, uint64_t tag, uint64_t i) {
  return (double) (train_mix64 (seed ^ train_mix64 (tag) ^ train_mix64 (i + 0x1234567ull)) >> 11) * 0x1.0p-53;
}

static double normal (uint64_t seed, uint64_t tag, uint64_t i) {
  double u1 = uniform (seed, tag, 2 * i), u2 = uniform (seed, tag, 2 * i + 1);
  return sqrt (-2 * log (u1 + 1e-300)) * cos (6.283185307179586 * u2);
}

/* Discriminator layer l of s->d_layers + 1: (in, out, kernel). */
static void d_layer (const train_setup *s, int32_t l, int32_t *ic, int32_t *oc, int32_t *k) {
  *ic = l == 0 ? 3 : s->d_width << (l - 1);
  *oc = l == s->d_layers ? 1 : s->d_width << l;
  *k = l == s->d_layers ? 3 : 4;
}

static cel_shape model_tensor_shape (const cel_tensor_info *t) {
  if (t->rank == 4)
    return (cel_shape) { (int32_t) t->shape[0], (int32_t) t->shape[1], (int32_t) t->shape[2], (int32_t) t->shape[3] };
  if (t->rank == 1)
    return (cel_shape) { 1, (int32_t) t->shape[0], 1, 1 };
  return (cel_shape) { 1, 1, 1, (int32_t) t->count };
}

cel_status train_initial_state (const train_setup *s, host_store *out, char *err, size_t errlen) {
  const cel_safetensors *st = cel_model_tensors (s->model);
  char name[256];
  for (size_t i = 0; i < cel_safetensors_count (st); i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (st, i);
    snprintf (name, sizeof name, "g/%s", t->name);
    host_tensor *h = host_store_put (out, name, model_tensor_shape (t), NULL);
    if (!h)
      goto oom;
    cel_status r = cel_safetensors_read_f32 (st, t, h->data, h->count, err, errlen);
    if (r)
      return r;
  }
  for (int32_t l = 0; l <= s->d_layers; l++) {
    int32_t ic, oc, k;
    d_layer (s, l, &ic, &oc, &k);
    int32_t fan_in = ic * k * k;
    double bound = 1 / sqrt ((double) fan_in);
    host_tensor *w, *b, *u;
    snprintf (name, sizeof name, "d/d.%d.weight", l);
    if (!(w = host_store_put (out, name, (cel_shape) { oc, ic, k, k }, NULL)))
      goto oom;
    for (size_t i = 0; i < w->count; i++)
      w->data[i] = (float) ((2 * uniform (s->seed, 0xd0000 + 16 * l, i) - 1) * bound);
    snprintf (name, sizeof name, "d/d.%d.bias", l);
    if (!(b = host_store_put (out, name, (cel_shape) { 1, oc, 1, 1 }, NULL)))
      goto oom;
    for (size_t i = 0; i < b->count; i++)
      b->data[i] = (float) ((2 * uniform (s->seed, 0xd0001 + 16 * l, i) - 1) * bound);
    snprintf (name, sizeof name, "d/d.%d.u", l);
    if (!(u = host_store_put (out, name, (cel_shape) { 1, 1, 1, oc + fan_in + 1 }, NULL)))
      goto oom;
    double norm = 0;
    for (int32_t i = 0; i < oc; i++) {
      u->data[i] = (float) normal (s->seed, 0xd0002 + 16 * l, (uint64_t) i);
      norm += (double) u->data[i] * u->data[i];
    }
    for (int32_t i = 0; i < oc; i++)
      u->data[i] = (float) (u->data[i] / sqrt (norm));
  }
  return CEL_OK;
oom:
  snprintf (err, errlen, "out of host memory");
  return CEL_ERROR_OUT_OF_HOST_MEMORY;
}

/* ---- graph building: a sticky status so the loss code reads as math ---------------------------- */

typedef struct bld {
  cel_graph *g;
  cel_status st;
  const char *what; /* the step that failed */
  train_graph *tg;
} bld;

#define TRY(b, name, call) ((b)->st ? CEL_NO_NODE : ((b)->st = (call)) ? ((b)->what = (name), CEL_NO_NODE) : out)

static cel_node conv (bld *b, cel_node x, cel_node w, cel_node bias, int32_t stride, int32_t pad, int32_t groups) {
  cel_conv2d_params p = { .stride_h = stride, .stride_w = stride, .pad_top = pad, .pad_bottom = pad, .pad_left = pad,
                          .pad_right = pad, .groups = groups };
  cel_node out = CEL_NO_NODE;
  return TRY (b, "conv2d", cel_conv2d (b->g, x, w, bias, &p, &out));
}

static cel_node act (bld *b, cel_node x, cel_activation a, float alpha) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "activation", cel_activate (b->g, x, a, alpha, &out));
}

static cel_node stop (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "stop_gradient", cel_stop_gradient (b->g, x, &out));
}

static cel_node mse (bld *b, cel_node x, cel_node y) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "mean_squared_error", cel_mean_squared_error (b->g, x, y, &out));
}

static cel_node mae (bld *b, cel_node x, cel_node y) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "mean_abs_error", cel_mean_abs_error (b->g, x, y, &out));
}

static cel_node add (bld *b, cel_node x, cel_node y, float alpha, float beta) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "add", cel_add (b->g, x, y, alpha, beta, &out));
}

static cel_node gram (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "gram", cel_gram (b->g, x, 0, &out));
}

static cel_node crop (bld *b, cel_node x, int32_t y0, int32_t x0, int32_t h, int32_t w) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "crop", cel_crop (b->g, x, y0, x0, h, w, &out));
}

/* mean ((x - value)^2) over x. */
static cel_node mse_to (bld *b, cel_node x, float value) {
  cel_shape s = { 0 };
  if (!b->st)
    b->st = cel_graph_shape (b->g, x, &s);
  cel_node out = CEL_NO_NODE;
  cel_node f = TRY (b, "fill", cel_fill (b->g, s, value, &out));
  return mse (b, x, f);
}

static cel_node instance_norm (bld *b, cel_node x) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "instance_norm", cel_instance_norm (b->g, x, CEL_NO_NODE, CEL_NO_NODE, 1e-5f, &out));
}

/* A fixed tensor: a state set once (kept in tg->fixed for dumps). Found by name when it exists. */
static cel_node fixed (bld *b, const char *name, cel_shape shape, const float *data) {
  cel_node out = CEL_NO_NODE;
  if (b->st || cel_graph_find (b->g, name, &out) == CEL_OK)
    return out;
  if ((b->st = cel_graph_state (b->g, name, shape, &out)) || (b->st = cel_graph_set_data (b->g, out, data, shape_count (shape)))) {
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
static cel_node persistent (bld *b, const char *store_name, const char *node_name, cel_shape shape, bool param,
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
  if (h && h->count != shape_count (shape)) {
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

#define MAX_FEATURES 4

/* VGG19 convolutions up to conv4_4 (torchvision features.N), with the average pools that replace its max
 * pools (no max-pool op in the core) after features 2, 7 and 16. */
static const int32_t vgg_index[] = { 0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25 };
static const int32_t vgg_width[] = { 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512 };

typedef struct feature_net {
  bool vgg;
  float *vgg_w[12], *vgg_b[12];
} feature_net;

static bool vgg_load (const char *path, feature_net *f, char *err, size_t errlen) {
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

static void feature_net_free (feature_net *f) {
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
static int features (bld *b, const train_setup *s, const feature_net *f, cel_node x, cel_node out[MAX_FEATURES]) {
  char name[64];
  if (!f->vgg) {
    cel_node h = x;
    for (int i = 0; i < 3; i++) {
      int32_t ic = i == 0 ? 3 : random_width[i - 1], oc = random_width[i];
      cel_shape ws = { oc, ic, 3, 3 };
      snprintf (name, sizeof name, "feat.%d.weight", i);
      float *w = malloc (shape_count (ws) * sizeof *w);
      if (!w) {
        b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
      }
      for (size_t k = 0; k < shape_count (ws); k++)
        w[k] = (float) (normal (s->seed, 0xfea70000ull + (uint64_t) i, k) * sqrt (2.0 / (ic * 9)));
      cel_node wn = fixed (b, name, ws, w);
      free (w);
      out[i] = conv (b, i == 0 ? h : act (b, h, CEL_ACT_RELU, 0), wn, CEL_NO_NODE, i == 0 ? 1 : 2, 1, 1);
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
  cel_node h = conv (b, x, fixed (b, "vgg.norm.weight", (cel_shape) { 3, 3, 1, 1 }, nw),
                     fixed (b, "vgg.norm.bias", (cel_shape) { 1, 3, 1, 1 }, nb), 1, 0, 1);
  for (int i = 0; i < 12; i++) {
    int32_t ic = i == 0 ? 3 : vgg_width[i - 1], oc = vgg_width[i];
    snprintf (name, sizeof name, "vgg.%d.weight", vgg_index[i]);
    cel_node w = fixed (b, name, (cel_shape) { oc, ic, 3, 3 }, f->vgg_w[i]);
    snprintf (name, sizeof name, "vgg.%d.bias", vgg_index[i]);
    cel_node bias = fixed (b, name, (cel_shape) { 1, oc, 1, 1 }, f->vgg_b[i]);
    h = conv (b, h, w, bias, 1, 1, 1);
    if (i == 11)
      break;
    h = act (b, h, CEL_ACT_RELU, 0);
    if (i == 1 || i == 3 || i == 7) {
      float *pw = malloc ((size_t) oc * 4 * sizeof *pw);
      if (!pw) {
        b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
      }
      for (int32_t k = 0; k < oc * 4; k++)
        pw[k] = 0.25f;
      snprintf (name, sizeof name, "vgg.pool%d", oc);
      h = conv (b, h, fixed (b, name, (cel_shape) { oc, 1, 2, 2 }, pw), CEL_NO_NODE, 2, 0, oc);
      free (pw);
    }
  }
  out[0] = h; /* conv4_4 before its ReLU, as AnimeGAN */
  return 1;
}

/* ---- the discriminator ------------------------------------------------------------------------------ */

#define MAX_D_LAYERS 8

typedef struct disc {
  int32_t n;
  cel_node w[MAX_D_LAYERS + 1], b[MAX_D_LAYERS + 1];   /* spectrally normalized weight, bias */
  cel_node ws[MAX_D_LAYERS + 1], bs[MAX_D_LAYERS + 1]; /* their stopped copies (the generator's view) */
} disc;

/* PatchGAN: 4x4 stride-2 convolutions (padding 1) with LeakyReLU 0.2, instance norm after all but the first,
 * then a 3x3 convolution to one channel; spectral norm on every weight. feat (NULL: not wanted) receives the
 * d->n - 1 hidden layers' outputs (after their LeakyReLU), for feature matching. */
static cel_node discriminate (bld *b, const disc *d, cel_node x, bool stopped, cel_node *feat) {
  cel_node h = x;
  for (int32_t l = 0; l < d->n; l++) {
    bool last = l == d->n - 1;
    h = conv (b, h, stopped ? d->ws[l] : d->w[l], stopped ? d->bs[l] : d->b[l], last ? 1 : 2, 1, 1);
    if (last)
      break;
    if (l > 0)
      h = instance_norm (b, h);
    h = act (b, h, CEL_ACT_LEAKY_RELU, 0.2f);
    if (feat)
      feat[l] = h;
  }
  return h;
}

/* x (N,C,H,W) -> (1,C,1,1): each channel's mean over the batch and the positions. */
static cel_node channel_means (bld *b, cel_node x) {
  cel_shape s = { 0 };
  if (!b->st)
    b->st = cel_graph_shape (b->g, x, &s);
  cel_node out = CEL_NO_NODE;
  cel_node m = TRY (b, "global_avg_pool", cel_global_avg_pool (b->g, x, &out));
  m = TRY (b, "sum_to", cel_sum_to (b->g, m, (cel_shape) { 1, s.c, 1, 1 }, &out));
  return TRY (b, "scale", cel_scale_shift (b->g, m, 1.0f / (float) (s.n ? s.n : 1), 0, &out));
}

/* ---- the step graphs ---------------------------------------------------------------------------------- */

static cel_node weighted_sum (bld *b, const cel_node *x, const float *w, int n) {
  cel_node s = CEL_NO_NODE;
  for (int i = 0; i < n; i++) {
    if (w[i] == 0)
      continue;
    if (s == CEL_NO_NODE) {
      cel_node out = CEL_NO_NODE;
      s = TRY (b, "scale", cel_scale_shift (b->g, x[i], w[i], 0, &out));
    } else {
      s = add (b, s, x[i], 1, w[i]);
    }
  }
  if (s == CEL_NO_NODE) {
    cel_node out = CEL_NO_NODE;
    s = TRY (b, "scale", cel_scale_shift (b->g, x[0], 0, 0, &out));
  }
  return s;
}

/* Adam nodes for a parameter (moments named "PREFIX.m/NAME", "PREFIX.v/NAME" in the store). */
static void adam (bld *b, const train_setup *s, cel_node param, const char *name, const char *prefix, cel_node hyper,
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
  cel_node m = persistent (b, mn, mn, shape, false, state), v = persistent (b, vn, vn, shape, false, state), out;
  cel_adam_params p = { s->beta1, s->beta2, s->eps, 0 };
  if (!b->st && (b->st = cel_adam_step (b->g, param, grad, m, v, hyper, &p, &out)))
    b->what = "adam_step";
}

cel_status train_graph_build (cel_context *ctx, const train_setup *s, bool gan, const host_store *state, train_graph *tg,
                              char *err, size_t errlen) {
  memset (tg, 0, sizeof *tg);
  tg->gan = gan;
  for (int i = 0; i < LOSS_COUNT; i++)
    tg->loss[i] = CEL_NO_NODE;
  feature_net fnet = { 0 };
  if (s->vgg && !vgg_load (s->vgg, &fnet, err, errlen)) {
    feature_net_free (&fnet);
    return CEL_ERROR_FORMAT;
  }
  cel_status st = cel_graph_create (ctx, &tg->g);
  if (st) {
    snprintf (err, errlen, "%s", cel_context_last_error (ctx));
    feature_net_free (&fnet);
    return st;
  }
  bld bb = { .g = tg->g, .tg = tg }, *b = &bb;
  cel_graph *g = tg->g;
  cel_shape img = { s->batch, 3, s->crop, s->crop }, hyper = { 1, 1, 1, 4 };
  if ((b->st = cel_graph_input (g, "photo", img, &tg->photo)) || (b->st = cel_graph_input (g, "hyper.g", hyper, &tg->hyper_g)))
    b->what = "inputs";
  if (gan && !b->st &&
      ((b->st = cel_graph_input (g, "style", img, &tg->style)) || (b->st = cel_graph_input (g, "style.gray", img, &tg->gray)) ||
       (b->st = cel_graph_input (g, "style.smooth", img, &tg->smooth)) ||
       (b->st = cel_graph_input (g, "hyper.d", hyper, &tg->hyper_d))))
    b->what = "inputs";

  /* the generator, its parameters uploaded from the store */
  if (!b->st && (b->st = cel_model_build (s->model, g, tg->photo, CEL_NO_NODE, &tg->fake)))
    b->what = "generator";
  const cel_safetensors *mt = cel_model_tensors (s->model);
  cel_node *gparam = calloc (cel_safetensors_count (mt) + 1, sizeof *gparam);
  if (!gparam && !b->st)
    b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < cel_safetensors_count (mt) && !b->st; i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (mt, i);
    char sn[300];
    snprintf (sn, sizeof sn, "g/%s", t->name);
    gparam[i] = persistent (b, sn, t->name, model_tensor_shape (t), true, state);
  }
  cel_node fake = tg->fake, photo = tg->photo;
  cel_node fp[MAX_FEATURES], ff[MAX_FEATURES];
  int nf = features (b, s, &fnet, photo, fp);
  features (b, s, &fnet, fake, ff);
  cel_node content = CEL_NO_NODE;
  for (int i = 0; i < nf; i++) {
    cel_node c = mae (b, fp[i], ff[i]);
    content = i == 0 ? c : add (b, content, c, 1, 1);
  }
  tg->loss[LOSS_CONTENT] = content;
  /* color: L1 in YUV (of (x + 1) / 2; the offset cancels), summed over Y, U and V */
  static const float yuv[9] = { 0.299f, 0.587f, 0.114f, -0.14714119f, -0.28886916f, 0.43601035f,
                                0.61497538f, -0.51496512f, -0.10001026f };
  float half[9];
  for (int i = 0; i < 9; i++)
    half[i] = 0.5f * yuv[i];
  cel_node out;
  if (gan || s->w.warmup_color > 0) {
    cel_node yw = fixed (b, "fixed.yuv", (cel_shape) { 3, 3, 1, 1 }, half);
    cel_node color = mae (b, conv (b, photo, yw, CEL_NO_NODE, 1, 0, 1), conv (b, fake, yw, CEL_NO_NODE, 1, 0, 1));
    tg->loss[LOSS_COLOR] = TRY (b, "scale", cel_scale_shift (g, color, 3, 0, &out));
  }
  cel_node total;
  if (!gan) {
    cel_node wl[2] = { content, tg->loss[LOSS_COLOR] };
    float ww[2] = { s->w.warmup_content, s->w.warmup_color };
    total = tg->loss[LOSS_G] = weighted_sum (b, wl, ww, s->w.warmup_color > 0 ? 2 : 1);
  } else {
    /* discriminator: spectral norm once per step, shared by all its applications */
    disc d = { .n = s->d_layers + 1 };
    for (int32_t l = 0; l < d.n && !b->st; l++) {
      int32_t ic, oc, k;
      d_layer (s, l, &ic, &oc, &k);
      char sn[64], nn[64];
      snprintf (sn, sizeof sn, "d/d.%d.weight", l);
      cel_node w = persistent (b, sn, sn, (cel_shape) { oc, ic, k, k }, true, state);
      snprintf (sn, sizeof sn, "d/d.%d.bias", l);
      d.b[l] = persistent (b, sn, sn, (cel_shape) { 1, oc, 1, 1 }, true, state);
      snprintf (nn, sizeof nn, "d/d.%d.u", l);
      cel_node u = persistent (b, nn, nn, (cel_shape) { 1, 1, 1, oc + ic * k * k + 1 }, false, state), out;
      d.w[l] = TRY (b, "spectral_norm", cel_spectral_norm (g, w, u, 1, true, 1e-12f, &out));
      d.ws[l] = stop (b, d.w[l]);
      d.bs[l] = stop (b, d.b[l]);
    }
    cel_node fake_stopped = stop (b, fake);
    cel_node real_feat[MAX_D_LAYERS], fake_feat[MAX_D_LAYERS];
    bool fm = s->w.fm > 0;
    cel_node dl[4] = { mse_to (b, discriminate (b, &d, tg->style, false, fm ? real_feat : NULL), 1),
                       mse_to (b, discriminate (b, &d, fake_stopped, false, NULL), 0),
                       mse_to (b, discriminate (b, &d, tg->gray, false, NULL), 0),
                       mse_to (b, discriminate (b, &d, tg->smooth, false, NULL), 0) };
    float dw[4] = { s->w.adv_d * s->w.d_real, s->w.adv_d * s->w.d_fake, s->w.adv_d * s->w.d_gray, s->w.adv_d * s->w.d_blur };
    for (int i = 0; i < 4; i++)
      tg->loss[LOSS_D_REAL + i] = dl[i];
    tg->loss[LOSS_D] = weighted_sum (b, dl, dw, 4);
    tg->loss[LOSS_G_ADV] = mse_to (b, discriminate (b, &d, fake, true, fm ? fake_feat : NULL), 1);
    /* feature matching: L1 between the mean hidden features of D on style and on generated images (means over
     * batch and positions: the two batches are unpaired). The real side reuses D's pass above, stopped, and
     * the fake side G's pass through the stopped weights, so the term trains only G and costs no D pass. */
    if (fm)
      for (int32_t l = 0; l < d.n - 1; l++) {
        cel_node t = mae (b, channel_means (b, stop (b, real_feat[l])), channel_means (b, fake_feat[l]));
        tg->loss[LOSS_FM] = l == 0 ? t : add (b, tg->loss[LOSS_FM], t, 1, 1);
      }

    /* style: Gram matrices of the generated image's features against the grayscale style image's */
    cel_node fs[MAX_FEATURES];
    features (b, s, &fnet, tg->gray, fs);
    cel_node style = CEL_NO_NODE;
    for (int i = 0; i < nf; i++) {
      cel_node c = mae (b, gram (b, ff[i]), gram (b, fs[i]));
      style = i == 0 ? c : add (b, style, c, 1, 1);
    }
    tg->loss[LOSS_STYLE] = style;
    /* total variation: mean squared differences of vertical and horizontal neighbours */
    int32_t c = s->crop;
    tg->loss[LOSS_TV] = add (b, mse (b, crop (b, fake, 1, 0, c - 1, c), crop (b, fake, 0, 0, c - 1, c)),
                             mse (b, crop (b, fake, 0, 1, c, c - 1), crop (b, fake, 0, 0, c, c - 1)), 1, 1);
    cel_node gl[6] = { tg->loss[LOSS_G_ADV], content, style, tg->loss[LOSS_COLOR], tg->loss[LOSS_TV], tg->loss[LOSS_FM] };
    float gw[6] = { s->w.adv_g, s->w.content, s->w.style, s->w.color, s->w.tv, s->w.fm };
    tg->loss[LOSS_G] = weighted_sum (b, gl, gw, 6);
    total = add (b, tg->loss[LOSS_G], tg->loss[LOSS_D], 1, 1);
    for (int i = 0; i < LOSS_COUNT; i++)
      if (!b->st && tg->loss[i] != CEL_NO_NODE && (b->st = cel_graph_mark_output (g, tg->loss[i])))
        b->what = "mark_output";
    if (!b->st && (b->st = cel_graph_backward (g, total, CEL_NO_NODE)))
      b->what = "backward";
    for (size_t i = 0; i < cel_safetensors_count (mt) && !b->st; i++)
      adam (b, s, gparam[i], cel_safetensors_tensor (mt, i)->name, "g", tg->hyper_g, state);
    for (int32_t l = 0; l < d.n && !b->st; l++) {
      char wn[64], bn[64];
      snprintf (wn, sizeof wn, "d.%d.weight", l);
      snprintf (bn, sizeof bn, "d.%d.bias", l);
      cel_node wp;
      char full[80];
      snprintf (full, sizeof full, "d/%s", wn);
      if (!(b->st = cel_graph_find (g, full, &wp)))
        adam (b, s, wp, wn, "d", tg->hyper_d, state);
      adam (b, s, d.b[l], bn, "d", tg->hyper_d, state);
    }
  }
  if (!gan) {
    if (!b->st && ((b->st = cel_graph_mark_output (g, content)) || (b->st = cel_graph_mark_output (g, total)) ||
                   (tg->loss[LOSS_COLOR] != CEL_NO_NODE && (b->st = cel_graph_mark_output (g, tg->loss[LOSS_COLOR])))))
      b->what = "mark_output";
    if (!b->st && (b->st = cel_graph_backward (g, total, CEL_NO_NODE)))
      b->what = "backward";
    for (size_t i = 0; i < cel_safetensors_count (mt) && !b->st; i++)
      adam (b, s, gparam[i], cel_safetensors_tensor (mt, i)->name, "g", tg->hyper_g, state);
  }
  if (!b->st && (b->st = cel_graph_plan (g)))
    b->what = "plan";
  free (gparam);
  feature_net_free (&fnet);
  if (b->st) {
    const char *why = cel_context_last_error (ctx);
    snprintf (err, errlen, "building the %s graph (%s): %s", gan ? "training" : "warm-up", b->what ? b->what : "?",
              *why ? why : cel_status_string (b->st));
  }
  return b->st;
}

cel_status train_graph_step (train_graph *tg, const float *photo, const float *style, const float *gray,
                             const float *smooth, float lr_g, float lr_d, int64_t t_g, int64_t t_d, const train_setup *s,
                             double losses[LOSS_COUNT]) {
  size_t n = (size_t) s->batch * 3 * s->crop * s->crop;
  float hg[4] = { lr_g, (float) (1 - pow (s->beta1, (double) t_g)), (float) (1 - pow (s->beta2, (double) t_g)), 0 };
  float hd[4] = { lr_d, (float) (1 - pow (s->beta1, (double) t_d)), (float) (1 - pow (s->beta2, (double) t_d)), 0 };
  cel_status st = cel_graph_set_data (tg->g, tg->photo, photo, n);
  if (!st)
    st = cel_graph_set_data (tg->g, tg->hyper_g, hg, 4);
  if (!st && tg->gan) {
    if (!(st = cel_graph_set_data (tg->g, tg->style, style, n)) && !(st = cel_graph_set_data (tg->g, tg->gray, gray, n)) &&
        !(st = cel_graph_set_data (tg->g, tg->smooth, smooth, n)))
      st = cel_graph_set_data (tg->g, tg->hyper_d, hd, 4);
  }
  if (!st)
    st = cel_graph_run (tg->g);
  for (int i = 0; i < LOSS_COUNT; i++) {
    losses[i] = 0;
    float v;
    if (!st && tg->loss[i] != CEL_NO_NODE && !(st = cel_graph_get_data (tg->g, tg->loss[i], &v, 1)))
      losses[i] = v;
  }
  return st;
}

cel_status train_graph_download (train_graph *tg, host_store *state) {
  for (int32_t i = 0; i < tg->n_t; i++) {
    cel_shape shape;
    cel_status st = cel_graph_shape (tg->g, tg->t[i].node, &shape);
    if (st)
      return st;
    host_tensor *h = host_store_put (state, tg->t[i].store_name, shape, NULL);
    if (!h)
      return CEL_ERROR_OUT_OF_HOST_MEMORY;
    if ((st = cel_graph_get_data (tg->g, tg->t[i].node, h->data, h->count)))
      return st;
  }
  return CEL_OK;
}

void train_graph_destroy (train_graph *tg) {
  cel_graph_destroy (tg->g);
  for (int32_t i = 0; i < tg->n_t; i++)
    free (tg->t[i].store_name);
  free (tg->t);
  free (tg->grads);
  host_store_free (&tg->fixed);
  memset (tg, 0, sizeof *tg);
}

/* ---- files ------------------------------------------------------------------------------------------- */

bool train_checkpoint_save (const char *path, const host_store *state, const char *const *meta, size_t n_meta, char *err,
                            size_t errlen) {
  cel_tensor_entry *e = calloc (state->n + 1, sizeof *e);
  if (!e) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  for (size_t i = 0; i < state->n; i++) {
    const host_tensor *t = &state->t[i];
    e[i] = (cel_tensor_entry) { .name = t->name, .dtype = CEL_DTYPE_F32, .rank = 4,
                                .shape = { t->shape.n, t->shape.c, t->shape.h, t->shape.w }, .data = t->data };
  }
  cel_status st = cel_safetensors_save (path, e, state->n, meta, n_meta, err, errlen);
  free (e);
  return st == CEL_OK;
}

bool train_checkpoint_load (const char *path, host_store *state, cel_safetensors **st_out, char *err, size_t errlen) {
  cel_safetensors *st = NULL;
  *st_out = NULL;
  if (cel_safetensors_open (path, &st, err, errlen))
    return false;
  for (size_t i = 0; i < cel_safetensors_count (st); i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (st, i);
    if (t->rank != 4) {
      snprintf (err, errlen, "%s: '%s' is not a checkpoint tensor (rank %d)", path, t->name, (int) t->rank);
      cel_safetensors_close (st);
      return false;
    }
    cel_shape s = { (int32_t) t->shape[0], (int32_t) t->shape[1], (int32_t) t->shape[2], (int32_t) t->shape[3] };
    host_tensor *h = host_store_put (state, t->name, s, NULL);
    if (!h || cel_safetensors_read_f32 (st, t, h->data, h->count, err, errlen)) {
      if (!h)
        snprintf (err, errlen, "out of memory");
      cel_safetensors_close (st);
      return false;
    }
  }
  *st_out = st;
  return true;
}

bool train_export_model (const char *path, const cel_model *model, const host_store *state, const char *const *meta,
                         size_t n_meta, char *err, size_t errlen) {
  const cel_safetensors *mt = cel_model_tensors (model);
  size_t n = cel_safetensors_count (mt);
  cel_tensor_entry *e = calloc (n + 1, sizeof *e);
  if (!e) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (mt, i);
    char name[300];
    snprintf (name, sizeof name, "g/%s", t->name);
    host_tensor *h = host_store_find ((host_store *) state, name);
    if (!h || (int64_t) h->count != t->count) {
      snprintf (err, errlen, "internal: no trained tensor for '%s'", t->name);
      free (e);
      return false;
    }
    e[i] = (cel_tensor_entry) { .name = t->name, .dtype = CEL_DTYPE_F32, .rank = t->rank, .data = h->data };
    memcpy (e[i].shape, t->shape, sizeof e[i].shape);
  }
  cel_status st = cel_safetensors_save (path, e, n, meta, n_meta, err, errlen);
  free (e);
  return st == CEL_OK;
}
