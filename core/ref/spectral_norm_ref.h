#ifndef CELGAN_SPECTRAL_NORM_REF_H
#define CELGAN_SPECTRAL_NORM_REF_H
#include "ref_common.h"

#include <stdbool.h>

/* w (OC, K) row-major; state (OC+K+1) = u (OC), v (K), sigma, updated in place as the forward does:
 * a u that is all zero is set to spectral_norm_ref_init_u; then with update and iterations > 0,
 * `iterations` rounds of v = normalize (W^T u), u = normalize (W v) and sigma = u . (W v); otherwise
 * sigma = u . (W v) with the stored u, v (v = normalize (W^T u) first if u was zero).
 * normalize (x) = x / max (|x|, eps). */
void spectral_norm_ref_power (const double *w, int32_t oc, int32_t k, double *state, int32_t iterations, bool update,
                              double eps);
/* The starting u for an all-zero state, before normalization: element o from a fixed hash of o. */
double spectral_norm_ref_init_u (uint32_t o);
/* y = w / sigma, sigma from the state. */
void spectral_norm_ref_fwd (const double *w, int64_t count, const double *state, int32_t oc, int32_t k, double *y);
/* dw = dy / sigma - (<dy, w> / sigma^2) u v^T (u, v, sigma from the state, held constant). */
void spectral_norm_ref_bwd (const double *w, int32_t oc, int32_t k, const double *state, const double *dy, double *dw);
#endif
