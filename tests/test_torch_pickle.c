/* The legacy PyTorch checkpoint reader on small checkpoints assembled here byte by byte (no PyTorch needed):
 * a valid state_dict with a shared, transposed storage view, half and double storages, a state_dict nested
 * in a dict, and malformed or hostile files that must each be refused with the problem named. Every
 * truncation of a valid file is tried too (ASan builds check that none reads out of bounds). The same
 * reader on files written by torch.save itself is tested by tests/oracle/torch_pickle.py. */
#include "opcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
  unsigned char d[1 << 17];
  size_t n;
} buf;

static void put (buf *b, const void *p, size_t n) {
  if (b->n + n <= sizeof b->d) {
    memcpy (b->d + b->n, p, n);
    b->n += n;
  }
}

static void op (buf *b, unsigned char c) {
  put (b, &c, 1);
}

static void str (buf *b, const char *s) {
  uint32_t n = (uint32_t) strlen (s);
  unsigned char len[4] = { (unsigned char) n, (unsigned char) (n >> 8), (unsigned char) (n >> 16), (unsigned char) (n >> 24) };
  op (b, 'X');
  put (b, len, 4);
  put (b, s, n);
}

static void integer (buf *b, uint32_t v) {
  if (v < 256) {
    op (b, 'K');
    op (b, (unsigned char) v);
  } else if (v < 65536) {
    op (b, 'M');
    op (b, (unsigned char) v);
    op (b, (unsigned char) (v >> 8));
  } else {
    unsigned char le[4] = { (unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16), (unsigned char) (v >> 24) };
    op (b, 'J');
    put (b, le, 4);
  }
}

static void global (buf *b, const char *module, const char *name) {
  op (b, 'c');
  put (b, module, strlen (module));
  op (b, '\n');
  put (b, name, strlen (name));
  op (b, '\n');
}

static void u64 (buf *b, uint64_t v) {
  for (int i = 0; i < 8; i++)
    op (b, (unsigned char) (v >> (8 * i)));
}

/* The three header pickles: magic number, protocol 1001, system info. */
static void header (buf *b) {
  static const unsigned char magic[] = { 0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.' };
  put (b, magic, sizeof magic);
  static const unsigned char proto[] = { 0x80, 2, 'M', 0xe9, 0x03, '.' };
  put (b, proto, sizeof proto);
  op (b, 0x80);
  op (b, 2);
  op (b, '}');
  op (b, '(');
  str (b, "protocol_version");
  integer (b, 1001);
  str (b, "little_endian");
  op (b, 0x88);
  str (b, "type_sizes");
  op (b, '}');
  op (b, '(');
  str (b, "short");
  integer (b, 2);
  str (b, "int");
  integer (b, 4);
  str (b, "long");
  integer (b, 4);
  op (b, 'u');
  op (b, 'u');
  op (b, '.');
}

typedef struct tdesc {
  const char *name, *key, *type; /* type: "FloatStorage", ... */
  uint32_t storage_size, offset;
  int rank;
  uint32_t shape[4], stride[4];
} tdesc;

/* name: _rebuild_tensor_v2 (persistent storage, offset, shape, stride, False, OrderedDict ()) */
static void tensor_entry (buf *b, const tdesc *t) {
  str (b, t->name);
  global (b, "torch._utils", "_rebuild_tensor_v2");
  op (b, '(');
  op (b, '(');
  str (b, "storage");
  global (b, "torch", t->type);
  str (b, t->key);
  str (b, "cpu");
  integer (b, t->storage_size);
  op (b, 'N');
  op (b, 't');
  op (b, 'Q');
  integer (b, t->offset);
  op (b, '(');
  for (int i = 0; i < t->rank; i++)
    integer (b, t->shape[i]);
  op (b, 't');
  op (b, '(');
  for (int i = 0; i < t->rank; i++)
    integer (b, t->stride[i]);
  op (b, 't');
  op (b, 0x89);
  global (b, "collections", "OrderedDict");
  op (b, ')');
  op (b, 'R');
  op (b, 't');
  op (b, 'R');
}

/* The state dict: an OrderedDict of `n` tensors, with its _metadata set by BUILD as torch writes it. */
static void state_dict (buf *b, const tdesc *t, int n) {
  global (b, "collections", "OrderedDict");
  op (b, 'q'); /* BINPUT 0 */
  op (b, 0);
  op (b, ')');
  op (b, 'R');
  op (b, '(');
  for (int i = 0; i < n; i++)
    tensor_entry (b, &t[i]);
  op (b, 'u');
  op (b, '}'); /* state: {'_metadata': OrderedDict ()} */
  str (b, "_metadata");
  op (b, 'h'); /* BINGET 0 */
  op (b, 0);
  op (b, ')');
  op (b, 'R');
  op (b, 's');
  op (b, 'b');
}

/* Storage "0": 6 floats 0..5 (a (2,3) weight and its transpose share it); storage "1": 3 halves. */
static const tdesc good_tensors[3] = {
  { "layer.weight", "0", "FloatStorage", 6, 0, 2, { 2, 3 }, { 3, 1 } },
  { "layer.weight_t", "0", "FloatStorage", 6, 1, 2, { 3, 1 }, { 1, 3 } },
  { "layer.bias", "1", "HalfStorage", 3, 0, 1, { 3 }, { 1 } },
};

static void storages (buf *b, uint64_t float_count) {
  op (b, 0x80);
  op (b, 2);
  op (b, ']');
  op (b, '(');
  str (b, "0");
  str (b, "1");
  op (b, 'e');
  op (b, '.');
  u64 (b, float_count);
  for (int i = 0; i < 6; i++) {
    float f = (float) i;
    put (b, &f, 4);
  }
  u64 (b, 3);
  static const unsigned char halves[] = { 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38 }; /* 1, -2, 0.5 */
  put (b, halves, sizeof halves);
}

static void good_file (buf *b) {
  b->n = 0;
  header (b);
  op (b, 0x80);
  op (b, 2);
  state_dict (b, good_tensors, 3);
  op (b, '.');
  storages (b, 6);
}

static cel_status open_buf (const buf *b, cel_torch_file **f, char *err, size_t errlen) {
  return cel_torch_open_memory (b->d, b->n, "test.pth", f, err, errlen);
}

static void test_valid (void) {
  buf b;
  good_file (&b);
  cel_torch_file *f = NULL;
  char err[512] = "";
  cel_status st = open_buf (&b, &f, err, sizeof err);
  if (!tap_ok (st == CEL_OK && cel_torch_count (f) == 3, "/torch_pickle/reads_state_dict"))
    tap_diag ("  status %d: %s", st, err);
  if (st)
    return;
  const cel_torch_tensor *w = cel_torch_find (f, "layer.weight"), *wt = cel_torch_find (f, "layer.weight_t"),
                         *bias = cel_torch_find (f, "layer.bias");
  bool ok = w && w->rank == 2 && w->shape[0] == 2 && w->shape[1] == 3 && w->count == 6;
  for (int i = 0; ok && i < 6; i++)
    ok = w->data[i] == (float) i;
  tap_ok (ok, "/torch_pickle/float_storage");
  /* offset 1, shape (3,1), stride (1,3): elements 1, 2, 3 */
  ok = wt && wt->shape[0] == 3 && wt->shape[1] == 1 && wt->data[0] == 1 && wt->data[1] == 2 && wt->data[2] == 3;
  tap_ok (ok, "/torch_pickle/strided_view_of_shared_storage");
  ok = bias && bias->rank == 1 && bias->data[0] == 1 && bias->data[1] == -2 && bias->data[2] == 0.5f;
  tap_ok (ok, "/torch_pickle/half_storage");
  tap_ok (strcmp (cel_torch_tensor_at (f, 0)->name, "layer.weight") == 0 && cel_torch_tensor_at (f, 3) == NULL &&
          cel_torch_find (f, "nope") == NULL, "/torch_pickle/order_and_lookup");
  cel_torch_close (f);
}

static void test_nested_state_dict (void) {
  buf b = { .n = 0 };
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  op (&b, '}');
  op (&b, '(');
  str (&b, "epoch");
  integer (&b, 3);
  str (&b, "state_dict");
  state_dict (&b, good_tensors, 3);
  op (&b, 'u');
  op (&b, '.');
  storages (&b, 6);
  cel_torch_file *f = NULL;
  char err[512] = "";
  cel_status st = open_buf (&b, &f, err, sizeof err);
  if (!tap_ok (st == CEL_OK && cel_torch_count (f) == 3, "/torch_pickle/state_dict_nested_in_a_dict"))
    tap_diag ("  status %d: %s", st, err);
  cel_torch_close (f);
}

/* A file whose object pickle is `object` (a complete pickle body, without PROTO and STOP). */
static void refused (const char *name, const buf *object, bool with_storages, const char *expect) {
  buf b = { .n = 0 };
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  put (&b, object->d, object->n);
  op (&b, '.');
  if (with_storages)
    storages (&b, 6);
  cel_torch_file *f = NULL;
  char err[512] = "";
  cel_status st = open_buf (&b, &f, err, sizeof err);
  bool ok = st == CEL_ERROR_FORMAT && f == NULL && strstr (err, expect) && strstr (err, "test.pth: offset ");
  if (!tap_ok (ok, "/torch_pickle/refuses/%s", name))
    tap_diag ("  status %d, message '%s' (expected to mention '%s')", st, err, expect);
  cel_torch_close (f);
}

static void test_refused (void) {
  buf o = { .n = 0 };
  global (&o, "os", "system"); /* the classic: os.system ('...') */
  str (&o, "echo hacked");
  op (&o, 0x85);
  op (&o, 'R');
  refused ("global_os_system", &o, false, "'os.system' is not allowed");

  o.n = 0;
  global (&o, "torch", "FloatStorage"); /* an allowed name, but not callable here */
  op (&o, ')');
  op (&o, 'R');
  refused ("reduce_of_storage_type", &o, false, "REDUCE of torch.FloatStorage");

  o.n = 0;
  op (&o, 'i'); /* INST: calls a class by name */
  refused ("inst_opcode", &o, false, "opcode 0x69");

  o.n = 0;
  str (&o, "a");
  str (&o, "b");
  op (&o, 's'); /* SETITEM on a string */
  refused ("setitem_on_string", &o, false, "not a dict");

  o.n = 0;
  op (&o, 'h'); /* BINGET of an empty memo */
  op (&o, 7);
  refused ("get_of_unset_memo", &o, false, "never PUT");

  o.n = 0;
  op (&o, 't'); /* TUPLE without MARK */
  refused ("tuple_without_mark", &o, false, "MARK missing");

  o.n = 0;
  op (&o, 'N');
  op (&o, 'N');
  refused ("two_values_at_stop", &o, false, "STOP with 2 values");

  tdesc t = good_tensors[0];
  o.n = 0;
  t.shape[0] = 3;
  t.shape[1] = 3;
  state_dict (&o, &t, 1);
  refused ("tensor_past_storage_end", &o, true, "past the end of its storage");

  o.n = 0;
  t = good_tensors[0];
  t.storage_size = 0x7fffffff;
  state_dict (&o, &t, 1);
  refused ("storage_larger_than_file", &o, true, "larger than the file");

  o.n = 0;
  t = good_tensors[0];
  t.type = "LongStorage";
  state_dict (&o, &t, 1);
  refused ("long_storage", &o, true, "'torch.LongStorage' is not allowed");

  o.n = 0;
  t = good_tensors[0];
  t.stride[0] = 0x7fffffff;
  state_dict (&o, &t, 1);
  refused ("huge_stride", &o, true, "does not fit its storage");

  o.n = 0;
  tdesc two[2] = { good_tensors[0], good_tensors[2] };
  two[1].name = two[0].name;
  state_dict (&o, two, 2);
  refused ("duplicate_key", &o, true, "appears twice");

  o.n = 0;
  two[1] = good_tensors[0];
  two[1].name = "other";
  two[1].storage_size = 7; /* the same storage key with another size */
  state_dict (&o, two, 2);
  refused ("storage_declared_twice_differently", &o, true, "declared twice with different");

  o.n = 0;
  op (&o, '}');
  str (&o, "x");
  integer (&o, 1);
  op (&o, 's');
  refused ("no_tensors", &o, false, "no tensors");
}

static void test_refused_layout (void) {
  buf b;
  cel_torch_file *f = NULL;
  char err[512];
  struct {
    const char *name, *expect;
    size_t at;
    unsigned char byte;
    int extra;
  } cases[] = {
    { "bad_magic", "no magic number", 5, 0x00, 0 },
    { "trailing_bytes", "after the last storage", 0, 0, 1 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    good_file (&b);
    if (cases[i].extra)
      op (&b, 0);
    else
      b.d[cases[i].at] = cases[i].byte;
    cel_status st = open_buf (&b, &f, err, sizeof err);
    if (!tap_ok (st == CEL_ERROR_FORMAT && strstr (err, cases[i].expect), "/torch_pickle/refuses/%s", cases[i].name))
      tap_diag ("  status %d: %s", st, err);
    cel_torch_close (f);
  }
  /* storage count in the data section differs from the object's */
  b.n = 0;
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  state_dict (&b, good_tensors, 3);
  op (&b, '.');
  storages (&b, 7);
  cel_status st = open_buf (&b, &f, err, sizeof err);
  if (!tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "holds 7 elements"), "/torch_pickle/refuses/storage_count_mismatch"))
    tap_diag ("  status %d: %s", st, err);
  /* a key listed twice in the storage list */
  b.n = 0;
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  state_dict (&b, good_tensors, 1);
  op (&b, '.');
  op (&b, 0x80);
  op (&b, 2);
  op (&b, ']');
  op (&b, '(');
  str (&b, "0");
  str (&b, "0");
  op (&b, 'e');
  op (&b, '.');
  for (int k = 0; k < 2; k++) {
    u64 (&b, 6);
    for (int i = 0; i < 6; i++) {
      float x = (float) i;
      put (&b, &x, 4);
    }
  }
  st = open_buf (&b, &f, err, sizeof err);
  if (!tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "listed twice"), "/torch_pickle/refuses/storage_listed_twice"))
    tap_diag ("  status %d: %s", st, err);
  static const unsigned char zip[] = { 'P', 'K', 3, 4, 0, 0, 0, 0 };
  st = cel_torch_open_memory (zip, sizeof zip, "new.pth", &f, err, sizeof err);
  tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "zip"), "/torch_pickle/refuses/zip_checkpoint");
  st = cel_torch_open ("/nonexistent/celgan/missing.pth", &f, err, sizeof err);
  tap_ok (st == CEL_ERROR_IO && f == NULL && strstr (err, "missing.pth"), "/torch_pickle/missing_file");
}

/* Many tensors viewing one storage: legal pickling, but what the reader makes is bounded by the file size. */
static void test_many_views (void) {
  static buf b;
  enum { N = 16384, VIEWS = 12 };
  tdesc t[VIEWS];
  char names[VIEWS][16];
  for (int i = 0; i < VIEWS; i++) {
    snprintf (names[i], sizeof names[i], "view%d", i);
    t[i] = (tdesc) { names[i], "0", "FloatStorage", N, 0, 1, { N }, { 1 } };
  }
  b.n = 0;
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  state_dict (&b, t, VIEWS);
  op (&b, '.');
  op (&b, 0x80);
  op (&b, 2);
  op (&b, ']');
  str (&b, "0");
  op (&b, 'a');
  op (&b, '.');
  u64 (&b, N);
  for (int i = 0; i < N; i++) {
    float f = 0.25f;
    put (&b, &f, 4);
  }
  cel_torch_file *f = NULL;
  char err[512] = "";
  cel_status st = open_buf (&b, &f, err, sizeof err);
  if (!tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "view their storages so often"), "/torch_pickle/refuses/too_many_views"))
    tap_diag ("  status %d: %s", st, err);
  cel_torch_close (f);
  /* two views (tied weights) are fine */
  b.n = 0;
  header (&b);
  op (&b, 0x80);
  op (&b, 2);
  state_dict (&b, t, 2);
  op (&b, '.');
  op (&b, 0x80);
  op (&b, 2);
  op (&b, ']');
  str (&b, "0");
  op (&b, 'a');
  op (&b, '.');
  u64 (&b, N);
  for (int i = 0; i < N; i++) {
    float v = (float) i;
    put (&b, &v, 4);
  }
  st = open_buf (&b, &f, err, sizeof err);
  bool ok = st == CEL_OK && cel_torch_count (f) == 2 && cel_torch_tensor_at (f, 1)->data[N - 1] == (float) (N - 1);
  if (!tap_ok (ok, "/torch_pickle/tied_weights_share_a_storage"))
    tap_diag ("  status %d: %s", st, err);
  cel_torch_close (f);
}

/* Every prefix of a valid file is refused cleanly. */
static void test_truncations (void) {
  buf b;
  good_file (&b);
  bool ok = true;
  size_t bad_at = 0;
  for (size_t n = 0; n < b.n && ok; n++) {
    cel_torch_file *f = NULL;
    char err[256];
    cel_status st = cel_torch_open_memory (b.d, n, "cut.pth", &f, err, sizeof err);
    ok = st == CEL_ERROR_FORMAT && f == NULL;
    bad_at = n;
  }
  if (!tap_ok (ok, "/torch_pickle/refuses_every_truncation"))
    tap_diag ("  a file cut to %zu bytes was not refused", bad_at);
}

int main (void) {
  test_valid ();
  test_nested_state_dict ();
  test_refused ();
  test_refused_layout ();
  test_many_views ();
  test_truncations ();
  return tap_finish ();
}
