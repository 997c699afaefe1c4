/* Plain C references of every op, in double precision: the truth in tests. Layout NCHW, shapes as
 * cel_shape-like (n, c, h, w) quadruples. Each family has <family>_ref.h / <family>_ref.c. */
#ifndef CELGAN_REF_COMMON_H
#define CELGAN_REF_COMMON_H

#include <stdint.h>

typedef struct ref_shape {
  int32_t n, c, h, w;
} ref_shape;

static inline int64_t ref_count (ref_shape s) {
  return (int64_t) s.n * s.c * s.h * s.w;
}
static inline int64_t ref_at (ref_shape s, int32_t n, int32_t c, int32_t h, int32_t w) {
  return (((int64_t) n * s.c + c) * s.h + h) * s.w + w;
}

#endif
