/* Models: files created from architectures load and validate; both bundled configurations have the
 * promised sizes; a built model runs; broken model files are refused with a message naming the problem. */
#include "opcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/celgan-model-XXXXXX";

static char *read_text (const char *path) {
  FILE *f = fopen (path, "rb");
  if (!f)
    return NULL;
  fseek (f, 0, SEEK_END);
  long n = ftell (f);
  fseek (f, 0, SEEK_SET);
  char *s = malloc ((size_t) n + 1);
  if (s && fread (s, 1, (size_t) n, f) != (size_t) n) {
    free (s);
    s = NULL;
  }
  if (s)
    s[n] = 0;
  fclose (f);
  return s;
}

static char *config (const char *name) {
  char path[1024];
  snprintf (path, sizeof path, "%s/data/configs/%s.json", getenv ("CELGAN_SOURCE_DIR") ? getenv ("CELGAN_SOURCE_DIR") : "..",
            name);
  char *s = read_text (path);
  if (!s) {
    printf ("Bail out! cannot read %s (set CELGAN_SOURCE_DIR)\n", path);
    exit (1);
  }
  return s;
}

static cel_model *create (const char *name, const char *arch, char *err, size_t errlen) {
  char path[256];
  snprintf (path, sizeof path, "%s/%s.safetensors", dir, name);
  const char *meta[] = { "celgan.name", name };
  if (cel_model_create_file (path, arch, 7, meta, 1, err, errlen))
    return NULL;
  cel_model *m = NULL;
  cel_model_load (path, &m, err, errlen);
  return m;
}

static void test_configurations (void) {
  char err[512] = "";
  char *a = config ("animeganv2"), *f = config ("fast");
  cel_model *ma = create ("animeganv2", a, err, sizeof err);
  if (!tap_ok (ma != NULL, "/model/animeganv2_shaped_config_loads"))
    tap_diag ("  %s", err);
  cel_model *mf = create ("fast", f, err, sizeof err);
  if (!tap_ok (mf != NULL, "/model/fast_config_loads"))
    tap_diag ("  %s", err);
  if (ma) {
    const cel_model_info *i = cel_model_get_info (ma);
    tap_diag ("  animeganv2: %lld parameters, stride %d, halo %d, scale %d", (long long) i->parameters, i->stride, i->halo,
              i->scale);
    tap_ok (i->parameters > 2100000 && i->parameters < 2200000, "/model/animeganv2_has_2.14M_parameters");
    tap_ok (i->scale == 1 && i->stride == 4 && i->global_statistics && !i->needs_reference && i->halo > 20,
            "/model/animeganv2_geometry");
  }
  if (mf) {
    const cel_model_info *i = cel_model_get_info (mf);
    tap_diag ("  fast: %lld parameters, stride %d, halo %d", (long long) i->parameters, i->stride, i->halo);
    tap_ok (i->parameters < 500000, "/model/fast_config_under_0.5M_parameters");
  }
  char *r = config ("reference");
  cel_model *mr = create ("reference", r, err, sizeof err);
  if (!tap_ok (mr && cel_model_get_info (mr)->needs_reference && cel_model_get_info (mr)->global_statistics &&
               cel_model_get_info (mr)->stride == 4, "/model/reference_generator_config_loads"))
    tap_diag ("  %s", err);
  if (mr) {
    cel_graph *g = NULL;
    cel_node x, y;
    bool refused = cel_graph_create (oc_context (), &g) == CEL_OK &&
                   cel_graph_input (g, "image", (cel_shape) { 1, 3, 32, 32 }, &x) == CEL_OK &&
                   cel_model_build (mr, g, x, CEL_NO_NODE, &y) == CEL_ERROR_INVALID_ARGUMENT &&
                   strstr (cel_context_last_error (oc_context ()), "reference");
    tap_ok (refused, "/model/reference_generator_needs_a_reference");
    cel_graph_destroy (g);
  }
  cel_model_free (mr);
  free (r);
  /* reference-gan: a reference-guided model whose style code is a node of its own (cel_model_build_nodes) */
  char *rg = config ("reference-gan");
  cel_model *mg = create ("reference-gan", rg, err, sizeof err);
  if (!tap_ok (mg && cel_model_get_info (mg)->needs_reference && cel_model_get_info (mg)->stride == 4,
               "/model/reference_gan_config_loads"))
    tap_diag ("  %s", err);
  if (mg) {
    cel_graph *g = NULL;
    cel_node r, code[2] = { CEL_NO_NODE, CEL_NO_NODE };
    cel_shape cs = { 0 };
    const char *names[2] = { "style.code", "enc.style.stem.conv" };
    int32_t before = 0, after = 0;
    bool ok = cel_graph_create (oc_context (), &g) == CEL_OK &&
              cel_graph_input (g, "reference", (cel_shape) { 2, 3, 29, 41 }, &r) == CEL_OK &&
              (before = cel_graph_node_count (g)) > 0 &&
              cel_model_build_nodes (mg, g, CEL_NO_NODE, r, 2, names, code) == CEL_OK &&
              cel_graph_shape (g, code[0], &cs) == CEL_OK;
    after = cel_graph_node_count (g);
    if (!ok)
      tap_diag ("  %s", cel_context_last_error (oc_context ()));
    /* only the style encoder: its 3 convolutions with their weights and biases, 3 activations, a pool, the code */
    tap_ok (ok && cs.n == 2 && cs.c == 64 && cs.h == 1 && cs.w == 1 && after - before < 20,
            "/model/build_nodes_builds_only_the_style_encoder");
    cel_node bad;
    const char *unknown = "no.such.node";
    tap_ok (cel_model_build_nodes (mg, g, CEL_NO_NODE, r, 1, &unknown, &bad) == CEL_ERROR_INVALID_ARGUMENT &&
              strstr (cel_context_last_error (oc_context ()), "no.such.node") && bad == CEL_NO_NODE,
            "/model/build_nodes_unknown_name_refused");
    const char *out = "out.tanh";
    tap_ok (cel_model_build_nodes (mg, g, CEL_NO_NODE, r, 1, &out, &bad) == CEL_ERROR_INVALID_ARGUMENT &&
              strstr (cel_context_last_error (oc_context ()), "image"),
            "/model/build_nodes_missing_input_refused");
    cel_graph_destroy (g);
  }
  cel_model_free (mg);
  free (rg);
  /* Build and run the fast model on an odd size. */
  if (mf) {
    cel_graph *g = NULL;
    cel_node x, y;
    cel_shape s = { 1, 3, 37, 53 }, ys = { 0, 0, 0, 0 };
    float *in = malloc ((size_t) oc_count (s) * sizeof (float)), *out = malloc ((size_t) oc_count (s) * sizeof (float));
    for (int64_t k = 0; k < oc_count (s); k++)
      in[k] = (float) sin ((double) k);
    bool ok = cel_graph_create (oc_context (), &g) == CEL_OK && cel_graph_input (g, "image", s, &x) == CEL_OK &&
              cel_model_build (mf, g, x, CEL_NO_NODE, &y) == CEL_OK && cel_graph_shape (g, y, &ys) == CEL_OK &&
              cel_graph_mark_output (g, y) == CEL_OK && cel_graph_set_data (g, x, in, (size_t) oc_count (s)) == CEL_OK &&
              cel_graph_run (g) == CEL_OK && cel_graph_get_data (g, y, out, (size_t) oc_count (s)) == CEL_OK;
    if (!ok)
      tap_diag ("  %s", cel_context_last_error (oc_context ()));
    ok = ok && memcmp (&ys, &s, sizeof s) == 0;
    float lo = 1, hi = -1;
    for (int64_t k = 0; ok && k < oc_count (s); k++) {
      lo = fminf (lo, out[k]);
      hi = fmaxf (hi, out[k]);
      ok = isfinite (out[k]) && out[k] >= -1 && out[k] <= 1;
    }
    tap_ok (ok && hi > lo, "/model/fast_model_runs_on_odd_size");
    free (in);
    free (out);
    cel_graph_destroy (g);
  }
  cel_model_free (ma);
  cel_model_free (mf);
  free (a);
  free (f);
}

static void refused (const char *name, const char *arch, const char *expect) {
  char err[512] = "";
  char path[256];
  snprintf (path, sizeof path, "%s/bad-%s.safetensors", dir, name);
  cel_status st = cel_model_create_file (path, arch, 1, NULL, 0, err, sizeof err);
  cel_model *m = NULL;
  if (st == CEL_OK)
    st = cel_model_load (path, &m, err, sizeof err);
  bool ok = st != CEL_OK && m == NULL && strstr (err, expect);
  if (!tap_ok (ok, "/model/refuses/%s", name))
    tap_diag ("  status %d, '%s' (expected '%s')", st, err, expect);
  cel_model_free (m);
}

/* Files that are valid safetensors but not valid models. */
static void refused_file (const char *name, const cel_tensor_entry *t, size_t n, const char *arch, const char *expect) {
  char path[256], err[512] = "";
  snprintf (path, sizeof path, "%s/badfile-%s.safetensors", dir, name);
  const char *meta[] = { "celgan.format", "1", "celgan.architecture", arch };
  cel_safetensors_save (path, t, n, meta, arch ? 2 : 1, err, sizeof err);
  cel_model *m = NULL;
  cel_status st = cel_model_load (path, &m, err, sizeof err);
  bool ok = st == CEL_ERROR_FORMAT && !m && strstr (err, expect);
  if (!tap_ok (ok, "/model/refuses/%s", name))
    tap_diag ("  status %d, '%s' (expected '%s')", st, err, expect);
  cel_model_free (m);
}

static void test_broken_models (void) {
  refused ("unknown_family", "{\"family\":\"nope\"}", "unknown model family");
  refused ("unknown_key", "{\"family\":\"style-generator\",\"widths\":[8,16],\"colour\":1}", "unknown key");
  refused ("bad_widths", "{\"family\":\"style-generator\",\"widths\":[8]}", "widths");
  refused ("even_kernel", "{\"family\":\"style-generator\",\"widths\":[8,16],\"stem_kernel\":4}", "odd");
  refused ("skips_width_mismatch", "{\"family\":\"style-generator\",\"widths\":[8,16],\"up_widths\":[12],\"skips\":1}",
           "skips needs up_widths");
  refused ("skips_not_0_or_1", "{\"family\":\"style-generator\",\"widths\":[8,16],\"skips\":2}", "skips");
  refused ("not_json", "{\"family\":", "architecture");
  float w[27], b[3];
  memset (w, 0, sizeof w);
  memset (b, 0, sizeof b);
  const char *graph = "{\"family\":\"graph\",\"inputs\":[\"image\"],\"output\":\"c\",\"tensors\":{\"w\":[3,3,3,1],\"b\":[3]},"
                      "\"nodes\":[{\"name\":\"c\",\"op\":\"conv2d\",\"in\":[\"image\"],\"weight\":\"w\",\"bias\":\"b\"}]}";
  cel_tensor_entry ok_t[2] = { { "w", CEL_DTYPE_F32, 4, { 3, 3, 3, 1 }, w }, { "b", CEL_DTYPE_F32, 1, { 3 }, b } };
  cel_tensor_entry wrong[2] = { { "w", CEL_DTYPE_F32, 4, { 3, 3, 1, 3 }, w }, { "b", CEL_DTYPE_F32, 1, { 3 }, b } };
  cel_tensor_entry extra[3] = { ok_t[0], ok_t[1], { "stray", CEL_DTYPE_F32, 1, { 3 }, b } };
  refused_file ("wrong_tensor_shape", wrong, 2, graph, "wrong shape");
  refused_file ("missing_tensor", ok_t, 1, graph, "missing");
  refused_file ("undeclared_tensor", extra, 3, graph, "not declared");
  refused_file ("no_architecture", ok_t, 2, NULL, "not a CelGAN model");
  refused_file ("unknown_op", ok_t, 2,
                "{\"family\":\"graph\",\"inputs\":[\"image\"],\"output\":\"c\",\"tensors\":{\"w\":[3,3,3,1],\"b\":[3]},"
                "\"nodes\":[{\"name\":\"c\",\"op\":\"magic\",\"in\":[\"image\"]}]}", "unknown op");
  refused_file ("dangling_input", ok_t, 2,
                "{\"family\":\"graph\",\"inputs\":[\"image\"],\"output\":\"c\",\"tensors\":{\"w\":[3,3,3,1],\"b\":[3]},"
                "\"nodes\":[{\"name\":\"c\",\"op\":\"conv2d\",\"in\":[\"later\"],\"weight\":\"w\",\"bias\":\"b\"}]}",
                "not an earlier layer");
  refused_file ("channel_mismatch", ok_t, 2,
                "{\"family\":\"graph\",\"inputs\":[\"image\"],\"in_channels\":1,\"output\":\"c\",\"tensors\":{\"w\":[3,3,3,1],"
                "\"b\":[3]},\"nodes\":[{\"name\":\"c\",\"op\":\"conv2d\",\"in\":[\"image\"],\"weight\":\"w\",\"bias\":\"b\"}]}",
                "input channels");
  refused_file ("unknown_node_key", ok_t, 2,
                "{\"family\":\"graph\",\"inputs\":[\"image\"],\"output\":\"c\",\"tensors\":{\"w\":[3,3,3,1],\"b\":[3]},"
                "\"nodes\":[{\"name\":\"c\",\"op\":\"conv2d\",\"in\":[\"image\"],\"weight\":\"w\",\"bias\":\"b\",\"strid\":2}]}",
                "does not take 'strid'");
  /* and the valid one loads */
  char path[256], err[512] = "";
  snprintf (path, sizeof path, "%s/good-graph.safetensors", dir);
  const char *meta[] = { "celgan.format", "1", "celgan.architecture", graph };
  cel_safetensors_save (path, ok_t, 2, meta, 2, err, sizeof err);
  cel_model *m = NULL;
  cel_status st = cel_model_load (path, &m, err, sizeof err);
  if (!tap_ok (st == CEL_OK && cel_model_get_info (m)->parameters == 30 && cel_model_get_info (m)->halo >= 1,
               "/model/generic_graph_loads"))
    tap_diag ("  %s", err);
  cel_model_free (m);
}

int main (void) {
  if (!mkdtemp (dir))
    return 1;
  oc_context ();
  test_configurations ();
  test_broken_models ();
  char cmd[300];
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  if (system (cmd))
    tap_diag ("cannot remove %s", dir);
  return tap_finish ();
}
