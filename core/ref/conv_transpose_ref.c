/* Reference of conv_transpose2d in scatter form, as it is defined: every input element times every kernel
 * tap lands on one output element (or outside the cropped output). Backward walks the same loops. */
#include "conv_transpose_ref.h"

ref_shape conv_transpose2d_ref_out_shape (ref_shape xs, ref_shape ws, const conv_transpose2d_ref_params *p) {
  int32_t oh = (xs.h - 1) * p->stride_h - 2 * p->pad_h + p->dilation_h * (ws.h - 1) + p->output_pad_h + 1;
  int32_t ow = (xs.w - 1) * p->stride_w - 2 * p->pad_w + p->dilation_w * (ws.w - 1) + p->output_pad_w + 1;
  return (ref_shape) { xs.n, ws.c * p->groups, oh, ow };
}

typedef enum { DIR_FWD, DIR_DATA, DIR_WEIGHT } direction;

/* x (N,IC,H,W), w (IC,OC/groups,KH,KW), y (N,OC,OH,OW); `dir` says which of the three is written. */
static void walk (double *x, ref_shape xs, double *w, ref_shape ws, double *y, const conv_transpose2d_ref_params *p,
                  direction dir) {
  ref_shape ys = conv_transpose2d_ref_out_shape (xs, ws, p);
  int32_t icg_count = xs.c / p->groups, ocg_count = ws.c;
  for (int32_t n = 0; n < xs.n; n++)
    for (int32_t ic = 0; ic < xs.c; ic++)
      for (int32_t ih = 0; ih < xs.h; ih++)
        for (int32_t iw = 0; iw < xs.w; iw++) {
          double *xv = &x[ref_at (xs, n, ic, ih, iw)];
          for (int32_t ocg = 0; ocg < ocg_count; ocg++) {
            int32_t oc = ic / icg_count * ocg_count + ocg;
            for (int32_t kh = 0; kh < ws.h; kh++) {
              int32_t oh = ih * p->stride_h - p->pad_h + kh * p->dilation_h;
              if (oh < 0 || oh >= ys.h)
                continue;
              for (int32_t kw = 0; kw < ws.w; kw++) {
                int32_t ow = iw * p->stride_w - p->pad_w + kw * p->dilation_w;
                if (ow < 0 || ow >= ys.w)
                  continue;
                double *yv = &y[ref_at (ys, n, oc, oh, ow)];
                double *wv = &w[ref_at (ws, ic, ocg, kh, kw)];
                if (dir == DIR_FWD)
                  *yv += *xv * *wv;
                else if (dir == DIR_DATA)
                  *xv += *yv * *wv;
                else
                  *wv += *yv * *xv;
              }
            }
          }
        }
}

void conv_transpose2d_ref_fwd (const double *x, ref_shape xs, const double *w, ref_shape ws, const double *b,
                               const conv_transpose2d_ref_params *p, double *y) {
  ref_shape ys = conv_transpose2d_ref_out_shape (xs, ws, p);
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t oc = 0; oc < ys.c; oc++)
      for (int64_t i = 0; i < (int64_t) ys.h * ys.w; i++)
        y[ref_at (ys, n, oc, 0, 0) + i] = b ? b[oc] : 0.0;
  walk ((double *) x, xs, (double *) w, ws, y, p, DIR_FWD);
}

void conv_transpose2d_ref_bwd_data (const double *dy, const double *w, ref_shape ws, ref_shape xs,
                                    const conv_transpose2d_ref_params *p, double *dx) {
  for (int64_t i = 0; i < ref_count (xs); i++)
    dx[i] = 0;
  walk (dx, xs, (double *) w, ws, (double *) dy, p, DIR_DATA);
}

void conv_transpose2d_ref_bwd_weight (const double *dy, const double *x, ref_shape xs, ref_shape ws,
                                      const conv_transpose2d_ref_params *p, double *dw) {
  for (int64_t i = 0; i < ref_count (ws); i++)
    dw[i] = 0;
  walk ((double *) x, xs, dw, ws, (double *) dy, p, DIR_WEIGHT);
}

void conv_transpose2d_ref_bwd_bias (const double *dy, ref_shape ys, double *db) {
  for (int32_t oc = 0; oc < ys.c; oc++) {
    double s = 0;
    for (int32_t n = 0; n < ys.n; n++)
      for (int64_t i = 0; i < (int64_t) ys.h * ys.w; i++)
        s += dy[ref_at (ys, n, oc, 0, 0) + i];
    db[oc] = s;
  }
}
