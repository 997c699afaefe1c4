/* Private: the generic graph form of a model architecture, and the family expanders that produce it. */
#ifndef CELGAN_MODEL_H
#define CELGAN_MODEL_H

#include "celgan.h"
#include "json.h"

/* Expands a family architecture (the parsed celgan.architecture object) into generic graph JSON text
 * appended to `out`. Returns false with a sentence in err on a bad configuration. A "graph" family is
 * copied as it is. */
bool cel_family_expand (const cel_json *arch, cel_strbuf *out, char *err, size_t errlen);

#define MAX_NODES 4096
#define MAX_NODE_INPUTS 4

typedef enum layer_op {
  L_CONV2D,
  L_CONV_TRANSPOSE2D,
  L_INSTANCE_NORM,
  L_LAYER_NORM,
  L_ADAIN,
  L_RELU,
  L_LEAKY_RELU,
  L_TANH,
  L_SIGMOID,
  L_RESIZE,
  L_ADD,
  L_MUL,
  L_CONCAT,
  L_SCALE_SHIFT,
  L_GLOBAL_AVG_POOL,
  L_PRELU,
  L_PIXEL_SHUFFLE,
  L_PAD,
  L_CROP,
  L_COUNT
} layer_op;

typedef struct layer {
  const char *name;
  layer_op op;
  int32_t n_in;
  int32_t in[MAX_NODE_INPUTS]; /* layer index, or -1 image, -2 reference */
  const cel_tensor_info *weight, *bias;
  int32_t stride[2], pad[4], out_pad[2], dilation[2], groups;
  cel_padding_mode pad_mode;
  cel_resize_mode resize_mode;
  float eps, slope, alpha, beta, scale_f, shift_f;
  double scale[2]; /* resize factors */
  int32_t size_of; /* resize or crop to the size of this layer (-1: the image), or INT32_MIN */
  int32_t factor;  /* pixel_shuffle */
  int32_t crop[4]; /* crop: top, bottom, left, right removed (size_of: top, left offsets in [0], [2]) */
  int32_t size_ratio; /* crop with size_of: this layer's resolution / size_of's (a whole number) */
  int32_t align;   /* pad: bottom and right also pad the input up to a multiple of this */
  bool blend;      /* add: alpha = the model's strength, beta = 1 - strength ("blend": "strength") */
  /* analysis */
  int32_t channels;
  double res;      /* resolution relative to the image input: 0.5 after a stride-2 conv */
  double halo;     /* in image pixels */
  int64_t stride_total; /* alignment needed at the input for this node's pixel grid */
  bool from_reference;
  bool vec;        /* a per-channel vector (1x1): a global pool and what is computed from it alone */
} layer;

/* The window (y0, x0, h, w) a crop layer keeps of an h x w input; to_h, to_w: its size_of layer's size. */
/* The amounts (top, bottom, left, right) a pad layer pads an h x w input by. */
void cel_model_pad_amounts (const layer *L, int32_t h, int32_t w, int32_t pad[4]);
/* The index of the last layer before `upto` named `name`: -1 for "image", -2 for "reference" (two-input
 * models), INT32_MIN for none. */
int32_t cel_model_find_layer (const cel_model *m, int32_t upto, const char *name);
/* Whether layer i is the only reader of layer j's output (j is not the model's output, and no other layer
 * takes it as an input or as its size_of). */
bool cel_model_sole_reader (const cel_model *m, int32_t j, int32_t i);
cel_status cel_model_crop_window (const layer *L, int32_t h, int32_t w, int32_t to_h, int32_t to_w, int32_t win[4]);

struct cel_model {
  cel_safetensors *st;
  cel_json_doc *arch_doc, *graph_doc;
  char *graph_json;
  layer *layers;
  int32_t n_layers;
  int32_t output;
  int32_t n_inputs;
  cel_model_info info;
  float strength; /* of the layers that blend in feature space (cel_model_set_strength; 1 by default) */
};


#endif
