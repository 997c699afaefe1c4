/* libFuzzer target: the safetensors/JSON loader must refuse hostile bytes cleanly (no crash, no leak,
 * no allocation beyond the input's size). */
#include "celgan.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  cel_safetensors *st = NULL;
  char err[256];
  if (cel_safetensors_open_memory (data, size, "fuzz", &st, err, sizeof err) == CEL_OK) {
    for (size_t i = 0; i < cel_safetensors_count (st); i++) {
      const cel_tensor_info *t = cel_safetensors_tensor (st, i);
      if (t->count <= 4096) {
        float buf[4096];
        cel_safetensors_read_f32 (st, t, buf, (size_t) t->count, err, sizeof err);
      }
    }
    cel_safetensors_close (st);
  }
  return 0;
}
