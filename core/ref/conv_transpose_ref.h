#ifndef CELGAN_CONV_TRANSPOSE_REF_H
#define CELGAN_CONV_TRANSPOSE_REF_H
#include "ref_common.h"

/* Geometry of a transposed 2-D convolution with PyTorch's meaning; every field is explicit. */
typedef struct conv_transpose2d_ref_params {
  int32_t stride_h, stride_w;
  int32_t pad_h, pad_w;
  int32_t output_pad_h, output_pad_w;
  int32_t dilation_h, dilation_w;
  int32_t groups;
} conv_transpose2d_ref_params;

/* Output shape (N, OC, OH, OW) for x (N,IC,H,W) and w (IC,OC/groups,KH,KW):
 * OH = (H-1)*stride - 2*pad + dilation*(KH-1) + output_pad + 1. */
ref_shape conv_transpose2d_ref_out_shape (ref_shape xs, ref_shape ws, const conv_transpose2d_ref_params *p);

/* y = conv_transpose2d (x, w) + b.  x (N,IC,H,W), w (IC,OC/groups,KH,KW), b (OC) or NULL, y (N,OC,OH,OW). */
void conv_transpose2d_ref_fwd (const double *x, ref_shape xs, const double *w, ref_shape ws, const double *b,
                               const conv_transpose2d_ref_params *p, double *y);
/* dx (N,IC,H,W) from dy (N,OC,OH,OW) and w. */
void conv_transpose2d_ref_bwd_data (const double *dy, const double *w, ref_shape ws, ref_shape xs,
                                    const conv_transpose2d_ref_params *p, double *dx);
/* dw (IC,OC/groups,KH,KW) from dy (N,OC,OH,OW) and x (N,IC,H,W). */
void conv_transpose2d_ref_bwd_weight (const double *dy, const double *x, ref_shape xs, ref_shape ws,
                                      const conv_transpose2d_ref_params *p, double *dw);
/* db (OC) = dy (N,OC,OH,OW) summed over N, OH, OW. */
void conv_transpose2d_ref_bwd_bias (const double *dy, ref_shape ys, double *db);

#endif
