#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_NODES (1 << 22)

struct cel_json_doc {
  cel_json *root;
  cel_json **blocks; /* every node and string is malloc'ed and recorded here */
  size_t n_blocks, cap_blocks;
};

typedef struct parser {
  const char *p, *start, *end;
  cel_json_doc *doc;
  char *err;
  size_t errlen;
  size_t nodes;
  bool failed;
} parser;

static void fail (parser *ps, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void fail (parser *ps, const char *fmt, ...) {
  if (ps->failed)
    return;
  ps->failed = true;
  if (!ps->err)
    return;
  char msg[256];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  snprintf (ps->err, ps->errlen, "JSON error at byte %zu: %s", (size_t) (ps->p - ps->start), msg);
}

static void *track (parser *ps, size_t size) {
  cel_json_doc *d = ps->doc;
  if (d->n_blocks == d->cap_blocks) {
    size_t cap = d->cap_blocks ? d->cap_blocks * 2 : 64;
    cel_json **b = realloc (d->blocks, cap * sizeof *b);
    if (!b) {
      fail (ps, "out of memory");
      return NULL;
    }
    d->blocks = b;
    d->cap_blocks = cap;
  }
  void *m = calloc (1, size);
  if (!m) {
    fail (ps, "out of memory");
    return NULL;
  }
  d->blocks[d->n_blocks++] = m;
  return m;
}

static cel_json *new_node (parser *ps, cel_json_type t) {
  if (++ps->nodes > MAX_NODES) {
    fail (ps, "more than %d values", MAX_NODES);
    return NULL;
  }
  cel_json *n = track (ps, sizeof *n);
  if (n)
    n->type = t;
  return n;
}

static void skip_ws (parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static bool literal (parser *ps, const char *word) {
  size_t n = strlen (word);
  if ((size_t) (ps->end - ps->p) >= n && memcmp (ps->p, word, n) == 0) {
    ps->p += n;
    return true;
  }
  return false;
}

static int hexval (char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4 (parser *ps, uint32_t *out) {
  if (ps->end - ps->p < 4) {
    fail (ps, "truncated \\u escape");
    return false;
  }
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval (ps->p[i]);
    if (h < 0) {
      fail (ps, "bad \\u escape");
      return false;
    }
    v = v * 16 + (uint32_t) h;
  }
  ps->p += 4;
  *out = v;
  return true;
}

/* Parses a string at ps->p (which is at the opening quote); returns a tracked NUL-terminated copy. */
static char *parse_string (parser *ps, size_t *len_out) {
  ps->p++; /* opening quote */
  const char *s = ps->p;
  size_t raw = 0;
  while (s < ps->end && *s != '"') {
    if (*s == '\\')
      s++;
    s++;
    raw++;
  }
  if (s >= ps->end) {
    fail (ps, "unterminated string");
    return NULL;
  }
  char *out = track (ps, (size_t) (s - ps->p) + 1); /* decoded is never longer than the raw text */
  if (!out)
    return NULL;
  size_t n = 0;
  while (*ps->p != '"') {
    unsigned char c = (unsigned char) *ps->p;
    if (c < 0x20) {
      fail (ps, "control character in string");
      return NULL;
    }
    if (c != '\\') {
      out[n++] = (char) c;
      ps->p++;
      continue;
    }
    ps->p++;
    char e = *ps->p++;
    switch (e) {
    case '"': out[n++] = '"'; break;
    case '\\': out[n++] = '\\'; break;
    case '/': out[n++] = '/'; break;
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (!read_hex4 (ps, &cp))
        return NULL;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
          fail (ps, "unpaired surrogate");
          return NULL;
        }
        ps->p += 2;
        if (!read_hex4 (ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
          fail (ps, "bad surrogate pair");
          return NULL;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail (ps, "unpaired surrogate");
        return NULL;
      }
      if (cp == 0) {
        fail (ps, "NUL character in string");
        return NULL;
      }
      /* \uXXXX is 6 raw bytes and at most 3 UTF-8 bytes; a pair is 12 raw bytes, 4 UTF-8 bytes. */
      if (cp < 0x80) {
        out[n++] = (char) cp;
      } else if (cp < 0x800) {
        out[n++] = (char) (0xC0 | (cp >> 6));
        out[n++] = (char) (0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out[n++] = (char) (0xE0 | (cp >> 12));
        out[n++] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[n++] = (char) (0x80 | (cp & 0x3F));
      } else {
        out[n++] = (char) (0xF0 | (cp >> 18));
        out[n++] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[n++] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[n++] = (char) (0x80 | (cp & 0x3F));
      }
      break;
    }
    default:
      fail (ps, "bad escape \\%c", e);
      return NULL;
    }
  }
  ps->p++; /* closing quote */
  out[n] = 0;
  (void) raw;
  *len_out = n;
  return out;
}

static cel_json *parse_value (parser *ps, int depth);

static cel_json *parse_number (parser *ps) {
  const char *s = ps->p;
  bool integer = true;
  if (ps->p < ps->end && *ps->p == '-')
    ps->p++;
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
    fail (ps, "bad number");
    return NULL;
  }
  if (*ps->p == '0')
    ps->p++;
  else
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
      ps->p++;
  if (ps->p < ps->end && *ps->p == '.') {
    integer = false;
    ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
      fail (ps, "bad number");
      return NULL;
    }
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
      ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    integer = false;
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
      ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
      fail (ps, "bad number");
      return NULL;
    }
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
      ps->p++;
  }
  char buf[64];
  size_t n = (size_t) (ps->p - s);
  if (n >= sizeof buf) {
    fail (ps, "number too long");
    return NULL;
  }
  memcpy (buf, s, n);
  buf[n] = 0;
  cel_json *v = new_node (ps, CEL_JSON_NUMBER);
  if (!v)
    return NULL;
  v->number = strtod (buf, NULL);
  if (integer) {
    errno = 0;
    long long ll = strtoll (buf, NULL, 10);
    if (errno == 0) {
      v->is_integer = true;
      v->integer = ll;
    }
  }
  return v;
}

static cel_json *parse_value (parser *ps, int depth) {
  if (depth > MAX_DEPTH) {
    fail (ps, "nested deeper than %d", MAX_DEPTH);
    return NULL;
  }
  skip_ws (ps);
  if (ps->p >= ps->end) {
    fail (ps, "unexpected end of input");
    return NULL;
  }
  char c = *ps->p;
  if (c == '{' || c == '[') {
    bool obj = c == '{';
    cel_json *v = new_node (ps, obj ? CEL_JSON_OBJECT : CEL_JSON_ARRAY);
    if (!v)
      return NULL;
    ps->p++;
    skip_ws (ps);
    cel_json **tail = &v->child;
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
      ps->p++;
      return v;
    }
    for (;;) {
      char *key = NULL;
      size_t klen;
      if (obj) {
        skip_ws (ps);
        if (ps->p >= ps->end || *ps->p != '"') {
          fail (ps, "expected a member name");
          return NULL;
        }
        if (!(key = parse_string (ps, &klen)))
          return NULL;
        for (cel_json *m = v->child; m; m = m->next)
          if (strcmp (m->key, key) == 0) {
            fail (ps, "duplicate key \"%.64s\"", key);
            return NULL;
          }
        skip_ws (ps);
        if (ps->p >= ps->end || *ps->p != ':') {
          fail (ps, "expected ':'");
          return NULL;
        }
        ps->p++;
      }
      cel_json *item = parse_value (ps, depth + 1);
      if (!item)
        return NULL;
      item->key = key;
      *tail = item;
      tail = &item->next;
      v->count++;
      skip_ws (ps);
      if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        continue;
      }
      if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
        ps->p++;
        return v;
      }
      fail (ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
      return NULL;
    }
  }
  if (c == '"') {
    cel_json *v = new_node (ps, CEL_JSON_STRING);
    if (!v || !(v->string = parse_string (ps, &v->string_len)))
      return NULL;
    return v;
  }
  if (c == '-' || (c >= '0' && c <= '9'))
    return parse_number (ps);
  if (literal (ps, "true") || literal (ps, "false")) {
    cel_json *v = new_node (ps, CEL_JSON_BOOL);
    if (v)
      v->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
    return v;
  }
  if (literal (ps, "null"))
    return new_node (ps, CEL_JSON_NULL);
  fail (ps, "unexpected character 0x%02x", (unsigned char) c);
  return NULL;
}

cel_json_doc *cel_json_parse (const char *text, size_t len, char *err, size_t errlen) {
  cel_json_doc *doc = calloc (1, sizeof *doc);
  if (!doc) {
    if (err)
      snprintf (err, errlen, "out of memory");
    return NULL;
  }
  parser ps = { .p = text, .start = text, .end = text + len, .doc = doc, .err = err, .errlen = errlen };
  doc->root = parse_value (&ps, 0);
  if (doc->root) {
    skip_ws (&ps);
    if (ps.p != ps.end)
      fail (&ps, "trailing characters after the value");
  }
  if (ps.failed || !doc->root) {
    cel_json_free (doc);
    return NULL;
  }
  return doc;
}

void cel_json_free (cel_json_doc *doc) {
  if (!doc)
    return;
  for (size_t i = 0; i < doc->n_blocks; i++)
    free (doc->blocks[i]);
  free (doc->blocks);
  free (doc);
}

const cel_json *cel_json_root (const cel_json_doc *doc) {
  return doc->root;
}

const cel_json *cel_json_get (const cel_json *obj, const char *key) {
  if (!obj || obj->type != CEL_JSON_OBJECT)
    return NULL;
  for (const cel_json *m = obj->child; m; m = m->next)
    if (strcmp (m->key, key) == 0)
      return m;
  return NULL;
}

const cel_json *cel_json_at (const cel_json *arr, size_t i) {
  if (!arr || arr->type != CEL_JSON_ARRAY)
    return NULL;
  const cel_json *e = arr->child;
  while (e && i--)
    e = e->next;
  return e;
}

/* ---- writing ---------------------------------------------------------------------------------- */

void cel_strbuf_append (cel_strbuf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc (b->data, cap);
    if (!d) {
      b->failed = true;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy (b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

void cel_strbuf_puts (cel_strbuf *b, const char *s) {
  cel_strbuf_append (b, s, strlen (s));
}

void cel_strbuf_printf (cel_strbuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (small, sizeof small, fmt, ap);
  va_end (ap);
  if (n < 0) {
    b->failed = true;
    return;
  }
  if ((size_t) n < sizeof small) {
    cel_strbuf_append (b, small, (size_t) n);
    return;
  }
  char *big = malloc ((size_t) n + 1);
  if (!big) {
    b->failed = true;
    return;
  }
  va_start (ap, fmt);
  vsnprintf (big, (size_t) n + 1, fmt, ap);
  va_end (ap);
  cel_strbuf_append (b, big, (size_t) n);
  free (big);
}

void cel_strbuf_json_string (cel_strbuf *b, const char *s) {
  cel_strbuf_append (b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    switch (*p) {
    case '"': cel_strbuf_append (b, "\\\"", 2); break;
    case '\\': cel_strbuf_append (b, "\\\\", 2); break;
    case '\n': cel_strbuf_append (b, "\\n", 2); break;
    case '\r': cel_strbuf_append (b, "\\r", 2); break;
    case '\t': cel_strbuf_append (b, "\\t", 2); break;
    default:
      if (*p < 0x20)
        cel_strbuf_printf (b, "\\u%04x", *p);
      else
        cel_strbuf_append (b, (const char *) p, 1);
    }
  }
  cel_strbuf_append (b, "\"", 1);
}

void cel_strbuf_free (cel_strbuf *b) {
  free (b->data);
  memset (b, 0, sizeof *b);
}

void cel_json_write (const cel_json *v, cel_strbuf *b) {
  switch (v->type) {
  case CEL_JSON_NULL: cel_strbuf_append (b, "null", 4); break;
  case CEL_JSON_BOOL: v->boolean ? cel_strbuf_append (b, "true", 4) : cel_strbuf_append (b, "false", 5); break;
  case CEL_JSON_NUMBER:
    if (v->is_integer)
      cel_strbuf_printf (b, "%lld", (long long) v->integer);
    else
      cel_strbuf_printf (b, "%.17g", v->number);
    break;
  case CEL_JSON_STRING: cel_strbuf_json_string (b, v->string); break;
  case CEL_JSON_ARRAY:
  case CEL_JSON_OBJECT: {
    bool obj = v->type == CEL_JSON_OBJECT;
    cel_strbuf_append (b, obj ? "{" : "[", 1);
    for (const cel_json *c = v->child; c; c = c->next) {
      if (c != v->child)
        cel_strbuf_append (b, ",", 1);
      if (obj) {
        cel_strbuf_json_string (b, c->key);
        cel_strbuf_append (b, ":", 1);
      }
      cel_json_write (c, b);
    }
    cel_strbuf_append (b, obj ? "}" : "]", 1);
    break;
  }
  }
}
