/* A small strict JSON reader and writer for model headers and architectures (RFC 8259; no comments, no
 * trailing commas, UTF-8 passed through, \u escapes decoded to UTF-8). Hostile input is bounded: nesting
 * depth, string length and node count are limited, and every error names the byte offset. */
#ifndef CELGAN_JSON_H
#define CELGAN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cel_json_type {
  CEL_JSON_NULL,
  CEL_JSON_BOOL,
  CEL_JSON_NUMBER,
  CEL_JSON_STRING,
  CEL_JSON_ARRAY,
  CEL_JSON_OBJECT,
} cel_json_type;

typedef struct cel_json cel_json;
struct cel_json {
  cel_json_type type;
  bool boolean;
  double number;
  bool is_integer;  /* the literal had no fraction or exponent and fits int64 */
  int64_t integer;
  char *string;     /* STRING: the value; in an object's member: the key is `key` */
  size_t string_len;
  char *key;        /* member name when the parent is an object */
  cel_json *child;  /* first element / member */
  cel_json *next;   /* next sibling */
  size_t count;     /* elements / members */
};

typedef struct cel_json_doc cel_json_doc;

/* Parses `len` bytes. On failure returns NULL and writes a sentence to err. */
cel_json_doc *cel_json_parse (const char *text, size_t len, char *err, size_t errlen);
void cel_json_free (cel_json_doc *doc);
const cel_json *cel_json_root (const cel_json_doc *doc);

/* Object member by key (first match; duplicate keys are a parse error), or NULL. */
const cel_json *cel_json_get (const cel_json *obj, const char *key);
const cel_json *cel_json_at (const cel_json *arr, size_t i);

/* A growing string for writing JSON. All functions are no-ops after an allocation failure (failed set). */
typedef struct cel_strbuf {
  char *data;
  size_t len, cap;
  bool failed;
} cel_strbuf;
void cel_strbuf_append (cel_strbuf *b, const char *s, size_t n);
void cel_strbuf_puts (cel_strbuf *b, const char *s);
void cel_strbuf_printf (cel_strbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Appends s as a quoted JSON string with escapes. */
void cel_strbuf_json_string (cel_strbuf *b, const char *s);
void cel_strbuf_free (cel_strbuf *b);
/* Appends a value as compact JSON (numbers with %.17g, integers exactly). */
void cel_json_write (const cel_json *v, cel_strbuf *b);

#endif
