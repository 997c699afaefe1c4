/* Graph-building helpers shared by the trainer's step graphs (train_net.c: the style-generator's,
 * train_reference.c: the reference-guided one's): ops with a sticky status so the loss code reads as math,
 * persistent tensors uploaded from the host store, the feature network, the spectral-norm PatchGAN and Adam
 * nodes. Private to the trainer. */
#ifndef CELGAN_TRAIN_BUILD_H
#define CELGAN_TRAIN_BUILD_H

#include "train_net.h"

#include <stdio.h>

/* The first failure stops every later call (each returns CEL_NO_NODE); `what` names the failed step. */
typedef struct bld {
  cel_graph *g;
  cel_status st;
  const char *what;
  train_graph *tg;
} bld;

/* Runs `call` (which writes its node to a local `out`) unless an earlier step failed. */
#define TRY(b, name, call) ((b)->st ? CEL_NO_NODE : ((b)->st = (call)) ? ((b)->what = (name), CEL_NO_NODE) : out)

static inline size_t train_shape_count (cel_shape s) {
  return (size_t) s.n * s.c * s.h * s.w;
}

/* Uniform in [0, 1) and standard normal draws from a counter-based stream. */
double train_uniform (uint64_t seed, uint64_t tag, uint64_t i);
double train_normal (uint64_t seed, uint64_t tag, uint64_t i);
/* Discriminator layer l of s->d_layers + 1: (in, out, kernel). */
void train_d_layer (const train_setup *s, int32_t l, int32_t *ic, int32_t *oc, int32_t *k);
/* A model tensor's shape as a 4-D node shape (vectors (1,C,1,1)). */
cel_shape train_model_tensor_shape (const cel_tensor_info *t);

cel_node bld_conv (bld *b, cel_node x, cel_node w, cel_node bias, int32_t stride, int32_t pad, int32_t groups);
cel_node bld_act (bld *b, cel_node x, cel_activation a, float alpha);
cel_node bld_stop (bld *b, cel_node x);
cel_node bld_mse (bld *b, cel_node x, cel_node y);
cel_node bld_mae (bld *b, cel_node x, cel_node y);
cel_node bld_add (bld *b, cel_node x, cel_node y, float alpha, float beta);
cel_node bld_gram (bld *b, cel_node x);
cel_node bld_crop (bld *b, cel_node x, int32_t y0, int32_t x0, int32_t h, int32_t w);
/* mean ((x - value)^2) over x. */
cel_node bld_mse_to (bld *b, cel_node x, float value);
cel_node bld_instance_norm (bld *b, cel_node x);
/* A fixed tensor: a state set once (kept in tg->fixed for dumps). Found by name when it exists. */
cel_node bld_fixed (bld *b, const char *name, cel_shape shape, const float *data);
/* A persistent tensor of the store: a parameter or state, uploaded from the store (zero when absent). */
cel_node bld_persistent (bld *b, const char *store_name, const char *node_name, cel_shape shape, bool param,
                         const host_store *state);
/* sum_i w[i] * x[i] over the terms with w[i] != 0 (0 * x[0] when none). */
cel_node bld_weighted_sum (bld *b, const cel_node *x, const float *w, int n);
/* Adam nodes for a parameter (moments "PREFIX.m/NAME", "PREFIX.v/NAME" in the store), or with
 * s->external_optimizer its gradient as an output listed in tg->grads. */
void bld_adam (bld *b, const train_setup *s, cel_node param, const char *name, const char *prefix, cel_node hyper,
               const host_store *state);

/* The feature network of the content (and style) losses: fixed random convolutions, or VGG19 from a file. */
#define MAX_FEATURES 4
typedef struct feature_net {
  bool vgg;
  float *vgg_w[12], *vgg_b[12];
} feature_net;
bool feature_net_load (const char *path, feature_net *f, char *err, size_t errlen);
void feature_net_free (feature_net *f);
/* Features of x (N,3,H,W in [-1, 1]); returns how many (scales). */
int bld_features (bld *b, const train_setup *s, const feature_net *f, cel_node x, cel_node out[MAX_FEATURES]);

/* A spectral-norm PatchGAN (train_d_layer's shapes). */
#define MAX_D_LAYERS 8
typedef struct disc {
  int32_t n, scale;
  cel_node pw[MAX_D_LAYERS + 1];                       /* the weight parameters (before spectral norm) */
  cel_node w[MAX_D_LAYERS + 1], b[MAX_D_LAYERS + 1];   /* spectrally normalized weight, bias */
  cel_node ws[MAX_D_LAYERS + 1], bs[MAX_D_LAYERS + 1]; /* their stopped copies (the generator's view) */
} disc;
/* D(x) through the weights (stopped: their stopped copies); feat (NULL: not wanted) receives the d->n - 1 hidden
 * layers' outputs after their LeakyReLU, for feature matching. */
cel_node bld_discriminate (bld *b, const disc *d, cel_node x, bool stopped, cel_node *feat);
/* The name of D's tensor `what` (weight, bias, u) of layer l at a scale: "d.L.what" (scale 0), "dS.L.what". */
void train_d_name (char *buf, size_t len, int32_t scale, int32_t l, const char *what);
/* The discriminator of a scale: its parameters and power-iteration vectors from the store, spectral norm once
 * per step (shared by all its applications), and the stopped copies. */
void bld_disc (bld *b, const train_setup *s, int32_t scale, const host_store *state, disc *d);
/* Adam nodes for every parameter of d. */
void bld_disc_adam (bld *b, const train_setup *s, const disc *d, cel_node hyper, const host_store *state);
/* x (N,C,H,W) -> (1,C,1,1): each channel's mean over the batch and the positions. */
cel_node bld_channel_means (bld *b, cel_node x);

/* The reference-guided losses (train_reference.c): builds them on tg's photo, reference (tg->style), fake and
 * the reference's style code; fills tg->loss and returns the total to differentiate. d: n_scales discriminators
 * (none in the warm-up). */
cel_node train_reference_losses (bld *b, const train_setup *s, bool gan, const disc *d, int32_t n_scales, cel_node content,
                                 cel_node ref_code);

#endif
