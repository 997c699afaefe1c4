/* Reading PyTorch's legacy checkpoints (torch.save before 1.6, or with _use_new_zipfile_serialization=False)
 * without PyTorch and without running any code.
 *
 * The file is five pickles back to back, then the raw storages:
 *   1. the magic number (a LONG1), 2. the protocol version (1001), 3. system info (a dict: little_endian,
 *   type_sizes), 4. the object (here a state_dict: an OrderedDict of tensors, possibly inside a dict),
 *   5. the list of storage keys; then for each key in that order an int64 little-endian element count and
 *   the storage's bytes.
 * A tensor is pickled as REDUCE (torch._utils._rebuild_tensor_v2, (storage, offset, size, stride,
 * requires_grad, hooks)) with the storage a persistent id ('storage', torch.FloatStorage, key, location,
 * size, None).
 *
 * The interpreter below is data only: it knows the opcodes these files use, builds plain values (ints,
 * strings, tuples, lists, dicts), and allows GLOBAL for five names and REDUCE for two of them. Anything
 * else is refused with the file and the offset named. Every length and count is checked against the bytes
 * that are left before anything is allocated, and nothing recurses, so a hostile file can neither crash
 * the reader nor make it allocate much more than the file's size. */
#include "celgan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum vkind { V_NONE, V_BOOL, V_INT, V_FLOAT, V_LONG, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } vkind;

typedef enum known_global { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_FLOAT_STORAGE, G_HALF_STORAGE, G_DOUBLE_STORAGE, G_COUNT } known_global;

static const char *const global_names[G_COUNT][2] = {
  { "collections", "OrderedDict" }, { "torch._utils", "_rebuild_tensor_v2" }, { "torch", "FloatStorage" },
  { "torch", "HalfStorage" },       { "torch", "DoubleStorage" },
};

typedef struct value {
  vkind kind;
  int64_t i;              /* BOOL, INT; GLOBAL: known_global; STORAGE, TENSOR: record index */
  const unsigned char *s; /* STR, LONG: bytes inside the file (not NUL-terminated) */
  uint32_t len;
  int32_t *items;         /* TUPLE, LIST: n items; DICT: n/2 (key, value) pairs */
  int32_t n, cap;
} value;

typedef struct storage_rec {
  const unsigned char *key;
  uint32_t key_len;
  known_global type;
  int64_t size;             /* elements */
  const unsigned char *data; /* set once the storages are read */
} storage_rec;

typedef struct tensor_rec {
  int32_t storage, rank;
  int64_t offset, shape[CEL_MAX_RANK], stride[CEL_MAX_RANK];
} tensor_rec;

struct cel_torch_file {
  cel_torch_tensor *tensors;
  size_t n_tensors;
};

typedef struct vm {
  const unsigned char *p;
  size_t size, pos;
  const char *what;
  char *err;
  size_t errlen;
  value *vals;
  size_t n_vals, cap_vals;
  int32_t *stack;
  size_t sp, cap_stack;
  size_t *marks;
  size_t n_marks, cap_marks;
  int32_t *memo;
  size_t cap_memo, memo_len; /* memo_len: one past the highest index PUT */
  storage_rec *storages;
  size_t n_storages, cap_storages;
  tensor_rec *tensors;
  size_t n_tensors, cap_tensors;
  bool failed;
} vm;

static bool vfail (vm *v, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static bool vfail (vm *v, const char *fmt, ...) {
  if (v->failed)
    return false;
  v->failed = true;
  if (v->err && v->errlen) {
    int n = snprintf (v->err, v->errlen, "%s: offset %zu: ", v->what, v->pos);
    if (n >= 0 && (size_t) n < v->errlen) {
      va_list ap;
      va_start (ap, fmt);
      vsnprintf (v->err + n, v->errlen - (size_t) n, fmt, ap);
      va_end (ap);
    }
  }
  return false;
}

/* Grows *buf (elements of `elem` bytes) to hold at least `need`; the caller bounds `need` by the file size. */
static bool grow (vm *v, void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return true;
  size_t n = *cap ? *cap * 2 : 16;
  while (n < need)
    n *= 2;
  void *p = realloc (*buf, n * elem);
  if (!p)
    return vfail (v, "out of memory");
  *buf = p;
  *cap = n;
  return true;
}

/* Every value is made by an opcode of at least one byte, so the file's size bounds their number. */
static int32_t new_value (vm *v, vkind kind) {
  if (v->n_vals > v->size + 64) {
    vfail (v, "too many values");
    return -1;
  }
  if (!grow (v, (void **) &v->vals, &v->cap_vals, v->n_vals + 1, sizeof *v->vals))
    return -1;
  value *x = &v->vals[v->n_vals];
  memset (x, 0, sizeof *x);
  x->kind = kind;
  return (int32_t) v->n_vals++;
}

static bool push (vm *v, int32_t idx) {
  if (idx < 0)
    return false;
  if (!grow (v, (void **) &v->stack, &v->cap_stack, v->sp + 1, sizeof *v->stack))
    return false;
  v->stack[v->sp++] = idx;
  return true;
}

static bool push_new (vm *v, vkind kind, int64_t i) {
  int32_t idx = new_value (v, kind);
  if (idx < 0)
    return false;
  v->vals[idx].i = i;
  return push (v, idx);
}

static size_t floor_sp (const vm *v) {
  return v->n_marks ? v->marks[v->n_marks - 1] : 0;
}

static bool pop (vm *v, int32_t *out) {
  if (v->sp <= floor_sp (v))
    return vfail (v, "pickle stack underflow");
  *out = v->stack[--v->sp];
  return true;
}

static value *top (vm *v) {
  return v->sp > floor_sp (v) ? &v->vals[v->stack[v->sp - 1]] : NULL;
}

static bool add_item (vm *v, int32_t container, int32_t item) {
  value *c = &v->vals[container];
  size_t cap = (size_t) c->cap;
  if (c->n >= INT32_MAX / 2)
    return vfail (v, "container too large");
  if (!grow (v, (void **) &c->items, &cap, (size_t) c->n + 1, sizeof *c->items))
    return false;
  c->cap = (int32_t) cap;
  c->items[c->n++] = item;
  return true;
}

/* The items above the topmost mark become a new container of `kind` (or are appended to `into`). */
static bool collect_to_mark (vm *v, vkind kind, int32_t *out) {
  if (!v->n_marks)
    return vfail (v, "pickle MARK missing");
  size_t m = v->marks[--v->n_marks];
  int32_t idx = new_value (v, kind);
  if (idx < 0)
    return false;
  for (size_t k = m; k < v->sp; k++)
    if (!add_item (v, idx, v->stack[k]))
      return false;
  v->sp = m;
  *out = idx;
  return true;
}

static bool need_bytes (vm *v, size_t n) {
  if (n > v->size - v->pos)
    return vfail (v, "the file ends inside a pickle opcode");
  return true;
}

static uint64_t read_le (const unsigned char *p, int n) {
  uint64_t x = 0;
  for (int k = n - 1; k >= 0; k--)
    x = x << 8 | p[k];
  return x;
}

static bool str_equal (const value *x, const char *s) {
  size_t n = strlen (s);
  return x->kind == V_STR && x->len == n && memcmp (x->s, s, n) == 0;
}

static bool memo_put (vm *v, uint64_t idx) {
  if (v->sp <= floor_sp (v))
    return vfail (v, "pickle PUT with an empty stack");
  if (idx >= v->size) /* a pickler numbers its memo from 0, one entry per object, far below the file size */
    return vfail (v, "pickle memo index %llu out of range", (unsigned long long) idx);
  size_t old = v->cap_memo;
  if (!grow (v, (void **) &v->memo, &v->cap_memo, (size_t) idx + 1, sizeof *v->memo))
    return false;
  for (size_t k = old; k < v->cap_memo; k++)
    v->memo[k] = -1;
  v->memo[idx] = v->stack[v->sp - 1];
  if (idx + 1 > v->memo_len)
    v->memo_len = (size_t) idx + 1;
  return true;
}

static bool memo_get (vm *v, uint64_t idx) {
  if (idx >= v->cap_memo || v->memo[idx] < 0)
    return vfail (v, "pickle GET of memo entry %llu, which was never PUT", (unsigned long long) idx);
  return push (v, v->memo[idx]);
}

/* GLOBAL 'module\nname\n': only the names a state_dict of tensors needs. */
static bool op_global (vm *v) {
  const unsigned char *line[2];
  size_t len[2];
  for (int k = 0; k < 2; k++) {
    size_t left = v->size - v->pos;
    const unsigned char *s = v->p + v->pos, *nl = memchr (s, '\n', left < 201 ? left : 201);
    if (!nl || nl - s > 200)
      return vfail (v, "pickle GLOBAL without a short newline-terminated name");
    line[k] = s;
    len[k] = (size_t) (nl - s);
    v->pos += len[k] + 1;
  }
  for (int g = 0; g < G_COUNT; g++)
    if (len[0] == strlen (global_names[g][0]) && !memcmp (line[0], global_names[g][0], len[0]) &&
        len[1] == strlen (global_names[g][1]) && !memcmp (line[1], global_names[g][1], len[1]))
      return push_new (v, V_GLOBAL, g);
  return vfail (v, "pickle GLOBAL '%.*s.%.*s' is not allowed (this reader only loads state dicts of float tensors)",
                (int) len[0], (const char *) line[0], (int) len[1], (const char *) line[1]);
}

static int32_t elem_size (known_global type) {
  return type == G_HALF_STORAGE ? 2 : type == G_DOUBLE_STORAGE ? 8 : 4;
}

/* BINPERSID: ('storage', StorageType, key, location, size, view_metadata) -> a storage record. */
static bool op_persistent_id (vm *v) {
  int32_t t;
  if (!pop (v, &t))
    return false;
  const value *tup = &v->vals[t];
  if (tup->kind != V_TUPLE || tup->n != 6 || !str_equal (&v->vals[tup->items[0]], "storage"))
    return vfail (v, "persistent id is not a ('storage', type, key, location, size, view) tuple");
  const value *type = &v->vals[tup->items[1]], *key = &v->vals[tup->items[2]], *loc = &v->vals[tup->items[3]],
              *size = &v->vals[tup->items[4]], *view = &v->vals[tup->items[5]];
  if (type->kind != V_GLOBAL || type->i < G_FLOAT_STORAGE)
    return vfail (v, "persistent id: the storage type must be torch.FloatStorage, HalfStorage or DoubleStorage");
  if (key->kind != V_STR || key->len == 0 || loc->kind != V_STR || size->kind != V_INT || size->i < 0)
    return vfail (v, "persistent id: bad storage key, location or size");
  if (view->kind != V_NONE)
    return vfail (v, "persistent id: storage views (legacy view metadata) are not supported");
  if ((uint64_t) size->i > v->size / (uint64_t) elem_size ((known_global) type->i))
    return vfail (v, "storage of %lld elements is larger than the file", (long long) size->i);
  /* one record per persistent id; records of the same key are matched up once the keys list is read */
  size_t s = v->n_storages;
  if (!grow (v, (void **) &v->storages, &v->cap_storages, s + 1, sizeof *v->storages))
    return false;
  v->storages[s] = (storage_rec) { key->s, key->len, (known_global) type->i, size->i, NULL };
  v->n_storages++;
  return push_new (v, V_STORAGE, (int64_t) s);
}

static bool int_tuple (const vm *v, const value *x, int64_t *out, int32_t max, int32_t *n) {
  if (x->kind != V_TUPLE || x->n > max)
    return false;
  for (int32_t k = 0; k < x->n; k++) {
    const value *e = &v->vals[x->items[k]];
    if (e->kind != V_INT || e->i < 0)
      return false;
    out[k] = e->i;
  }
  *n = x->n;
  return true;
}

/* _rebuild_tensor_v2 (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
static bool rebuild_tensor (vm *v, const value *args) {
  if (args->n < 6 || args->n > 7)
    return vfail (v, "_rebuild_tensor_v2 takes 6 or 7 arguments, not %d", (int) args->n);
  const value *st = &v->vals[args->items[0]], *off = &v->vals[args->items[1]], *rg = &v->vals[args->items[4]],
              *hooks = &v->vals[args->items[5]];
  tensor_rec t = { 0 };
  int32_t n_stride = 0;
  if (st->kind != V_STORAGE || off->kind != V_INT || off->i < 0 || rg->kind != V_BOOL)
    return vfail (v, "_rebuild_tensor_v2: bad storage, offset or requires_grad");
  if (!int_tuple (v, &v->vals[args->items[2]], t.shape, CEL_MAX_RANK, &t.rank) ||
      !int_tuple (v, &v->vals[args->items[3]], t.stride, CEL_MAX_RANK, &n_stride) || n_stride != t.rank)
    return vfail (v, "_rebuild_tensor_v2: size and stride must be tuples of up to %d non-negative ints of one length",
                  CEL_MAX_RANK);
  if (hooks->kind != V_DICT || hooks->n != 0)
    return vfail (v, "_rebuild_tensor_v2: backward hooks are not supported");
  if (args->n == 7 && v->vals[args->items[6]].kind != V_NONE && v->vals[args->items[6]].kind != V_DICT)
    return vfail (v, "_rebuild_tensor_v2: bad metadata");
  t.storage = (int32_t) st->i;
  t.offset = off->i;
  int64_t ssize = v->storages[t.storage].size, count = 1, last = t.offset;
  for (int32_t k = 0; k < t.rank; k++) {
    if (t.shape[k] > INT32_MAX)
      return vfail (v, "tensor dimension %lld is too large", (long long) t.shape[k]);
    if (t.shape[k] == 0)
      count = 0;
  }
  for (int32_t k = 0; k < t.rank && count; k++) { /* an empty tensor reads nothing */
    if (t.shape[k] > ssize || t.stride[k] > ssize || (t.shape[k] > 1 && t.stride[k] > ssize / (t.shape[k] - 1)))
      return vfail (v, "tensor of shape dim %lld, stride %lld does not fit its storage of %lld elements",
                    (long long) t.shape[k], (long long) t.stride[k], (long long) ssize);
    count = count > ssize / t.shape[k] + 1 ? ssize + 1 : count * t.shape[k];
    if (t.shape[k] > 1)
      last += (t.shape[k] - 1) * t.stride[k];
    if (last > 2 * ssize)
      last = 2 * ssize; /* already out of range; keeps the sum from overflowing */
  }
  if (count > 0 && (count > ssize || last >= ssize))
    return vfail (v, "tensor reads past the end of its storage (%lld elements)", (long long) ssize);
  if (!grow (v, (void **) &v->tensors, &v->cap_tensors, v->n_tensors + 1, sizeof *v->tensors))
    return false;
  v->tensors[v->n_tensors] = t;
  return push_new (v, V_TENSOR, (int64_t) v->n_tensors++);
}

static bool op_reduce (vm *v) {
  int32_t a, f;
  if (!pop (v, &a) || !pop (v, &f))
    return false;
  const value *fn = &v->vals[f], *args = &v->vals[a];
  if (fn->kind != V_GLOBAL || args->kind != V_TUPLE)
    return vfail (v, "pickle REDUCE of something that is not an allowed global");
  if (fn->i == G_ORDERED_DICT) {
    if (args->n != 0)
      return vfail (v, "collections.OrderedDict with arguments is not supported");
    return push_new (v, V_DICT, 0);
  }
  if (fn->i == G_REBUILD_TENSOR_V2)
    return rebuild_tensor (v, args);
  return vfail (v, "pickle REDUCE of %s.%s is not allowed", global_names[fn->i][0], global_names[fn->i][1]);
}

/* Runs one pickle from v->pos to its STOP; *out is the value left on the stack. */
static bool run_pickle (vm *v, int32_t *out) {
  v->sp = 0;
  v->n_marks = 0;
  v->memo_len = 0;
  for (size_t k = 0; k < v->cap_memo; k++)
    v->memo[k] = -1;
  while (!v->failed) {
    if (!need_bytes (v, 1))
      return false;
    size_t at = v->pos;
    unsigned char op = v->p[v->pos++];
    int32_t x = -1, y = -1;
    value *t;
    switch (op) {
    case 0x80: /* PROTO */
      if (!need_bytes (v, 1))
        return false;
      if (v->p[v->pos] < 2 || v->p[v->pos] > 4)
        return vfail (v, "pickle protocol %d is not supported (2 to 4 are)", v->p[v->pos]);
      v->pos++;
      break;
    case 0x95: /* FRAME (protocol 4): a length hint */
      if (!need_bytes (v, 8))
        return false;
      v->pos += 8;
      break;
    case '.': /* STOP */
      if (v->n_marks || v->sp != 1)
        return v->pos = at, vfail (v, "pickle STOP with %zu values and %zu marks left", v->sp, v->n_marks);
      *out = v->stack[0];
      return true;
    case '(': /* MARK */
      if (!grow (v, (void **) &v->marks, &v->cap_marks, v->n_marks + 1, sizeof *v->marks))
        return false;
      v->marks[v->n_marks++] = v->sp;
      break;
    case 'N': push_new (v, V_NONE, 0); break;
    case 0x88: push_new (v, V_BOOL, 1); break; /* NEWTRUE */
    case 0x89: push_new (v, V_BOOL, 0); break; /* NEWFALSE */
    case 'K': /* BININT1 */
      if (need_bytes (v, 1))
        push_new (v, V_INT, v->p[v->pos++]);
      break;
    case 'M': /* BININT2 */
      if (need_bytes (v, 2)) {
        push_new (v, V_INT, (int64_t) read_le (v->p + v->pos, 2));
        v->pos += 2;
      }
      break;
    case 'J': /* BININT: signed 32 */
      if (need_bytes (v, 4)) {
        push_new (v, V_INT, (int32_t) (uint32_t) read_le (v->p + v->pos, 4));
        v->pos += 4;
      }
      break;
    case 'G': /* BINFLOAT: 8-byte big-endian double (hyper-parameters beside a state_dict); the value is not needed */
      if (need_bytes (v, 8)) {
        push_new (v, V_FLOAT, 0);
        v->pos += 8;
      }
      break;
    case 0x8a: { /* LONG1: n bytes, two's complement little-endian */
      if (!need_bytes (v, 1))
        return false;
      size_t n = v->p[v->pos++];
      if (!need_bytes (v, n))
        return false;
      if (n <= 8) {
        uint64_t u = read_le (v->p + v->pos, (int) n);
        if (n && n < 8 && (v->p[v->pos + n - 1] & 0x80))
          u |= ~(uint64_t) 0 << (8 * n);
        push_new (v, V_INT, (int64_t) u);
      } else if ((x = new_value (v, V_LONG)) >= 0) { /* only the magic number is this long */
        v->vals[x].s = v->p + v->pos;
        v->vals[x].len = (uint32_t) n;
        push (v, x);
      }
      v->pos += n;
      break;
    }
    case 'X':    /* BINUNICODE: 4-byte length */
    case 0x8c: { /* SHORT_BINUNICODE: 1-byte length */
      int lb = op == 'X' ? 4 : 1;
      if (!need_bytes (v, (size_t) lb))
        return false;
      uint64_t n = read_le (v->p + v->pos, lb);
      v->pos += (size_t) lb;
      if (!need_bytes (v, n))
        return false;
      if ((x = new_value (v, V_STR)) >= 0) {
        v->vals[x].s = v->p + v->pos;
        v->vals[x].len = (uint32_t) n;
        push (v, x);
      }
      v->pos += n;
      break;
    }
    case ')': push_new (v, V_TUPLE, 0); break; /* EMPTY_TUPLE */
    case ']': push_new (v, V_LIST, 0); break;  /* EMPTY_LIST */
    case '}': push_new (v, V_DICT, 0); break;  /* EMPTY_DICT */
    case 't': /* TUPLE */
      if (collect_to_mark (v, V_TUPLE, &x))
        push (v, x);
      break;
    case 0x85: /* TUPLE1 */
    case 0x86: /* TUPLE2 */
    case 0x87: { /* TUPLE3 */
      size_t n = (size_t) (op - 0x84);
      if (v->sp < floor_sp (v) + n)
        return vfail (v, "pickle stack underflow");
      if ((x = new_value (v, V_TUPLE)) < 0)
        return false;
      for (size_t k = v->sp - n; k < v->sp; k++)
        if (!add_item (v, x, v->stack[k]))
          return false;
      v->sp -= n;
      push (v, x);
      break;
    }
    case 'q': /* BINPUT */
      if (need_bytes (v, 1))
        memo_put (v, v->p[v->pos++]);
      break;
    case 'r': /* LONG_BINPUT */
      if (need_bytes (v, 4)) {
        memo_put (v, read_le (v->p + v->pos, 4));
        v->pos += 4;
      }
      break;
    case 0x94: /* MEMOIZE (protocol 4) */
      memo_put (v, v->memo_len);
      break;
    case 'h': /* BINGET */
      if (need_bytes (v, 1))
        memo_get (v, v->p[v->pos++]);
      break;
    case 'j': /* LONG_BINGET */
      if (need_bytes (v, 4)) {
        memo_get (v, read_le (v->p + v->pos, 4));
        v->pos += 4;
      }
      break;
    case 'c': op_global (v); break;
    case 'Q': op_persistent_id (v); break;
    case 'R': op_reduce (v); break;
    case 'b': /* BUILD: an OrderedDict's __dict__ (its _metadata), which a state dict does not need */
      if (!pop (v, &y))
        return false;
      t = top (v);
      if (!t || t->kind != V_DICT || (v->vals[y].kind != V_DICT && v->vals[y].kind != V_NONE))
        return v->pos = at, vfail (v, "pickle BUILD is only allowed to set an OrderedDict's attributes");
      break;
    case 's': /* SETITEM */
      if (!pop (v, &y) || !pop (v, &x))
        return false;
      t = top (v);
      if (!t || t->kind != V_DICT)
        return v->pos = at, vfail (v, "pickle SETITEM on something that is not a dict");
      if (add_item (v, v->stack[v->sp - 1], x))
        add_item (v, v->stack[v->sp - 1], y);
      break;
    case 'u': /* SETITEMS */
    case 'e': { /* APPENDS */
      if (!v->n_marks)
        return vfail (v, "pickle MARK missing");
      size_t m = v->marks[--v->n_marks];
      if (m == 0 || m - 1 < floor_sp (v))
        return v->pos = at, vfail (v, "pickle %s without a container", op == 'u' ? "SETITEMS" : "APPENDS");
      int32_t c = v->stack[m - 1];
      if (v->vals[c].kind != (op == 'u' ? V_DICT : V_LIST) || (op == 'u' && (v->sp - m) % 2))
        return v->pos = at, vfail (v, "pickle %s on the wrong kind of value", op == 'u' ? "SETITEMS" : "APPENDS");
      for (size_t k = m; k < v->sp; k++)
        if (!add_item (v, c, v->stack[k]))
          return false;
      v->sp = m;
      break;
    }
    case 'a': /* APPEND */
      if (!pop (v, &y))
        return false;
      t = top (v);
      if (!t || t->kind != V_LIST)
        return v->pos = at, vfail (v, "pickle APPEND on something that is not a list");
      add_item (v, v->stack[v->sp - 1], y);
      break;
    default:
      v->pos = at;
      return vfail (v, "pickle opcode 0x%02x is not supported (this reader only loads state dicts of float tensors)", op);
    }
  }
  return false;
}

static const cel_torch_tensor *find_tensor (const cel_torch_tensor *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp (t[i].name, name) == 0)
      return &t[i];
  return NULL;
}

/* The state dict inside the object: the root dict if it holds tensors, else the one dict among its values
 * that does (checkpoints such as {'state_dict': ..., 'epoch': 3}). */
static bool find_state_dict (vm *v, int32_t root, int32_t *out) {
  const value *r = &v->vals[root];
  if (r->kind != V_DICT)
    return vfail (v, "the checkpoint's object is not a dict (a state_dict was expected)");
  int32_t found = -1, n_found = 0;
  for (int32_t k = 0; k + 1 < r->n; k += 2) {
    const value *val = &v->vals[r->items[k + 1]];
    if (val->kind == V_TENSOR) {
      *out = root;
      return true;
    }
    if (val->kind == V_DICT) {
      for (int32_t j = 1; j < val->n; j += 2)
        if (v->vals[val->items[j]].kind == V_TENSOR) {
          found = r->items[k + 1];
          n_found++;
          break;
        }
    }
  }
  if (n_found != 1)
    return vfail (v, n_found ? "the checkpoint holds several dicts of tensors; which is the state_dict is unclear"
                             : "the checkpoint holds no tensors");
  *out = found;
  return true;
}

static int key_compare (const unsigned char *a, uint32_t na, const unsigned char *b, uint32_t nb) {
  int c = memcmp (a, b, na < nb ? na : nb);
  return c ? c : (na > nb) - (na < nb);
}

static int storage_ptr_compare (const void *a, const void *b) {
  const storage_rec *x = *(const storage_rec *const *) a, *y = *(const storage_rec *const *) b;
  return key_compare (x->key, x->key_len, y->key, y->key_len);
}

/* The first of the records (sorted by key) with this key, or -1. */
static ptrdiff_t find_key (storage_rec *const *sorted, size_t n, const unsigned char *key, uint32_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (key_compare (sorted[mid]->key, sorted[mid]->key_len, key, len) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && key_compare (sorted[lo]->key, sorted[lo]->key_len, key, len) == 0 ? (ptrdiff_t) lo : -1;
}

/* Reads the storages after the keys list into the records: each key once, in the list's order, with the element
 * count the object declared. Sorting keeps this O(n log n) however many storages a file names. */
static bool read_storages (vm *v, const value *kl) {
  storage_rec **sorted = malloc ((v->n_storages + 1) * sizeof *sorted);
  if (!sorted)
    return vfail (v, "out of memory");
  for (size_t i = 0; i < v->n_storages; i++)
    sorted[i] = &v->storages[i];
  qsort (sorted, v->n_storages, sizeof *sorted, storage_ptr_compare);
  bool ok = true;
  for (size_t i = 1; ok && i < v->n_storages; i++)
    if (!storage_ptr_compare (&sorted[i - 1], &sorted[i]) &&
        (sorted[i - 1]->type != sorted[i]->type || sorted[i - 1]->size != sorted[i]->size))
      ok = vfail (v, "storage '%.*s' is declared twice with different types or sizes", (int) sorted[i]->key_len,
                  (const char *) sorted[i]->key);
  for (int32_t k = 0; ok && k < kl->n; k++) {
    const value *key = &v->vals[kl->items[k]];
    ptrdiff_t at = key->kind == V_STR ? find_key (sorted, v->n_storages, key->s, key->len) : -1;
    if (at < 0) {
      ok = vfail (v, "storage key %d is not one the object uses", (int) k);
      break;
    }
    storage_rec *s = sorted[at];
    uint64_t n;
    size_t nbytes;
    if (s->data)
      ok = vfail (v, "storage '%.*s' is listed twice", (int) key->len, (const char *) key->s);
    else if (v->size - v->pos < 8)
      ok = vfail (v, "the file ends before storage '%.*s'", (int) key->len, (const char *) key->s);
    else if ((n = read_le (v->p + v->pos, 8)) != (uint64_t) s->size)
      ok = vfail (v, "storage '%.*s' holds %llu elements, the object says %lld", (int) key->len, (const char *) key->s,
                  (unsigned long long) n, (long long) s->size);
    else if ((nbytes = (size_t) n * (size_t) elem_size (s->type)) > v->size - v->pos - 8)
      ok = vfail (v, "the file ends inside storage '%.*s'", (int) key->len, (const char *) key->s);
    else {
      v->pos += 8;
      for (size_t j = (size_t) at; j < v->n_storages && !storage_ptr_compare (&sorted[at], &sorted[j]); j++)
        sorted[j]->data = v->p + v->pos;
      v->pos += nbytes;
    }
  }
  for (size_t i = 0; ok && i < v->n_storages; i++)
    if (!v->storages[i].data)
      ok = vfail (v, "storage '%.*s' is used but not in the file", (int) v->storages[i].key_len, (const char *) v->storages[i].key);
  free (sorted);
  return ok;
}

static int name_ptr_compare (const void *a, const void *b) {
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void free_vm (vm *v) {
  for (size_t i = 0; i < v->n_vals; i++)
    free (v->vals[i].items);
  free (v->vals);
  free (v->stack);
  free (v->marks);
  free (v->memo);
  free (v->storages);
  free (v->tensors);
}

static cel_status materialize (vm *v, int32_t sd, cel_torch_file *f) {
  const value *d = &v->vals[sd];
  /* Tensors may view one storage several times (tied weights); a hostile file could make thousands of views
   * of one large storage, so what is made here is bounded by the file's size. */
  uint64_t total = 0, limit = 8 * (uint64_t) v->size + 65536;
  f->tensors = calloc ((size_t) d->n / 2 + 1, sizeof *f->tensors);
  if (!f->tensors)
    return vfail (v, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  for (int32_t k = 0; k + 1 < d->n; k += 2) {
    const value *key = &v->vals[d->items[k]], *val = &v->vals[d->items[k + 1]];
    if (key->kind != V_STR || key->len == 0 || memchr (key->s, 0, key->len))
      return vfail (v, "a state_dict key is not a non-empty string"), CEL_ERROR_FORMAT;
    if (val->kind != V_TENSOR)
      return vfail (v, "state_dict entry '%.*s' is not a tensor", (int) key->len, (const char *) key->s), CEL_ERROR_FORMAT;
    const tensor_rec *t = &v->tensors[val->i];
    const storage_rec *s = &v->storages[t->storage];
    cel_torch_tensor *out = &f->tensors[f->n_tensors];
    char *name = malloc (key->len + 1u);
    if (!name)
      return vfail (v, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
    memcpy (name, key->s, key->len);
    name[key->len] = 0;
    out->name = name;
    f->n_tensors++;
    out->rank = t->rank;
    bool empty = false;
    for (int32_t r = 0; r < t->rank; r++) {
      out->shape[r] = t->shape[r];
      empty |= t->shape[r] == 0;
    }
    out->count = 1;
    for (int32_t r = 0; r < t->rank && !empty; r++) /* at most the storage size (checked when rebuilt) */
      out->count *= t->shape[r];
    if (empty)
      out->count = 0;
    total += (uint64_t) out->count * sizeof (float);
    if (total > limit)
      return vfail (v, "the tensors view their storages so often that they would take %llu bytes for a %zu-byte file",
                    (unsigned long long) total, v->size), CEL_ERROR_FORMAT;
    float *data = malloc ((size_t) (out->count ? out->count : 1) * sizeof *data);
    if (!data)
      return vfail (v, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
    out->data = data;
    int64_t idx[CEL_MAX_RANK] = { 0 };
    for (int64_t e = 0; e < out->count; e++) {
      int64_t at = t->offset;
      for (int32_t r = 0; r < t->rank; r++)
        at += idx[r] * t->stride[r];
      const unsigned char *p = s->data + (size_t) at * (size_t) elem_size (s->type);
      if (s->type == G_FLOAT_STORAGE) {
        uint32_t bits = (uint32_t) read_le (p, 4);
        memcpy (&data[e], &bits, 4);
      } else if (s->type == G_HALF_STORAGE) {
        data[e] = cel_half_to_float ((uint16_t) read_le (p, 2));
      } else {
        uint64_t bits = read_le (p, 8);
        double dv;
        memcpy (&dv, &bits, 8);
        data[e] = (float) dv;
      }
      for (int32_t r = t->rank - 1; r >= 0; r--) { /* row-major increment */
        if (++idx[r] < t->shape[r])
          break;
        idx[r] = 0;
      }
    }
  }
  /* duplicate keys: sorted names side by side */
  const char **names = malloc ((f->n_tensors + 1) * sizeof *names);
  if (!names)
    return vfail (v, "out of memory"), CEL_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < f->n_tensors; i++)
    names[i] = f->tensors[i].name;
  qsort (names, f->n_tensors, sizeof *names, name_ptr_compare);
  cel_status st = CEL_OK;
  for (size_t i = 1; i < f->n_tensors && !st; i++)
    if (!strcmp (names[i - 1], names[i]))
      st = (vfail (v, "state_dict key '%s' appears twice", names[i]), CEL_ERROR_FORMAT);
  free (names);
  return st;
}

cel_status cel_torch_open_memory (const void *data, size_t size, const char *what, cel_torch_file **out, char *err,
                                  size_t errlen) {
  static const unsigned char magic[10] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
  *out = NULL;
  cel_torch_file *f = calloc (1, sizeof *f);
  if (!f) {
    if (err && errlen)
      snprintf (err, errlen, "%s: out of memory", what);
    return CEL_ERROR_OUT_OF_HOST_MEMORY;
  }
  const unsigned char *bytes = data;
  /* values point into `data` while it is read; the tensors are copied out as floats at the end */
  vm v = { .p = bytes, .size = size, .what = what, .err = err, .errlen = errlen };
  cel_status st = CEL_ERROR_FORMAT;
  int32_t obj = -1, root = -1, keys = -1, sd = -1;
  if (size >= 4 && !memcmp (bytes, "PK\x03\x04", 4)) {
    vfail (&v, "this is a zip-based PyTorch checkpoint (torch.save since 1.6); only the legacy format is read "
           "(re-save it with _use_new_zipfile_serialization=False)");
    goto done;
  }
  if (!run_pickle (&v, &obj))
    goto done;
  if (v.vals[obj].kind != V_LONG || v.vals[obj].len != sizeof magic || memcmp (v.vals[obj].s, magic, sizeof magic)) {
    v.pos = 0;
    vfail (&v, "not a legacy PyTorch checkpoint (no magic number)");
    goto done;
  }
  if (!run_pickle (&v, &obj))
    goto done;
  if (v.vals[obj].kind != V_INT || v.vals[obj].i != 1001) {
    vfail (&v, "unsupported PyTorch serialization protocol (1001 is read)");
    goto done;
  }
  if (!run_pickle (&v, &obj))
    goto done;
  const value *info = &v.vals[obj];
  bool little = false;
  for (int32_t k = 0; info->kind == V_DICT && k + 1 < info->n; k += 2)
    if (str_equal (&v.vals[info->items[k]], "little_endian"))
      little = v.vals[info->items[k + 1]].kind == V_BOOL && v.vals[info->items[k + 1]].i == 1;
  if (!little) {
    vfail (&v, "the checkpoint's system info is missing or says big-endian");
    goto done;
  }
  if (!run_pickle (&v, &root) || !find_state_dict (&v, root, &sd) || !run_pickle (&v, &keys))
    goto done;
  const value *kl = &v.vals[keys];
  if (kl->kind != V_LIST) {
    vfail (&v, "the storage key list is not a list");
    goto done;
  }
  if (!read_storages (&v, kl))
    goto done;
  if (v.pos != size) {
    vfail (&v, "%zu bytes after the last storage", size - v.pos);
    goto done;
  }
  st = materialize (&v, sd, f);

done:
  free_vm (&v);
  if (st) {
    cel_torch_close (f);
    return st;
  }
  *out = f;
  return CEL_OK;
}

cel_status cel_torch_open (const char *path, cel_torch_file **out, char *err, size_t errlen) {
  *out = NULL;
  FILE *fp = fopen (path, "rb");
  if (!fp) {
    if (err && errlen)
      snprintf (err, errlen, "cannot open '%s': %m", path);
    return CEL_ERROR_IO;
  }
  struct stat sb;
  unsigned char *buf = NULL;
  cel_status st = CEL_ERROR_IO;
  if (fstat (fileno (fp), &sb) != 0 || !S_ISREG (sb.st_mode)) {
    if (err && errlen)
      snprintf (err, errlen, "'%s' is not a regular file", path);
  } else if (!(buf = malloc ((size_t) sb.st_size ? (size_t) sb.st_size : 1))) {
    if (err && errlen)
      snprintf (err, errlen, "'%s': out of memory", path);
    st = CEL_ERROR_OUT_OF_HOST_MEMORY;
  } else if (fread (buf, 1, (size_t) sb.st_size, fp) != (size_t) sb.st_size) {
    if (err && errlen)
      snprintf (err, errlen, "cannot read '%s'", path);
  } else {
    st = cel_torch_open_memory (buf, (size_t) sb.st_size, path, out, err, errlen);
  }
  fclose (fp);
  free (buf);
  return st;
}

void cel_torch_close (cel_torch_file *f) {
  if (!f)
    return;
  for (size_t i = 0; i < f->n_tensors; i++) {
    free ((char *) f->tensors[i].name);
    free ((float *) f->tensors[i].data);
  }
  free (f->tensors);
  free (f);
}

size_t cel_torch_count (const cel_torch_file *f) {
  return f->n_tensors;
}

const cel_torch_tensor *cel_torch_tensor_at (const cel_torch_file *f, size_t i) {
  return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const cel_torch_tensor *cel_torch_find (const cel_torch_file *f, const char *name) {
  return find_tensor (f->tensors, f->n_tensors, name);
}
