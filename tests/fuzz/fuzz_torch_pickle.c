/* libFuzzer target: the legacy PyTorch checkpoint reader must refuse hostile bytes cleanly (no crash, no leak,
 * no allocation far beyond the input's size, no code run whatever the pickle asks for). */
#include "celgan.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  cel_torch_file *f = NULL;
  char err[256];
  if (cel_torch_open_memory (data, size, "fuzz", &f, err, sizeof err) == CEL_OK) {
    volatile float sum = 0;
    for (size_t i = 0; i < cel_torch_count (f); i++) {
      const cel_torch_tensor *t = cel_torch_tensor_at (f, i);
      for (int64_t k = 0; k < t->count; k++)
        sum += t->data[k];
    }
    cel_torch_close (f);
  }
  return 0;
}
