/* The networks and losses of celgan train, built with the graph API, and the host copy of everything a
 * checkpoint holds.
 *
 * One graph per training step, one backward: L = L_G + L_D, where L_G sees the discriminator through
 * stopped copies of its (spectrally normalized) weights and L_D sees a stopped copy of the generated image,
 * so cel_graph_backward (L) gives each network the gradient of its own loss. Adam nodes for every generator
 * and discriminator parameter follow. The warm-up graph trains the generator on the content loss alone
 * (reference-guided: and the self-reconstruction). The reference-guided losses are in train_reference.c. */
#ifndef CELGAN_TRAIN_NET_H
#define CELGAN_TRAIN_NET_H

#include "celgan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Loss weights (defaults in train_weights_default; documented in docs/training.md). */
typedef struct train_weights {
  float adv_g, adv_d;                  /* adversarial weights of G's and D's LSGAN terms */
  float content, style, color, tv;     /* generator terms */
  float fm;                            /* discriminator feature matching (0: off) */
  float style_rec, self_rec, cycle;    /* reference-guided: style code, self-reconstruction, cycle (L1) */
  float warmup_content;                /* the content weight of the warm-up phase */
  float warmup_color;                  /* the color weight of the warm-up phase (0: content alone) */
  float d_real, d_fake, d_gray, d_blur; /* AnimeGANv2's weights inside D's loss */
} train_weights;

void train_weights_default (train_weights *w);
/* The defaults of the reference-guided mode (its loss terms are on other scales). */
void train_weights_default_reference (train_weights *w);
/* Parses "key=value,key=value" (keys as the field names) over *w. false with a sentence on a bad key. */
bool train_weights_parse (train_weights *w, const char *text, char *err, size_t errlen);

#define MAX_D_SCALES 4

typedef struct train_setup {
  const cel_model *model;  /* the generator's architecture and initial weights */
  int32_t crop, batch;
  int32_t d_width, d_layers; /* discriminator: first width, stride-2 layers */
  int32_t d_scales;        /* discriminators on the image, half of it, ... (0 means 1; at most MAX_D_SCALES) */
  bool d_luma;             /* D sees the luma of its inputs only (style mode; no d_gray term) */
  bool reference;          /* reference-guided (a reference-gan model; references from the style folder) */
  uint64_t seed;           /* of D's initial weights and the random feature network */
  const char *vgg;         /* VGG19 safetensors (torchvision names), or NULL for the random feature network */
  train_weights w;
  float beta1, beta2, eps; /* Adam */
  bool external_optimizer; /* no Adam nodes: the gradients are outputs, listed in train_graph.grads (data parallel) */
} train_setup;

/* A named host tensor (one entry of a checkpoint). */
typedef struct host_tensor {
  char *name;
  cel_shape shape;
  size_t count;
  float *data;
} host_tensor;

typedef struct host_store {
  host_tensor *t;
  size_t n;
} host_store;

host_tensor *host_store_find (host_store *s, const char *name);
/* Adds (or replaces) a tensor; data copied when not NULL, else zeros. NULL when out of memory. */
host_tensor *host_store_put (host_store *s, const char *name, cel_shape shape, const float *data);
void host_store_free (host_store *s);

/* The initial state: the generator's weights from the model ("g/NAME"), D's weights and power-iteration
 * vectors from the seed ("d/d.L.weight", "d/d.L.bias", "d/d.L.u"; the discriminator of scale S > 0
 * "d/dS.L.weight" ...); optimizer moments are zero when absent. */
cel_status train_initial_state (const train_setup *s, host_store *out, char *err, size_t errlen);

enum {
  LOSS_G_ADV, LOSS_CONTENT, LOSS_STYLE, LOSS_COLOR, LOSS_TV, LOSS_FM, LOSS_STYLE_REC, LOSS_SELF_REC, LOSS_CYCLE, LOSS_G,
  LOSS_D_REAL, LOSS_D_FAKE, LOSS_D_GRAY, LOSS_D_BLUR, LOSS_D, LOSS_COUNT
};
/* Names of the losses in the metrics file. */
extern const char *const train_loss_names[LOSS_COUNT];

/* A persistent tensor of a training graph and its name in the store. */
typedef struct train_tensor {
  char *store_name;
  cel_node node;
} train_tensor;

/* A parameter and its gradient (an output) in a graph built with external_optimizer. */
typedef struct train_grad {
  const char *store_name; /* the parameter's ("g/NAME", "d/d.L.weight"); its moments are "g.m/NAME", "g.v/NAME" */
  cel_node param, grad;
  bool disc;              /* a discriminator parameter (its learning rate and step count) */
} train_grad;

typedef struct train_graph {
  cel_graph *g;
  bool gan;                          /* false: the warm-up graph */
  cel_node photo, style, gray, smooth, hyper_g, hyper_d, fake; /* style: the reference when reference-guided;
                                                                 * absent inputs are CEL_NO_NODE */
  cel_node loss[LOSS_COUNT];         /* unweighted terms, then the weighted totals; CEL_NO_NODE when absent */
  train_tensor *t;
  int32_t n_t;
  host_store fixed;                  /* the feature network and color matrices (states set once) */
  train_grad *grads;                 /* external_optimizer only */
  int32_t n_grads;
} train_graph;

/* Builds the warm-up (gan false) or GAN step graph and uploads `state` into it (parameters, moments, power
 * iteration vectors; moments not in the store start at zero). Errors name the problem in err. */
cel_status train_graph_build (cel_context *ctx, const train_setup *s, bool gan, const host_store *state, train_graph *out,
                              char *err, size_t errlen);
/* Sets the batch (NCHW floats; what the graph has no input for is ignored) and Adam's hyper-parameters for
 * optimizer step t (1-based) of each network, runs one step and reads the losses. */
cel_status train_graph_step (train_graph *tg, const float *photo, const float *style, const float *gray,
                             const float *smooth, float lr_g, float lr_d, int64_t t_g, int64_t t_d, const train_setup *s,
                             double losses[LOSS_COUNT]);
/* Downloads every persistent tensor of the graph into the store. */
cel_status train_graph_download (train_graph *tg, host_store *state);
void train_graph_destroy (train_graph *tg);

/* Checkpoint file: every store tensor, and the metadata pairs given. Atomic (cel_safetensors_save). */
bool train_checkpoint_save (const char *path, const host_store *state, const char *const *meta, size_t n_meta, char *err,
                            size_t errlen);
/* Reads a checkpoint's tensors into the store; *st_out keeps the file open for its metadata (close it). */
bool train_checkpoint_load (const char *path, host_store *state, cel_safetensors **st_out, char *err, size_t errlen);
/* Writes the generator of the store as a model file with the model's architecture and the metadata given. */
bool train_export_model (const char *path, const cel_model *model, const host_store *state, const char *const *meta,
                         size_t n_meta, char *err, size_t errlen);

#endif
