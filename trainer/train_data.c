/* Training data: folder listing, decoding cache, deterministic crops, and the worker queue (train_data.h). */
#include "train_data.h"
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DOMAIN_PHOTO = 0, DOMAIN_STYLE = 1 };
enum { FILE_UNKNOWN = 0, FILE_OK, FILE_UNREADABLE, FILE_TOO_SMALL };

/* A decoded image (RGB, interleaved, [0, 1]) and, for style images, its edge-smoothed copy. */
typedef struct cached_image {
  int32_t w, h;
  float *rgb, *smooth;
} cached_image;

typedef struct folder {
  const char *dir;
  char **names;
  int64_t n;
  int *status;          /* FILE_* per file, learned as files are decoded */
  cached_image *cache;  /* per file; rgb NULL when not cached */
} folder;

typedef struct slot {
  int64_t step;         /* the step whose batch is in the slot; -1 empty */
  bool failed;
  char err[512];
  train_batch batch;
} slot;

struct train_data {
  train_data_options o;
  folder f[2];
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t *threads;
  int32_t n_threads;
  bool started, stop;
  int64_t next_step;     /* next step a worker takes */
  int64_t consumer_step; /* the step the trainer waits for or uses; slots hold [consumer_step, + n_slots) */
  int32_t n_slots;
  slot *slots;
  uint64_t cached_bytes;
  int64_t unreadable, too_small;
};

uint64_t train_mix64 (uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static int cmp_str (const void *a, const void *b) {
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static bool list_folder (folder *f, const char *dir, char *err, size_t errlen) {
  f->dir = dir;
  DIR *d = opendir (dir);
  if (!d) {
    snprintf (err, errlen, "cannot read the folder '%s': %s", dir, strerror (errno));
    return false;
  }
  struct dirent *e;
  while ((e = readdir (d))) {
    image_format fmt;
    if (e->d_name[0] == '.' || !image_format_from_name (e->d_name, &fmt))
      continue;
    char **p = realloc (f->names, (size_t) (f->n + 1) * sizeof *p);
    if (!p || !(p[f->n] = strdup (e->d_name))) {
      f->names = p ? p : f->names;
      closedir (d);
      snprintf (err, errlen, "out of memory listing '%s'", dir);
      return false;
    }
    f->names = p;
    f->n++;
  }
  closedir (d);
  if (f->n == 0) {
    snprintf (err, errlen, "no PNG or JPEG images in '%s'", dir);
    return false;
  }
  qsort (f->names, (size_t) f->n, sizeof *f->names, cmp_str);
  f->status = calloc ((size_t) f->n, sizeof *f->status);
  f->cache = calloc ((size_t) f->n, sizeof *f->cache);
  if (!f->status || !f->cache) {
    snprintf (err, errlen, "out of memory listing '%s'", dir);
    return false;
  }
  return true;
}

bool train_data_open (const train_data_options *o, train_data **out, char *err, size_t errlen) {
  *out = NULL;
  train_data *d = calloc (1, sizeof *d);
  if (!d) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  d->o = *o;
  if (d->o.shard_count <= 0 || d->o.shard_first < 0 || d->o.shard_first + d->o.shard_count > d->o.batch) {
    d->o.shard_first = 0;
    d->o.shard_count = d->o.batch;
  }
  if (d->o.threads < 1)
    d->o.threads = 1;
  pthread_mutex_init (&d->lock, NULL);
  pthread_cond_init (&d->cond, NULL);
  if (!list_folder (&d->f[DOMAIN_PHOTO], o->photos, err, errlen) || !list_folder (&d->f[DOMAIN_STYLE], o->styles, err, errlen)) {
    train_data_close (d);
    return false;
  }
  *out = d;
  return true;
}

/* ---- images -------------------------------------------------------------------------------------- */

static float luma (const float *p) {
  return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

void train_edge_smooth (const float *img, int32_t w, int32_t h, float *out) {
  size_t n = (size_t) w * h;
  float *gray = malloc (n * sizeof *gray);
  unsigned char *edge = calloc (n, 1), *mask = calloc (n, 1);
  memcpy (out, img, n * 3 * sizeof *out);
  if (!gray || !edge || !mask)
    goto done;
  for (size_t i = 0; i < n; i++)
    gray[i] = luma (img + 3 * i);
#define G(y, x) gray[(size_t) ((y) < 0 ? 0 : (y) >= h ? h - 1 : (y)) * w + ((x) < 0 ? 0 : (x) >= w ? w - 1 : (x))]
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++) {
      float gx = G (y - 1, x + 1) + 2 * G (y, x + 1) + G (y + 1, x + 1) - G (y - 1, x - 1) - 2 * G (y, x - 1) - G (y + 1, x - 1);
      float gy = G (y + 1, x - 1) + 2 * G (y + 1, x) + G (y + 1, x + 1) - G (y - 1, x - 1) - 2 * G (y - 1, x) - G (y - 1, x + 1);
      edge[(size_t) y * w + x] = sqrtf (gx * gx + gy * gy) > 0.3f;
    }
#undef G
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++) {
      bool any = false;
      for (int32_t dy = -2; dy <= 2 && !any; dy++)
        for (int32_t dx = -2; dx <= 2 && !any; dx++) {
          int32_t yy = y + dy, xx = x + dx;
          any = yy >= 0 && yy < h && xx >= 0 && xx < w && edge[(size_t) yy * w + xx];
        }
      mask[(size_t) y * w + x] = any;
    }
  static const float k[5] = { 0.054488685f, 0.24420134f, 0.40261995f, 0.24420134f, 0.054488685f }; /* sigma 1 */
  for (int32_t y = 0; y < h; y++)
    for (int32_t x = 0; x < w; x++) {
      if (!mask[(size_t) y * w + x])
        continue;
      for (int c = 0; c < 3; c++) {
        float s = 0;
        for (int32_t dy = -2; dy <= 2; dy++)
          for (int32_t dx = -2; dx <= 2; dx++) {
            int32_t yy = y + dy < 0 ? 0 : y + dy >= h ? h - 1 : y + dy, xx = x + dx < 0 ? 0 : x + dx >= w ? w - 1 : x + dx;
            s += k[dy + 2] * k[dx + 2] * img[((size_t) yy * w + xx) * 3 + c];
          }
        out[((size_t) y * w + x) * 3 + c] = s;
      }
    }
done:
  free (gray);
  free (edge);
  free (mask);
}

/* Decodes file i of a folder to RGB (and the smoothed copy for style images). Returns FILE_OK with *img set
 * (the caller owns it unless it came from the cache: *owned says), or the reason it cannot be used. */
static int load_image (train_data *d, int domain, int64_t i, cached_image *img, bool *owned) {
  folder *f = &d->f[domain];
  pthread_mutex_lock (&d->lock);
  int status = f->status[i];
  if (f->cache[i].rgb) {
    *img = f->cache[i];
    *owned = false;
  }
  pthread_mutex_unlock (&d->lock);
  if (status == FILE_UNREADABLE || status == FILE_TOO_SMALL)
    return status;
  if (!*owned && img->rgb)
    return FILE_OK;

  char path[4096], err[4400];
  snprintf (path, sizeof path, "%s/%s", f->dir, f->names[i]);
  image im = { 0 };
  int result = FILE_OK;
  bool loaded = image_load (path, &im, 0, err, sizeof err);
  if (!loaded)
    result = FILE_UNREADABLE;
  else if (im.width < d->o.crop || im.height < d->o.crop)
    result = FILE_TOO_SMALL;
  cached_image c = { 0 };
  if (result == FILE_OK) {
    size_t n = (size_t) im.width * im.height;
    c.w = im.width;
    c.h = im.height;
    c.rgb = malloc (n * 3 * sizeof (float));
    if (domain == DOMAIN_STYLE)
      c.smooth = malloc (n * 3 * sizeof (float));
    if (!c.rgb || (domain == DOMAIN_STYLE && !c.smooth)) {
      snprintf (err, sizeof err, "%s: out of memory", path);
      result = FILE_UNREADABLE;
      free (c.rgb);
      free (c.smooth);
    } else {
      for (size_t p = 0; p < n; p++) {
        const float *s = im.data + p * im.channels;
        float *o = c.rgb + 3 * p;
        if (im.channels <= 2)
          o[0] = o[1] = o[2] = s[0];
        else
          o[0] = s[0], o[1] = s[1], o[2] = s[2];
      }
      if (c.smooth)
        train_edge_smooth (c.rgb, c.w, c.h, c.smooth);
    }
  }
  int32_t iw = loaded ? im.width : 0, ih = loaded ? im.height : 0;
  if (loaded)
    image_free (&im);

  pthread_mutex_lock (&d->lock);
  /* first sight of the file, or a usable file that became unreadable since (changed or removed mid-run; only
   * when it was not cached) */
  if (f->status[i] == FILE_UNKNOWN || (f->status[i] == FILE_OK && result != FILE_OK)) {
    f->status[i] = result;
    if (result == FILE_UNREADABLE) {
      d->unreadable++;
      if (!d->o.quiet)
        fprintf (stderr, "\ncelgan: warning: skipping %s\n", err);
    } else if (result == FILE_TOO_SMALL) {
      d->too_small++;
      if (!d->o.quiet)
        fprintf (stderr, "\ncelgan: warning: skipping %s: %dx%d is smaller than the %d-pixel crop\n", path, iw, ih,
                 d->o.crop);
    }
  }
  *owned = true;
  if (result == FILE_OK) {
    uint64_t bytes = (uint64_t) c.w * c.h * 3 * sizeof (float) * (c.smooth ? 2 : 1);
    if (!f->cache[i].rgb && d->cached_bytes + bytes <= d->o.cache_bytes) {
      f->cache[i] = c;
      d->cached_bytes += bytes;
      *owned = false;
    }
  }
  pthread_mutex_unlock (&d->lock);
  *img = c;
  return result;
}

/* Position k of the permutation of n files for `epoch` of a domain (Fisher-Yates from the seed). */
static int64_t permuted (const train_data *d, int domain, int64_t epoch, int64_t k, int64_t n, int64_t *perm) {
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  uint64_t s = train_mix64 (d->o.seed ^ train_mix64 (0x5eed0000ull + (uint64_t) domain) ^ train_mix64 ((uint64_t) epoch));
  for (int64_t i = n - 1; i > 0; i--) {
    s = train_mix64 (s);
    int64_t j = (int64_t) (s % (uint64_t) (i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm[k];
}

/* Writes a crop (y0, x0, size) of an interleaved RGB image, optionally flipped, to NCHW [-1, 1]. */
static void put_crop (const float *rgb, int32_t w, int32_t y0, int32_t x0, int32_t size, bool flip, bool gray, float *out) {
  size_t plane = (size_t) size * size;
  for (int32_t y = 0; y < size; y++)
    for (int32_t x = 0; x < size; x++) {
      const float *p = rgb + ((size_t) (y0 + y) * w + x0 + (flip ? size - 1 - x : x)) * 3;
      for (int c = 0; c < 3; c++)
        out[c * plane + (size_t) y * size + x] = 2 * (gray ? luma (p) : p[c]) - 1;
    }
}

/* Sample b of `step` (of the whole batch) from a domain into position b - shard_first of the batch. false (with
 * err) when no file of the folder is usable. */
static bool build_sample (train_data *d, int domain, int64_t step, int32_t b, train_batch *batch, int64_t *perm, char *err,
                          size_t errlen) {
  folder *f = &d->f[domain];
  int64_t n = f->n, k = step * d->o.batch + b;
  int32_t size = d->o.crop;
  size_t per = (size_t) 3 * size * size;
  int32_t at = b - d->o.shard_first;
  for (int64_t j = 0; j < n; j++) {
    int64_t i = permuted (d, domain, (k + j) / n, (k + j) % n, n, perm);
    cached_image img;
    bool owned = true;
    if (load_image (d, domain, i, &img, &owned) != FILE_OK)
      continue;
    uint64_t r = train_mix64 (d->o.seed ^ train_mix64 (((uint64_t) step << 20) ^ ((uint64_t) b << 2) ^ (uint64_t) domain));
    uint64_t r2 = train_mix64 (r);
    int32_t y0 = (int32_t) (r % (uint64_t) (img.h - size + 1)), x0 = (int32_t) (r2 % (uint64_t) (img.w - size + 1));
    bool flip = (train_mix64 (r2) >> 63) != 0;
    if (domain == DOMAIN_PHOTO) {
      put_crop (img.rgb, img.w, y0, x0, size, flip, false, batch->photo + at * per);
    } else {
      put_crop (img.rgb, img.w, y0, x0, size, flip, false, batch->style + at * per);
      put_crop (img.rgb, img.w, y0, x0, size, flip, true, batch->gray + at * per);
      put_crop (img.smooth, img.w, y0, x0, size, flip, false, batch->smooth + at * per);
    }
    if (owned) {
      free (img.rgb);
      free (img.smooth);
    }
    return true;
  }
  int64_t bad[2] = { 0, 0 };
  pthread_mutex_lock (&d->lock);
  for (int64_t i = 0; i < n; i++)
    bad[f->status[i] == FILE_TOO_SMALL]++;
  pthread_mutex_unlock (&d->lock);
  snprintf (err, errlen, "no usable image in '%s': %lld unreadable, %lld smaller than the %d-pixel crop", f->dir,
            (long long) bad[0], (long long) bad[1], size);
  return false;
}

static void *worker (void *arg) {
  train_data *d = arg;
  int64_t nmax = d->f[0].n > d->f[1].n ? d->f[0].n : d->f[1].n;
  int64_t *perm = malloc ((size_t) nmax * sizeof *perm);
  for (;;) {
    pthread_mutex_lock (&d->lock);
    while (!d->stop && d->next_step >= d->consumer_step + d->n_slots)
      pthread_cond_wait (&d->cond, &d->lock);
    if (d->stop) {
      pthread_mutex_unlock (&d->lock);
      break;
    }
    int64_t step = d->next_step++;
    slot *s = &d->slots[step % d->n_slots];
    pthread_mutex_unlock (&d->lock);

    bool ok = perm != NULL;
    char err[512] = "out of memory";
    for (int32_t b = d->o.shard_first; ok && b < d->o.shard_first + d->o.shard_count; b++)
      ok = build_sample (d, DOMAIN_PHOTO, step, b, &s->batch, perm, err, sizeof err) &&
           build_sample (d, DOMAIN_STYLE, step, b, &s->batch, perm, err, sizeof err);
    pthread_mutex_lock (&d->lock);
    s->failed = !ok;
    if (!ok)
      snprintf (s->err, sizeof s->err, "%s", err);
    s->batch.step = step;
    s->step = step;
    pthread_cond_broadcast (&d->cond);
    pthread_mutex_unlock (&d->lock);
  }
  free (perm);
  return NULL;
}

bool train_data_start (train_data *d, int64_t first_step, char *err, size_t errlen) {
  d->n_slots = 2 * d->o.threads + 2;
  d->slots = calloc ((size_t) d->n_slots, sizeof *d->slots);
  d->threads = calloc ((size_t) d->o.threads, sizeof *d->threads);
  size_t per = (size_t) d->o.shard_count * 3 * d->o.crop * d->o.crop;
  if (!d->slots || !d->threads) {
    snprintf (err, errlen, "out of memory");
    return false;
  }
  for (int32_t i = 0; i < d->n_slots; i++) {
    slot *s = &d->slots[i];
    s->step = -1;
    s->batch.photo = malloc (per * 4 * sizeof (float));
    if (!s->batch.photo) {
      snprintf (err, errlen, "out of memory for %d batches of %zu floats", d->n_slots, per * 4);
      return false;
    }
    s->batch.style = s->batch.photo + per;
    s->batch.gray = s->batch.style + per;
    s->batch.smooth = s->batch.gray + per;
  }
  d->next_step = d->consumer_step = first_step;
  for (int32_t i = 0; i < d->o.threads; i++) {
    if (pthread_create (&d->threads[i], NULL, worker, d) != 0) {
      snprintf (err, errlen, "cannot start a decoding thread");
      return false;
    }
    d->n_threads++;
  }
  d->started = true;
  return true;
}

const train_batch *train_data_get (train_data *d, int64_t step, char *err, size_t errlen) {
  pthread_mutex_lock (&d->lock);
  d->consumer_step = step;
  pthread_cond_broadcast (&d->cond);
  slot *s = &d->slots[step % d->n_slots];
  while (s->step != step)
    pthread_cond_wait (&d->cond, &d->lock);
  bool failed = s->failed;
  if (failed)
    snprintf (err, errlen, "%s", s->err);
  pthread_mutex_unlock (&d->lock);
  return failed ? NULL : &s->batch;
}

void train_data_release (train_data *d, int64_t step) {
  pthread_mutex_lock (&d->lock);
  d->slots[step % d->n_slots].step = -1;
  d->consumer_step = step + 1;
  pthread_cond_broadcast (&d->cond);
  pthread_mutex_unlock (&d->lock);
}

void train_data_close (train_data *d) {
  if (!d)
    return;
  pthread_mutex_lock (&d->lock);
  d->stop = true;
  pthread_cond_broadcast (&d->cond);
  pthread_mutex_unlock (&d->lock);
  for (int32_t i = 0; i < d->n_threads; i++)
    pthread_join (d->threads[i], NULL);
  free (d->threads);
  for (int32_t i = 0; d->slots && i < d->n_slots; i++)
    free (d->slots[i].batch.photo);
  free (d->slots);
  for (int k = 0; k < 2; k++) {
    folder *f = &d->f[k];
    for (int64_t i = 0; i < f->n; i++) {
      free (f->names[i]);
      if (f->cache) {
        free (f->cache[i].rgb);
        free (f->cache[i].smooth);
      }
    }
    free (f->names);
    free (f->status);
    free (f->cache);
  }
  pthread_mutex_destroy (&d->lock);
  pthread_cond_destroy (&d->cond);
  free (d);
}

static int32_t fixed_images (train_data *d, int domain, int32_t count, int32_t size, float *out) {
  int32_t found = 0;
  size_t per = (size_t) 3 * size * size;
  for (int64_t i = 0; i < d->f[domain].n && found < count; i++) {
    cached_image img;
    bool owned = true;
    if (load_image (d, domain, i, &img, &owned) != FILE_OK)
      continue;
    put_crop (img.rgb, img.w, (img.h - size) / 2, (img.w - size) / 2, size, false, false, out + found * per);
    found++;
    if (owned)
      free (img.rgb);
  }
  return found;
}

int32_t train_data_fixed_photos (train_data *d, int32_t count, int32_t size, float *out) {
  return fixed_images (d, DOMAIN_PHOTO, count, size, out);
}

int32_t train_data_fixed_styles (train_data *d, int32_t count, int32_t size, float *out) {
  return fixed_images (d, DOMAIN_STYLE, count, size, out);
}

void train_data_skipped (train_data *d, int64_t *unreadable, int64_t *too_small) {
  pthread_mutex_lock (&d->lock);
  *unreadable = d->unreadable;
  *too_small = d->too_small;
  pthread_mutex_unlock (&d->lock);
}

void train_data_listing (const train_data *d, int64_t *n_photos, int64_t *n_styles, uint64_t *hash) {
  *n_photos = d->f[0].n;
  *n_styles = d->f[1].n;
  uint64_t h = 0x43656c47414eull;
  for (int k = 0; k < 2; k++)
    for (int64_t i = 0; i < d->f[k].n; i++)
      for (const char *p = d->f[k].names[i]; *p; p++)
        h = train_mix64 (h ^ (unsigned char) *p);
  *hash = h;
}
