/* Training data for celgan train: two folders of PNG/JPEG images (photos, style images) turned into batches of
 * random crops on worker threads, ahead of the GPU.
 *
 * Every batch is a pure function of (seed, step): sample b of step t takes position (t*B + b) mod n of a
 * permutation of the sorted file list drawn for its epoch, and its crop and flip from a counter-based RNG. So
 * any thread may build any step, a resumed run sees exactly the batches the uninterrupted run would have seen,
 * and the "RNG state" of a checkpoint is the step. An image that cannot be used (unreadable, corrupt, smaller
 * than the crop) is skipped with a warning, counted, and replaced by the next one in the permutation (again
 * deterministic: a file is either always usable or never). */
#ifndef CELGAN_TRAIN_DATA_H
#define CELGAN_TRAIN_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct train_data train_data;

typedef struct train_data_options {
  const char *photos, *styles; /* folders */
  int32_t crop, batch;         /* batch: of the whole step (all ranks together when data parallel) */
  int32_t shard_first, shard_count; /* the samples this process builds: [first, first + count) of each step's batch
                                     * (count 0: all); the batches hold count samples */
  int32_t threads;             /* decoding threads (>= 1) */
  uint64_t seed;
  uint64_t cache_bytes;        /* decoded images kept in memory (0: none) */
  bool quiet;                  /* no warnings for skipped images */
} train_data_options;

/* One batch (this process's shard of it), NCHW (shard_count, 3, crop, crop) floats in [-1, 1]: photos, style images, their grayscale copies
 * (luma in the three channels) and their edge-smoothed copies. Owned by the queue until released. */
typedef struct train_batch {
  int64_t step;
  float *photo, *style, *gray, *smooth;
} train_batch;

/* Lists both folders. Fails with a sentence (and false) when a folder cannot be read or holds no image. */
bool train_data_open (const train_data_options *o, train_data **out, char *err, size_t errlen);
/* Starts the workers; they build steps first_step, first_step + 1, ... ahead of the consumer. */
bool train_data_start (train_data *d, int64_t first_step, char *err, size_t errlen);
/* Waits for the batch of `step` (the next unreleased one). NULL with a sentence when no image of a folder
 * can be used. */
const train_batch *train_data_get (train_data *d, int64_t step, char *err, size_t errlen);
/* Gives the batch of `step` back to the queue. */
void train_data_release (train_data *d, int64_t step);
/* Stops the workers and frees everything. */
void train_data_close (train_data *d);

/* The first `count` usable photos in name order, center-cropped to size x size, NCHW in [-1, 1] (the fixed
 * inputs of the sample grids). Returns how many were found (<= count). */
int32_t train_data_fixed_photos (train_data *d, int32_t count, int32_t size, float *out);
/* The same from the style folder (the references of a reference-guided run's sample grids). */
int32_t train_data_fixed_styles (train_data *d, int32_t count, int32_t size, float *out);

/* Counts of images skipped so far: unreadable and smaller than the crop, over both folders. */
void train_data_skipped (train_data *d, int64_t *unreadable, int64_t *too_small);
/* File counts and a hash of the sorted names of both folders (recorded in checkpoints: the data order). */
void train_data_listing (const train_data *d, int64_t *n_photos, int64_t *n_styles, uint64_t *hash);

/* Host-side image helpers, exposed for tests and the sample grids. img is (h, w, 3) interleaved in [0, 1]. */
/* AnimeGAN's edge smoothing: pixels near strong edges (Sobel magnitude of the luma > 0.3, dilated by 2
 * pixels) are replaced by a 5x5 Gaussian blur (sigma 1) of the image. */
void train_edge_smooth (const float *img, int32_t w, int32_t h, float *out);

/* splitmix64: the counter-based generator of the data order, crops and the trainer's initial weights. */
uint64_t train_mix64 (uint64_t x);

#endif
