/* safetensors reading (strict validation before anything uses the data) and atomic writing. */
#include "celgan.h"
#include "json.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* the reference implementation's limit */

struct cel_safetensors {
  unsigned char *bytes; /* whole file */
  size_t size;
  const unsigned char *data; /* data section */
  size_t data_size;
  cel_json_doc *doc;
  cel_tensor_info *tensors;
  size_t n_tensors;
  const char **meta_keys, **meta_values;
  size_t n_meta;
};

static cel_status set_err (char *err, size_t errlen, cel_status st, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
static cel_status set_err (char *err, size_t errlen, cel_status st, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
  }
  return st;
}

float cel_half_to_float (uint16_t h) {
  uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal: normalize */
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

uint16_t cel_float_to_half (float f) {
  uint32_t x;
  memcpy (&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = (int32_t) ((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFF;
  if (((x >> 23) & 0xFF) == 0xFF) /* inf or nan */
    return (uint16_t) (sign | 0x7C00 | (mant ? 0x200 : 0));
  if (exp >= 31)
    return (uint16_t) (sign | 0x7C00);
  if (exp <= 0) {
    if (exp < -10)
      return (uint16_t) sign;
    mant |= 0x800000;
    uint32_t shift = (uint32_t) (14 - exp);
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      half++;
    return (uint16_t) (sign | half);
  }
  uint32_t half = sign | ((uint32_t) exp << 10) | (mant >> 13), rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
    half++; /* may carry into the exponent, which is right */
  return (uint16_t) half;
}

static int cmp_range (const void *a, const void *b) {
  const cel_tensor_info *x = *(const cel_tensor_info *const *) a, *y = *(const cel_tensor_info *const *) b;
  return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : (x->size > y->size) - (x->size < y->size);
}

/* Validates the parsed header and fills st->tensors / st->meta. */
static cel_status index_header (cel_safetensors *st, const char *what, char *err, size_t errlen) {
  const cel_json *root = cel_json_root (st->doc);
  if (root->type != CEL_JSON_OBJECT)
    return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: the header is not a JSON object", what);
  st->tensors = calloc (root->count ? root->count : 1, sizeof *st->tensors);
  if (!st->tensors)
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "%s: out of memory", what);
  for (const cel_json *m = root->child; m; m = m->next) {
    if (strcmp (m->key, "__metadata__") == 0) {
      if (m->type != CEL_JSON_OBJECT)
        return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: __metadata__ is not an object", what);
      st->meta_keys = calloc (m->count ? m->count : 1, sizeof *st->meta_keys);
      st->meta_values = calloc (m->count ? m->count : 1, sizeof *st->meta_values);
      if (!st->meta_keys || !st->meta_values)
        return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "%s: out of memory", what);
      for (const cel_json *kv = m->child; kv; kv = kv->next) {
        if (kv->type != CEL_JSON_STRING)
          return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: metadata value of '%.64s' is not a string", what, kv->key);
        st->meta_keys[st->n_meta] = kv->key;
        st->meta_values[st->n_meta++] = kv->string;
      }
      continue;
    }
    cel_tensor_info *t = &st->tensors[st->n_tensors];
    t->name = m->key;
    if (m->type != CEL_JSON_OBJECT)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' is not an object", what, m->key);
    for (const cel_json *f = m->child; f; f = f->next)
      if (strcmp (f->key, "dtype") && strcmp (f->key, "shape") && strcmp (f->key, "data_offsets"))
        return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has an unknown field '%.64s'", what, m->key, f->key);
    const cel_json *dt = cel_json_get (m, "dtype"), *sh = cel_json_get (m, "shape"), *of = cel_json_get (m, "data_offsets");
    if (!dt || dt->type != CEL_JSON_STRING || !sh || sh->type != CEL_JSON_ARRAY || !of || of->type != CEL_JSON_ARRAY)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' needs dtype, shape and data_offsets", what, m->key);
    size_t esize;
    if (strcmp (dt->string, "F32") == 0) {
      t->dtype = CEL_DTYPE_F32;
      esize = 4;
    } else if (strcmp (dt->string, "F16") == 0) {
      t->dtype = CEL_DTYPE_F16;
      esize = 2;
    } else {
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has dtype %.16s; CelGAN reads F32 and F16", what,
                      m->key, dt->string);
    }
    if (sh->count > CEL_MAX_RANK)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has rank %zu (at most %d)", what, m->key,
                      sh->count, CEL_MAX_RANK);
    t->rank = (int32_t) sh->count;
    double count = 1;
    t->count = 1;
    for (size_t i = 0; i < sh->count; i++) {
      const cel_json *d = cel_json_at (sh, i);
      if (d->type != CEL_JSON_NUMBER || !d->is_integer || d->integer < 0 || d->integer > ((int64_t) 1 << 40))
        return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has a bad dimension %zu", what, m->key, i);
      t->shape[i] = d->integer;
      count *= (double) d->integer;
      if (count > (double) st->data_size)
        return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' is larger than the file's data", what, m->key);
      t->count *= d->integer;
    }
    const cel_json *b = cel_json_at (of, 0), *e = cel_json_at (of, 1);
    if (of->count != 2 || b->type != CEL_JSON_NUMBER || !b->is_integer || e->type != CEL_JSON_NUMBER || !e->is_integer ||
        b->integer < 0 || e->integer < b->integer)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has bad data_offsets", what, m->key);
    if ((uint64_t) e->integer > st->data_size)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' ends at byte %lld, past the end of the data (%zu bytes)",
                      what, m->key, (long long) e->integer, st->data_size);
    t->offset = (uint64_t) b->integer;
    t->size = (uint64_t) (e->integer - b->integer);
    if (t->size != (uint64_t) t->count * esize)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' has %llu bytes but its shape needs %llu", what,
                      m->key, (unsigned long long) t->size, (unsigned long long) t->count * esize);
    if (t->offset % esize)
      return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' is not aligned to its element size", what, m->key);
    st->n_tensors++;
  }
  /* Offsets must tile the data section exactly: sorted, no overlap, no hole. */
  const cel_tensor_info **order = malloc ((st->n_tensors ? st->n_tensors : 1) * sizeof *order);
  if (!order)
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "%s: out of memory", what);
  for (size_t i = 0; i < st->n_tensors; i++)
    order[i] = &st->tensors[i];
  qsort (order, st->n_tensors, sizeof *order, cmp_range);
  uint64_t pos = 0;
  cel_status status = CEL_OK;
  for (size_t i = 0; i < st->n_tensors && !status; i++) {
    if (order[i]->offset < pos)
      status = set_err (err, errlen, CEL_ERROR_FORMAT, "%s: tensor '%.64s' overlaps another tensor", what, order[i]->name);
    else if (order[i]->offset > pos)
      status = set_err (err, errlen, CEL_ERROR_FORMAT, "%s: unused bytes before tensor '%.64s'", what, order[i]->name);
    pos = order[i]->offset + order[i]->size;
  }
  free (order);
  if (!status && pos != st->data_size)
    status = set_err (err, errlen, CEL_ERROR_FORMAT, "%s: %llu bytes of data after the last tensor", what,
                      (unsigned long long) (st->data_size - pos));
  return status;
}

cel_status cel_safetensors_open_memory (const void *data, size_t size, const char *what, cel_safetensors **out,
                                        char *err, size_t errlen) {
  *out = NULL;
  if (size < 8)
    return set_err (err, errlen, CEL_ERROR_FORMAT, "%s: too short to be a safetensors file (%zu bytes)", what, size);
  cel_safetensors *st = calloc (1, sizeof *st);
  if (!st || !(st->bytes = malloc (size))) {
    free (st);
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "%s: out of memory", what);
  }
  memcpy (st->bytes, data, size);
  st->size = size;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | st->bytes[i];
  cel_status status;
  if (hlen > MAX_HEADER || hlen > size - 8) {
    status = set_err (err, errlen, CEL_ERROR_FORMAT, "%s: header length %llu is larger than the file (%zu bytes) or the "
                      "100 MiB limit: not a safetensors file, or truncated", what, (unsigned long long) hlen, size);
    goto fail;
  }
  st->data = st->bytes + 8 + hlen;
  st->data_size = size - 8 - (size_t) hlen;
  char jerr[300];
  st->doc = cel_json_parse ((const char *) st->bytes + 8, (size_t) hlen, jerr, sizeof jerr);
  if (!st->doc) {
    status = set_err (err, errlen, CEL_ERROR_FORMAT, "%s: bad header: %s", what, jerr);
    goto fail;
  }
  if ((status = index_header (st, what, err, errlen)))
    goto fail;
  *out = st;
  return CEL_OK;

fail:
  cel_safetensors_close (st);
  return status;
}

cel_status cel_safetensors_open (const char *path, cel_safetensors **out, char *err, size_t errlen) {
  *out = NULL;
  FILE *f = fopen (path, "rb");
  if (!f)
    return set_err (err, errlen, CEL_ERROR_IO, "cannot open '%s': %m", path);
  struct stat sb;
  if (fstat (fileno (f), &sb) != 0 || !S_ISREG (sb.st_mode)) {
    fclose (f);
    return set_err (err, errlen, CEL_ERROR_IO, "'%s' is not a regular file", path);
  }
  size_t size = (size_t) sb.st_size;
  unsigned char *buf = malloc (size ? size : 1);
  if (!buf) {
    fclose (f);
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "'%s': out of memory (%zu bytes)", path, size);
  }
  size_t got = fread (buf, 1, size, f);
  fclose (f);
  if (got != size) {
    free (buf);
    return set_err (err, errlen, CEL_ERROR_IO, "cannot read '%s'", path);
  }
  cel_status status = cel_safetensors_open_memory (buf, size, path, out, err, errlen);
  free (buf);
  return status;
}

void cel_safetensors_close (cel_safetensors *st) {
  if (!st)
    return;
  cel_json_free (st->doc);
  free (st->tensors);
  free (st->meta_keys);
  free (st->meta_values);
  free (st->bytes);
  free (st);
}

size_t cel_safetensors_count (const cel_safetensors *st) {
  return st->n_tensors;
}

const cel_tensor_info *cel_safetensors_tensor (const cel_safetensors *st, size_t i) {
  return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const cel_tensor_info *cel_safetensors_find (const cel_safetensors *st, const char *name) {
  for (size_t i = 0; i < st->n_tensors; i++)
    if (strcmp (st->tensors[i].name, name) == 0)
      return &st->tensors[i];
  return NULL;
}

cel_status cel_safetensors_read_f32 (const cel_safetensors *st, const cel_tensor_info *t, float *out, size_t count,
                                     char *err, size_t errlen) {
  if ((int64_t) count != t->count)
    return set_err (err, errlen, CEL_ERROR_INVALID_ARGUMENT, "tensor '%s' has %lld values, not %zu", t->name,
                    (long long) t->count, count);
  const unsigned char *p = st->data + t->offset;
  for (size_t i = 0; i < count; i++) {
    if (t->dtype == CEL_DTYPE_F32) {
      uint32_t u = (uint32_t) p[4 * i] | (uint32_t) p[4 * i + 1] << 8 | (uint32_t) p[4 * i + 2] << 16 | (uint32_t) p[4 * i + 3] << 24;
      memcpy (&out[i], &u, 4);
    } else {
      out[i] = cel_half_to_float ((uint16_t) (p[2 * i] | p[2 * i + 1] << 8));
    }
  }
  return CEL_OK;
}

const char *cel_safetensors_metadata (const cel_safetensors *st, const char *key) {
  for (size_t i = 0; i < st->n_meta; i++)
    if (strcmp (st->meta_keys[i], key) == 0)
      return st->meta_values[i];
  return NULL;
}

size_t cel_safetensors_metadata_count (const cel_safetensors *st) {
  return st->n_meta;
}

void cel_safetensors_metadata_at (const cel_safetensors *st, size_t i, const char **key, const char **value) {
  *key = i < st->n_meta ? st->meta_keys[i] : NULL;
  *value = i < st->n_meta ? st->meta_values[i] : NULL;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static bool write_all (int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write (fd, p, n);
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t) w;
  }
  return true;
}

cel_status cel_safetensors_save (const char *path, const cel_tensor_entry *tensors, size_t n_tensors,
                                 const char *const *meta, size_t n_meta, char *err, size_t errlen) {
  cel_strbuf h = { 0 };
  uint64_t off = 0;
  cel_strbuf_append (&h, "{", 1);
  if (n_meta) {
    cel_strbuf_append (&h, "\"__metadata__\":{", 16);
    for (size_t i = 0; i < n_meta; i++) {
      if (i)
        cel_strbuf_append (&h, ",", 1);
      cel_strbuf_json_string (&h, meta[2 * i]);
      cel_strbuf_append (&h, ":", 1);
      cel_strbuf_json_string (&h, meta[2 * i + 1]);
    }
    cel_strbuf_append (&h, "}", 1);
  }
  for (size_t i = 0; i < n_tensors; i++) {
    const cel_tensor_entry *t = &tensors[i];
    int64_t count = 1;
    if (n_meta || i)
      cel_strbuf_append (&h, ",", 1);
    cel_strbuf_json_string (&h, t->name);
    cel_strbuf_printf (&h, ":{\"dtype\":\"%s\",\"shape\":[", t->dtype == CEL_DTYPE_F16 ? "F16" : "F32");
    for (int32_t d = 0; d < t->rank; d++) {
      cel_strbuf_printf (&h, "%s%lld", d ? "," : "", (long long) t->shape[d]);
      count *= t->shape[d];
    }
    uint64_t bytes = (uint64_t) count * (t->dtype == CEL_DTYPE_F16 ? 2 : 4);
    cel_strbuf_printf (&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) off, (unsigned long long) (off + bytes));
    off += bytes;
  }
  cel_strbuf_append (&h, "}", 1);
  while (!h.failed && h.len % 8) /* pad the header with spaces so the data is 8-byte aligned */
    cel_strbuf_append (&h, " ", 1);
  if (h.failed) {
    cel_strbuf_free (&h);
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of memory writing '%s'", path);
  }

  size_t plen = strlen (path);
  char *tmp = malloc (plen + 32);
  if (!tmp) {
    cel_strbuf_free (&h);
    return set_err (err, errlen, CEL_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
  }
  snprintf (tmp, plen + 32, "%s.tmp-%ld", path, (long) getpid ());
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cel_status status = CEL_OK;
  if (fd < 0) {
    status = set_err (err, errlen, CEL_ERROR_IO, "cannot write '%s': %m", tmp);
    goto done;
  }
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char) ((uint64_t) h.len >> (8 * i));
  bool ok = write_all (fd, len8, 8) && write_all (fd, h.data, h.len);
  unsigned char chunk[4096];
  for (size_t i = 0; i < n_tensors && ok; i++) {
    const cel_tensor_entry *t = &tensors[i];
    int64_t count = 1;
    for (int32_t d = 0; d < t->rank; d++)
      count *= t->shape[d];
    size_t fill = 0;
    for (int64_t k = 0; k < count && ok; k++) {
      if (t->dtype == CEL_DTYPE_F16) {
        uint16_t v = cel_float_to_half (t->data[k]);
        chunk[fill++] = (unsigned char) v;
        chunk[fill++] = (unsigned char) (v >> 8);
      } else {
        uint32_t v;
        memcpy (&v, &t->data[k], 4);
        for (int b = 0; b < 4; b++)
          chunk[fill++] = (unsigned char) (v >> (8 * b));
      }
      if (fill + 4 > sizeof chunk) {
        ok = write_all (fd, chunk, fill);
        fill = 0;
      }
    }
    if (ok && fill)
      ok = write_all (fd, chunk, fill);
  }
  ok = ok && fsync (fd) == 0;
  ok = (close (fd) == 0) && ok;
  if (!ok) {
    status = set_err (err, errlen, CEL_ERROR_IO, "cannot write '%s': %m (disk full?); the previous file is untouched", path);
    unlink (tmp);
    goto done;
  }
  if (rename (tmp, path) != 0) {
    status = set_err (err, errlen, CEL_ERROR_IO, "cannot rename '%s' to '%s': %m", tmp, path);
    unlink (tmp);
    goto done;
  }
  /* Make the rename itself durable. */
  char *dir = strdup (path);
  if (dir) {
    char *slash = strrchr (dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    int dfd = open (d, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void) fsync (dfd);
      close (dfd);
    }
    free (dir);
  }

done:
  free (tmp);
  cel_strbuf_free (&h);
  return status;
}
