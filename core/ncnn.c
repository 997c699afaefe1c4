/* A strict reader of ncnn models: the text .param (magic 7767517, layer and blob counts, one line per layer:
 * type, name, bottom and top counts, blob names, `id=value` params with arrays as `-233xx=n,v1,...,vn`) and
 * the .bin (per layer, in order: weights with a flag word, 0 for fp32 or 0x01306B47 for fp16, then raw fp32
 * biases or slopes). Only the layer types and params the peers' 29 models use are accepted. */
#include "ncnn.h"

#include "celgan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCNN_MAGIC 7767517
#define NCNN_TAG_FP16 0x01306B47u
#define NCNN_MAX_LAYERS 4096
#define NCNN_MAX_NAME 255

/* Each layer type and the param ids it may carry (arrays by their id, 10 for -23310). */
static const struct {
  const char *type;
  const char *ids;
} known_types[] = {
  { "Input", "0 1 2" },
  { "Convolution", "0 1 2 3 4 5 6 8 9 10 11 12 13 14 15 16 18" },
  { "Deconvolution", "0 1 2 3 4 5 6 9 10 11 12 13 14 15 16 18 19 20 21" },
  { "PReLU", "0" },
  { "Split", "" },
  { "Eltwise", "0 1" },
  { "BinaryOp", "0 1 2" },
  { "Crop", "0 1 2 9 10 11" },
  { "Concat", "0" },
  { "Pooling", "0 1 2 3 4 5 6 7" },
  { "InnerProduct", "0 1 2 8 9 10" },
  { "Scale", "0 1" },
  { "Interp", "0 1 2 3 4 6" },
  { "PixelShuffle", "0 1" },
  { "ReLU", "0" },
  { "Sigmoid", "" },
};

static void *fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void *fail (char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
  }
  return NULL;
}

void ncnn_free (ncnn_net *net) {
  if (!net)
    return;
  for (int32_t i = 0; i < net->n_layers; i++) {
    ncnn_layer *L = &net->layers[i];
    free (L->type);
    free (L->name);
    for (int k = 0; k < NCNN_MAX_PARAM_ID; k++)
      free (L->p[k].array);
    free (L->weight);
    free (L->bias);
  }
  free (net->layers);
  for (int32_t i = 0; i < net->n_blobs; i++)
    free (net->blobs[i]);
  free (net->blobs);
  free (net);
}

bool ncnn_int (const ncnn_layer *L, int id, int32_t def, int32_t lo, int32_t hi, int32_t *out) {
  const ncnn_param *p = &L->p[id];
  if (!p->set) {
    *out = def;
    return true;
  }
  if (p->is_array || p->is_float || !(p->value >= lo && p->value <= hi))
    return false;
  *out = (int32_t) p->value;
  return true;
}

/* ---- the .param text ------------------------------------------------------------------------- */

typedef struct lexer {
  const char *p, *end;
  int32_t line;
  const char *file;
  char *err;
  size_t errlen;
} lexer;

/* Next whitespace-separated token on the current line (false at the end of the line). */
static bool token (lexer *lx, const char **tok, size_t *len) {
  while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r'))
    lx->p++;
  if (lx->p >= lx->end || *lx->p == '\n')
    return false;
  *tok = lx->p;
  while (lx->p < lx->end && *lx->p != ' ' && *lx->p != '\t' && *lx->p != '\r' && *lx->p != '\n')
    lx->p++;
  *len = (size_t) (lx->p - *tok);
  return true;
}

/* Skips to the start of the next line; false at the end of the text. */
static bool next_line (lexer *lx) {
  while (lx->p < lx->end && *lx->p != '\n')
    lx->p++;
  if (lx->p >= lx->end)
    return false;
  lx->p++;
  lx->line++;
  return true;
}

static bool parse_int (const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf)
    return false;
  memcpy (buf, s, n);
  buf[n] = 0;
  char *e;
  long long v = strtoll (buf, &e, 10);
  if (*e || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

/* A number as ncnn writes it: an int, or a float with '.' or an exponent. */
static bool parse_number (const char *s, size_t n, double *out, bool *is_float) {
  char buf[48];
  if (n == 0 || n >= sizeof buf)
    return false;
  memcpy (buf, s, n);
  buf[n] = 0;
  *is_float = strpbrk (buf, ".eE") != NULL;
  if (!*is_float) {
    int64_t v;
    if (!parse_int (s, n, INT32_MIN, INT32_MAX, &v))
      return false;
    *out = (double) v;
    return true;
  }
  char *e;
  double v = strtod (buf, &e);
  if (*e || !isfinite (v) || (buf[0] != '-' && buf[0] != '+' && buf[0] != '.' && (buf[0] < '0' || buf[0] > '9')))
    return false;
  *out = v;
  return true;
}

static char *dup_token (const char *s, size_t n) {
  char *d = malloc (n + 1);
  if (d) {
    memcpy (d, s, n);
    d[n] = 0;
  }
  return d;
}

static bool id_allowed (const char *ids, int id) {
  char want[8];
  snprintf (want, sizeof want, "%d", id);
  size_t n = strlen (want);
  for (const char *p = ids; (p = strstr (p, want)); p += n)
    if ((p == ids || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
      return true;
  return false;
}

/* Index of a blob name, adding it when `add` (a top); -1 when unknown or out of room. */
static int32_t blob_index (ncnn_net *net, int32_t max_blobs, const char *s, size_t n, bool add) {
  for (int32_t i = 0; i < net->n_blobs; i++)
    if (strlen (net->blobs[i]) == n && memcmp (net->blobs[i], s, n) == 0)
      return add ? -2 : i;
  if (!add || net->n_blobs >= max_blobs)
    return -1;
  if (!(net->blobs[net->n_blobs] = dup_token (s, n)))
    return -3;
  return net->n_blobs++;
}

static bool parse_param_token (lexer *lx, ncnn_layer *L, const char *tok, size_t len) {
  const char *eq = memchr (tok, '=', len);
  int64_t id;
  if (!eq || !parse_int (tok, (size_t) (eq - tok), -23300 - (NCNN_MAX_PARAM_ID - 1), NCNN_MAX_PARAM_ID - 1, &id) ||
      (id < 0 && id > -23300))
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': '%.*s' is not a param (id=value, id 0..%d or -23300..-%d)", lx->file,
                 (int) lx->line, L->name, (int) (len > 40 ? 40 : len), tok, NCNN_MAX_PARAM_ID - 1, 23300 + NCNN_MAX_PARAM_ID - 1),
           false;
  bool array = id < 0;
  int k = array ? (int) (-id - 23300) : (int) id;
  ncnn_param *p = &L->p[k];
  const char *v = eq + 1, *end = tok + len;
  if (p->set)
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': param %d is given twice", lx->file, (int) lx->line, L->name, k), false;
  size_t i;
  for (i = 0; i < sizeof known_types / sizeof known_types[0] && strcmp (known_types[i].type, L->type); i++)
    ;
  if (!id_allowed (known_types[i].ids, k))
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': %s param %d (%.*s) is not supported", lx->file, (int) lx->line, L->name,
                 L->type, k, (int) (len > 40 ? 40 : len), tok),
           false;
  p->set = true;
  p->is_array = array;
  if (!array) {
    if (!parse_number (v, (size_t) (end - v), &p->value, &p->is_float))
      return fail (lx->err, lx->errlen, "%s:%d: layer '%s': param %d has a bad value '%.*s'", lx->file, (int) lx->line, L->name, k,
                   (int) (end - v > 40 ? 40 : end - v), v),
             false;
    return true;
  }
  const char *comma = memchr (v, ',', (size_t) (end - v));
  int64_t count;
  if (!parse_int (v, (size_t) ((comma ? comma : end) - v), 0, NCNN_MAX_ARRAY, &count))
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': array param %d needs a length 0..%d first, not '%.*s'", lx->file,
                 (int) lx->line, L->name, k, NCNN_MAX_ARRAY, (int) (end - v > 40 ? 40 : end - v), v),
           false;
  p->count = (int32_t) count;
  if (count && !(p->array = calloc ((size_t) count, sizeof *p->array)))
    return fail (lx->err, lx->errlen, "out of memory"), false;
  const char *q = comma;
  for (int64_t j = 0; j < count; j++) {
    if (!q || q >= end)
      return fail (lx->err, lx->errlen, "%s:%d: layer '%s': array param %d has fewer than %d values", lx->file, (int) lx->line,
                   L->name, k, (int) count),
             false;
    q++;
    const char *c2 = memchr (q, ',', (size_t) (end - q));
    bool f;
    if (!parse_number (q, (size_t) ((c2 ? c2 : end) - q), &p->array[j], &f))
      return fail (lx->err, lx->errlen, "%s:%d: layer '%s': array param %d value %d is bad", lx->file, (int) lx->line, L->name, k,
                   (int) j),
             false;
    p->is_float |= f;
    q = c2;
  }
  if (q)
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': array param %d has more than %d values", lx->file, (int) lx->line,
                 L->name, k, (int) count),
           false;
  return true;
}

static bool parse_layer_line (lexer *lx, ncnn_net *net, int32_t max_blobs, ncnn_layer *L) {
  const char *tok;
  size_t len;
  L->line = lx->line;
  if (!token (lx, &tok, &len))
    return fail (lx->err, lx->errlen, "%s:%d: expected a layer line, found an empty line", lx->file, (int) lx->line), false;
  size_t t;
  for (t = 0; t < sizeof known_types / sizeof known_types[0]; t++)
    if (strlen (known_types[t].type) == len && memcmp (known_types[t].type, tok, len) == 0)
      break;
  if (t == sizeof known_types / sizeof known_types[0])
    return fail (lx->err, lx->errlen, "%s:%d: layer type '%.*s' is not supported", lx->file, (int) lx->line,
                 (int) (len > 40 ? 40 : len), tok),
           false;
  if (!(L->type = dup_token (tok, len)))
    return fail (lx->err, lx->errlen, "out of memory"), false;
  if (!token (lx, &tok, &len) || len > NCNN_MAX_NAME)
    return fail (lx->err, lx->errlen, "%s:%d: %s layer without a name (or a name over %d bytes)", lx->file, (int) lx->line, L->type,
                 NCNN_MAX_NAME),
           false;
  if (!(L->name = dup_token (tok, len)))
    return fail (lx->err, lx->errlen, "out of memory"), false;
  int64_t nb, nt;
  if (!token (lx, &tok, &len) || !parse_int (tok, len, 0, NCNN_MAX_BLOBS_PER_LAYER, &nb) || !token (lx, &tok, &len) ||
      !parse_int (tok, len, 0, NCNN_MAX_BLOBS_PER_LAYER, &nt))
    return fail (lx->err, lx->errlen, "%s:%d: layer '%s': bottom and top counts must be 0..%d", lx->file, (int) lx->line, L->name,
                 NCNN_MAX_BLOBS_PER_LAYER),
           false;
  L->n_bottom = (int32_t) nb;
  L->n_top = (int32_t) nt;
  for (int32_t i = 0; i < L->n_bottom + L->n_top; i++) {
    bool top = i >= L->n_bottom;
    if (!token (lx, &tok, &len) || len > NCNN_MAX_NAME)
      return fail (lx->err, lx->errlen, "%s:%d: layer '%s': %d blob names expected", lx->file, (int) lx->line, L->name,
                   (int) (nb + nt)),
             false;
    int32_t b = blob_index (net, max_blobs, tok, len, top);
    if (b == -3)
      return fail (lx->err, lx->errlen, "out of memory"), false;
    if (b < 0)
      return fail (lx->err, lx->errlen, "%s:%d: layer '%s': %s blob '%.*s' %s", lx->file, (int) lx->line, L->name,
                   top ? "top" : "bottom", (int) len, tok,
                   top ? (b == -2 ? "is produced twice" : "is one more than the blob count") : "is not produced by an earlier layer"),
             false;
    if (top)
      L->top[i - L->n_bottom] = b;
    else
      L->bottom[i] = b;
  }
  while (token (lx, &tok, &len))
    if (!parse_param_token (lx, L, tok, len))
      return false;
  return true;
}

/* ---- the .bin weights ------------------------------------------------------------------------ */

typedef struct bin_reader {
  const unsigned char *p;
  size_t size, pos;
} bin_reader;

/* Weights with a flag word (ncnn ModelBin type 0): fp32 (flag 0) or fp16 (tag 0x01306B47, padded to 4 bytes). */
static float *read_flagged (bin_reader *b, int64_t count, const ncnn_net *net, const ncnn_layer *L, const char *what, char *err,
                            size_t errlen) {
  if (b->size - b->pos < 4)
    return fail (err, errlen, "%s: layer '%s' (%s:%d): the file ends before the %s", net->bin_name, L->name, net->param_name,
                 (int) L->line, what);
  const unsigned char *f = b->p + b->pos;
  uint32_t tag = (uint32_t) f[0] | (uint32_t) f[1] << 8 | (uint32_t) f[2] << 16 | (uint32_t) f[3] << 24;
  size_t bytes;
  if (tag == NCNN_TAG_FP16)
    bytes = ((size_t) count * 2 + 3) / 4 * 4;
  else if (tag == 0)
    bytes = (size_t) count * 4;
  else
    return fail (err, errlen, "%s: layer '%s' (%s:%d): %s at byte %zu has flag 0x%08X; only fp32 (0) and fp16 (0x01306B47) are "
                 "supported (quantized or int8 weights are not)", net->bin_name, L->name, net->param_name, (int) L->line, what,
                 b->pos, (unsigned) tag);
  if (count < 1 || (uint64_t) count > (b->size - b->pos - 4) / 2 || bytes > b->size - b->pos - 4)
    return fail (err, errlen, "%s: layer '%s' (%s:%d): %lld %s values do not fit the %zu bytes left", net->bin_name, L->name,
                 net->param_name, (int) L->line, (long long) count, what, b->size - b->pos - 4);
  float *out = malloc ((size_t) count * sizeof *out);
  if (!out)
    return fail (err, errlen, "out of memory");
  const unsigned char *d = f + 4;
  for (int64_t i = 0; i < count; i++) {
    if (tag == NCNN_TAG_FP16) {
      out[i] = cel_half_to_float ((uint16_t) (d[2 * i] | d[2 * i + 1] << 8));
    } else {
      uint32_t u = (uint32_t) d[4 * i] | (uint32_t) d[4 * i + 1] << 8 | (uint32_t) d[4 * i + 2] << 16 | (uint32_t) d[4 * i + 3] << 24;
      memcpy (&out[i], &u, 4);
    }
  }
  b->pos += 4 + bytes;
  return out;
}

/* Raw fp32 values without a flag (ModelBin type 1: biases, slopes). */
static float *read_raw (bin_reader *b, int64_t count, const ncnn_net *net, const ncnn_layer *L, const char *what, char *err,
                        size_t errlen) {
  if (count < 1 || (uint64_t) count > (b->size - b->pos) / 4)
    return fail (err, errlen, "%s: layer '%s' (%s:%d): %lld %s values do not fit the %zu bytes left", net->bin_name, L->name,
                 net->param_name, (int) L->line, (long long) count, what, b->size - b->pos);
  float *out = malloc ((size_t) count * sizeof *out);
  if (!out)
    return fail (err, errlen, "out of memory");
  const unsigned char *d = b->p + b->pos;
  for (int64_t i = 0; i < count; i++) {
    uint32_t u = (uint32_t) d[4 * i] | (uint32_t) d[4 * i + 1] << 8 | (uint32_t) d[4 * i + 2] << 16 | (uint32_t) d[4 * i + 3] << 24;
    memcpy (&out[i], &u, 4);
  }
  b->pos += (size_t) count * 4;
  return out;
}

static bool read_weights (bin_reader *b, ncnn_net *net, ncnn_layer *L, char *err, size_t errlen) {
  bool conv = !strcmp (L->type, "Convolution") || !strcmp (L->type, "Deconvolution"), fc = !strcmp (L->type, "InnerProduct");
  int32_t n_out, bias, size;
  if (conv || fc) {
    if (!ncnn_int (L, 0, 0, 1, 1 << 16, &n_out) || !ncnn_int (L, conv ? 5 : 1, 0, 0, 1, &bias) ||
        !ncnn_int (L, conv ? 6 : 2, 0, 1, INT32_MAX, &size) || !L->p[0].set || !L->p[conv ? 6 : 2].set)
      return fail (err, errlen, "%s:%d: layer '%s': num_output (0), bias_term (%d) and weight_data_size (%d) must be set and valid",
                   net->param_name, (int) L->line, L->name, conv ? 5 : 1, conv ? 6 : 2),
             false;
    L->n_weight = size;
    if (!(L->weight = read_flagged (b, size, net, L, "weights", err, errlen)))
      return false;
    if (bias) {
      L->n_bias = n_out;
      if (!(L->bias = read_raw (b, n_out, net, L, "bias", err, errlen)))
        return false;
    }
  } else if (!strcmp (L->type, "PReLU")) {
    if (!ncnn_int (L, 0, 1, 1, 1 << 16, &n_out))
      return fail (err, errlen, "%s:%d: layer '%s': num_slope (0) must be 1..65536", net->param_name, (int) L->line, L->name), false;
    L->n_weight = n_out;
    if (!(L->weight = read_raw (b, n_out, net, L, "slope", err, errlen)))
      return false;
  } else if (!strcmp (L->type, "Scale")) {
    if (!ncnn_int (L, 0, 0, -233, -233, &size))
      return fail (err, errlen, "%s:%d: layer '%s': only Scale with scale_data_size -233 (scales from a second input) is supported",
                   net->param_name, (int) L->line, L->name),
             false;
  }
  return true;
}

ncnn_net *ncnn_read (const char *param, size_t param_size, const void *bin, size_t bin_size, const char *param_name,
                     const char *bin_name, char *err, size_t errlen) {
  ncnn_net *net = calloc (1, sizeof *net);
  if (!net)
    return fail (err, errlen, "out of memory");
  net->param_name = param_name;
  net->bin_name = bin_name;
  lexer lx = { param, param + param_size, 1, param_name, err, errlen };
  const char *tok;
  size_t len;
  int64_t magic, n_layers, n_blobs;
  if (memchr (param, 0, param_size)) {
    fail (err, errlen, "%s: not a text file (it holds a NUL byte)", param_name);
    goto bad;
  }
  if (!token (&lx, &tok, &len) || !parse_int (tok, len, 0, INT32_MAX, &magic) || magic != NCNN_MAGIC || token (&lx, &tok, &len)) {
    fail (err, errlen, "%s:1: not an ncnn param file (the first line must be the magic number %d)", param_name, NCNN_MAGIC);
    goto bad;
  }
  /* every layer line takes at least 8 bytes, every blob name at least 2 */
  if (!next_line (&lx) || !token (&lx, &tok, &len) || !parse_int (tok, len, 1, NCNN_MAX_LAYERS, &n_layers) ||
      !token (&lx, &tok, &len) || !parse_int (tok, len, 1, 1 << 20, &n_blobs) || token (&lx, &tok, &len) ||
      (size_t) n_layers > param_size / 8 || (size_t) n_blobs > param_size / 2) {
    fail (err, errlen, "%s:2: expected 'layer_count blob_count' (1..%d layers, counts the file can hold)", param_name,
          NCNN_MAX_LAYERS);
    goto bad;
  }
  if (!(net->layers = calloc ((size_t) n_layers, sizeof *net->layers)) || !(net->blobs = calloc ((size_t) n_blobs, sizeof *net->blobs))) {
    fail (err, errlen, "out of memory");
    goto bad;
  }
  for (int32_t i = 0; i < (int32_t) n_layers; i++) {
    if (!next_line (&lx)) {
      fail (err, errlen, "%s:%d: the file ends after %d of %d layers", param_name, (int) lx.line, (int) i, (int) n_layers);
      goto bad;
    }
    net->n_layers = i + 1;
    if (!parse_layer_line (&lx, net, (int32_t) n_blobs, &net->layers[i]))
      goto bad;
  }
  while (next_line (&lx))
    if (token (&lx, &tok, &len)) {
      fail (err, errlen, "%s:%d: text after the %d layers the header announced", param_name, (int) lx.line, (int) n_layers);
      goto bad;
    }
  if (net->n_blobs != n_blobs) {
    fail (err, errlen, "%s:2: the header announces %d blobs, the layers produce %d", param_name, (int) n_blobs, (int) net->n_blobs);
    goto bad;
  }
  bin_reader b = { bin, bin_size, 0 };
  for (int32_t i = 0; i < net->n_layers; i++)
    if (!read_weights (&b, net, &net->layers[i], err, errlen))
      goto bad;
  if (b.pos != bin_size) {
    fail (err, errlen, "%s: %zu bytes after the last layer's weights (%zu of %zu used): the .bin does not belong to %s", bin_name,
          bin_size - b.pos, b.pos, bin_size, param_name);
    goto bad;
  }
  return net;

bad:
  ncnn_free (net);
  return NULL;
}
