#ifndef CELGAN_CHANNELS_REF_H
#define CELGAN_CHANNELS_REF_H
#include "ref_common.h"

/* y (N,C1+C2,H,W) = a (N,C1,H,W) then b (N,C2,H,W) on channels. */
void concat_ref_fwd (const double *a, ref_shape as, const double *b, ref_shape bs, double *y);
/* da, db = the two channel ranges of dy (N,C1+C2,H,W). */
void concat_ref_bwd (const double *dy, ref_shape as, ref_shape bs, double *da, double *db);
/* y (N,count,H,W) = channels [c0, c0+count) of x (N,C,H,W). */
void slice_channels_ref_fwd (const double *x, ref_shape xs, int32_t c0, int32_t count, double *y);
/* dx (N,C,H,W) = dy (N,count,H,W) at channels [c0, c0+count), zero elsewhere. */
void slice_channels_ref_bwd (const double *dy, ref_shape xs, int32_t c0, int32_t count, double *dx);
#endif
