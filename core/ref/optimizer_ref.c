/* Reference of the optimizer family. */
#include "optimizer_ref.h"

#include <math.h>

void adam_ref_step (double *param, const double *grad, double *m, double *v, int64_t n, double lr, double bc1,
                    double bc2, double beta1, double beta2, double eps, double weight_decay) {
  for (int64_t i = 0; i < n; i++) {
    double g = grad[i] + weight_decay * param[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    param[i] -= lr / bc1 * m[i] / (sqrt (v[i]) / sqrt (bc2) + eps);
  }
}
