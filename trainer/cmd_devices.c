/* celgan devices: the Vulkan devices and the features CelGAN uses on each. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_devices (int argc, char **argv) {
  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)) {
    puts ("Usage: celgan devices\n\nLists the Vulkan devices. Choose one with -g INDEX or -g NAME in other commands;\n"
          "the CPU device (lavapipe) works everywhere, slowly.");
    return EXIT_OK;
  }
  cel_device_info infos[32];
  uint32_t n = 0;
  char err[256] = "";
  cel_status st = cel_device_list (infos, 32, &n, err, sizeof err);
  if (st) {
    cli_error ("%s", err);
    return EXIT_NO_DEVICE;
  }
  for (uint32_t i = 0; i < n && i < 32; i++) {
    const cel_device_info *d = &infos[i];
    printf ("%u: %s\n", d->index, d->name);
    printf ("   type %s, Vulkan %u.%u, %.1f GiB device-local memory\n", d->is_cpu ? "CPU" : d->is_discrete ? "discrete GPU" : "GPU",
            (d->api_version >> 22) & 0x7F, (d->api_version >> 12) & 0x3FF, d->device_local_bytes / 1073741824.0);
    printf ("   subgroup size %u, fp16 arithmetic %s, 16-bit storage %s, cooperative matrix %s%s\n", d->subgroup_size,
            d->shader_float16 ? "yes" : "no", d->storage_16bit ? "yes" : "no", d->cooperative_matrix ? "KHR" : "no",
            d->cooperative_matrix_nv ? " (+NV)" : "");
  }
  return EXIT_OK;
}
