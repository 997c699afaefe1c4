/* Private: a strict reader of ncnn models (the text .param and the .bin weights), for the importer.
 * Only what the peers' models (waifu2x-, realesrgan- and realcugan-ncnn-vulkan) use is understood;
 * anything else is an error naming the file, the line and the value. */
#ifndef CELGAN_NCNN_H
#define CELGAN_NCNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NCNN_MAX_PARAM_ID 32 /* param ids 0..31, arrays as -23300 - id */
#define NCNN_MAX_ARRAY 64
#define NCNN_MAX_BLOBS_PER_LAYER 16

typedef struct ncnn_param {
  bool set, is_array;
  bool is_float;   /* written with a '.' or an exponent */
  double value;    /* scalar */
  int32_t count;   /* array length */
  double *array;   /* count values */
} ncnn_param;

typedef struct ncnn_layer {
  char *type, *name;
  int32_t line;    /* in the .param file */
  int32_t n_bottom, n_top;
  int32_t bottom[NCNN_MAX_BLOBS_PER_LAYER], top[NCNN_MAX_BLOBS_PER_LAYER]; /* blob indices */
  ncnn_param p[NCNN_MAX_PARAM_ID];
  /* weights from the .bin, as fp32 (NULL when the layer has none) */
  float *weight, *bias;
  int64_t n_weight, n_bias;
} ncnn_layer;

typedef struct ncnn_net {
  ncnn_layer *layers;
  int32_t n_layers;
  char **blobs;    /* blob names, in order of first appearance */
  int32_t n_blobs;
  const char *param_name, *bin_name;
} ncnn_net;

/* Reads a .param text (`param`, `param_size` bytes) and its .bin (`bin`, `bin_size` bytes); the names are used
 * in messages. Returns NULL with a sentence in err on any problem. Allocations are bounded by the inputs'
 * sizes: every count is checked against the bytes that could hold it before anything is allocated. */
ncnn_net *ncnn_read (const char *param, size_t param_size, const void *bin, size_t bin_size, const char *param_name,
                     const char *bin_name, char *err, size_t errlen);
void ncnn_free (ncnn_net *net);

/* An int param's value (default when unset); false when it is set but not an int in [lo, hi]. */
bool ncnn_int (const ncnn_layer *L, int id, int32_t def, int32_t lo, int32_t hi, int32_t *out);

#endif
