/* Models: building a loaded model into a cel_graph (parameters, layers, the whole network or its first n
 * nodes). Loading, validation and analysis are in model.c. */
#include "internal.h"
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- building --------------------------------------------------------------------------------- */

/* The parameter for a tensor: created (and filled) once per graph, found by name after that. */
static cel_status tensor_param (cel_graph *g, const cel_model *m, const cel_tensor_info *t, cel_node *out) {
  *out = CEL_NO_NODE;
  if (!t)
    return CEL_OK;
  if (cel_graph_find (g, t->name, out) == CEL_OK)
    return CEL_OK;
  cel_shape s = { 1, 1, 1, 1 };
  if (t->rank == 4)
    s = (cel_shape) { (int32_t) t->shape[0], (int32_t) t->shape[1], (int32_t) t->shape[2], (int32_t) t->shape[3] };
  else if (t->rank == 1)
    s = (cel_shape) { 1, (int32_t) t->shape[0], 1, 1 };
  else
    s = (cel_shape) { 1, 1, 1, (int32_t) t->count };
  cel_status st = cel_graph_param (g, t->name, s, out);
  if (st)
    return st;
  float *data = malloc ((size_t) t->count * sizeof *data);
  if (!data)
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  char err[256];
  st = cel_safetensors_read_f32 (m->st, t, data, (size_t) t->count, err, sizeof err);
  if (!st)
    st = cel_graph_set_data (g, *out, data, (size_t) t->count);
  free (data);
  return st;
}

cel_status cel_model_create_params (const cel_model *m, cel_graph *g) {
  cel_status st = CEL_OK;
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    cel_node n;
    if (!(st = tensor_param (g, m, m->layers[i].weight, &n)))
      st = tensor_param (g, m, m->layers[i].bias, &n);
  }
  return st;
}

/* The window a crop layer keeps of an h x w input: y0, x0, height, width. to_h, to_w: the size of its
 * size_of layer (when it has one). */
cel_status cel_model_crop_window (const layer *L, int32_t h, int32_t w, int32_t to_h, int32_t to_w, int32_t win[4]) {
  if (L->size_of != INT32_MIN) {
    win[0] = L->crop[0];
    win[1] = L->crop[2];
    win[2] = to_h;
    win[3] = to_w;
  } else {
    win[0] = L->crop[0];
    win[1] = L->crop[2];
    win[2] = h - L->crop[0] - L->crop[1];
    win[3] = w - L->crop[2] - L->crop[3];
  }
  if (win[2] < 1 || win[3] < 1 || (int64_t) win[0] + win[2] > h || (int64_t) win[1] + win[3] > w)
    return CEL_ERROR_INVALID_ARGUMENT;
  return CEL_OK;
}

void cel_model_pad_amounts (const layer *L, int32_t h, int32_t w, int32_t pad[4]) {
  pad[0] = L->pad[0];
  pad[1] = L->pad[1] + (L->align - h % L->align) % L->align;
  pad[2] = L->pad[2];
  pad[3] = L->pad[3] + (L->align - w % L->align) % L->align;
}

/* Builds layer i from its input nodes (in[k] for each of its inputs; `image` for size_of references to the
 * image) into *out. Errors name the layer. */
bool cel_model_sole_reader (const cel_model *m, int32_t j, int32_t i) {
  if (j < 0 || j >= m->n_layers || j == m->output)
    return false;
  for (int32_t k = 0; k < m->n_layers; k++) {
    const layer *L = &m->layers[k];
    if (k != i && L->size_of == j)
      return false;
    for (int q = 0; q < L->n_in; q++)
      if (L->in[q] == j && k != i)
        return false;
  }
  return true;
}

cel_status cel_model_build_layer (const cel_model *m, cel_graph *g, int32_t i, const cel_node *in, cel_node image,
                                  const cel_node *nodes, cel_node *out) {
  cel_context *ctx = cel_graph_context (g);
  const layer *L = &m->layers[i];
  cel_node w = CEL_NO_NODE, b = CEL_NO_NODE, y = CEL_NO_NODE;
  cel_status st;
  if ((st = tensor_param (g, m, L->weight, &w)) || (st = tensor_param (g, m, L->bias, &b)))
    return st;
  switch (L->op) {
  case L_CONV2D: {
    cel_conv2d_params p = { .stride_h = L->stride[0], .stride_w = L->stride[1], .pad_top = L->pad[0],
                            .pad_bottom = L->pad[1], .pad_left = L->pad[2], .pad_right = L->pad[3],
                            .dilation_h = L->dilation[0], .dilation_w = L->dilation[1], .groups = L->groups,
                            .padding_mode = L->pad_mode };
    st = cel_conv2d (g, in[0], w, b, &p, &y);
    break;
  }
  case L_CONV_TRANSPOSE2D: {
    cel_conv_transpose2d_params p = { .stride_h = L->stride[0], .stride_w = L->stride[1], .pad_h = L->pad[0],
                                      .pad_w = L->pad[1], .output_pad_h = L->out_pad[0], .output_pad_w = L->out_pad[1],
                                      .dilation_h = L->dilation[0], .dilation_w = L->dilation[1], .groups = L->groups };
    st = cel_conv_transpose2d (g, in[0], w, b, &p, &y);
    break;
  }
  case L_INSTANCE_NORM: st = cel_instance_norm (g, in[0], w, b, L->eps, &y); break;
  case L_LAYER_NORM: st = cel_layer_norm (g, in[0], w, b, L->eps, &y); break;
  case L_ADAIN: st = cel_adain (g, in[0], in[1], L->eps, &y); break;
  case L_RELU: st = cel_activate (g, in[0], CEL_ACT_RELU, 0, &y); break;
  case L_LEAKY_RELU: st = cel_activate (g, in[0], CEL_ACT_LEAKY_RELU, L->slope, &y); break;
  case L_TANH: st = cel_activate (g, in[0], CEL_ACT_TANH, 0, &y); break;
  case L_SIGMOID: st = cel_activate (g, in[0], CEL_ACT_SIGMOID, 0, &y); break;
  case L_RESIZE: {
    cel_shape s, to;
    cel_graph_shape (g, in[0], &s);
    if (L->size_of != INT32_MIN) {
      cel_graph_shape (g, L->size_of == -1 ? image : nodes[L->size_of], &to);
      st = cel_resize (g, in[0], to.h, to.w, L->resize_mode, &y);
    } else {
      st = cel_resize (g, in[0], (int32_t) floor (s.h * L->scale[0]), (int32_t) floor (s.w * L->scale[1]), L->resize_mode, &y);
    }
    break;
  }
  case L_ADD:
    st = L->blend ? cel_add (g, in[0], in[1], m->strength, 1 - m->strength, &y) : cel_add (g, in[0], in[1], L->alpha, L->beta, &y);
    break;
  case L_MUL: st = cel_mul (g, in[0], in[1], &y); break;
  case L_CONCAT: st = cel_concat (g, in[0], in[1], &y); break;
  case L_SCALE_SHIFT: st = cel_scale_shift (g, in[0], L->scale_f, L->shift_f, &y); break;
  case L_GLOBAL_AVG_POOL: st = cel_global_avg_pool (g, in[0], &y); break;
  case L_PRELU: st = cel_prelu (g, in[0], w, &y); break;
  case L_PIXEL_SHUFFLE: st = cel_pixel_shuffle (g, in[0], L->factor, false, &y); break;
  case L_PAD: {
    cel_shape s;
    int32_t p[4];
    cel_graph_shape (g, in[0], &s);
    cel_model_pad_amounts (L, s.h, s.w, p);
    st = cel_pad (g, in[0], p[0], p[1], p[2], p[3], L->pad_mode, &y);
    break;
  }
  case L_CROP: {
    cel_shape s;
    int32_t win[4];
    cel_graph_shape (g, in[0], &s);
    if (L->size_of != INT32_MIN) {
      cel_shape to;
      cel_graph_shape (g, L->size_of == -1 ? image : nodes[L->size_of], &to);
      st = cel_model_crop_window (L, s.h, s.w, to.h * L->size_ratio, to.w * L->size_ratio, win);
    } else {
      st = cel_model_crop_window (L, s.h, s.w, 0, 0, win);
    }
    if (st)
      cel_set_error (ctx, st, "crop of %dx%d by (%d, %d, %d, %d) leaves nothing", s.h, s.w, L->crop[0], L->crop[1], L->crop[2],
                     L->crop[3]);
    else if (win[0] == 0 && win[1] == 0 && win[2] == s.h && win[3] == s.w)
      y = in[0]; /* nothing to cut (MicroAST at multiples of 4) */
    else
      st = cel_crop (g, in[0], win[0], win[1], win[2], win[3], &y);
    break;
  }
  default: st = CEL_ERROR_INVALID_ARGUMENT; break;
  }
  if (st) {
    char msg[sizeof ctx->error];
    snprintf (msg, sizeof msg, "%s", ctx->error);
    cel_set_error (ctx, st, "layer '%s': %s", L->name, msg);
  }
  *out = y;
  return st;
}

cel_status cel_model_build (const cel_model *m, cel_graph *g, cel_node image, cel_node reference, cel_node *out) {
  *out = CEL_NO_NODE;
  cel_context *ctx = cel_graph_context (g);
  if (m->info.needs_reference && reference == CEL_NO_NODE)
    return cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "model '%s' needs a reference image", m->info.name);
  cel_node *nodes = malloc ((size_t) m->n_layers * sizeof *nodes);
  if (!nodes)
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  cel_status st = CEL_OK;
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    cel_node in[MAX_NODE_INPUTS];
    for (int k = 0; k < L->n_in; k++)
      in[k] = L->in[k] == -1 ? image : L->in[k] == -2 ? reference : nodes[L->in[k]];
    /* a relu or leaky relu that alone reads a norm's or a convolution's output runs in its pass */
    cel_activation fa = L->op == L_RELU ? CEL_ACT_RELU : CEL_ACT_LEAKY_RELU;
    if ((L->op == L_RELU || L->op == L_LEAKY_RELU) && L->in[0] >= 0 && cel_model_sole_reader (m, L->in[0], i) &&
        (((m->layers[L->in[0]].op == L_INSTANCE_NORM || m->layers[L->in[0]].op == L_LAYER_NORM) &&
          cel_norm_apply_fuse_act (g, in[0], fa, L->slope)) ||
         (m->layers[L->in[0]].op == L_CONV2D && cel_conv2d_fuse_act (g, in[0], fa, L->slope)))) {
      nodes[i] = in[0];
      continue;
    }
    st = cel_model_build_layer (m, g, i, in, image, nodes, &nodes[i]);
  }
  if (!st)
    *out = nodes[m->output];
  free (nodes);
  return st;
}

cel_status cel_model_build_nodes (const cel_model *m, cel_graph *g, cel_node image, cel_node reference, int32_t n,
                                  const char *const *names, cel_node *outs) {
  cel_context *ctx = cel_graph_context (g);
  for (int32_t k = 0; k < n; k++)
    outs[k] = CEL_NO_NODE;
  cel_node *nodes = malloc ((size_t) m->n_layers * sizeof *nodes);
  bool *needed = calloc ((size_t) m->n_layers, sizeof *needed);
  int32_t *want = malloc (((size_t) n + 1) * sizeof *want);
  cel_status st = CEL_OK;
  if (!nodes || !needed || !want) {
    st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    goto done;
  }
  for (int32_t k = 0; k < n; k++) {
    want[k] = names[k] ? cel_model_find_layer (m, m->n_layers, names[k]) : m->output;
    if (want[k] < 0) {
      st = cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "model '%s' has no node '%s'", m->info.name, names[k]);
      goto done;
    }
    needed[want[k]] = true;
  }
  /* what the wanted layers depend on: their inputs and the layers whose size they take */
  bool uses_image = false, uses_reference = false;
  for (int32_t i = m->n_layers - 1; i >= 0; i--) {
    const layer *L = &m->layers[i];
    if (!needed[i])
      continue;
    for (int k = 0; k < L->n_in; k++) {
      if (L->in[k] >= 0)
        needed[L->in[k]] = true;
      uses_image |= L->in[k] == -1;
      uses_reference |= L->in[k] == -2;
    }
    if ((L->op == L_RESIZE || L->op == L_CROP) && L->size_of != INT32_MIN) {
      if (L->size_of >= 0)
        needed[L->size_of] = true;
      uses_image |= L->size_of == -1;
    }
  }
  if ((uses_image && image == CEL_NO_NODE) || (uses_reference && reference == CEL_NO_NODE)) {
    st = cel_set_error (ctx, CEL_ERROR_INVALID_ARGUMENT, "model '%s': the nodes asked for need the %s input", m->info.name,
                        uses_image && image == CEL_NO_NODE ? "image" : "reference");
    goto done;
  }
  for (int32_t i = 0; i < m->n_layers && !st; i++) {
    const layer *L = &m->layers[i];
    cel_node in[MAX_NODE_INPUTS];
    nodes[i] = CEL_NO_NODE;
    if (!needed[i])
      continue;
    for (int k = 0; k < L->n_in; k++)
      in[k] = L->in[k] == -1 ? image : L->in[k] == -2 ? reference : nodes[L->in[k]];
    st = cel_model_build_layer (m, g, i, in, image, nodes, &nodes[i]);
  }
  for (int32_t k = 0; k < n && !st; k++)
    outs[k] = nodes[want[k]];
done:
  free (nodes);
  free (needed);
  free (want);
  return st;
}
