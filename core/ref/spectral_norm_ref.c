/* Reference of spectral normalization (torch.nn.utils.spectral_norm with a deterministic start). */
#include "spectral_norm_ref.h"

#include <math.h>

static uint32_t hash (uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

double spectral_norm_ref_init_u (uint32_t o) {
  uint32_t sum = 0;
  for (uint32_t j = 0; j < 4; j++)
    sum += hash (4u * o + j + 0x9e3779b9u) >> 10;
  return sum / 4194304.0 - 2.0;
}

static void normalize (double *x, int32_t n, double eps) {
  double ss = 0;
  for (int32_t i = 0; i < n; i++)
    ss += x[i] * x[i];
  double d = fmax (sqrt (ss), eps);
  for (int32_t i = 0; i < n; i++)
    x[i] /= d;
}

/* v = normalize (W^T u) */
static void update_v (const double *w, int32_t oc, int32_t k, const double *u, double *v, double eps) {
  for (int32_t c = 0; c < k; c++) {
    double s = 0;
    for (int32_t o = 0; o < oc; o++)
      s += w[(int64_t) o * k + c] * u[o];
    v[c] = s;
  }
  normalize (v, k, eps);
}

/* r = W v */
static void mat_vec (const double *w, int32_t oc, int32_t k, const double *v, double *r) {
  for (int32_t o = 0; o < oc; o++) {
    double s = 0;
    for (int32_t c = 0; c < k; c++)
      s += w[(int64_t) o * k + c] * v[c];
    r[o] = s;
  }
}

void spectral_norm_ref_power (const double *w, int32_t oc, int32_t k, double *state, int32_t iterations, bool update,
                              double eps) {
  double *u = state, *v = state + oc, *sigma = state + oc + k;
  bool fresh = true;
  for (int32_t o = 0; o < oc; o++)
    fresh &= u[o] == 0;
  if (fresh) {
    for (int32_t o = 0; o < oc; o++)
      u[o] = spectral_norm_ref_init_u ((uint32_t) o);
    normalize (u, oc, eps);
  }
  if (!update)
    iterations = 0;
  if (iterations == 0 && fresh)
    update_v (w, oc, k, u, v, eps);
  for (int32_t i = 0; i < iterations; i++) {
    update_v (w, oc, k, u, v, eps);
    mat_vec (w, oc, k, v, u);
    normalize (u, oc, eps);
  }
  /* sigma = u . (W v) */
  double s = 0;
  for (int32_t o = 0; o < oc; o++) {
    double r = 0;
    for (int32_t c = 0; c < k; c++)
      r += w[(int64_t) o * k + c] * v[c];
    s += u[o] * r;
  }
  *sigma = s;
}

void spectral_norm_ref_fwd (const double *w, int64_t count, const double *state, int32_t oc, int32_t k, double *y) {
  double sigma = state[oc + k];
  for (int64_t i = 0; i < count; i++)
    y[i] = w[i] / sigma;
}

void spectral_norm_ref_bwd (const double *w, int32_t oc, int32_t k, const double *state, const double *dy, double *dw) {
  const double *u = state, *v = state + oc;
  double sigma = state[oc + k], dot = 0;
  int64_t count = (int64_t) oc * k;
  for (int64_t i = 0; i < count; i++)
    dot += dy[i] * w[i];
  for (int32_t o = 0; o < oc; o++)
    for (int32_t c = 0; c < k; c++) {
      int64_t i = (int64_t) o * k + c;
      dw[i] = dy[i] / sigma - dot / (sigma * sigma) * u[o] * v[c];
    }
}
