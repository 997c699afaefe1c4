/* References of the activations, from x in both directions (the GPU backward of tanh and sigmoid works from
 * y; computing the reference from x checks that too). */
#include "activation_ref.h"

#include <math.h>

static double act_fwd (double v, int act, double alpha) {
  switch (act) {
  case 0: return v > 0 ? v : 0;
  case 1: return v > 0 ? v : alpha * v;
  case 2: return tanh (v);
  default: return 1 / (1 + exp (-v));
  }
}

static double act_slope (double v, int act, double alpha) {
  double t;
  switch (act) {
  case 0: return v > 0 ? 1 : 0;
  case 1: return v > 0 ? 1 : alpha;
  case 2: t = tanh (v); return 1 - t * t;
  default: t = 1 / (1 + exp (-v)); return t * (1 - t);
  }
}

void activation_ref_fwd (const double *x, int64_t n, int act, double alpha, double *y) {
  for (int64_t i = 0; i < n; i++)
    y[i] = act_fwd (x[i], act, alpha);
}

void activation_ref_bwd (const double *x, const double *dy, int64_t n, int act, double alpha, double *dx) {
  for (int64_t i = 0; i < n; i++)
    dx[i] = act_slope (x[i], act, alpha) * dy[i];
}

void prelu_ref_fwd (const double *x, ref_shape xs, const double *slope, int per_channel, double *y) {
  for (int64_t i = 0; i < ref_count (xs); i++) {
    double a = slope[per_channel ? (i / ((int64_t) xs.h * xs.w)) % xs.c : 0];
    y[i] = x[i] > 0 ? x[i] : a * x[i];
  }
}

void prelu_ref_bwd (const double *x, ref_shape xs, const double *slope, int per_channel, const double *dy, double *dx,
                    double *dslope) {
  if (dslope)
    for (int32_t c = 0; c < (per_channel ? xs.c : 1); c++)
      dslope[c] = 0;
  for (int64_t i = 0; i < ref_count (xs); i++) {
    int64_t c = per_channel ? (i / ((int64_t) xs.h * xs.w)) % xs.c : 0;
    if (dx)
      dx[i] = x[i] > 0 ? dy[i] : slope[c] * dy[i];
    if (dslope && x[i] <= 0)
      dslope[c] += x[i] * dy[i];
  }
}
