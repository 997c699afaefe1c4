/* safetensors: round trips in F32 and F16 with metadata, half conversion, and a corpus of broken files
 * that must each be refused with a message naming the problem. */
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/celgan-st-XXXXXX";

static bool write_file (const char *path, const void *data, size_t n) {
  FILE *f = fopen (path, "wb");
  if (!f)
    return false;
  bool ok = fwrite (data, 1, n, f) == n;
  return (fclose (f) == 0) && ok;
}

static void test_round_trip (void) {
  float a[6] = { 1.5f, -2, 0, 3.25f, 1e-3f, -7 }, b[4] = { 0.5f, -0.25f, 65504, 1e-5f };
  cel_tensor_entry t[2] = {
    { .name = "enc.conv0.weight", .dtype = CEL_DTYPE_F32, .rank = 2, .shape = { 2, 3 }, .data = a },
    { .name = "enc.conv0.bias", .dtype = CEL_DTYPE_F16, .rank = 1, .shape = { 4 }, .data = b },
  };
  const char *meta[] = { "celgan.format", "1", "celgan.name", "Test \"quoted\" ünicode\n" };
  char path[256], err[256] = "";
  snprintf (path, sizeof path, "%s/ok.safetensors", dir);
  cel_status st = cel_safetensors_save (path, t, 2, meta, 2, err, sizeof err);
  tap_ok (st == CEL_OK, "/safetensors/save");
  cel_safetensors *f = NULL;
  st = cel_safetensors_open (path, &f, err, sizeof err);
  if (!tap_ok (st == CEL_OK, "/safetensors/open_saved_file"))
    tap_diag ("  %s", err);
  if (st)
    return;
  const cel_tensor_info *ta = cel_safetensors_find (f, "enc.conv0.weight"), *tb = cel_safetensors_find (f, "enc.conv0.bias");
  float ra[6], rb[4];
  bool ok = ta && tb && ta->rank == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 && tb->dtype == CEL_DTYPE_F16 &&
            cel_safetensors_read_f32 (f, ta, ra, 6, err, sizeof err) == CEL_OK &&
            cel_safetensors_read_f32 (f, tb, rb, 4, err, sizeof err) == CEL_OK && memcmp (a, ra, sizeof a) == 0;
  for (int i = 0; i < 4 && ok; i++)
    ok = fabsf (rb[i] - b[i]) <= fabsf (b[i]) * 1e-3f + 1e-7f;
  tap_ok (ok, "/safetensors/round_trip_f32_and_f16");
  const char *name = cel_safetensors_metadata (f, "celgan.name");
  tap_ok (name && strcmp (name, meta[3]) == 0 && cel_safetensors_metadata_count (f) == 2 &&
          !cel_safetensors_metadata (f, "nope"), "/safetensors/metadata_round_trip_with_escapes");
  tap_ok (cel_safetensors_read_f32 (f, ta, ra, 5, err, sizeof err) == CEL_ERROR_INVALID_ARGUMENT, "/safetensors/read_wrong_count");
  cel_safetensors_close (f);

  /* The saved file is byte-compatible with what the reference writer expects: header padded to 8. */
  FILE *fp = fopen (path, "rb");
  unsigned char len8[8] = { 0 };
  ok = fp && fread (len8, 1, 8, fp) == 8;
  if (fp)
    fclose (fp);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | len8[i];
  tap_ok (ok && hlen % 8 == 0, "/safetensors/header_is_8_byte_aligned");

  /* Atomic save: no temporary file is left behind. */
  char cmd[512];
  snprintf (cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", dir);
  tap_ok (system (cmd) != 0, "/safetensors/no_temporary_file_left");
  snprintf (path, sizeof path, "%s/no-such-dir/x.safetensors", dir);
  tap_ok (cel_safetensors_save (path, t, 2, meta, 2, err, sizeof err) == CEL_ERROR_IO && strstr (err, "cannot write"),
          "/safetensors/save_to_unwritable_place_fails_cleanly");
}

static void test_half (void) {
  struct { float f; uint16_t h; } cases[] = {
    { 0.0f, 0x0000 }, { -0.0f, 0x8000 }, { 1.0f, 0x3C00 }, { -2.0f, 0xC000 }, { 65504.0f, 0x7BFF },
    { 1e6f, 0x7C00 }, { 5.9604645e-8f, 0x0001 }, { 6.1035156e-5f, 0x0400 }, { 0.33325195f, 0x3555 },
  };
  bool ok = true;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint16_t h = cel_float_to_half (cases[i].f);
    if (h != cases[i].h) {
      ok = false;
      tap_diag ("  %g -> 0x%04x, want 0x%04x", (double) cases[i].f, h, cases[i].h);
    }
    if (cases[i].h != 0x7C00 && cel_half_to_float (cases[i].h) != cases[i].f && cases[i].f != 1e6f) {
      ok = false;
      tap_diag ("  0x%04x -> %g, want %g", cases[i].h, (double) cel_half_to_float (cases[i].h), (double) cases[i].f);
    }
  }
  /* every half round-trips through float */
  for (uint32_t h = 0; h < 0x10000 && ok; h++) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
      continue; /* NaN payloads */
    ok = cel_float_to_half (cel_half_to_float ((uint16_t) h)) == h;
  }
  tap_ok (ok, "/safetensors/half_conversion");
}

/* A header + data assembled by hand. */
static void broken (const char *name, const char *header, size_t data_bytes, uint64_t fake_len, const char *expect) {
  size_t hl = strlen (header);
  size_t n = 8 + hl + data_bytes;
  unsigned char *buf = calloc (1, n);
  uint64_t len = fake_len ? fake_len : hl;
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char) (len >> (8 * i));
  memcpy (buf + 8, header, hl);
  cel_safetensors *f = NULL;
  char err[512] = "";
  cel_status st = cel_safetensors_open_memory (buf, n, "broken.safetensors", &f, err, sizeof err);
  bool ok = st == CEL_ERROR_FORMAT && f == NULL && strstr (err, expect) != NULL;
  if (!tap_ok (ok, "/safetensors/refuses/%s", name))
    tap_diag ("  status %d, message '%s' (expected to mention '%s')", st, err, expect);
  cel_safetensors_close (f);
  free (buf);
}

static void test_broken_corpus (void) {
  const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  broken ("header_length_past_end", good, 8, 1u << 20, "header length");
  broken ("header_length_absurd", good, 8, UINT64_MAX, "header length");
  broken ("bad_json", "{\"a\":{\"dtype\":\"F32\",", 8, 0, "JSON");
  broken ("trailing_garbage", "{}x", 0, 0, "trailing");
  broken ("duplicate_key", "{\"a\":{},\"a\":{}}", 0, 0, "duplicate");
  broken ("not_an_object", "[1,2]", 0, 0, "not a JSON object");
  broken ("unknown_dtype", "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, 0, "dtype");
  broken ("offsets_past_end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0, "past the end");
  broken ("size_does_not_match_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "shape needs");
  broken ("overlapping", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, "overlaps");
  broken ("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "unused bytes");
  broken ("trailing_data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, 0, "after the last");
  broken ("huge_dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,1099511627776],"
          "\"data_offsets\":[0,8]}}", 8, 0, "larger than");
  broken ("negative_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "bad dimension");
  broken ("fractional_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, 0, "bad dimension");
  broken ("reversed_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "data_offsets");
  broken ("rank_too_high", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0, "rank");
  broken ("metadata_not_string", "{\"__metadata__\":{\"k\":3}}", 0, 0, "not a string");
  broken ("unknown_field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, 0, "unknown field");
  broken ("deep_nesting", "{\"__metadata__\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 0, 0, "deeper");
  broken ("bad_escape", "{\"a\\q\":1}", 0, 0, "escape");
  broken ("lone_surrogate", "{\"\\ud800\":1}", 0, 0, "surrogate");
  {
    cel_safetensors *f = NULL;
    char err[256] = "";
    cel_status st = cel_safetensors_open_memory ("abc", 3, "tiny", &f, err, sizeof err);
    tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "too short"), "/safetensors/refuses/too_short");
    char path[256];
    snprintf (path, sizeof path, "%s/missing.safetensors", dir);
    st = cel_safetensors_open (path, &f, err, sizeof err);
    tap_ok (st == CEL_ERROR_IO && strstr (err, "missing.safetensors"), "/safetensors/missing_file");
    tap_ok (cel_safetensors_open (dir, &f, err, sizeof err) == CEL_ERROR_IO, "/safetensors/directory_is_not_a_file");
  }
  /* An empty header with no tensors is valid. */
  {
    char path[256];
    snprintf (path, sizeof path, "%s/empty.safetensors", dir);
    unsigned char buf[10] = { 2, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
    cel_safetensors *f = NULL;
    bool ok = write_file (path, buf, 10) && cel_safetensors_open (path, &f, NULL, 0) == CEL_OK &&
              cel_safetensors_count (f) == 0;
    tap_ok (ok, "/safetensors/empty_file_is_valid");
    cel_safetensors_close (f);
  }
}

int main (void) {
  if (!mkdtemp (dir)) {
    printf ("Bail out! cannot make a temporary folder\n");
    return 1;
  }
  test_half ();
  test_round_trip ();
  test_broken_corpus ();
  char cmd[300];
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  if (system (cmd) != 0)
    tap_diag ("could not remove %s", dir);
  return tap_finish ();
}
