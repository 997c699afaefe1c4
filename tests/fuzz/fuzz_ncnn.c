/* libFuzzer target: the ncnn reader (core/ncnn.c) must refuse hostile .param/.bin pairs cleanly (no crash, no
 * leak, no allocation beyond what the input's size can hold). The input is a 4-byte little-endian length
 * of the .param text, the text, then the .bin bytes. */
#include "ncnn.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  size_t n = (size_t) data[0] | (size_t) data[1] << 8 | (size_t) data[2] << 16 | (size_t) data[3] << 24;
  if (n > size - 4)
    n = size - 4;
  char err[512];
  ncnn_net *net = ncnn_read ((const char *) data + 4, n, data + 4 + n, size - 4 - n, "fuzz.param", "fuzz.bin", err, sizeof err);
  ncnn_free (net);
  return 0;
}
