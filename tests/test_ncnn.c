/* ncnn import: a small hand-written model (convolution with fp16 weights and a fused leaky ReLU, PReLU, pixel
 * shuffle, nearest upscaling of the input, an add) imports, and CelGAN runs it as realesrgan-ncnn-vulkan
 * would (reflection pre-padding, cropped output), equal to a double-precision composition of the C
 * references, tiled and untiled; every malformed or unsupported file is refused with a message naming the
 * problem. */
#include "activation_ref.h"
#include "conv_ref.h"
#include "opcheck.h"
#include "resize_ref.h"
#include "spatial_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/celgan-ncnn-XXXXXX";

static const char *good_param = "7767517\n"
                                "7 8\n"
                                "Input        in   0 1 data 0=16 1=16 2=3\n"
                                "Split        sp   1 2 data d0 d1\n"
                                "Convolution  conv 1 1 d0 c 0=12 1=3 4=1 5=1 6=324 9=2 -23310=1,0.1\n"
                                "PReLU        pr   1 1 c p 0=12\n"
                                "PixelShuffle ps   1 1 p s 0=2\n"
                                "Interp       up   1 1 d1 u 0=1 1=2.000000e+00 2=2.000000e+00\n"
                                "BinaryOp     add  2 1 s u out\n";

/* The .bin of good_param: conv weights (fp16 with its tag, or fp32 with flag 0), conv bias, slopes. */
typedef struct bin {
  unsigned char data[4096];
  size_t size;
} bin;

static float conv_w[324], conv_b[12], slope[12];

static void put32 (bin *b, uint32_t v) {
  for (int i = 0; i < 4; i++)
    b->data[b->size++] = (unsigned char) (v >> (8 * i));
}
static void putf (bin *b, float f) {
  uint32_t u;
  memcpy (&u, &f, 4);
  put32 (b, u);
}

static bin make_bin (uint32_t flag) {
  bin b = { .size = 0 };
  put32 (&b, flag);
  for (int i = 0; i < 324; i++) {
    if (flag == 0x01306B47u) {
      uint16_t h = cel_float_to_half (conv_w[i]);
      b.data[b.size++] = (unsigned char) h;
      b.data[b.size++] = (unsigned char) (h >> 8);
    } else {
      putf (&b, conv_w[i]);
    }
  }
  for (int i = 0; i < 12; i++)
    putf (&b, conv_b[i]);
  for (int i = 0; i < 12; i++)
    putf (&b, slope[i]);
  return b;
}

/* The model as realesrgan-ncnn-vulkan runs it, in double: x (3,H,W) -> y (3,2H,2W), clamped to [0, 1]. */
static void reference (const double *x, int32_t H, int32_t W, double *y) {
  ref_shape xs = { 1, 3, H, W }, ps = { 1, 3, H + 20, W + 20 }, cs = { 1, 12, H + 20, W + 20 };
  ref_shape ss = { 1, 3, 2 * (H + 20), 2 * (W + 20) };
  size_t np = (size_t) ref_count (ps), nc = (size_t) ref_count (cs), ns = (size_t) ref_count (ss);
  double *xp = malloc (np * sizeof *xp), *c = malloc (nc * sizeof *c), *c2 = malloc (nc * sizeof *c2), *s = malloc (ns * sizeof *s),
         *u = malloc (ns * sizeof *u), w[324], bias[12], a[12];
  pad_ref_fwd (x, xs, 10, 10, 10, 10, 1, xp);
  for (int i = 0; i < 324; i++)
    w[i] = cel_half_to_float (cel_float_to_half (conv_w[i]));
  for (int i = 0; i < 12; i++) {
    bias[i] = conv_b[i];
    a[i] = slope[i];
  }
  conv2d_ref_params p = { 1, 1, 1, 1, 1, 1, 1, 1, 1, false };
  conv2d_ref_fwd (xp, ps, w, (ref_shape) { 12, 3, 3, 3 }, bias, &p, c);
  activation_ref_fwd (c, (int64_t) nc, 1, (double) 0.1f, c2);
  prelu_ref_fwd (c2, cs, a, 1, c);
  pixel_shuffle_ref_fwd (c, cs, 2, 0, s);
  resize_ref_fwd (xp, ps, ss, 0, u);
  for (int32_t ch = 0; ch < 3; ch++)
    for (int32_t i = 0; i < 2 * H; i++)
      for (int32_t j = 0; j < 2 * W; j++) {
        int64_t k = ref_at (ss, 0, ch, i + 20, j + 20);
        double v = s[k] + u[k];
        y[((int64_t) ch * 2 * H + i) * 2 * W + j] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
  free (xp);
  free (c);
  free (c2);
  free (s);
  free (u);
}

static void test_small_model_runs_as_the_program_does (void) {
  for (int i = 0; i < 324; i++)
    conv_w[i] = (float) oc_rand_uniform (-0.3, 0.3);
  for (int i = 0; i < 12; i++) {
    conv_b[i] = (float) oc_rand_uniform (-0.1, 0.1);
    slope[i] = (float) oc_rand_uniform (0, 0.5);
  }
  bin b = make_bin (0x01306B47u);
  char path[256], err[1024] = "";
  snprintf (path, sizeof path, "%s/small.safetensors", dir);
  cel_ncnn_import_info info = { 0 };
  cel_status st = cel_ncnn_import_memory (good_param, strlen (good_param), b.data, b.size, "small.param", "small.bin", "realesrgan",
                                          path, &info, err, sizeof err);
  if (!tap_ok (st == CEL_OK && info.scale == 2 && info.prepadding == 10 && info.layers == 7, "/ncnn/import/small_model"))
    tap_diag ("  %s (scale %d, prepadding %d)", err, info.scale, info.prepadding);
  cel_model *m = NULL;
  if (st || cel_model_load (path, &m, err, sizeof err)) {
    tap_ok (false, "/ncnn/import/small_model_loads");
    tap_diag ("  %s", err);
    return;
  }
  const cel_model_info *mi = cel_model_get_info (m);
  tap_ok (mi->scale == 2 && mi->in_channels == 3 && mi->input_range[0] == 0 && mi->output_range[1] == 1,
          "/ncnn/import/small_model_info");
  const int32_t H = 19, W = 23;
  float *img = malloc ((size_t) H * W * 3 * sizeof *img), *out = malloc ((size_t) 4 * H * W * 3 * sizeof *out),
        *tiled = malloc ((size_t) 4 * H * W * 3 * sizeof *tiled);
  double *x = malloc ((size_t) 3 * H * W * sizeof *x), *want = malloc ((size_t) 12 * H * W * sizeof *want);
  for (int32_t i = 0; i < H * W * 3; i++)
    img[i] = (float) oc_rand_uniform (0, 1);
  for (int32_t c = 0; c < 3; c++)
    for (int32_t i = 0; i < H * W; i++)
      x[(size_t) c * H * W + i] = img[(size_t) i * 3 + c];
  reference (x, H, W, want);
  cel_stylizer *s = NULL;
  cel_stylize_options o = { .tile = 8 };
  bool profiled = oc_profile_begin ();
  st = cel_stylizer_create (oc_context (), m, &s);
  if (!st)
    st = cel_stylize (s, img, W, H, 3, NULL, 0, 0, 0, NULL, out, NULL);
  if (!st)
    st = cel_stylize (s, img, W, H, 3, NULL, 0, 0, 0, &o, tiled, NULL);
  /* the convolution's leaky relu (9=2) runs in the convolution's kernel (cel_conv2d_fuse_act), tiled or not */
  char *report = profiled ? oc_profile_take () : NULL;
  if (!profiled)
    tap_skip ("no timestamps on this device", "/ncnn/run/small_model_conv_leaky_fused");
  else if (!tap_ok (!st && report && strstr (report, "conv2d_fwd") && !strstr (report, "activate"),
                    "/ncnn/run/small_model_conv_leaky_fused"))
    tap_diag ("  profile:\n%s", report ? report : "(none)");
  free (report);
  double worst = 0, worst_tiled = 0;
  for (int32_t c = 0; c < 3 && !st; c++)
    for (int32_t i = 0; i < 4 * H * W; i++) {
      double d = fabs (out[(size_t) i * 3 + c] - want[(size_t) c * 4 * H * W + i]);
      worst = d > worst ? d : worst;
      d = fabs (out[(size_t) i * 3 + c] - tiled[(size_t) i * 3 + c]);
      worst_tiled = d > worst_tiled ? d : worst_tiled;
    }
  if (!tap_ok (!st && worst <= 1e-4, "/ncnn/run/small_model_equals_reference"))
    tap_diag ("  %s; max difference %g", st ? cel_context_last_error (oc_context ()) : "", worst);
  if (!tap_ok (!st && worst_tiled <= 1e-5, "/ncnn/run/small_model_tiled_equals_untiled"))
    tap_diag ("  max difference %g", worst_tiled);
  cel_stylizer_destroy (s);
  cel_model_free (m);
  free (img);
  free (out);
  free (tiled);
  free (x);
  free (want);
  /* the same weights stored as fp32 (flag 0) give the same model up to the fp16 rounding */
  bin b32 = make_bin (0);
  st = cel_ncnn_import_memory (good_param, strlen (good_param), b32.data, b32.size, "small.param", "small.bin", "waifu2x", path, NULL,
                               err, sizeof err);
  if (!tap_ok (st == CEL_OK, "/ncnn/import/fp32_weights"))
    tap_diag ("  %s", err);
  unlink (path);
}

/* Replaces the first occurrence of `from` in good_param by `to`. */
static char *edit (const char *from, const char *to) {
  static char buf[4096];
  const char *p = strstr (good_param, from);
  if (!p)
    return NULL;
  snprintf (buf, sizeof buf, "%.*s%s%s", (int) (p - good_param), good_param, to, p + strlen (from));
  return buf;
}

static void expect_error (const char *label, const char *param, const bin *b, const char *program, cel_status want_st,
                          const char *want_msg) {
  char path[256], err[1024] = "";
  snprintf (path, sizeof path, "%s/bad.safetensors", dir);
  if (!param) {
    tap_ok (false, "/ncnn/errors/%s (test edit did not apply)", label);
    return;
  }
  cel_status st = cel_ncnn_import_memory (param, strlen (param), b->data, b->size, "m.param", "m.bin", program, path, NULL, err,
                                          sizeof err);
  bool exists = access (path, F_OK) == 0;
  if (!tap_ok (st == want_st && strstr (err, want_msg) && !exists, "/ncnn/errors/%s", label))
    tap_diag ("  status %d, message '%s' (want '%s')%s", (int) st, err, want_msg, exists ? ", and a file was written" : "");
}

static void test_errors (void) {
  bin good = make_bin (0x01306B47u), b;
  const char *cv = "0=12 1=3 4=1 5=1 6=324 9=2 -23310=1,0.1";
  expect_error ("bad_magic", "7767516\n7 8\n", &good, "waifu2x", CEL_ERROR_FORMAT, "m.param:1: not an ncnn param file");
  expect_error ("empty", "", &good, "waifu2x", CEL_ERROR_FORMAT, "magic");
  expect_error ("bad_counts", edit ("7 8\n", "7\n"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.param:2: expected 'layer_count");
  expect_error ("counts_beyond_file", edit ("7 8\n", "4000 8\n"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.param:2:");
  expect_error ("too_few_layers", edit ("7 8\n", "8 8\n"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.param:10: expected a layer line");
  expect_error ("text_after_layers", edit ("7 8\n", "6 8\n"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.param:9: text after");
  expect_error ("blob_count", edit ("7 8\n", "7 9\n"), &good, "waifu2x", CEL_ERROR_FORMAT, "announces 9 blobs");
  expect_error ("unknown_type", edit ("PixelShuffle", "Softmax"), &good, "waifu2x", CEL_ERROR_FORMAT,
                "m.param:7: layer type 'Softmax' is not supported");
  expect_error ("unknown_param", edit ("0=12 1=3", "0=12 7=2 1=3"), &good, "waifu2x", CEL_ERROR_FORMAT,
                "m.param:5: layer 'conv': Convolution param 7 (7=2) is not supported");
  expect_error ("param_twice", edit ("0=12 1=3", "0=12 0=12 1=3"), &good, "waifu2x", CEL_ERROR_FORMAT, "param 0 is given twice");
  expect_error ("bad_value", edit ("1=3 4=1", "1=x 4=1"), &good, "waifu2x", CEL_ERROR_FORMAT, "param 1 has a bad value 'x'");
  expect_error ("not_a_param", edit ("1=3 4=1", "1:3 4=1"), &good, "waifu2x", CEL_ERROR_FORMAT, "'1:3' is not a param");
  expect_error ("short_array", edit ("-23310=1,0.1", "-23310=2,0.1"), &good, "waifu2x", CEL_ERROR_FORMAT, "fewer than 2 values");
  expect_error ("long_array", edit ("-23310=1,0.1", "-23310=1,0.1,3"), &good, "waifu2x", CEL_ERROR_FORMAT, "more than 1 values");
  expect_error ("huge_array", edit ("-23310=1,0.1", "-23310=100000,0.1"), &good, "waifu2x", CEL_ERROR_FORMAT, "needs a length");
  expect_error ("unknown_bottom", edit ("1 1 d0 c", "1 1 zz c"), &good, "waifu2x", CEL_ERROR_FORMAT,
                "bottom blob 'zz' is not produced by an earlier layer");
  expect_error ("top_twice", edit ("1 1 c p", "1 1 c c"), &good, "waifu2x", CEL_ERROR_FORMAT, "top blob 'c' is produced twice");
  {
    char err[512] = "";
    cel_status st = cel_ncnn_import_memory ("7767517\n1 1\n\0", 13, good.data, good.size, "m.param", "m.bin", "waifu2x", "/nonexistent/x",
                                            NULL, err, sizeof err);
    if (!tap_ok (st == CEL_ERROR_FORMAT && strstr (err, "m.param: not a text file"), "/ncnn/errors/nul_byte"))
      tap_diag ("  %s", err);
  }
  expect_error ("weight_count", edit (cv, "0=12 1=3 4=1 5=1 6=320 9=2 -23310=1,0.1"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.bin");
  expect_error ("weights_beyond_file", edit (cv, "0=12 1=3 4=1 5=1 6=2000000000 9=2 -23310=1,0.1"), &good, "waifu2x",
                CEL_ERROR_FORMAT, "do not fit");
  expect_error ("activation", edit ("9=2 -23310=1,0.1", "9=5"), &good, "waifu2x", CEL_ERROR_FORMAT, "activation_type 5");
  expect_error ("same_padding", edit ("4=1", "4=-233"), &good, "waifu2x", CEL_ERROR_FORMAT, "SAME padding");
  expect_error ("binary_sub", edit ("s u out", "s u out 0=1"), &good, "waifu2x", CEL_ERROR_FORMAT, "only add (0) and mul (2)");
  expect_error ("interp_size", edit ("0=1 1=2.0", "0=1 3=40 1=2.0"), &good, "waifu2x", CEL_ERROR_FORMAT, "no fixed output size");
  expect_error ("pixel_shuffle_mode", edit ("0=2\nInterp", "0=2 1=1\nInterp"), &good, "waifu2x", CEL_ERROR_FORMAT, "mode (1) 0");
  expect_error ("prelu_slopes", edit ("p 0=12", "p 0=5"), &good, "waifu2x", CEL_ERROR_FORMAT, "m.bin");
  expect_error ("two_outputs", edit ("BinaryOp     add  2 1 s u out", "Sigmoid      add  1 1 s out"), &good, "waifu2x",
                CEL_ERROR_FORMAT, "two outputs");
  expect_error ("input_not_first", edit ("Input        in   0 1 data 0=16 1=16 2=3", "Input        in   0 1 data 2=1"), &good,
                "waifu2x", CEL_ERROR_FORMAT, "3-channel");
  expect_error ("unknown_program", good_param, &good, "esrgan", CEL_ERROR_INVALID_ARGUMENT, "unknown program 'esrgan'");
  b = good;
  b.data[0] = 0x38, b.data[1] = 0x4B, b.data[2] = 0x0D, b.data[3] = 0;
  expect_error ("int8_flag", good_param, &b, "waifu2x", CEL_ERROR_FORMAT, "flag 0x000D4B38");
  b = good;
  b.size -= 3;
  expect_error ("short_bin", good_param, &b, "waifu2x", CEL_ERROR_FORMAT, "slope values do not fit");
  b = good;
  b.data[b.size++] = 0;
  expect_error ("trailing_bytes", good_param, &b, "waifu2x", CEL_ERROR_FORMAT, "1 bytes after the last layer's weights");
  b = good;
  b.size = 2;
  expect_error ("no_flag", good_param, &b, "waifu2x", CEL_ERROR_FORMAT, "ends before the weights");
  expect_error ("add_size_mismatch", edit ("4=1 5=1", "5=1"), &good, "realesrgan", CEL_ERROR_FORMAT,
                "m.param:9: BinaryOp layer 'add': inputs differ in size");
}

static void test_guess_program (void) {
  tap_ok (!strcmp (cel_ncnn_guess_program ("/x/waifu2x-1.6.5/package/real-esrgan/models/realesr-animevideov3-x2.param"),
                   "realesrgan") &&
            !strcmp (cel_ncnn_guess_program ("a/waifu2x/models-cunet/noise0_model.param"), "waifu2x") &&
            !strcmp (cel_ncnn_guess_program ("real-cugan/models-se/up2x-no-denoise.param"), "realcugan") &&
            cel_ncnn_guess_program ("models/x.param") == NULL,
          "/ncnn/guess_program");
}

int main (void) {
  if (!mkdtemp (dir)) {
    printf ("Bail out! cannot create a temporary folder\n");
    return 1;
  }
  oc_context ();
  test_small_model_runs_as_the_program_does ();
  test_errors ();
  test_guess_program ();
  rmdir (dir);
  return tap_finish ();
}
