/* Models: loading and validating a model file, analysing its graph (channels, scale, stride, halo), and
 * writing one with fresh weights; building it into a cel_graph is in model_build.c. The architecture is always
 * handled in the generic graph form (docs/model-format.md); families are expanded into it first (families.c). */
#include "internal.h"
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const layer_op_names[L_COUNT] = {
  "conv2d", "conv_transpose2d", "instance_norm", "layer_norm", "adain", "relu", "leaky_relu", "tanh",
  "sigmoid", "resize", "add", "mul", "concat", "scale_shift", "global_avg_pool", "prelu", "pixel_shuffle", "pad", "crop",
};

/* Which JSON keys each op accepts besides name, op, in. */
static const char *const layer_keys[L_COUNT] = {
  "weight bias stride padding padding_mode dilation groups",
  "weight bias stride padding output_padding dilation groups",
  "weight bias eps",
  "weight bias eps",
  "eps",
  "",
  "slope",
  "",
  "",
  "scale size_of mode",
  "alpha beta blend",
  "",
  "",
  "scale shift",
  "",
  "weight",
  "factor",
  "padding padding_mode align",
  "crop offset size_of",
};

static bool fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static bool fail (char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
  }
  return false;
}

/* ---- parsing the generic graph ---------------------------------------------------------------- */

static bool key_allowed (layer_op op, const char *key) {
  if (!strcmp (key, "name") || !strcmp (key, "op") || !strcmp (key, "in"))
    return true;
  const char *list = layer_keys[op];
  size_t n = strlen (key);
  for (const char *p = list; (p = strstr (p, key)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
      return true;
  return false;
}

/* Reads an int or [a, b] (or [a,b,c,d] when n == 4; an int or [h, w] expands to all sides). */
static bool read_ints (const cel_json *v, int32_t *out, int n, int32_t lo, int32_t hi) {
  if (!v)
    return true;
  if (v->type == CEL_JSON_NUMBER) {
    if (!v->is_integer || v->integer < lo || v->integer > hi)
      return false;
    for (int i = 0; i < n; i++)
      out[i] = (int32_t) v->integer;
    return true;
  }
  if (v->type != CEL_JSON_ARRAY)
    return false;
  int32_t tmp[4];
  if (v->count != (size_t) n && !(n == 4 && v->count == 2))
    return false;
  for (size_t i = 0; i < v->count; i++) {
    const cel_json *e = cel_json_at (v, i);
    if (e->type != CEL_JSON_NUMBER || !e->is_integer || e->integer < lo || e->integer > hi)
      return false;
    tmp[i] = (int32_t) e->integer;
  }
  if (n == 4 && v->count == 2) { /* [h, w] -> top, bottom, left, right */
    out[0] = out[1] = tmp[0];
    out[2] = out[3] = tmp[1];
  } else {
    memcpy (out, tmp, (size_t) n * sizeof *out);
  }
  return true;
}

static bool read_float (const cel_json *v, float *out, double lo, double hi) {
  if (!v)
    return true;
  if (v->type != CEL_JSON_NUMBER || !(v->number >= lo && v->number <= hi))
    return false;
  *out = (float) v->number;
  return true;
}

static bool read_tensor (const cel_model *m, const cel_json *v, const cel_tensor_info **out, const char *layer_name,
                         const char *what, char *err, size_t errlen) {
  if (!v || v->type == CEL_JSON_NULL)
    return true;
  if (v->type != CEL_JSON_STRING)
    return fail (err, errlen, "layer '%s': %s must be a tensor name", layer_name, what);
  *out = cel_safetensors_find (m->st, v->string);
  if (!*out)
    return fail (err, errlen, "layer '%s': tensor '%s' (%s) is not in the file", layer_name, v->string, what);
  return true;
}

int32_t cel_model_find_layer (const cel_model *m, int32_t upto, const char *name) {
  if (strcmp (name, "image") == 0)
    return -1;
  if (strcmp (name, "reference") == 0 && m->n_inputs == 2)
    return -2;
  for (int32_t i = upto - 1; i >= 0; i--)
    if (strcmp (m->layers[i].name, name) == 0)
      return i;
  return INT32_MIN;
}

static bool parse_layer (cel_model *m, int32_t idx, const cel_json *j, char *err, size_t errlen) {
  layer *L = &m->layers[idx];
  const cel_json *name = cel_json_get (j, "name"), *op = cel_json_get (j, "op"), *in = cel_json_get (j, "in");
  if (j->type != CEL_JSON_OBJECT || !name || name->type != CEL_JSON_STRING || !op || op->type != CEL_JSON_STRING)
    return fail (err, errlen, "architecture node %d needs a string 'name' and 'op'", (int) idx);
  L->name = name->string;
  if (!*L->name || !strcmp (L->name, "image") || !strcmp (L->name, "reference") || cel_model_find_layer (m, idx, L->name) != INT32_MIN)
    return fail (err, errlen, "architecture node %d: the name '%s' is empty, reserved or used twice", (int) idx, L->name);
  int k = 0;
  while (k < L_COUNT && strcmp (layer_op_names[k], op->string))
    k++;
  if (k == L_COUNT)
    return fail (err, errlen, "layer '%s': unknown op '%s'", L->name, op->string);
  L->op = (layer_op) k;
  for (const cel_json *f = j->child; f; f = f->next)
    if (!key_allowed (L->op, f->key))
      return fail (err, errlen, "layer '%s': op %s does not take '%s'", L->name, op->string, f->key);
  int want_in = (L->op == L_ADAIN || L->op == L_ADD || L->op == L_MUL || L->op == L_CONCAT) ? 2 : 1;
  if (!in || in->type != CEL_JSON_ARRAY || in->count != (size_t) want_in)
    return fail (err, errlen, "layer '%s': 'in' must list %d input(s)", L->name, want_in);
  L->n_in = want_in;
  for (int i = 0; i < want_in; i++) {
    const cel_json *e = cel_json_at (in, (size_t) i);
    if (e->type != CEL_JSON_STRING)
      return fail (err, errlen, "layer '%s': inputs are layer names", L->name);
    L->in[i] = cel_model_find_layer (m, idx, e->string);
    if (L->in[i] == INT32_MIN)
      return fail (err, errlen, "layer '%s': input '%s' is not an earlier layer or a graph input", L->name, e->string);
  }
  /* defaults */
  L->stride[0] = L->stride[1] = L->dilation[0] = L->dilation[1] = L->groups = 1;
  L->eps = 1e-5f;
  L->alpha = L->beta = 1;
  L->scale_f = 1;
  const cel_json *v;
  bool ok = true;
  ok &= read_tensor (m, cel_json_get (j, "weight"), &L->weight, L->name, "weight", err, errlen);
  ok &= ok && read_tensor (m, cel_json_get (j, "bias"), &L->bias, L->name, "bias", err, errlen);
  if (!ok)
    return false;
  if (!read_ints (cel_json_get (j, "stride"), L->stride, 2, 1, 64) || !read_ints (cel_json_get (j, "dilation"), L->dilation, 2, 1, 64) ||
      !read_ints (cel_json_get (j, "groups"), &L->groups, 1, 1, 1 << 16) ||
      !read_ints (cel_json_get (j, "output_padding"), L->out_pad, 2, 0, 64))
    return fail (err, errlen, "layer '%s': stride, dilation, groups or output_padding out of range", L->name);
  if (L->op == L_CONV_TRANSPOSE2D) {
    int32_t p2[2] = { 0, 0 };
    if (!read_ints (cel_json_get (j, "padding"), p2, 2, 0, 1024))
      return fail (err, errlen, "layer '%s': padding must be an int or [h, w]", L->name);
    L->pad[0] = p2[0];
    L->pad[1] = p2[1];
  } else if (!read_ints (cel_json_get (j, "padding"), L->pad, 4, 0, 1024)) {
    return fail (err, errlen, "layer '%s': padding must be an int, [h, w] or [top, bottom, left, right]", L->name);
  }
  if ((v = cel_json_get (j, "padding_mode"))) {
    if (v->type == CEL_JSON_STRING && !strcmp (v->string, "zero"))
      L->pad_mode = CEL_PAD_ZERO;
    else if (v->type == CEL_JSON_STRING && !strcmp (v->string, "reflect"))
      L->pad_mode = CEL_PAD_REFLECT;
    else if (v->type == CEL_JSON_STRING && !strcmp (v->string, "replicate") && L->op == L_PAD)
      L->pad_mode = CEL_PAD_REPLICATE;
    else
      return fail (err, errlen, "layer '%s': padding_mode is 'zero' or 'reflect'%s", L->name,
                   L->op == L_PAD ? " or 'replicate'" : "");
  }
  if (L->op == L_PIXEL_SHUFFLE) {
    L->factor = 0;
    if (!read_ints (cel_json_get (j, "factor"), &L->factor, 1, 1, 16) || L->factor < 1)
      return fail (err, errlen, "layer '%s': pixel_shuffle needs 'factor' (1..16)", L->name);
  }
  L->align = 1;
  if (L->op == L_PAD && !read_ints (cel_json_get (j, "align"), &L->align, 1, 1, 64))
    return fail (err, errlen, "layer '%s': align must be 1..64", L->name);
  if (L->op == L_CROP) {
    const cel_json *so = cel_json_get (j, "size_of"), *c = cel_json_get (j, "crop"), *o = cel_json_get (j, "offset");
    L->size_of = INT32_MIN;
    if (so) {
      int32_t off[2] = { 0, 0 };
      if (c || so->type != CEL_JSON_STRING || (L->size_of = cel_model_find_layer (m, idx, so->string)) == INT32_MIN || L->size_of == -2 ||
          !read_ints (o, off, 2, 0, 1 << 20))
        return fail (err, errlen, "layer '%s': crop takes 'size_of' (an earlier layer or the image) with 'offset' [y, x], "
                     "or 'crop' [top, bottom, left, right]", L->name);
      L->crop[0] = off[0];
      L->crop[2] = off[1];
    } else if (o || !c || !read_ints (c, L->crop, 4, 0, 1 << 20)) {
      return fail (err, errlen, "layer '%s': crop needs 'crop' (an int, [h, w] or [top, bottom, left, right] >= 0) or "
                   "'size_of' and 'offset'", L->name);
    }
  }
  if (!read_float (cel_json_get (j, "eps"), &L->eps, 0, 1) || !read_float (cel_json_get (j, "slope"), &L->slope, -10, 10) ||
      !read_float (cel_json_get (j, "alpha"), &L->alpha, -1e6, 1e6) || !read_float (cel_json_get (j, "beta"), &L->beta, -1e6, 1e6) ||
      !read_float (cel_json_get (j, "shift"), &L->shift_f, -1e6, 1e6))
    return fail (err, errlen, "layer '%s': a number is out of range", L->name);
  const cel_json *blend = cel_json_get (j, "blend");
  if (blend) {
    if (L->op != L_ADD || blend->type != CEL_JSON_STRING || strcmp (blend->string, "strength") != 0 ||
        cel_json_get (j, "alpha") || cel_json_get (j, "beta"))
      return fail (err, errlen, "layer '%s': 'blend' is \"strength\" on an add without alpha and beta", L->name);
    L->blend = true;
    m->info.feature_strength = true;
  }
  if (L->op == L_LEAKY_RELU && !cel_json_get (j, "slope"))
    return fail (err, errlen, "layer '%s': leaky_relu needs 'slope'", L->name);
  if (L->op == L_SCALE_SHIFT && !read_float (cel_json_get (j, "scale"), &L->scale_f, -1e6, 1e6))
    return fail (err, errlen, "layer '%s': scale out of range", L->name);
  if (L->op == L_RESIZE) {
    const cel_json *s = cel_json_get (j, "scale"), *mode = cel_json_get (j, "mode"), *so = cel_json_get (j, "size_of");
    L->size_of = INT32_MIN;
    if (so) {
      if (s)
        return fail (err, errlen, "layer '%s': resize takes 'scale' or 'size_of', not both", L->name);
      if (so->type != CEL_JSON_STRING || (L->size_of = cel_model_find_layer (m, idx, so->string)) == INT32_MIN || L->size_of == -2)
        return fail (err, errlen, "layer '%s': size_of must name an earlier layer or the image", L->name);
    } else if (s && s->type == CEL_JSON_NUMBER) {
      L->scale[0] = L->scale[1] = s->number;
    } else if (s && s->type == CEL_JSON_ARRAY && s->count == 2 && cel_json_at (s, 0)->type == CEL_JSON_NUMBER &&
               cel_json_at (s, 1)->type == CEL_JSON_NUMBER) {
      L->scale[0] = cel_json_at (s, 0)->number;
      L->scale[1] = cel_json_at (s, 1)->number;
    } else {
      return fail (err, errlen, "layer '%s': resize needs 'scale' (a number or [h, w])", L->name);
    }
    if (L->size_of == INT32_MIN && !(L->scale[0] >= 1.0 / 64 && L->scale[0] <= 64 && L->scale[1] >= 1.0 / 64 && L->scale[1] <= 64))
      return fail (err, errlen, "layer '%s': resize scale out of range", L->name);
    static const char *const modes[] = { "nearest", "bilinear", "bilinear-align-corners", "bilinear-asymmetric", "bicubic" };
    int mi = 1;
    if (mode) {
      for (mi = 0; mi < 5 && !(mode->type == CEL_JSON_STRING && !strcmp (mode->string, modes[mi])); mi++)
        ;
      if (mi == 5)
        return fail (err, errlen, "layer '%s': resize mode is nearest, bilinear, bilinear-align-corners, bilinear-asymmetric "
                     "or bicubic", L->name);
    }
    L->resize_mode = (cel_resize_mode) mi;
  }
  if ((L->op == L_CONV2D || L->op == L_CONV_TRANSPOSE2D || L->op == L_PRELU) && !L->weight)
    return fail (err, errlen, "layer '%s': %s needs a 'weight' tensor", L->name, layer_op_names[L->op]);
  return true;
}

/* ---- analysis: channels, resolution, halo, stride; tensor shapes ------------------------------ */

static int64_t gcd64 (int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static bool check_vector (const layer *L, const cel_tensor_info *t, int32_t c, const char *what, char *err, size_t errlen) {
  if (!t)
    return true;
  if (t->rank != 1 || t->shape[0] != c)
    return fail (err, errlen, "layer '%s': %s '%s' must have shape [%d]", L->name, what, t->name, (int) c);
  return true;
}

static bool analyse (cel_model *m, char *err, size_t errlen) {
  int32_t in_ch = m->info.in_channels;
  for (int32_t i = 0; i < m->n_layers; i++) {
    layer *L = &m->layers[i];
    int32_t ch[MAX_NODE_INPUTS];
    double res[MAX_NODE_INPUTS] = { 1, 1, 1, 1 }, halo = 0;
    int64_t align = 1;
    bool ref = false;
    for (int k = 0; k < L->n_in; k++) {
      int32_t s = L->in[k];
      ch[k] = s < 0 ? in_ch : m->layers[s].channels;
      res[k] = s < 0 ? 1.0 : m->layers[s].res;
      ref |= s == -2 || (s >= 0 && m->layers[s].from_reference);
      if (s >= 0) {
        if (m->layers[s].halo > halo)
          halo = m->layers[s].halo;
        align = align / gcd64 (align, m->layers[s].stride_total) * m->layers[s].stride_total;
      }
    }
    L->from_reference = ref;
    L->res = res[0];
    /* vectors: a global pool, and ops whose image-side inputs are all vectors (the squeeze-excitation gate) */
    bool all_vec = true;
    for (int k = 0; k < L->n_in; k++)
      all_vec &= L->in[k] >= 0 && m->layers[L->in[k]].vec;
    L->vec = L->op == L_GLOBAL_AVG_POOL || all_vec;
    const cel_tensor_info *w = L->weight;
    switch (L->op) {
    case L_CONV2D:
    case L_CONV_TRANSPOSE2D: {
      bool tr = L->op == L_CONV_TRANSPOSE2D;
      if (w->rank != 4)
        return fail (err, errlen, "layer '%s': weight '%s' must have rank 4", L->name, w->name);
      int64_t wc_in = tr ? w->shape[0] : w->shape[1] * L->groups, out = tr ? w->shape[1] * L->groups : w->shape[0];
      if (ch[0] % L->groups || out % L->groups)
        return fail (err, errlen, "layer '%s': groups %d do not divide the channels (%d in, %lld out)", L->name, (int) L->groups,
                     (int) ch[0], (long long) out);
      if (wc_in != ch[0])
        return fail (err, errlen, "layer '%s': weight '%s' expects %lld input channels, the layer gets %d", L->name, w->name,
                     (long long) wc_in, (int) ch[0]);
      if (w->shape[2] < 1 || w->shape[3] < 1 || w->shape[2] > 64 || w->shape[3] > 64)
        return fail (err, errlen, "layer '%s': kernel size out of range", L->name);
      L->channels = (int32_t) out;
      if (!check_vector (L, L->bias, L->channels, "bias", err, errlen))
        return false;
      double ext_h = (double) L->dilation[0] * (w->shape[2] - 1), ext_w = (double) L->dilation[1] * (w->shape[3] - 1);
      double ext = ext_h > ext_w ? ext_h : ext_w;
      int32_t s = L->stride[0] > L->stride[1] ? L->stride[0] : L->stride[1];
      if (!tr) {
        halo += (ext + 1) / L->res;
        L->res = L->res / s;
        if (L->stride[0] != L->stride[1])
          return fail (err, errlen, "layer '%s': unequal strides are not supported in models", L->name);
        int64_t need = L->res < 1 ? (int64_t) llround (1.0 / L->res) : 1; /* after upsampling: any size */
        align = align / gcd64 (align, need) * need;
      } else {
        halo += (ext / s + 2) / L->res;
        L->res = L->res * s;
      }
      break;
    }
    case L_INSTANCE_NORM:
    case L_LAYER_NORM:
      L->channels = ch[0];
      if (!check_vector (L, L->weight, ch[0], "weight", err, errlen) || !check_vector (L, L->bias, ch[0], "bias", err, errlen))
        return false;
      m->info.global_statistics = true;
      break;
    case L_ADAIN:
      if (ch[0] != ch[1])
        return fail (err, errlen, "layer '%s': content has %d channels, style %d", L->name, (int) ch[0], (int) ch[1]);
      L->channels = ch[0];
      m->info.global_statistics = true;
      break;
    case L_RESIZE:
      halo += 2 / L->res;
      if (L->size_of != INT32_MIN) {
        L->res = L->size_of == -1 ? 1.0 : m->layers[L->size_of].res;
      } else {
        L->res *= L->scale[0];
      }
      if (L->size_of == INT32_MIN && L->scale[0] != L->scale[1])
        return fail (err, errlen, "layer '%s': unequal resize factors are not supported in models", L->name);
      L->channels = ch[0];
      break;
    case L_ADD:
    case L_MUL:
      if (ch[1] != ch[0] && ch[1] != 1)
        return fail (err, errlen, "layer '%s': inputs have %d and %d channels", L->name, (int) ch[0], (int) ch[1]);
      if (fabs (res[0] - res[1]) > 1e-9 && !(L->in[1] >= 0 && m->layers[L->in[1]].vec))
        return fail (err, errlen, "layer '%s': inputs are at different resolutions", L->name);
      if (L->in[0] >= 0 && m->layers[L->in[0]].vec && !L->vec)
        return fail (err, errlen, "layer '%s': a pooled vector must be the second input", L->name);
      L->channels = ch[0];
      break;
    case L_PRELU:
      L->channels = ch[0];
      if (w->rank != 1 || (w->shape[0] != ch[0] && w->shape[0] != 1))
        return fail (err, errlen, "layer '%s': weight '%s' must have shape [%d] or [1]", L->name, w->name, (int) ch[0]);
      break;
    case L_PIXEL_SHUFFLE:
      if (ch[0] % (L->factor * L->factor))
        return fail (err, errlen, "layer '%s': %d channels are not a multiple of %d", L->name, (int) ch[0],
                     (int) (L->factor * L->factor));
      L->channels = ch[0] / (L->factor * L->factor);
      halo += 1 / L->res;
      L->res *= L->factor;
      break;
    case L_PAD:
    case L_CROP:
      L->channels = ch[0];
      if (L->vec)
        return fail (err, errlen, "layer '%s': %s of a pooled vector", L->name, layer_op_names[L->op]);
      L->size_ratio = 1;
      if (L->op == L_CROP && L->size_of != INT32_MIN) {
        double r = L->res / (L->size_of == -1 ? 1.0 : m->layers[L->size_of].res);
        if (!(r >= 1 - 1e-9 && r <= 64) || fabs (r - llround (r)) > 1e-9)
          return fail (err, errlen, "layer '%s': crops to the size of a layer whose resolution is not a whole fraction of its own",
                       L->name);
        L->size_ratio = (int32_t) llround (r);
      }
      break;
    case L_CONCAT:
      if (fabs (res[0] - res[1]) > 1e-9)
        return fail (err, errlen, "layer '%s': inputs are at different resolutions", L->name);
      L->channels = ch[0] + ch[1];
      break;
    case L_GLOBAL_AVG_POOL:
      L->channels = ch[0];
      m->info.global_statistics = true;
      break;
    default:
      L->channels = ch[0];
      break;
    }
    L->halo = halo;
    L->stride_total = align;
  }
  const layer *out = &m->layers[m->output];
  if (out->from_reference && m->n_inputs == 2 && !(out->in[0] == -1 || !m->layers[out->in[0]].from_reference)) {
    /* an output computed from the reference alone is a modelling error, caught loosely */
  }
  if (out->channels != m->info.out_channels)
    return fail (err, errlen, "the output layer '%s' has %d channels; out_channels says %d", out->name, (int) out->channels,
                 (int) m->info.out_channels);
  double scale = out->res;
  if (scale < 1 - 1e-9 || fabs (scale - llround (scale)) > 1e-9)
    return fail (err, errlen, "the network changes the image size by %.4g; CelGAN models must keep it or enlarge it by a whole factor",
                 scale);
  m->info.scale = (int32_t) llround (scale);
  m->info.halo = (int32_t) ceil (out->halo);
  m->info.stride = (int32_t) out->stride_total;
  return true;
}

/* ---- loading --------------------------------------------------------------------------------- */

static bool read_range (const cel_json *root, const char *key, float *range, char *err, size_t errlen) {
  const cel_json *v = cel_json_get (root, key);
  range[0] = -1;
  range[1] = 1;
  if (!v)
    return true;
  if (v->type != CEL_JSON_ARRAY || v->count != 2 || cel_json_at (v, 0)->type != CEL_JSON_NUMBER ||
      cel_json_at (v, 1)->type != CEL_JSON_NUMBER || !(cel_json_at (v, 0)->number < cel_json_at (v, 1)->number))
    return fail (err, errlen, "architecture: %s must be [low, high]", key);
  range[0] = (float) cel_json_at (v, 0)->number;
  range[1] = (float) cel_json_at (v, 1)->number;
  return true;
}

/* The graph's "tensors" object declares every tensor's shape; the file must hold exactly those. */
static bool check_declared_tensors (const cel_model *m, const cel_json *root, char *err, size_t errlen) {
  const cel_json *decl = cel_json_get (root, "tensors");
  if (!decl || decl->type != CEL_JSON_OBJECT)
    return fail (err, errlen, "the architecture does not declare its tensors ('tensors': {name: shape})");
  for (const cel_json *d = decl->child; d; d = d->next) {
    const cel_tensor_info *t = cel_safetensors_find (m->st, d->key);
    if (!t)
      return fail (err, errlen, "tensor '%s' is missing from the file", d->key);
    bool ok = d->type == CEL_JSON_ARRAY && d->count == (size_t) t->rank;
    for (size_t i = 0; ok && i < d->count; i++) {
      const cel_json *e = cel_json_at (d, i);
      ok = e->type == CEL_JSON_NUMBER && e->is_integer && e->integer == t->shape[i];
    }
    if (!ok) {
      cel_strbuf want = { 0 };
      cel_json_write (d, &want);
      bool r = fail (err, errlen, "tensor '%s' has the wrong shape (the architecture needs %s)", d->key,
                     want.data ? want.data : "?");
      cel_strbuf_free (&want);
      return r;
    }
  }
  for (size_t i = 0; i < cel_safetensors_count (m->st); i++)
    if (!cel_json_get (decl, cel_safetensors_tensor (m->st, i)->name))
      return fail (err, errlen, "tensor '%s' is not declared by the architecture", cel_safetensors_tensor (m->st, i)->name);
  return true;
}

static cel_status finish_load (cel_model *m, const char *what, char *err, size_t errlen) {
  const char *fmt = cel_safetensors_metadata (m->st, "celgan.format");
  const char *arch = cel_safetensors_metadata (m->st, "celgan.architecture");
  if (!fmt || !arch)
    return fail (err, errlen, "%s: not a CelGAN model (no celgan.format / celgan.architecture metadata; "
                 "import other projects' models with 'celgan import')", what), CEL_ERROR_FORMAT;
  if (strcmp (fmt, "1") != 0)
    return fail (err, errlen, "%s: model format version %s is newer than this CelGAN reads (1)", what, fmt), CEL_ERROR_FORMAT;
  char jerr[300];
  m->arch_doc = cel_json_parse (arch, strlen (arch), jerr, sizeof jerr);
  if (!m->arch_doc)
    return fail (err, errlen, "%s: celgan.architecture: %s", what, jerr), CEL_ERROR_FORMAT;
  cel_strbuf gj = { 0 };
  char ferr[400];
  if (!cel_family_expand (cel_json_root (m->arch_doc), &gj, ferr, sizeof ferr)) {
    cel_strbuf_free (&gj);
    return fail (err, errlen, "%s: %s", what, ferr), CEL_ERROR_FORMAT;
  }
  if (gj.failed) {
    cel_strbuf_free (&gj);
    return fail (err, errlen, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  }
  m->graph_json = gj.data;
  m->graph_doc = cel_json_parse (gj.data, gj.len, jerr, sizeof jerr);
  if (!m->graph_doc)
    return fail (err, errlen, "%s: expanded architecture: %s", what, jerr), CEL_ERROR_FORMAT;
  const cel_json *root = cel_json_root (m->graph_doc);
  const cel_json *inputs = cel_json_get (root, "inputs"), *nodes = cel_json_get (root, "nodes"),
                 *output = cel_json_get (root, "output"), *family = cel_json_get (cel_json_root (m->arch_doc), "family");
  if (!inputs || inputs->type != CEL_JSON_ARRAY || inputs->count < 1 || inputs->count > 2 || !nodes ||
      nodes->type != CEL_JSON_ARRAY || nodes->count < 1 || nodes->count > MAX_NODES || !output || output->type != CEL_JSON_STRING)
    return fail (err, errlen, "%s: the graph needs 'inputs' ([\"image\"] or [\"image\", \"reference\"]), 'nodes' (1..%d) and 'output'",
                 what, MAX_NODES), CEL_ERROR_FORMAT;
  m->n_inputs = (int32_t) inputs->count;
  if (cel_json_at (inputs, 0)->type != CEL_JSON_STRING || strcmp (cel_json_at (inputs, 0)->string, "image") ||
      (m->n_inputs == 2 && (cel_json_at (inputs, 1)->type != CEL_JSON_STRING || strcmp (cel_json_at (inputs, 1)->string, "reference"))))
    return fail (err, errlen, "%s: graph inputs must be [\"image\"] or [\"image\", \"reference\"]", what), CEL_ERROR_FORMAT;
  int32_t chans[2] = { 3, 3 };
  if (!read_ints (cel_json_get (root, "in_channels"), &chans[0], 1, 1, 4) ||
      !read_ints (cel_json_get (root, "out_channels"), &chans[1], 1, 1, 4))
    return fail (err, errlen, "%s: in_channels and out_channels are 1..4", what), CEL_ERROR_FORMAT;
  m->info.in_channels = chans[0];
  m->info.out_channels = chans[1];
  for (const cel_json *k = root->child; k; k = k->next) {
    static const char *const top[] = { "family", "inputs", "nodes", "output", "tensors", "in_channels", "out_channels",
                                       "input_range", "output_range", "alpha_resize", NULL };
    bool known = false;
    for (int i = 0; top[i] && !known; i++)
      known = strcmp (k->key, top[i]) == 0;
    if (!known)
      return fail (err, errlen, "%s: unknown architecture key '%s'", what, k->key), CEL_ERROR_FORMAT;
  }
  const cel_json *ar = cel_json_get (root, "alpha_resize");
  if (ar && !(ar->type == CEL_JSON_STRING && (!strcmp (ar->string, "bilinear") || !strcmp (ar->string, "bicubic-ncnn"))))
    return fail (err, errlen, "%s: alpha_resize is 'bilinear' or 'bicubic-ncnn'", what), CEL_ERROR_FORMAT;
  m->info.alpha_bicubic_ncnn = ar && !strcmp (ar->string, "bicubic-ncnn");
  if (!read_range (root, "input_range", m->info.input_range, err, errlen) ||
      !read_range (root, "output_range", m->info.output_range, err, errlen))
    return CEL_ERROR_FORMAT;
  m->layers = calloc (nodes->count, sizeof *m->layers);
  if (!m->layers)
    return fail (err, errlen, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  int32_t i = 0;
  for (const cel_json *n = nodes->child; n; n = n->next, i++) {
    m->n_layers = i;
    if (!parse_layer (m, i, n, ferr, sizeof ferr))
      return fail (err, errlen, "%s: %s", what, ferr), CEL_ERROR_FORMAT;
  }
  m->n_layers = i;
  m->output = cel_model_find_layer (m, m->n_layers, output->string);
  if (m->output < 0)
    return fail (err, errlen, "%s: the output '%s' is not a layer", what, output->string), CEL_ERROR_FORMAT;
  if (!check_declared_tensors (m, root, ferr, sizeof ferr))
    return fail (err, errlen, "%s: %s", what, ferr), CEL_ERROR_FORMAT;
  if (!analyse (m, ferr, sizeof ferr))
    return fail (err, errlen, "%s: %s", what, ferr), CEL_ERROR_FORMAT;
  /* Every tensor in the file must be used: a stray tensor usually means a wrong architecture. */
  for (size_t t = 0; t < cel_safetensors_count (m->st); t++) {
    const cel_tensor_info *ti = cel_safetensors_tensor (m->st, t);
    bool used = false;
    for (int32_t k = 0; k < m->n_layers && !used; k++)
      used = m->layers[k].weight == ti || m->layers[k].bias == ti;
    if (!used)
      return fail (err, errlen, "%s: tensor '%s' is not used by the architecture", what, ti->name), CEL_ERROR_FORMAT;
    m->info.parameters += ti->count;
  }
  const char *s;
  m->info.name = (s = cel_safetensors_metadata (m->st, "celgan.name")) ? s : "";
  m->info.description = (s = cel_safetensors_metadata (m->st, "celgan.description")) ? s : "";
  m->info.license = (s = cel_safetensors_metadata (m->st, "celgan.license")) ? s : "";
  m->info.family = family && family->type == CEL_JSON_STRING ? family->string : "graph";
  m->info.needs_reference = m->n_inputs == 2;
  return CEL_OK;
}

cel_status cel_model_load_memory (const void *data, size_t size, const char *what, cel_model **out, char *err,
                                  size_t errlen) {
  *out = NULL;
  cel_model *m = calloc (1, sizeof *m);
  if (!m)
    return fail (err, errlen, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  m->strength = 1;
  cel_status st = cel_safetensors_open_memory (data, size, what, &m->st, err, errlen);
  if (!st)
    st = finish_load (m, what, err, errlen);
  if (st) {
    cel_model_free (m);
    return st;
  }
  *out = m;
  return CEL_OK;
}

cel_status cel_model_load (const char *path, cel_model **out, char *err, size_t errlen) {
  *out = NULL;
  cel_model *m = calloc (1, sizeof *m);
  if (!m)
    return fail (err, errlen, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  m->strength = 1;
  cel_status st = cel_safetensors_open (path, &m->st, err, errlen);
  if (!st)
    st = finish_load (m, path, err, errlen);
  if (st) {
    cel_model_free (m);
    return st;
  }
  *out = m;
  return CEL_OK;
}

void cel_model_free (cel_model *m) {
  if (!m)
    return;
  cel_safetensors_close (m->st);
  cel_json_free (m->arch_doc);
  cel_json_free (m->graph_doc);
  free (m->graph_json);
  free (m->layers);
  free (m);
}

cel_status cel_model_set_strength (cel_model *m, float strength) {
  if (!m || !(strength >= 0 && strength <= 1))
    return CEL_ERROR_INVALID_ARGUMENT;
  m->strength = strength;
  return CEL_OK;
}

const cel_model_info *cel_model_get_info (const cel_model *m) {
  return &m->info;
}

const cel_safetensors *cel_model_tensors (const cel_model *m) {
  return m->st;
}

const char *cel_model_graph_json (const cel_model *m) {
  return m->graph_json;
}

/* ---- creating a model file with fresh weights -------------------------------------------------- */

static uint64_t splitmix (uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

cel_status cel_model_create_file (const char *path, const char *architecture, uint64_t seed, const char *const *meta,
                                  size_t n_meta, char *err, size_t errlen) {
  char jerr[300];
  cel_json_doc *arch = cel_json_parse (architecture, strlen (architecture), jerr, sizeof jerr);
  if (!arch)
    return fail (err, errlen, "architecture: %s", jerr), CEL_ERROR_INVALID_ARGUMENT;
  cel_strbuf gj = { 0 };
  cel_json_doc *graph = NULL;
  cel_tensor_entry *entries = NULL;
  float **data = NULL;
  size_t n = 0;
  const char **all_meta = NULL;
  cel_status st = CEL_ERROR_INVALID_ARGUMENT;
  if (!cel_family_expand (cel_json_root (arch), &gj, err, errlen))
    goto done;
  if (!(graph = cel_json_parse (gj.data, gj.len, jerr, sizeof jerr))) {
    fail (err, errlen, "expanded architecture: %s", jerr);
    goto done;
  }
  const cel_json *decl = cel_json_get (cel_json_root (graph), "tensors"), *nodes = cel_json_get (cel_json_root (graph), "nodes");
  if (!decl || decl->type != CEL_JSON_OBJECT || !nodes) {
    fail (err, errlen, "the architecture does not declare its tensors");
    goto done;
  }
  entries = calloc (decl->count + 1, sizeof *entries);
  data = calloc (decl->count + 1, sizeof *data);
  all_meta = calloc (2 * n_meta + 4, sizeof *all_meta);
  if (!entries || !data || !all_meta) {
    st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    goto done;
  }
  uint64_t rng = seed * 0x2545F4914F6CDD1DULL + 1;
  for (const cel_json *d = decl->child; d; d = d->next, n++) {
    cel_tensor_entry *t = &entries[n];
    t->name = d->key;
    t->dtype = CEL_DTYPE_F32;
    t->rank = (int32_t) d->count;
    int64_t count = 1;
    for (int32_t i = 0; i < t->rank && i < CEL_MAX_RANK; i++) {
      const cel_json *e = cel_json_at (d, (size_t) i);
      t->shape[i] = e && e->is_integer ? e->integer : 0;
      count *= t->shape[i];
    }
    if (t->rank < 1 || t->rank > CEL_MAX_RANK || count <= 0 || count > ((int64_t) 1 << 28)) {
      fail (err, errlen, "tensor '%s' has a bad declared shape", d->key);
      goto done;
    }
    if (!(data[n] = malloc ((size_t) count * sizeof (float)))) {
      st = CEL_ERROR_OUT_OF_HOST_MEMORY;
      goto done;
    }
    t->data = data[n];
    /* PyTorch's defaults: conv weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with
     * a = sqrt(5) gives the same bound for weights); norm weights 1, norm biases 0. The bias's fan_in is
     * its layer's weight's (taken from the weight declared just before it). */
    size_t len = strlen (d->key);
    bool is_norm = strstr (d->key, ".norm.") != NULL;
    bool is_bias = len > 5 && strcmp (d->key + len - 5, ".bias") == 0;
    double fan_in = 1;
    if (t->rank == 4)
      fan_in = (double) t->shape[1] * t->shape[2] * t->shape[3];
    else if (is_bias && n > 0 && entries[n - 1].rank == 4)
      fan_in = (double) entries[n - 1].shape[1] * entries[n - 1].shape[2] * entries[n - 1].shape[3];
    double bound = 1.0 / sqrt (fan_in);
    for (int64_t i = 0; i < count; i++) {
      if (is_norm)
        data[n][i] = is_bias ? 0.0f : 1.0f;
      else
        data[n][i] = (float) ((((double) (splitmix (&rng) >> 11) / 9007199254740992.0) * 2 - 1) * bound);
    }
  }
  size_t k = 0;
  all_meta[k++] = "celgan.format";
  all_meta[k++] = "1";
  all_meta[k++] = "celgan.architecture";
  all_meta[k++] = architecture;
  for (size_t i = 0; i < n_meta; i++) {
    all_meta[k++] = meta[2 * i];
    all_meta[k++] = meta[2 * i + 1];
  }
  st = cel_safetensors_save (path, entries, n, all_meta, k / 2, err, errlen);

done:
  for (size_t i = 0; data && i <= n; i++)
    free (data[i]);
  free (data);
  free (entries);
  free (all_meta);
  cel_json_free (graph);
  cel_json_free (arch);
  cel_strbuf_free (&gj);
  return st;
}
