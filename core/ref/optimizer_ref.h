#ifndef CELGAN_OPTIMIZER_REF_H
#define CELGAN_OPTIMIZER_REF_H
#include "ref_common.h"

/* One Adam step in place over n elements, as torch.optim.Adam (L2 weight decay added to the gradient):
 * g = grad + wd * param; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * param -= (lr / bc1) * m / (sqrt (v) / sqrt (bc2) + eps), bc1 = 1 - b1^t, bc2 = 1 - b2^t. */
void adam_ref_step (double *param, const double *grad, double *m, double *v, int64_t n, double lr, double bc1,
                    double bc2, double beta1, double beta2, double eps, double weight_decay);
#endif
