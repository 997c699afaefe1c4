#ifndef CELGAN_CONV_REF_H
#define CELGAN_CONV_REF_H
#include "ref_common.h"

#include <stdbool.h>

/* Geometry of a 2-D convolution; every field is explicit (no "0 means 1"). Padding is PyTorch 'zeros'
 * or, with reflect, PyTorch 'reflect' (edge not repeated; each pad < the input size). */
typedef struct conv2d_ref_params {
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_bottom, pad_left, pad_right;
  int32_t dilation_h, dilation_w;
  int32_t groups;
  bool reflect;
} conv2d_ref_params;

/* Output shape (N, OC, OH, OW) of x (N,IC,H,W) convolved with w (OC,IC/groups,KH,KW). */
ref_shape conv2d_ref_out_shape (ref_shape xs, ref_shape ws, const conv2d_ref_params *p);

/* y = conv2d (x, w) + b.  x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (OC) or NULL, y (N,OC,OH,OW). */
void conv2d_ref_fwd (const double *x, ref_shape xs, const double *w, ref_shape ws, const double *b,
                     const conv2d_ref_params *p, double *y);
/* dx (N,IC,H,W) from dy (N,OC,OH,OW) and w; with reflect the padded border folds back onto x. */
void conv2d_ref_bwd_data (const double *dy, const double *w, ref_shape ws, ref_shape xs, const conv2d_ref_params *p,
                          double *dx);
/* dw (OC,IC/groups,KH,KW) from dy (N,OC,OH,OW) and x (N,IC,H,W). */
void conv2d_ref_bwd_weight (const double *dy, const double *x, ref_shape xs, ref_shape ws, const conv2d_ref_params *p,
                            double *dw);
/* db (OC) = dy (N,OC,OH,OW) summed over N, OH, OW. */
void conv2d_ref_bwd_bias (const double *dy, ref_shape ys, double *db);

#endif
