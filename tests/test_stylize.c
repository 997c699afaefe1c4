/* Stylizing: tiled output equals untiled output (whole-image norms included) for both style-generator
 * configurations and a graph with transposed convolutions, pooling and zero padding, at odd sizes and sizes
 * that are not multiples of the stride; post-ops; progress and cancel; memory budget retries. */
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/celgan-stylize-XXXXXX";

static char *read_text (const char *path) {
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  fseek (f, 0, SEEK_END);
  long n = ftell (f);
  fseek (f, 0, SEEK_SET);
  char *s = malloc ((size_t) n + 1);
  if (s && fread (s, 1, (size_t) n, f) == (size_t) n)
    s[n] = 0;
  fclose (f);
  return s;
}

static cel_model *model_from (const char *name, const char *arch) {
  char path[256], err[512] = "";
  snprintf (path, sizeof path, "%s/%s.safetensors", dir, name);
  cel_model *m = NULL;
  if (cel_model_create_file (path, arch, 11, NULL, 0, err, sizeof err) || cel_model_load (path, &m, err, sizeof err))
    tap_diag ("  %s: %s", name, err);
  return m;
}

static cel_model *config_model (const char *name) {
  char path[1024];
  snprintf (path, sizeof path, "%s/data/configs/%s.json", getenv ("CELGAN_SOURCE_DIR") ? getenv ("CELGAN_SOURCE_DIR") : "..",
            name);
  char *arch = read_text (path);
  cel_model *m = arch ? model_from (name, arch) : NULL;
  free (arch);
  return m;
}

static float *test_image (int32_t w, int32_t h, int32_t ch) {
  float *img = malloc ((size_t) w * h * ch * sizeof *img);
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++)
      for (int32_t c = 0; c < ch; c++)
        img[((size_t) y * w + x) * ch + c] =
          (float) (0.5 + 0.4 * sin (0.13 * x + 0.7 * c) * cos (0.07 * y - 0.3 * c) + 0.05 * sin (1.7 * x * y + c));
  return img;
}

static double max_diff (const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - b[i]);
    if (!(d <= m))
      m = isnan (d) ? INFINITY : d;
  }
  return m;
}

static void tiled_equals_untiled (const char *what, cel_model *m, int32_t w, int32_t h, int32_t ch, int32_t tile) {
  if (!m) {
    tap_ok (false, "/stylize/%s/tiled_equals_untiled_%dx%d_tile%d", what, w, h, tile);
    return;
  }
  cel_stylizer *s = NULL;
  const cel_model_info *mi = cel_model_get_info (m);
  size_t n_out = (size_t) w * mi->scale * h * mi->scale * ch;
  float *img = test_image (w, h, ch), *a = calloc (n_out, sizeof (float)), *b = calloc (n_out, sizeof (float));
  cel_stylize_options tiled = { .tile = tile };
  cel_stylize_report ra = { 0 }, rb = { 0 };
  cel_status st = cel_stylizer_create (oc_context (), m, &s);
  if (!st)
    st = cel_stylize (s, img, w, h, ch, NULL, 0, 0, 0, NULL, a, &ra);
  if (!st)
    st = cel_stylize (s, img, w, h, ch, NULL, 0, 0, 0, &tiled, b, &rb);
  double d = st ? INFINITY : max_diff (a, b, n_out);
  /* 1e-4 in the network's [-1, 1] range is 5e-5 in [0, 1] */
  /* the report's host times: a tiled run spends some in each phase, an untiled one none */
  bool times = rb.run_ms > 0 && rb.plan_ms > 0 && rb.copy_in_ms >= 0 && rb.copy_out_ms >= 0 && rb.build_ms >= 0 &&
               ra.run_ms == 0 && ra.plan_ms == 0;
  bool ok = !st && d <= 5e-5 && ra.tile == 0 && rb.tile > 0 && rb.tiles > 1 && times;
  if (!tap_ok (ok, "/stylize/%s/tiled_equals_untiled_%dx%d_c%d_tile%d", what, w, h, ch, tile))
    tap_diag ("  status %s (%s); max diff %.3g; untiled tile %d; tiled: tile %d, %d tiles, %d segments, host ms "
              "build %.1f plan %.1f copy in %.1f run %.1f copy out %.1f", cel_status_string (st),
              cel_context_last_error (oc_context ()), d, ra.tile, rb.tile, rb.tiles, rb.segments, rb.build_ms, rb.plan_ms,
              rb.copy_in_ms, rb.run_ms, rb.copy_out_ms);
  else
    tap_diag ("  max diff %.2g with %d tiles x %d segments", d, rb.tiles, rb.segments);
  /* alpha passes through untouched */
  if (!st && (ch == 2 || ch == 4) && mi->scale == 1) {
    bool same = true;
    for (size_t i = 0; i < (size_t) w * h && same; i++)
      same = a[i * ch + ch - 1] == img[i * ch + ch - 1] && b[i * ch + ch - 1] == img[i * ch + ch - 1];
    tap_ok (same, "/stylize/%s/alpha_untouched_%dx%d", what, w, h);
  }
  free (img);
  free (a);
  free (b);
  cel_stylizer_destroy (s);
}

/* Reference-guided: the style encoder runs once on the reference, the content side in tiles. */
static void reference_tiled_equals_untiled (const char *what, cel_model *m, int32_t w, int32_t h, int32_t rw, int32_t rh,
                                            int32_t tile) {
  cel_stylizer *s = NULL;
  size_t n = (size_t) w * h * 3;
  float *img = test_image (w, h, 3), *ref = test_image (rw, rh, 3), *a = calloc (n, sizeof (float)), *b = calloc (n, sizeof (float));
  for (size_t i = 0; i < (size_t) rw * rh * 3; i++)
    ref[i] = 1.0f - ref[i] * ref[i];
  cel_stylize_options tiled = { .tile = tile };
  cel_stylize_report rb = { 0 };
  cel_status st = m ? cel_stylizer_create (oc_context (), m, &s) : CEL_ERROR_INVALID_ARGUMENT;
  if (!st)
    st = cel_stylize (s, img, w, h, 3, ref, rw, rh, 3, NULL, a, NULL);
  if (!st)
    st = cel_stylize (s, img, w, h, 3, ref, rw, rh, 3, &tiled, b, &rb);
  double d = st ? INFINITY : max_diff (a, b, n);
  if (!tap_ok (!st && d <= 5e-5 && rb.tiles > 1, "/stylize/%s/tiled_equals_untiled_%dx%d_ref_%dx%d", what, w, h, rw,
               rh))
    tap_diag ("  %s (%s); max diff %.3g", cel_status_string (st), cel_context_last_error (oc_context ()), d);
  if (s)
    tap_ok (cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, NULL, a, NULL) == CEL_ERROR_INVALID_ARGUMENT &&
            strstr (cel_context_last_error (oc_context ()), "reference"), "/stylize/%s/missing_reference_is_refused",
            what);
  cel_stylizer_destroy (s);
  free (img);
  free (ref);
  free (a);
  free (b);
}

static int cancel_after (void *user, double fraction) {
  int *calls = user;
  (*calls)++;
  return fraction > 0.3;
}

static int count_progress (void *user, double fraction) {
  double *last = user;
  if (fraction < *last)
    *last = INFINITY; /* not monotonic: fail below */
  else
    *last = fraction;
  return 0;
}

static void test_progress_and_cancel (cel_model *m) {
  cel_stylizer *s = NULL;
  int32_t w = 96, h = 80;
  float *img = test_image (w, h, 3), *out = calloc ((size_t) w * h * 3, sizeof (float));
  double last = 0;
  cel_stylize_options o = { .tile = 32, .progress = count_progress, .progress_user = &last };
  cel_status st = cel_stylizer_create (oc_context (), m, &s);
  if (!st)
    st = cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, &o, out, NULL);
  tap_ok (!st && last == 1.0, "/stylize/progress_reaches_one_monotonically");
  int calls = 0;
  cel_stylize_options c = { .tile = 32, .progress = cancel_after, .progress_user = &calls };
  st = cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, &c, out, NULL);
  tap_ok (st == CEL_ERROR_CANCELLED && calls > 0, "/stylize/progress_callback_cancels");
  /* a budget too small for the first tile: the tile is halved until it fits, same result */
  float *ref = calloc ((size_t) w * h * 3, sizeof (float));
  cel_stylize_report rep = { 0 };
  st = cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, NULL, ref, NULL);
  cel_stylize_options small = { .tile = 64, .memory_budget = 1 << 20 };
  if (!st)
    st = cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, &small, out, &rep);
  bool ok = !st && rep.retries > 0 && max_diff (ref, out, (size_t) w * h * 3) <= 5e-5;
  if (!tap_ok (ok, "/stylize/out_of_memory_retries_with_smaller_tiles"))
    tap_diag ("  %s: %s; retries %d, tile %d", cel_status_string (st), cel_context_last_error (oc_context ()), rep.retries,
              rep.tile);
  cel_stylize_options tiny = { .tile = 64, .memory_budget = 1000 };
  st = cel_stylize (s, img, w, h, 3, NULL, 0, 0, 0, &tiny, out, &rep);
  tap_ok (st == CEL_ERROR_OUT_OF_DEVICE_MEMORY, "/stylize/out_of_memory_at_smallest_tile_is_reported");
  st = cel_stylize (s, img, 5, 5, 3, NULL, 0, 0, 0, NULL, out, NULL);
  tap_ok (st == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "smaller"),
          "/stylize/too_small_image_is_refused");
  free (ref);
  free (img);
  free (out);
  cel_stylizer_destroy (s);
}

static void test_postprocess (void) {
  float orig[8] = { 0.2f, 0.4f, 0.6f, 1.0f, 0.9f, 0.1f, 0.3f, 0.5f };
  float out[8] = { 0.5f, 0.5f, 0.5f, 0.25f, 0.1f, 0.9f, 0.7f, 0.5f };
  float zero[8], full[8], keep[8];
  memcpy (zero, out, sizeof out);
  memcpy (full, out, sizeof out);
  memcpy (keep, out, sizeof out);
  cel_postprocess (orig, zero, 2, 1, 4, 0.0f, false);
  cel_postprocess (orig, full, 2, 1, 4, 1.0f, false);
  cel_postprocess (orig, keep, 2, 1, 4, 1.0f, true);
  bool ok = true;
  for (int c = 0; c < 3; c++)
    ok &= fabsf (zero[c] - orig[c]) < 1e-6f && fabsf (full[c] - out[c]) < 1e-6f;
  ok &= zero[3] == out[3] && keep[7] == out[7]; /* alpha from the stylized output */
  /* keep-colors: luma of the stylized, chroma of the original */
  float y = 0.299f * keep[0] + 0.587f * keep[1] + 0.114f * keep[2];
  float cb = -0.168736f * keep[0] - 0.331264f * keep[1] + 0.5f * keep[2];
  float cbo = -0.168736f * orig[0] - 0.331264f * orig[1] + 0.5f * orig[2];
  ok &= fabsf (y - 0.5f) < 1e-4f && fabsf (cb - cbo) < 1e-4f;
  tap_ok (ok, "/stylize/postprocess_strength_and_keep_colors");
}

int main (void) {
  if (!mkdtemp (dir))
    return 1;
  oc_context ();
  cel_model *fast = config_model ("fast"), *anime = config_model ("animeganv2");
  tiled_equals_untiled ("fast", fast, 96, 72, 3, 32);
  tiled_equals_untiled ("fast", fast, 101, 67, 4, 40);
  tiled_equals_untiled ("fast", fast, 70, 45, 1, 24);
  tiled_equals_untiled ("animeganv2", anime, 83, 61, 3, 32);
  cel_model *unet = config_model ("unet"); /* decoder levels add the encoder's outputs (skips) */
  tiled_equals_untiled ("unet", unet, 101, 67, 4, 40);
  cel_model_free (unet);
  /* the tiler's copies of windows and results split over threads (on GPUs, for big ones; forced here) */
  setenv ("CELGAN_COPY_THREADS", "3", 1);
  tiled_equals_untiled ("animeganv2/copy_threads_3", anime, 83, 61, 3, 32);
  unsetenv ("CELGAN_COPY_THREADS");
  /* zero padding, a transposed convolution, instance norm, a global pool gating channels, concat */
  const char *graph =
    "{\"family\":\"graph\",\"inputs\":[\"image\"],\"output\":\"y\","
    "\"tensors\":{\"c1.w\":[8,3,3,3],\"c1.b\":[8],\"d.w\":[8,8,3,3],\"t.w\":[8,4,4,4],\"t.b\":[4],\"o.w\":[3,12,3,3],"
    "\"n.w\":[8],\"n.b\":[8]},"
    "\"nodes\":[{\"name\":\"c1\",\"op\":\"conv2d\",\"in\":[\"image\"],\"weight\":\"c1.w\",\"bias\":\"c1.b\",\"padding\":1},"
    "{\"name\":\"a1\",\"op\":\"relu\",\"in\":[\"c1\"]},"
    "{\"name\":\"d\",\"op\":\"conv2d\",\"in\":[\"a1\"],\"weight\":\"d.w\",\"stride\":2,\"padding\":[1,1,1,1],\"dilation\":1},"
    "{\"name\":\"n\",\"op\":\"instance_norm\",\"in\":[\"d\"],\"weight\":\"n.w\",\"bias\":\"n.b\"},"
    "{\"name\":\"p\",\"op\":\"global_avg_pool\",\"in\":[\"n\"]},"
    "{\"name\":\"g\",\"op\":\"sigmoid\",\"in\":[\"p\"]},"
    "{\"name\":\"m\",\"op\":\"mul\",\"in\":[\"n\",\"g\"]},"
    "{\"name\":\"t\",\"op\":\"conv_transpose2d\",\"in\":[\"m\"],\"weight\":\"t.w\",\"bias\":\"t.b\",\"stride\":2,\"padding\":1},"
    "{\"name\":\"u\",\"op\":\"resize\",\"in\":[\"t\"],\"size_of\":\"image\",\"mode\":\"bilinear\"},"
    "{\"name\":\"cat\",\"op\":\"concat\",\"in\":[\"u\",\"a1\"]},"
    "{\"name\":\"o\",\"op\":\"conv2d\",\"in\":[\"cat\"],\"weight\":\"o.w\",\"padding\":1,\"padding_mode\":\"zero\"},"
    "{\"name\":\"y\",\"op\":\"tanh\",\"in\":[\"o\"]}]}";
  cel_model *g = model_from ("graph", graph);
  tiled_equals_untiled ("graph", g, 64, 48, 3, 16);
  tiled_equals_untiled ("graph", g, 67, 53, 3, 24);
  cel_model *refm = config_model ("reference");
  reference_tiled_equals_untiled ("reference", refm, 75, 58, 40, 52, 24);
  cel_model_free (refm);
  /* reference-gan (celgan train --reference-guided): instance norms on the content side, AdaIN from a style code
   * pooled from the whole reference in every decoder layer */
  cel_model *rgan = config_model ("reference-gan");
  reference_tiled_equals_untiled ("reference-gan", rgan, 75, 58, 40, 52, 24);
  reference_tiled_equals_untiled ("reference-gan", rgan, 61, 70, 90, 33, 16);
  cel_model_free (rgan);
  /* MicroAST's shape: stride-2 reflect convolutions that round sizes up, channel scales pooled from the
   * reference's features (a reference-side vector in every tile), AdaIN blended with its input, 2x
   * resizes, and a crop back to the image's size */
  const char *micro =
    "{\"family\":\"graph\",\"inputs\":[\"image\",\"reference\"],\"output\":\"y\",\"input_range\":[0,1],"
    "\"output_range\":[0,1],"
    "\"tensors\":{\"e1.w\":[8,3,3,3],\"e1.b\":[8],\"e2.w\":[8,2,3,3],\"e2.b\":[8],\"s1.w\":[8,3,3,3],\"s1.b\":[8],"
    "\"s2.w\":[8,2,3,3],\"s2.b\":[8],\"m.w\":[8,1,3,3],\"m.b\":[8],\"d1.w\":[8,8,3,3],\"d1.b\":[8],\"d2.w\":[3,8,3,3],"
    "\"d2.b\":[3]},"
    "\"nodes\":[{\"name\":\"e1\",\"op\":\"conv2d\",\"in\":[\"image\"],\"weight\":\"e1.w\",\"bias\":\"e1.b\",\"stride\":2,"
    "\"padding\":1,\"padding_mode\":\"reflect\"},{\"name\":\"ea\",\"op\":\"relu\",\"in\":[\"e1\"]},"
    "{\"name\":\"e2\",\"op\":\"conv2d\",\"in\":[\"ea\"],\"weight\":\"e2.w\",\"bias\":\"e2.b\",\"stride\":2,\"padding\":1,"
    "\"padding_mode\":\"reflect\",\"groups\":4},"
    "{\"name\":\"s1\",\"op\":\"conv2d\",\"in\":[\"reference\"],\"weight\":\"s1.w\",\"bias\":\"s1.b\",\"stride\":2,"
    "\"padding\":1,\"padding_mode\":\"reflect\"},{\"name\":\"sa\",\"op\":\"relu\",\"in\":[\"s1\"]},"
    "{\"name\":\"s2\",\"op\":\"conv2d\",\"in\":[\"sa\"],\"weight\":\"s2.w\",\"bias\":\"s2.b\",\"stride\":2,\"padding\":1,"
    "\"padding_mode\":\"reflect\",\"groups\":4},"
    "{\"name\":\"m\",\"op\":\"conv2d\",\"in\":[\"s2\"],\"weight\":\"m.w\",\"bias\":\"m.b\",\"padding\":1,"
    "\"padding_mode\":\"reflect\",\"groups\":8},{\"name\":\"mp\",\"op\":\"global_avg_pool\",\"in\":[\"m\"]},"
    "{\"name\":\"ad\",\"op\":\"adain\",\"in\":[\"e2\",\"s2\"]},"
    "{\"name\":\"bl\",\"op\":\"add\",\"in\":[\"ad\",\"e2\"],\"alpha\":0.7,\"beta\":0.3},"
    "{\"name\":\"sc\",\"op\":\"mul\",\"in\":[\"bl\",\"mp\"]},"
    "{\"name\":\"u1\",\"op\":\"resize\",\"in\":[\"sc\"],\"scale\":2,\"mode\":\"bilinear\"},"
    "{\"name\":\"d1\",\"op\":\"conv2d\",\"in\":[\"u1\"],\"weight\":\"d1.w\",\"bias\":\"d1.b\",\"padding\":1,"
    "\"padding_mode\":\"reflect\"},{\"name\":\"da\",\"op\":\"relu\",\"in\":[\"d1\"]},"
    "{\"name\":\"u2\",\"op\":\"resize\",\"in\":[\"da\"],\"scale\":2,\"mode\":\"bilinear\"},"
    "{\"name\":\"d2\",\"op\":\"conv2d\",\"in\":[\"u2\"],\"weight\":\"d2.w\",\"bias\":\"d2.b\",\"padding\":1,"
    "\"padding_mode\":\"reflect\"},{\"name\":\"y\",\"op\":\"crop\",\"in\":[\"d2\"],\"size_of\":\"image\"}]}";
  cel_model *mm = model_from ("microast-shaped", micro);
  tap_ok (mm && cel_model_get_info (mm)->needs_reference && cel_model_get_info (mm)->stride == 4,
          "/stylize/crop/model_loads");
  reference_tiled_equals_untiled ("microast-shaped", mm, 67, 53, 41, 29, 16);
  reference_tiled_equals_untiled ("microast-shaped", mm, 64, 48, 30, 50, 16);
  cel_model_free (mm);
  if (fast)
    test_progress_and_cancel (fast);
  test_postprocess ();
  cel_model_free (fast);
  cel_model_free (anime);
  cel_model_free (g);
  char cmd[300];
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  if (system (cmd))
    tap_diag ("cannot remove %s", dir);
  return tap_finish ();
}
