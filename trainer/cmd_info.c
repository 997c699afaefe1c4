/* celgan info: a model file's metadata, tensors and parameter count. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_info (int argc, char **argv) {
  if (argc != 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    puts ("Usage: celgan info MODEL.safetensors\n\nShows the model's name, description, license, provenance, architecture\n"
          "and its tensors with the total parameter count. Needs no GPU.");
    return argc == 2 ? EXIT_OK : EXIT_USAGE;
  }
  cel_safetensors *st = NULL;
  char err[512];
  cel_status s = cel_safetensors_open (argv[1], &st, err, sizeof err);
  if (s) {
    cli_error ("%s", err);
    return s == CEL_ERROR_IO ? EXIT_IO : EXIT_BAD_MODEL;
  }
  static const char *const keys[][2] = {
    { "celgan.name", "Name" }, { "celgan.description", "Description" }, { "celgan.license", "License" },
    { "celgan.format", "Format version" }, { "celgan.training", "Training" }, { "celgan.architecture", "Architecture" },
  };
  printf ("File: %s\n", argv[1]);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const char *v = cel_safetensors_metadata (st, keys[i][0]);
    if (v)
      printf ("%s: %s\n", keys[i][1], v);
  }
  for (size_t i = 0; i < cel_safetensors_metadata_count (st); i++) {
    const char *k, *v;
    cel_safetensors_metadata_at (st, i, &k, &v);
    bool known = false;
    for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
      known |= strcmp (k, keys[j][0]) == 0;
    if (!known)
      printf ("%s: %s\n", k, v);
  }
  int64_t params = 0;
  printf ("Tensors: %zu\n", cel_safetensors_count (st));
  for (size_t i = 0; i < cel_safetensors_count (st); i++) {
    const cel_tensor_info *t = cel_safetensors_tensor (st, i);
    printf ("  %-40s %s [", t->name, t->dtype == CEL_DTYPE_F16 ? "F16" : "F32");
    for (int32_t d = 0; d < t->rank; d++)
      printf ("%s%lld", d ? ", " : "", (long long) t->shape[d]);
    printf ("]\n");
    params += t->count;
  }
  printf ("Parameters: %lld (%.2f M)\n", (long long) params, params / 1e6);
  cel_safetensors_close (st);
  cel_model *m = NULL;
  s = cel_model_load (argv[1], &m, err, sizeof err);
  if (s) {
    printf ("Not usable as a CelGAN model: %s\n", err);
    return EXIT_BAD_MODEL;
  }
  const cel_model_info *mi = cel_model_get_info (m);
  printf ("Family: %s%s\n", mi->family, mi->needs_reference ? " (reference-guided)" : "");
  printf ("Channels: %d in, %d out; scale %dx; stride %d; receptive field +-%d px%s\n", mi->in_channels, mi->out_channels,
          mi->scale, mi->stride, mi->halo, mi->global_statistics ? "; whole-image statistics" : "");
  printf ("Strength: %s\n", mi->feature_strength ? "blended in feature space (celgan apply -s)" : "a blend with the original in pixel space");
  printf ("Pixel range: in [%g, %g], out [%g, %g]\n", (double) mi->input_range[0], (double) mi->input_range[1],
          (double) mi->output_range[0], (double) mi->output_range[1]);
  cel_model_free (m);
  return EXIT_OK;
}
