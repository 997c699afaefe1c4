/* The trainer's networks, losses, optimizer nodes and checkpoints (train_net.h). */
#include "train_net.h"
#include "train_build.h"
#include "train_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const train_loss_names[LOSS_COUNT] = {
  "g_adv", "content", "style", "color", "tv", "fm", "style_rec", "self_rec", "cycle", "g_total", "d_real", "d_fake", "d_gray", "d_blur", "d_total",
};

void train_weights_default (train_weights *w) {
  *w = (train_weights) { .adv_g = 300, .adv_d = 300, .content = 1.5f, .style = 2.5f, .color = 10, .tv = 1,
                         .warmup_content = 1.5f, .d_real = 1.2f, .d_fake = 1.2f, .d_gray = 1.2f, .d_blur = 0.8f };
}

void train_weights_default_reference (train_weights *w) {
  *w = (train_weights) { .adv_g = 1, .adv_d = 1, .content = 1, .fm = 1, .style_rec = 1, .self_rec = 10, .cycle = 5,
                         .warmup_content = 1, .d_real = 1, .d_fake = 1 };
}

bool train_weights_parse (train_weights *w, const char *text, char *err, size_t errlen) {
  static const struct { const char *key; size_t off; } keys[] = {
    { "adv_g", offsetof (train_weights, adv_g) },       { "adv_d", offsetof (train_weights, adv_d) },
    { "content", offsetof (train_weights, content) },   { "style", offsetof (train_weights, style) },
    { "color", offsetof (train_weights, color) },       { "tv", offsetof (train_weights, tv) },
    { "fm", offsetof (train_weights, fm) },
    { "style_rec", offsetof (train_weights, style_rec) }, { "self_rec", offsetof (train_weights, self_rec) },
    { "cycle", offsetof (train_weights, cycle) },
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
                "content, style, color, tv, fm, style_rec, self_rec, cycle, warmup_content, warmup_color, d_real, d_fake, "
                "d_gray, d_blur)", item);
  }
  free (copy);
  return ok;
}

/* ---- host store ---------------------------------------------------------------------------------- */

host_tensor *host_store_find (host_store *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp (s->t[i].name, name) == 0)
      return &s->t[i];
  return NULL;
}

host_tensor *host_store_put (host_store *s, const char *name, cel_shape shape, const float *data) {
  size_t count = train_shape_count (shape);
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

cel_status train_initial_state (const train_setup *s, host_store *out, char *err, size_t errlen) {
  const cel_safetensors *st = cel_model_tensors (s->model);
  char name[256];
  for (size_t i = 0; i < cel_safetensors_count (st); i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (st, i);
    snprintf (name, sizeof name, "g/%s", t->name);
    host_tensor *h = host_store_put (out, name, train_model_tensor_shape (t), NULL);
    if (!h)
      goto oom;
    cel_status r = cel_safetensors_read_f32 (st, t, h->data, h->count, err, errlen);
    if (r)
      return r;
  }
  for (int32_t sc = 0; sc < (s->d_scales > 0 ? s->d_scales : 1); sc++) {
    for (int32_t l = 0; l <= s->d_layers; l++) {
      int32_t ic, oc, k;
      train_d_layer (s, l, &ic, &oc, &k);
      int32_t fan_in = ic * k * k;
      double bound = 1 / sqrt ((double) fan_in);
      host_tensor *w, *b, *u;
      char dn[64];
      uint64_t tag = 0xd0000 + 0x1000 * (uint64_t) sc + 16 * (uint64_t) l; /* scale 0: the tags of the first release */
      train_d_name (dn, sizeof dn, sc, l, "weight");
      snprintf (name, sizeof name, "d/%s", dn);
      if (!(w = host_store_put (out, name, (cel_shape) { oc, ic, k, k }, NULL)))
        goto oom;
      for (size_t i = 0; i < w->count; i++)
        w->data[i] = (float) ((2 * train_uniform (s->seed, tag, i) - 1) * bound);
      train_d_name (dn, sizeof dn, sc, l, "bias");
      snprintf (name, sizeof name, "d/%s", dn);
      if (!(b = host_store_put (out, name, (cel_shape) { 1, oc, 1, 1 }, NULL)))
        goto oom;
      for (size_t i = 0; i < b->count; i++)
        b->data[i] = (float) ((2 * train_uniform (s->seed, tag + 1, i) - 1) * bound);
      train_d_name (dn, sizeof dn, sc, l, "u");
      snprintf (name, sizeof name, "d/%s", dn);
      if (!(u = host_store_put (out, name, (cel_shape) { 1, 1, 1, oc + fan_in + 1 }, NULL)))
        goto oom;
      double norm = 0;
      for (int32_t i = 0; i < oc; i++) {
        u->data[i] = (float) train_normal (s->seed, tag + 2, (uint64_t) i);
        norm += (double) u->data[i] * u->data[i];
      }
      for (int32_t i = 0; i < oc; i++)
        u->data[i] = (float) (u->data[i] / sqrt (norm));
    }
  }
  return CEL_OK;
oom:
  snprintf (err, errlen, "out of host memory");
  return CEL_ERROR_OUT_OF_HOST_MEMORY;
}

/* ---- the step graphs ---------------------------------------------------------------------------------- */


/* The style-generator's GAN losses (AnimeGANv2's): fills tg->loss and returns L_G + L_D. ff: the generated
 * image's features (nf scales). */
/* color: L1 in YUV (of (x + 1) / 2; the offset cancels) between photo and generated image, summed over Y, U
 * and V */
static cel_node color_loss (bld *b) {
  static const float yuv[9] = { 0.299f, 0.587f, 0.114f, -0.14714119f, -0.28886916f, 0.43601035f,
                                0.61497538f, -0.51496512f, -0.10001026f };
  float half[9];
  for (int i = 0; i < 9; i++)
    half[i] = 0.5f * yuv[i];
  cel_node yw = bld_fixed (b, "fixed.yuv", (cel_shape) { 3, 3, 1, 1 }, half), out;
  cel_node color = bld_mae (b, bld_conv (b, b->tg->photo, yw, CEL_NO_NODE, 1, 0, 1),
                            bld_conv (b, b->tg->fake, yw, CEL_NO_NODE, 1, 0, 1));
  return TRY (b, "scale", cel_scale_shift (b->g, color, 3, 0, &out));
}

/* What D sees of an image: itself, or (luma) its luma in all three channels. Inputs are 2p - 1 and the luma
 * weights sum to 1, so the luma of the input is 2 luma(p) - 1, as the data's grayscale style images are. */
static cel_node d_input (bld *b, bool luma, cel_node x) {
  if (!luma)
    return x;
  static const float w[9] = { 0.299f, 0.587f, 0.114f, 0.299f, 0.587f, 0.114f, 0.299f, 0.587f, 0.114f };
  return bld_conv (b, x, bld_fixed (b, "fixed.luma", (cel_shape) { 3, 3, 1, 1 }, w), CEL_NO_NODE, 1, 0, 1);
}

static cel_node style_losses (bld *b, const train_setup *s, const feature_net *fnet, const disc *d, int nf, const cel_node *ff) {
  train_graph *tg = b->tg;
  cel_node fake = tg->fake, content = tg->loss[LOSS_CONTENT];
  cel_node real_feat[MAX_D_LAYERS], fake_feat[MAX_D_LAYERS];
  bool fm = s->w.fm > 0;
  /* --d-luma: D judges the luma alone. The grayscale style image is then the style image itself to D, so
   * AnimeGAN's "gray style images are fake" term (which teaches D the style's palette) is left out. */
  bool luma = s->d_luma;
  cel_node fake_seen = d_input (b, luma, fake), fake_stopped = bld_stop (b, fake_seen); /* G's and D's passes share it */
  cel_node dl[4] = { bld_mse_to (b, bld_discriminate (b, d, d_input (b, luma, tg->style), false, fm ? real_feat : NULL), 1),
                     bld_mse_to (b, bld_discriminate (b, d, fake_stopped, false, NULL), 0),
                     luma ? CEL_NO_NODE : bld_mse_to (b, bld_discriminate (b, d, tg->gray, false, NULL), 0),
                     bld_mse_to (b, bld_discriminate (b, d, d_input (b, luma, tg->smooth), false, NULL), 0) };
  float dw[4] = { s->w.adv_d * s->w.d_real, s->w.adv_d * s->w.d_fake, luma ? 0 : s->w.adv_d * s->w.d_gray,
                  s->w.adv_d * s->w.d_blur }; /* a zero weight leaves the term out of the sum */
  for (int i = 0; i < 4; i++)
    tg->loss[LOSS_D_REAL + i] = dl[i];
  tg->loss[LOSS_D] = bld_weighted_sum (b, dl, dw, 4);
  tg->loss[LOSS_G_ADV] = bld_mse_to (b, bld_discriminate (b, d, fake_seen, true, fm ? fake_feat : NULL), 1);
  /* feature matching: L1 between the mean hidden features of D on style and on generated images (means over
   * batch and positions: the two batches are unpaired). The real side reuses D's pass above, stopped, and
   * the fake side G's pass through the stopped weights, so the term trains only G and costs no D pass. */
  if (fm)
    for (int32_t l = 0; l < d->n - 1; l++) {
      cel_node t = bld_mae (b, bld_channel_means (b, bld_stop (b, real_feat[l])), bld_channel_means (b, fake_feat[l]));
      tg->loss[LOSS_FM] = l == 0 ? t : bld_add (b, tg->loss[LOSS_FM], t, 1, 1);
    }

  /* style: Gram matrices of the generated image's features against the grayscale style image's */
  cel_node fs[MAX_FEATURES];
  bld_features (b, s, fnet, tg->gray, fs);
  cel_node style = CEL_NO_NODE;
  for (int i = 0; i < nf; i++) {
    cel_node c = bld_mae (b, bld_gram (b, ff[i]), bld_gram (b, fs[i]));
    style = i == 0 ? c : bld_add (b, style, c, 1, 1);
  }
  tg->loss[LOSS_STYLE] = style;
  tg->loss[LOSS_COLOR] = color_loss (b);
  /* total variation: mean squared differences of vertical and horizontal neighbours */
  int32_t c = s->crop;
  tg->loss[LOSS_TV] = bld_add (b, bld_mse (b, bld_crop (b, fake, 1, 0, c - 1, c), bld_crop (b, fake, 0, 0, c - 1, c)),
                               bld_mse (b, bld_crop (b, fake, 0, 1, c, c - 1), bld_crop (b, fake, 0, 0, c, c - 1)), 1, 1);
  cel_node gl[6] = { tg->loss[LOSS_G_ADV], content, style, tg->loss[LOSS_COLOR], tg->loss[LOSS_TV], tg->loss[LOSS_FM] };
  float gw[6] = { s->w.adv_g, s->w.content, s->w.style, s->w.color, s->w.tv, s->w.fm };
  tg->loss[LOSS_G] = bld_weighted_sum (b, gl, gw, 6);
  return bld_add (b, tg->loss[LOSS_G], tg->loss[LOSS_D], 1, 1);
}

cel_status train_graph_build (cel_context *ctx, const train_setup *s, bool gan, const host_store *state, train_graph *tg,
                              char *err, size_t errlen) {
  memset (tg, 0, sizeof *tg);
  tg->gan = gan;
  for (int i = 0; i < LOSS_COUNT; i++)
    tg->loss[i] = CEL_NO_NODE;
  feature_net fnet = { 0 };
  if (s->vgg && !feature_net_load (s->vgg, &fnet, err, errlen)) {
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
  tg->style = tg->gray = tg->smooth = tg->hyper_d = CEL_NO_NODE;
  cel_shape img = { s->batch, 3, s->crop, s->crop }, hyper = { 1, 1, 1, 4 };
  if ((b->st = cel_graph_input (g, "photo", img, &tg->photo)) || (b->st = cel_graph_input (g, "hyper.g", hyper, &tg->hyper_g)))
    b->what = "inputs";
  if ((gan || s->reference) && !b->st && (b->st = cel_graph_input (g, "style", img, &tg->style)))
    b->what = "inputs";
  if (gan && !s->reference && !b->st &&
      ((b->st = cel_graph_input (g, "style.gray", img, &tg->gray)) ||
       (b->st = cel_graph_input (g, "style.smooth", img, &tg->smooth))))
    b->what = "inputs";
  if (gan && !b->st && (b->st = cel_graph_input (g, "hyper.d", hyper, &tg->hyper_d)))
    b->what = "inputs";

  /* the generator, its parameters uploaded from the store; reference-guided, also the reference's style code */
  cel_node ref_code = CEL_NO_NODE;
  if (s->reference) {
    const char *names[2] = { NULL, "style.code" }; /* the output, and the code it was computed from */
    cel_node outs[2] = { CEL_NO_NODE, CEL_NO_NODE };
    if (!b->st && (b->st = cel_model_build_nodes (s->model, g, tg->photo, tg->style, 2, names, outs)))
      b->what = "generator";
    tg->fake = outs[0];
    ref_code = outs[1];
  } else if (!b->st && (b->st = cel_model_build (s->model, g, tg->photo, CEL_NO_NODE, &tg->fake))) {
    b->what = "generator";
  }
  const cel_safetensors *mt = cel_model_tensors (s->model);
  cel_node *gparam = calloc (cel_safetensors_count (mt) + 1, sizeof *gparam);
  if (!gparam && !b->st)
    b->st = CEL_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < cel_safetensors_count (mt) && !b->st; i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (mt, i);
    char sn[300];
    snprintf (sn, sizeof sn, "g/%s", t->name);
    gparam[i] = bld_persistent (b, sn, t->name, train_model_tensor_shape (t), true, state);
  }
  cel_node fake = tg->fake, photo = tg->photo;
  cel_node fp[MAX_FEATURES], ff[MAX_FEATURES];
  int nf = bld_features (b, s, &fnet, photo, fp);
  bld_features (b, s, &fnet, fake, ff);
  cel_node content = CEL_NO_NODE;
  for (int i = 0; i < nf; i++) {
    cel_node c = bld_mae (b, fp[i], ff[i]);
    content = i == 0 ? c : bld_add (b, content, c, 1, 1);
  }
  tg->loss[LOSS_CONTENT] = content;
  cel_node total;
  disc d[MAX_D_SCALES];
  int32_t n_scales = gan ? (s->d_scales > 0 ? s->d_scales : 1) : 0;
  for (int32_t k = 0; k < n_scales; k++)
    bld_disc (b, s, k, state, &d[k]);
  if (s->reference)
    total = train_reference_losses (b, s, gan, d, n_scales, content, ref_code);
  else if (!gan) {
    bool wc = s->w.warmup_color > 0;
    cel_node wl[2] = { content, wc ? (tg->loss[LOSS_COLOR] = color_loss (b)) : CEL_NO_NODE };
    float ww[2] = { s->w.warmup_content, s->w.warmup_color };
    total = tg->loss[LOSS_G] = bld_weighted_sum (b, wl, ww, wc ? 2 : 1);
  }
  else
    total = style_losses (b, s, &fnet, d, nf, ff);
  for (int i = 0; i < LOSS_COUNT; i++)
    if (!b->st && tg->loss[i] != CEL_NO_NODE && (b->st = cel_graph_mark_output (g, tg->loss[i])))
      b->what = "mark_output";
  if (!b->st && (b->st = cel_graph_backward (g, total, CEL_NO_NODE)))
    b->what = "backward";
  for (size_t i = 0; i < cel_safetensors_count (mt) && !b->st; i++)
    bld_adam (b, s, gparam[i], cel_safetensors_tensor (mt, i)->name, "g", tg->hyper_g, state);
  for (int32_t k = 0; k < n_scales; k++)
    bld_disc_adam (b, s, &d[k], tg->hyper_d, state);
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
  if (!st && tg->style != CEL_NO_NODE)
    st = cel_graph_set_data (tg->g, tg->style, style, n);
  if (!st && tg->gray != CEL_NO_NODE && !(st = cel_graph_set_data (tg->g, tg->gray, gray, n)))
    st = cel_graph_set_data (tg->g, tg->smooth, smooth, n);
  if (!st && tg->hyper_d != CEL_NO_NODE)
    st = cel_graph_set_data (tg->g, tg->hyper_d, hd, 4);
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
