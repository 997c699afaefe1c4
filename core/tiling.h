/* Private: exact tiled execution of a model (tiling.c), used by the stylizer (stylize.c). */
#ifndef CELGAN_TILING_H
#define CELGAN_TILING_H

#include "internal.h"
#include "model.h"

struct cel_stylizer {
  cel_context *ctx;
  const cel_model *model;
  cel_graph *g;
  int32_t base;
};

/* Runs the model on planar network input (in_channels x H x W, network range) in tiles of `tile` input pixels,
 * writing the planar output to net_out. net_ref: planar reference (RH x RW) or NULL. Statuses as cel_stylize. */
cel_status cel_tiled_run (cel_stylizer *s, const float *net_in, int32_t H, int32_t W, const float *net_ref, int32_t RH,
                          int32_t RW, int32_t tile, uint64_t budget, const cel_stylize_options *o, float *net_out,
                          cel_stylize_report *rep);

/* ---- the tiled run's per-layer state (tiling.c, tiling_segments.c) ------------------------------- */

typedef struct win {
  int32_t y0, x0, h, w; /* h == 0: empty */
} win;

/* Statistics of one tensor accumulated over tiles, per channel: count, mean, M2 (sum of squared deviations). */
typedef struct stats_acc {
  double *count, *mean, *m2; /* C entries */
} stats_acc;

typedef struct lstate {
  int32_t seg;          /* segment that computes it (-1: reference pre-pass) */
  bool on_image;        /* depends on the image input */
  int32_t gh, gw;       /* global size */
  bool boundary;        /* used by a later segment: kept on the host */
  bool stats;           /* its statistics are needed by a global op */
  bool vec;             /* a per-channel vector (global pooling and what is computed from it only) */
  float *host;          /* C x gh x gw (boundary) */
  size_t host_floats;   /* its size; boundaries on the image are held from their segment to last_seg */
  int32_t last_seg;     /* the last segment that reads it */
  stats_acc acc;
  /* per tile */
  win req;              /* window this tile computes */
  cel_node node;
  win node_win;
} lstate;

/* Global sizes of every layer (ls[i].gh, gw) for an image of h x w (reference layers: rh x rw); an error (set on
 * the context) where the image is too small for a layer. */
cel_status cel_tile_global_sizes (cel_stylizer *s, lstate *ls, int32_t h, int32_t w, int32_t rh, int32_t rw);
/* Fills every layer's seg, on_image, vec, stats, boundary and last_seg; returns the last segment. */
int32_t cel_tile_assign_segments (const cel_model *m, lstate *ls);

/* ---- geometry (tiling_geometry.c) ---------------------------------------------------------------- */

/* Per-axis interval [lo, hi). */
typedef struct tile_span {
  int32_t lo, hi;
} tile_span;

tile_span tile_clamp_span (tile_span s, int32_t n);
/* Input rows a conv2d output span reads, before clamping: [o.lo*s - pad, (o.hi-1)*s - pad + ext). */
tile_span tile_conv_ideal (tile_span o, int32_t s, int32_t pad, int32_t k, int32_t d);
/* The window of the input that must exist: the clamped ideal span plus the rows reflection reads. */
tile_span tile_conv_need (tile_span ideal, int32_t n, bool reflect);
/* The window of the input a pad reads for an ideal span (rows outside map to the edge or their mirror). */
tile_span tile_pad_need (tile_span ideal, int32_t n, bool reflect);
/* The inputs a transposed convolution's output span reads. */
tile_span tile_convt_need (tile_span o, int32_t n_in, int32_t s, int32_t pad, int32_t k, int32_t d);
/* The inputs a resize's output span reads (with the whole image's sampling). */
tile_span tile_resize_need (tile_span o, int32_t n_in, int32_t n_out, int32_t mode);
/* The part [t0, t1) of the image's `full` rows owns of a tensor of gsize rows at resolution res. */
tile_span tile_owned_span (int32_t t0, int32_t t1, int32_t full, double res, int32_t gsize);

/* ---- host memory (tiling_host.c) ----------------------------------------------------------------- */

#define CEL_HOST_POOL_MAX 64 /* host buffers kept for reuse; more go back to the system */

/* Host buffers of tensors whose last reading segment has passed, for the next ones. */
typedef struct cel_host_pool {
  struct {
    float *p;
    size_t floats;
  } entries[CEL_HOST_POOL_MAX];
  int32_t n;
} cel_host_pool;

/* A buffer of at least n floats (*got: its size): the smallest pooled one that fits, else a new one; NULL when
 * out of host memory. */
float *cel_host_pool_take (cel_host_pool *pool, size_t n, size_t *got);
/* Gives p (n floats) back to the pool (debug builds poison it first). */
void cel_host_pool_give (cel_host_pool *pool, float *p, size_t n);
/* Frees every pooled buffer. */
void cel_host_pool_clear (cel_host_pool *pool);

/* A copy of C planes of h rows of w floats between two planar tensors: row y of plane c goes from
 * src + c * src_plane + y * src_row to dst + c * dst_plane + y * dst_row. */
typedef struct cel_plane_copy {
  float *dst;
  const float *src;
  size_t dst_plane, dst_row, src_plane, src_row;
  int32_t C, h, w;
  int32_t c0, c1; /* the planes one thread copies */
} cel_plane_copy;

void cel_copy_planes (const cel_context *ctx, cel_plane_copy pc);

#endif
