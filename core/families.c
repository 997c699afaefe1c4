/* Model families expanded into the generic graph form. Each family reads its hyper-parameters strictly
 * (unknown keys are errors) and writes nodes and tensor names; docs/model-format.md lists both. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct emitter {
  cel_strbuf *out;
  cel_strbuf tensors; /* "name":[shape] entries of every tensor the nodes use */
  int32_t n_tensors;
  int32_t count;
  const char *norm;   /* "layer", "instance" or "none" */
  const char *pad_mode;
  double slope;
  char last[96];      /* name of the last node written */
} emitter;

static bool fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static bool fail (char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
  return false;
}

static void tensor (emitter *e, const char *prefix, const char *suffix, int32_t rank, int32_t d0, int32_t d1, int32_t d2,
                    int32_t d3) {
  int32_t d[4] = { d0, d1, d2, d3 };
  cel_strbuf_printf (&e->tensors, "%s\"%s%s\":[", e->n_tensors++ ? "," : "", prefix, suffix);
  for (int32_t i = 0; i < rank; i++)
    cel_strbuf_printf (&e->tensors, "%s%d", i ? "," : "", (int) d[i]);
  cel_strbuf_puts (&e->tensors, "]");
}

static void begin_node (emitter *e, const char *name, const char *op, const char *in0, const char *in1) {
  cel_strbuf_printf (e->out, "%s{\"name\":", e->count++ ? "," : "");
  cel_strbuf_json_string (e->out, name);
  cel_strbuf_printf (e->out, ",\"op\":\"%s\",\"in\":[", op);
  cel_strbuf_json_string (e->out, in0);
  if (in1) {
    cel_strbuf_puts (e->out, ",");
    cel_strbuf_json_string (e->out, in1);
  }
  cel_strbuf_puts (e->out, "]");
  snprintf (e->last, sizeof e->last, "%s", name);
}

/* conv (+ norm + leaky relu when `act`), tensors under prefix: prefix.conv.weight [, .conv.bias],
 * prefix.norm.weight, prefix.norm.bias. pad: top, bottom, left, right. */
static void conv_block (emitter *e, const char *prefix, const char *in, int32_t cin, int32_t cout, int32_t k, int32_t stride,
                        const int32_t pad[4], int32_t groups, bool bias, bool norm, bool act) {
  char name[96];
  bool has_norm = norm && strcmp (e->norm, "none") != 0;
  tensor (e, prefix, ".conv.weight", 4, cout, cin / groups, k, k);
  if (bias || !has_norm)
    tensor (e, prefix, ".conv.bias", 1, cout, 0, 0, 0);
  if (has_norm) {
    tensor (e, prefix, ".norm.weight", 1, cout, 0, 0, 0);
    tensor (e, prefix, ".norm.bias", 1, cout, 0, 0, 0);
  }
  snprintf (name, sizeof name, "%s.conv", prefix);
  begin_node (e, name, "conv2d", in, NULL);
  cel_strbuf_printf (e->out, ",\"weight\":\"%s.conv.weight\"", prefix);
  if (bias || !has_norm)
    cel_strbuf_printf (e->out, ",\"bias\":\"%s.conv.bias\"", prefix);
  cel_strbuf_printf (e->out, ",\"stride\":%d,\"padding\":[%d,%d,%d,%d],\"padding_mode\":\"%s\",\"groups\":%d}", (int) stride,
                     (int) pad[0], (int) pad[1], (int) pad[2], (int) pad[3], e->pad_mode, (int) groups);
  if (has_norm) {
    char nname[96], conv[96];
    snprintf (conv, sizeof conv, "%s", e->last);
    snprintf (nname, sizeof nname, "%s.norm", prefix);
    begin_node (e, nname, strcmp (e->norm, "layer") == 0 ? "layer_norm" : "instance_norm", conv, NULL);
    cel_strbuf_printf (e->out, ",\"weight\":\"%s.norm.weight\",\"bias\":\"%s.norm.bias\",\"eps\":1e-5}", prefix, prefix);
  }
  if (act) {
    char aname[96], src[96];
    snprintf (src, sizeof src, "%s", e->last);
    snprintf (aname, sizeof aname, "%s.act", prefix);
    begin_node (e, aname, "leaky_relu", src, NULL);
    cel_strbuf_printf (e->out, ",\"slope\":%.17g}", e->slope);
  }
}

static void same_pad (int32_t k, int32_t pad[4]) {
  pad[0] = pad[1] = pad[2] = pad[3] = k / 2;
}

/* ---- reading hyper-parameters ----------------------------------------------------------------- */

static bool get_int (const cel_json *o, const char *key, int32_t def, int32_t lo, int32_t hi, int32_t *out, char *err,
                     size_t errlen) {
  const cel_json *v = cel_json_get (o, key);
  *out = def;
  if (!v)
    return true;
  if (v->type != CEL_JSON_NUMBER || !v->is_integer || v->integer < lo || v->integer > hi)
    return fail (err, errlen, "architecture: '%s' must be an integer in %d..%d", key, (int) lo, (int) hi);
  *out = (int32_t) v->integer;
  return true;
}

static bool get_choice (const cel_json *o, const char *key, const char *def, const char *const *choices, const char **out,
                        char *err, size_t errlen) {
  const cel_json *v = cel_json_get (o, key);
  *out = def;
  if (!v)
    return true;
  for (int i = 0; v->type == CEL_JSON_STRING && choices[i]; i++)
    if (strcmp (v->string, choices[i]) == 0) {
      *out = choices[i];
      return true;
    }
  return fail (err, errlen, "architecture: '%s' has an unknown value", key);
}

static bool get_int_list (const cel_json *o, const char *key, int32_t *out, int32_t max, int32_t *n, char *err, size_t errlen) {
  const cel_json *v = cel_json_get (o, key);
  if (!v || v->type != CEL_JSON_ARRAY || v->count < 1 || v->count > (size_t) max)
    return fail (err, errlen, "architecture: '%s' must be a list of 1..%d integers", key, (int) max);
  *n = (int32_t) v->count;
  for (size_t i = 0; i < v->count; i++) {
    const cel_json *e = cel_json_at (v, i);
    if (e->type != CEL_JSON_NUMBER || !e->is_integer || e->integer < 1 || e->integer > 4096)
      return fail (err, errlen, "architecture: '%s' entries must be integers in 1..4096", key);
    out[i] = (int32_t) e->integer;
  }
  return true;
}

static bool only_keys (const cel_json *o, const char *const *keys, char *err, size_t errlen) {
  for (const cel_json *m = o->child; m; m = m->next) {
    bool ok = false;
    for (int i = 0; keys[i] && !ok; i++)
      ok = strcmp (m->key, keys[i]) == 0;
    if (!ok)
      return fail (err, errlen, "architecture: unknown key '%s' for this family", m->key);
  }
  return true;
}

/* ---- style-generator -------------------------------------------------------------------------- */

static bool expand_style_generator (const cel_json *a, cel_strbuf *out, char *err, size_t errlen) {
  static const char *const keys[] = { "family", "in_channels", "out_channels", "widths", "stem_kernel", "down_convs",
                                      "mid_conv", "blocks", "block", "block_width", "expansion", "up_widths", "up_convs",
                                      "upsample", "align_corners", "head_kernel", "norm", "padding_mode", "slope", "skips",
                                      NULL };
  static const char *const blocks[] = { "residual", "inverted-residual", NULL };
  static const char *const norms[] = { "layer", "instance", "none", NULL };
  static const char *const pads[] = { "reflect", "zero", NULL };
  static const char *const ups[] = { "resize", "conv-transpose", NULL };
  if (!only_keys (a, keys, err, errlen))
    return false;
  int32_t in_ch, out_ch, widths[8], n_w, up_w[8], n_up, stem_k, down_convs, mid_conv, n_blocks, block_w, expansion, up_convs,
    head_k, align, skips;
  const char *block, *norm, *pad_mode, *upsample;
  if (!get_int (a, "in_channels", 3, 1, 4, &in_ch, err, errlen) || !get_int (a, "out_channels", 3, 1, 4, &out_ch, err, errlen) ||
      !get_int_list (a, "widths", widths, 8, &n_w, err, errlen) || !get_int (a, "stem_kernel", 7, 1, 15, &stem_k, err, errlen) ||
      !get_int (a, "down_convs", 1, 0, 8, &down_convs, err, errlen) || !get_int (a, "mid_conv", 0, 0, 1, &mid_conv, err, errlen) ||
      !get_int (a, "skips", 0, 0, 1, &skips, err, errlen) ||
      !get_int (a, "blocks", 4, 0, 64, &n_blocks, err, errlen) ||
      !get_choice (a, "block", "residual", blocks, &block, err, errlen) ||
      !get_int (a, "block_width", widths[n_w - 1], 1, 4096, &block_w, err, errlen) ||
      !get_int (a, "expansion", 2, 1, 8, &expansion, err, errlen) || !get_int (a, "up_convs", 1, 1, 8, &up_convs, err, errlen) ||
      !get_choice (a, "upsample", "resize", ups, &upsample, err, errlen) ||
      !get_int (a, "align_corners", 1, 0, 1, &align, err, errlen) || !get_int (a, "head_kernel", 7, 1, 15, &head_k, err, errlen) ||
      !get_choice (a, "norm", "layer", norms, &norm, err, errlen) ||
      !get_choice (a, "padding_mode", "reflect", pads, &pad_mode, err, errlen))
    return false;
  if (cel_json_get (a, "up_widths")) {
    if (!get_int_list (a, "up_widths", up_w, 8, &n_up, err, errlen))
      return false;
  } else {
    n_up = n_w - 1;
    for (int32_t i = 0; i < n_up; i++)
      up_w[i] = widths[i + 1];
  }
  if (n_w < 2 || n_up != n_w - 1)
    return fail (err, errlen, "architecture: widths needs at least 2 entries and up_widths one fewer than widths");
  if (stem_k % 2 == 0 || head_k % 2 == 0)
    return fail (err, errlen, "architecture: stem_kernel and head_kernel must be odd");
  for (int32_t l = 0; skips && l < n_up; l++)
    if (up_w[l] != widths[l])
      return fail (err, errlen, "architecture: skips needs up_widths equal to the first widths (each decoder level adds the "
                   "encoder's output of its size)");
  double slope = 0.2;
  const cel_json *sv = cel_json_get (a, "slope");
  if (sv) {
    if (sv->type != CEL_JSON_NUMBER || sv->number < 0 || sv->number > 1)
      return fail (err, errlen, "architecture: 'slope' must be in 0..1");
    slope = sv->number;
  }

  emitter e = { .out = out, .norm = norm, .pad_mode = pad_mode, .slope = slope };
  cel_strbuf_printf (out, "{\"family\":\"graph\",\"inputs\":[\"image\"],\"in_channels\":%d,\"out_channels\":%d,"
                     "\"input_range\":[-1,1],\"output_range\":[-1,1],\"nodes\":[", (int) in_ch, (int) out_ch);
  int32_t pad[4], ch = widths[0];
  char prefix[64], stage_out[8][96];
  same_pad (stem_k, pad);
  conv_block (&e, "stem", "image", in_ch, widths[0], stem_k, 1, pad, 1, false, true, true);
  snprintf (stage_out[0], sizeof stage_out[0], "%s", e.last);
  for (int32_t s = 1; s < n_w; s++) {
    /* stride 2 with (top 0, bottom 1, left 0, right 1) padding: exactly half size for even inputs */
    int32_t dpad[4] = { 0, 1, 0, 1 };
    char in[96];
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "down%d.0", (int) s);
    conv_block (&e, prefix, in, widths[s - 1], widths[s], 3, 2, dpad, 1, false, true, true);
    for (int32_t k = 1; k <= down_convs; k++) {
      snprintf (in, sizeof in, "%s", e.last);
      snprintf (prefix, sizeof prefix, "down%d.%d", (int) s, (int) k);
      same_pad (3, pad);
      conv_block (&e, prefix, in, widths[s], widths[s], 3, 1, pad, 1, false, true, true);
    }
    ch = widths[s];
    snprintf (stage_out[s], sizeof stage_out[s], "%s", e.last);
  }
  char in[96];
  if (mid_conv) {
    snprintf (in, sizeof in, "%s", e.last);
    same_pad (3, pad);
    conv_block (&e, "mid.pre", in, ch, ch, 3, 1, pad, 1, false, true, true);
  }
  int32_t cur = ch;
  for (int32_t b = 0; b < n_blocks; b++) {
    char skip[96];
    snprintf (skip, sizeof skip, "%s", e.last);
    if (strcmp (block, "residual") == 0) {
      same_pad (3, pad);
      snprintf (prefix, sizeof prefix, "blocks.%d.0", (int) b);
      conv_block (&e, prefix, skip, cur, cur, 3, 1, pad, 1, false, true, true);
      snprintf (in, sizeof in, "%s", e.last);
      snprintf (prefix, sizeof prefix, "blocks.%d.1", (int) b);
      conv_block (&e, prefix, in, cur, cur, 3, 1, pad, 1, false, true, false);
    } else {
      int32_t out_w = block_w, bottleneck = cur * expansion;
      int32_t zero[4] = { 0, 0, 0, 0 };
      snprintf (in, sizeof in, "%s", skip);
      if (expansion != 1) {
        snprintf (prefix, sizeof prefix, "blocks.%d.expand", (int) b);
        conv_block (&e, prefix, in, cur, bottleneck, 1, 1, zero, 1, false, true, true);
        snprintf (in, sizeof in, "%s", e.last);
      }
      same_pad (3, pad);
      snprintf (prefix, sizeof prefix, "blocks.%d.dw", (int) b);
      conv_block (&e, prefix, in, bottleneck, bottleneck, 3, 1, pad, bottleneck, true, true, true);
      snprintf (in, sizeof in, "%s", e.last);
      snprintf (prefix, sizeof prefix, "blocks.%d.pw", (int) b);
      conv_block (&e, prefix, in, bottleneck, out_w, 1, 1, zero, 1, false, true, false);
      if (out_w != cur) { /* no residual when the width changes */
        cur = out_w;
        continue;
      }
    }
    char sum[96], body[96];
    snprintf (body, sizeof body, "%s", e.last);
    snprintf (sum, sizeof sum, "blocks.%d.add", (int) b);
    begin_node (&e, sum, "add", skip, body);
    cel_strbuf_puts (out, "}");
  }
  if (cur != ch) {
    snprintf (in, sizeof in, "%s", e.last);
    same_pad (3, pad);
    conv_block (&e, "mid.post", in, cur, ch, 3, 1, pad, 1, false, true, true);
    cur = ch;
  }
  for (int32_t lvl = n_up - 1; lvl >= 0; lvl--) {
    char up[96];
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (up, sizeof up, "up%d.upsample", (int) lvl);
    if (strcmp (upsample, "resize") == 0) {
      begin_node (&e, up, "resize", in, NULL);
      cel_strbuf_puts (out, ",\"size_of\":");
      cel_strbuf_json_string (out, lvl == 0 ? "image" : stage_out[lvl]);
      cel_strbuf_printf (out, ",\"mode\":\"%s\"}", align ? "bilinear-align-corners" : "bilinear");
    } else {
      begin_node (&e, up, "conv_transpose2d", in, NULL);
      cel_strbuf_printf (out, ",\"weight\":\"up%d.upsample.weight\",\"bias\":\"up%d.upsample.bias\",\"stride\":2,\"padding\":1}",
                         (int) lvl, (int) lvl);
      char tp[32];
      snprintf (tp, sizeof tp, "up%d.upsample", (int) lvl);
      tensor (&e, tp, ".weight", 4, cur, cur, 4, 4);
      tensor (&e, tp, ".bias", 1, cur, 0, 0, 0);
      /* a 4x4 stride-2 transposed conv: exactly double size; the weight is (cur, cur, 4, 4) */
    }
    for (int32_t k = 0; k < up_convs; k++) {
      snprintf (in, sizeof in, "%s", e.last);
      snprintf (prefix, sizeof prefix, "up%d.%d", (int) lvl, (int) k);
      same_pad (3, pad);
      conv_block (&e, prefix, in, k == 0 ? cur : up_w[lvl], up_w[lvl], 3, 1, pad, 1, false, true, true);
    }
    cur = up_w[lvl];
    if (skips) { /* U-Net style, additive: the encoder's output at this size */
      char body[96], sum[32];
      snprintf (body, sizeof body, "%s", e.last);
      snprintf (sum, sizeof sum, "up%d.skip", (int) lvl);
      begin_node (&e, sum, "add", body, stage_out[lvl]);
      cel_strbuf_puts (out, "}");
    }
  }
  snprintf (in, sizeof in, "%s", e.last);
  same_pad (head_k, pad);
  conv_block (&e, "head", in, cur, widths[0], head_k, 1, pad, 1, false, true, true);
  snprintf (in, sizeof in, "%s", e.last);
  begin_node (&e, "out.conv", "conv2d", in, NULL);
  cel_strbuf_puts (out, ",\"weight\":\"out.weight\"}");
  tensor (&e, "out", ".weight", 4, out_ch, widths[0], 1, 1);
  snprintf (in, sizeof in, "%s", e.last);
  begin_node (&e, "out.tanh", "tanh", in, NULL);
  cel_strbuf_puts (out, "}],\"output\":\"out.tanh\",\"tensors\":{");
  if (e.tensors.data)
    cel_strbuf_append (out, e.tensors.data, e.tensors.len);
  cel_strbuf_puts (out, "}}");
  bool ok = !e.tensors.failed;
  cel_strbuf_free (&e.tensors);
  return ok || fail (err, errlen, "out of memory");
}

/* ---- reference-generator -------------------------------------------------------------------------- */

/* Content encoder and style encoder (same shape, separate weights), AdaIN of the content features to the
 * style features' statistics, residual blocks, and a decoder that upsamples back to the image size. */
static bool expand_reference_generator (const cel_json *a, cel_strbuf *out, char *err, size_t errlen) {
  static const char *const keys[] = { "family", "in_channels", "out_channels", "widths", "stem_kernel", "blocks",
                                      "padding_mode", "slope", "align_corners", "head_kernel", NULL };
  static const char *const pads[] = { "reflect", "zero", NULL };
  if (!only_keys (a, keys, err, errlen))
    return false;
  int32_t in_ch, out_ch, widths[8], n_w, stem_k, n_blocks, align, head_k;
  const char *pad_mode;
  if (!get_int (a, "in_channels", 3, 1, 4, &in_ch, err, errlen) || !get_int (a, "out_channels", 3, 1, 4, &out_ch, err, errlen) ||
      !get_int_list (a, "widths", widths, 8, &n_w, err, errlen) || !get_int (a, "stem_kernel", 3, 1, 15, &stem_k, err, errlen) ||
      !get_int (a, "blocks", 2, 0, 64, &n_blocks, err, errlen) || !get_int (a, "align_corners", 0, 0, 1, &align, err, errlen) ||
      !get_int (a, "head_kernel", 3, 1, 15, &head_k, err, errlen) ||
      !get_choice (a, "padding_mode", "reflect", pads, &pad_mode, err, errlen))
    return false;
  if (n_w < 1 || stem_k % 2 == 0 || head_k % 2 == 0)
    return fail (err, errlen, "architecture: widths needs an entry; kernels must be odd");
  double slope = 0.2;
  const cel_json *sv = cel_json_get (a, "slope");
  if (sv && (sv->type != CEL_JSON_NUMBER || sv->number < 0 || sv->number > 1))
    return fail (err, errlen, "architecture: 'slope' must be in 0..1");
  if (sv)
    slope = sv->number;
  emitter e = { .out = out, .norm = "none", .pad_mode = pad_mode, .slope = slope };
  cel_strbuf_printf (out, "{\"family\":\"graph\",\"inputs\":[\"image\",\"reference\"],\"in_channels\":%d,\"out_channels\":%d,"
                     "\"input_range\":[-1,1],\"output_range\":[-1,1],\"nodes\":[", (int) in_ch, (int) out_ch);
  int32_t pad[4], dpad[4] = { 0, 1, 0, 1 };
  char prefix[64], in[96], stage_out[8][96], enc_out[2][96];
  static const char *const which[2] = { "content", "style" };
  for (int k = 0; k < 2; k++) {
    snprintf (prefix, sizeof prefix, "enc.%s.stem", which[k]);
    same_pad (stem_k, pad);
    conv_block (&e, prefix, k == 0 ? "image" : "reference", in_ch, widths[0], stem_k, 1, pad, 1, true, false, true);
    if (k == 0)
      snprintf (stage_out[0], sizeof stage_out[0], "%s", e.last);
    for (int32_t st = 1; st < n_w; st++) {
      snprintf (in, sizeof in, "%s", e.last);
      snprintf (prefix, sizeof prefix, "enc.%s.down%d", which[k], (int) st);
      conv_block (&e, prefix, in, widths[st - 1], widths[st], 3, 2, dpad, 1, true, false, true);
      if (k == 0)
        snprintf (stage_out[st], sizeof stage_out[st], "%s", e.last);
    }
    snprintf (enc_out[k], sizeof enc_out[k], "%s", e.last);
  }
  int32_t ch = widths[n_w - 1];
  begin_node (&e, "adain", "adain", enc_out[0], enc_out[1]);
  cel_strbuf_puts (out, ",\"eps\":1e-5}");
  for (int32_t b = 0; b < n_blocks; b++) {
    char skip[96], body[96], sum[96];
    snprintf (skip, sizeof skip, "%s", e.last);
    same_pad (3, pad);
    snprintf (prefix, sizeof prefix, "dec.blocks.%d.0", (int) b);
    conv_block (&e, prefix, skip, ch, ch, 3, 1, pad, 1, true, false, true);
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "dec.blocks.%d.1", (int) b);
    conv_block (&e, prefix, in, ch, ch, 3, 1, pad, 1, true, false, false);
    snprintf (body, sizeof body, "%s", e.last);
    snprintf (sum, sizeof sum, "dec.blocks.%d.add", (int) b);
    begin_node (&e, sum, "add", skip, body);
    cel_strbuf_puts (out, "}");
  }
  for (int32_t lvl = n_w - 2; lvl >= 0; lvl--) {
    char up[96];
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (up, sizeof up, "dec.up%d.upsample", (int) lvl);
    begin_node (&e, up, "resize", in, NULL);
    cel_strbuf_puts (out, ",\"size_of\":");
    cel_strbuf_json_string (out, stage_out[lvl]);
    cel_strbuf_printf (out, ",\"mode\":\"%s\"}", align ? "bilinear-align-corners" : "bilinear");
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "dec.up%d", (int) lvl);
    same_pad (3, pad);
    conv_block (&e, prefix, in, ch, widths[lvl], 3, 1, pad, 1, true, false, true);
    ch = widths[lvl];
  }
  snprintf (in, sizeof in, "%s", e.last);
  same_pad (head_k, pad);
  conv_block (&e, "dec.head", in, ch, out_ch, head_k, 1, pad, 1, true, false, false);
  snprintf (in, sizeof in, "%s", e.last);
  begin_node (&e, "out.tanh", "tanh", in, NULL);
  cel_strbuf_puts (out, "}],\"output\":\"out.tanh\",\"tensors\":{");
  if (e.tensors.data)
    cel_strbuf_append (out, e.tensors.data, e.tensors.len);
  cel_strbuf_puts (out, "}}");
  bool ok = !e.tensors.failed;
  cel_strbuf_free (&e.tensors);
  return ok || fail (err, errlen, "out of memory");
}

/* ---- reference-gan ---------------------------------------------------------------------------------- */

/* A convolution whose output is renormalized with a scale and shift computed from the style code (AdaIN
 * from a code, as in FUNIT / StarGAN v2): y = instance_norm (conv (x)) * (1 + gamma (code)) + beta (code), then
 * LeakyReLU when `act`. gamma and beta are 1x1 convolutions (linear layers) of the code vector. Tensors
 * P.conv.weight (no bias: the norm removes it), P.gamma.weight, P.gamma.bias, P.beta.weight, P.beta.bias. */
static void adain_conv (emitter *e, const char *prefix, const char *in, int32_t cin, int32_t cout, int32_t k, int32_t style_dim,
                        bool act) {
  char conv[96], norm[96], gamma[96], gamma1[96], beta[96], scaled[96], sum[96], src[96];
  int32_t pad[4];
  same_pad (k, pad);
  tensor (e, prefix, ".conv.weight", 4, cout, cin, k, k);
  tensor (e, prefix, ".gamma.weight", 4, cout, style_dim, 1, 1);
  tensor (e, prefix, ".gamma.bias", 1, cout, 0, 0, 0);
  tensor (e, prefix, ".beta.weight", 4, cout, style_dim, 1, 1);
  tensor (e, prefix, ".beta.bias", 1, cout, 0, 0, 0);
  snprintf (conv, sizeof conv, "%s.conv", prefix);
  begin_node (e, conv, "conv2d", in, NULL);
  cel_strbuf_printf (e->out, ",\"weight\":\"%s.conv.weight\",\"padding\":[%d,%d,%d,%d],\"padding_mode\":\"%s\"}", prefix,
                     (int) pad[0], (int) pad[1], (int) pad[2], (int) pad[3], e->pad_mode);
  snprintf (norm, sizeof norm, "%s.norm", prefix);
  begin_node (e, norm, "instance_norm", conv, NULL);
  cel_strbuf_puts (e->out, ",\"eps\":1e-5}");
  snprintf (gamma, sizeof gamma, "%s.gamma", prefix);
  begin_node (e, gamma, "conv2d", "style.code", NULL);
  cel_strbuf_printf (e->out, ",\"weight\":\"%s.gamma.weight\",\"bias\":\"%s.gamma.bias\"}", prefix, prefix);
  snprintf (gamma1, sizeof gamma1, "%s.gamma1", prefix);
  begin_node (e, gamma1, "scale_shift", gamma, NULL);
  cel_strbuf_puts (e->out, ",\"scale\":1,\"shift\":1}");
  snprintf (beta, sizeof beta, "%s.beta", prefix);
  begin_node (e, beta, "conv2d", "style.code", NULL);
  cel_strbuf_printf (e->out, ",\"weight\":\"%s.beta.weight\",\"bias\":\"%s.beta.bias\"}", prefix, prefix);
  snprintf (scaled, sizeof scaled, "%s.scaled", prefix);
  begin_node (e, scaled, "mul", norm, gamma1);
  cel_strbuf_puts (e->out, "}");
  snprintf (sum, sizeof sum, "%s.adain", prefix);
  begin_node (e, sum, "add", scaled, beta);
  cel_strbuf_puts (e->out, "}");
  if (act) {
    snprintf (src, sizeof src, "%s.act", prefix);
    begin_node (e, src, "leaky_relu", sum, NULL);
    cel_strbuf_printf (e->out, ",\"slope\":%.17g}", e->slope);
  }
}

/* The generator of celgan train --reference-guided: a content encoder with instance norms, a style encoder that
 * pools the reference into one style code vector, and a decoder whose every convolution is renormalized by
 * AdaIN from that code (adain_conv). The code depends on the whole reference and not on the image, so tiled
 * execution is exact. */
static bool expand_reference_gan (const cel_json *a, cel_strbuf *out, char *err, size_t errlen) {
  static const char *const keys[] = { "family", "in_channels", "out_channels", "widths", "style_widths", "style_dim",
                                      "stem_kernel", "blocks", "padding_mode", "slope", "align_corners", "head_kernel", NULL };
  static const char *const pads[] = { "reflect", "zero", NULL };
  if (!only_keys (a, keys, err, errlen))
    return false;
  int32_t in_ch, out_ch, widths[8], n_w, sw[8], n_sw, style_dim, stem_k, n_blocks, align, head_k;
  const char *pad_mode;
  if (!get_int (a, "in_channels", 3, 1, 4, &in_ch, err, errlen) || !get_int (a, "out_channels", 3, 1, 4, &out_ch, err, errlen) ||
      !get_int_list (a, "widths", widths, 8, &n_w, err, errlen) || !get_int (a, "style_dim", 64, 1, 4096, &style_dim, err, errlen) ||
      !get_int (a, "stem_kernel", 5, 1, 15, &stem_k, err, errlen) || !get_int (a, "blocks", 2, 0, 64, &n_blocks, err, errlen) ||
      !get_int (a, "align_corners", 0, 0, 1, &align, err, errlen) || !get_int (a, "head_kernel", 5, 1, 15, &head_k, err, errlen) ||
      !get_choice (a, "padding_mode", "reflect", pads, &pad_mode, err, errlen))
    return false;
  if (cel_json_get (a, "style_widths")) {
    if (!get_int_list (a, "style_widths", sw, 8, &n_sw, err, errlen))
      return false;
  } else {
    n_sw = n_w;
    memcpy (sw, widths, sizeof sw);
  }
  if (stem_k % 2 == 0 || head_k % 2 == 0)
    return fail (err, errlen, "architecture: kernels must be odd");
  double slope = 0.2;
  const cel_json *sv = cel_json_get (a, "slope");
  if (sv && (sv->type != CEL_JSON_NUMBER || sv->number < 0 || sv->number > 1))
    return fail (err, errlen, "architecture: 'slope' must be in 0..1");
  if (sv)
    slope = sv->number;
  emitter e = { .out = out, .norm = "instance", .pad_mode = pad_mode, .slope = slope };
  cel_strbuf_printf (out, "{\"family\":\"graph\",\"inputs\":[\"image\",\"reference\"],\"in_channels\":%d,\"out_channels\":%d,"
                     "\"input_range\":[-1,1],\"output_range\":[-1,1],\"nodes\":[", (int) in_ch, (int) out_ch);
  int32_t pad[4], dpad[4] = { 0, 1, 0, 1 };
  char prefix[64], in[96], stage_out[8][96];
  /* style encoder: no norms (the reference's statistics are what it reads), bias and LeakyReLU */
  e.norm = "none";
  same_pad (stem_k, pad);
  conv_block (&e, "enc.style.stem", "reference", in_ch, sw[0], stem_k, 1, pad, 1, true, false, true);
  for (int32_t st = 1; st < n_sw; st++) {
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "enc.style.down%d", (int) st);
    conv_block (&e, prefix, in, sw[st - 1], sw[st], 3, 2, dpad, 1, true, false, true);
  }
  snprintf (in, sizeof in, "%s", e.last);
  begin_node (&e, "style.pool", "global_avg_pool", in, NULL);
  cel_strbuf_puts (out, "}");
  begin_node (&e, "style.code", "conv2d", "style.pool", NULL);
  cel_strbuf_puts (out, ",\"weight\":\"enc.style.code.weight\",\"bias\":\"enc.style.code.bias\"}");
  tensor (&e, "enc.style.code", ".weight", 4, style_dim, sw[n_sw - 1], 1, 1);
  tensor (&e, "enc.style.code", ".bias", 1, style_dim, 0, 0, 0);
  /* content encoder: instance norm with affine parameters */
  e.norm = "instance";
  same_pad (stem_k, pad);
  conv_block (&e, "enc.content.stem", "image", in_ch, widths[0], stem_k, 1, pad, 1, false, true, true);
  snprintf (stage_out[0], sizeof stage_out[0], "%s", e.last);
  for (int32_t st = 1; st < n_w; st++) {
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "enc.content.down%d", (int) st);
    conv_block (&e, prefix, in, widths[st - 1], widths[st], 3, 2, dpad, 1, false, true, true);
    snprintf (stage_out[st], sizeof stage_out[st], "%s", e.last);
  }
  int32_t ch = widths[n_w - 1];
  for (int32_t b = 0; b < n_blocks; b++) {
    char skip[96], body[96], sum[96];
    snprintf (skip, sizeof skip, "%s", e.last);
    snprintf (prefix, sizeof prefix, "dec.blocks.%d.0", (int) b);
    adain_conv (&e, prefix, skip, ch, ch, 3, style_dim, true);
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "dec.blocks.%d.1", (int) b);
    adain_conv (&e, prefix, in, ch, ch, 3, style_dim, false);
    snprintf (body, sizeof body, "%s", e.last);
    snprintf (sum, sizeof sum, "dec.blocks.%d.add", (int) b);
    begin_node (&e, sum, "add", skip, body);
    cel_strbuf_puts (out, "}");
  }
  for (int32_t lvl = n_w - 2; lvl >= 0; lvl--) {
    char up[96];
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (up, sizeof up, "dec.up%d.upsample", (int) lvl);
    begin_node (&e, up, "resize", in, NULL);
    cel_strbuf_puts (out, ",\"size_of\":");
    cel_strbuf_json_string (out, stage_out[lvl]);
    cel_strbuf_printf (out, ",\"mode\":\"%s\"}", align ? "bilinear-align-corners" : "bilinear");
    snprintf (in, sizeof in, "%s", e.last);
    snprintf (prefix, sizeof prefix, "dec.up%d", (int) lvl);
    adain_conv (&e, prefix, in, ch, widths[lvl], 3, style_dim, true);
    ch = widths[lvl];
  }
  e.norm = "none";
  snprintf (in, sizeof in, "%s", e.last);
  same_pad (head_k, pad);
  conv_block (&e, "dec.head", in, ch, out_ch, head_k, 1, pad, 1, true, false, false);
  snprintf (in, sizeof in, "%s", e.last);
  begin_node (&e, "out.tanh", "tanh", in, NULL);
  cel_strbuf_puts (out, "}],\"output\":\"out.tanh\",\"tensors\":{");
  if (e.tensors.data)
    cel_strbuf_append (out, e.tensors.data, e.tensors.len);
  cel_strbuf_puts (out, "}}");
  bool ok = !e.tensors.failed;
  cel_strbuf_free (&e.tensors);
  return ok || fail (err, errlen, "out of memory");
}

bool cel_family_expand (const cel_json *arch, cel_strbuf *out, char *err, size_t errlen) {
  if (!arch || arch->type != CEL_JSON_OBJECT)
    return fail (err, errlen, "celgan.architecture must be a JSON object");
  const cel_json *family = cel_json_get (arch, "family");
  if (!family || family->type != CEL_JSON_STRING)
    return fail (err, errlen, "celgan.architecture has no 'family'");
  if (strcmp (family->string, "graph") == 0) {
    cel_json_write (arch, out);
    return true;
  }
  if (strcmp (family->string, "style-generator") == 0)
    return expand_style_generator (arch, out, err, errlen);
  if (strcmp (family->string, "reference-generator") == 0)
    return expand_reference_generator (arch, out, err, errlen);
  if (strcmp (family->string, "reference-gan") == 0)
    return expand_reference_gan (arch, out, err, errlen);
  return fail (err, errlen, "unknown model family '%s' (this CelGAN knows graph, style-generator, reference-generator and "
               "reference-gan)",
               family->string);
}
