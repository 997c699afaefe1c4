/* Reference of conv2d. The three directions walk the same loops: every (output element, kernel tap) pair
 * names one input element (or a zero of the padding); forward gathers from it, backward scatters to it. */
#include "conv_ref.h"

ref_shape conv2d_ref_out_shape (ref_shape xs, ref_shape ws, const conv2d_ref_params *p) {
  int32_t oh = (xs.h + p->pad_top + p->pad_bottom - p->dilation_h * (ws.h - 1) - 1) / p->stride_h + 1;
  int32_t ow = (xs.w + p->pad_left + p->pad_right - p->dilation_w * (ws.w - 1) - 1) / p->stride_w + 1;
  return (ref_shape) { xs.n, ws.n, oh, ow };
}

/* Input row (or column) read at padded position i - pad; -1 for a zero of the padding. */
static int32_t source (int32_t i, int32_t size, bool reflect) {
  if (reflect) {
    if (i < 0)
      i = -i;
    if (i >= size)
      i = 2 * (size - 1) - i;
    return i;
  }
  return i >= 0 && i < size ? i : -1;
}

typedef enum { DIR_FWD, DIR_DATA, DIR_WEIGHT } direction;

/* x (N,IC,H,W), w (OC,IC/groups,KH,KW), y (N,OC,OH,OW); `dir` says which of the three is written. */
static void walk (double *x, ref_shape xs, double *w, ref_shape ws, double *y, const conv2d_ref_params *p,
                  direction dir) {
  ref_shape ys = conv2d_ref_out_shape (xs, ws, p);
  int32_t icg_count = ws.c, ocg_count = ws.n / p->groups;
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t oc = 0; oc < ys.c; oc++)
      for (int32_t oh = 0; oh < ys.h; oh++)
        for (int32_t ow = 0; ow < ys.w; ow++) {
          double *yv = &y[ref_at (ys, n, oc, oh, ow)];
          for (int32_t icg = 0; icg < icg_count; icg++) {
            int32_t ic = oc / ocg_count * icg_count + icg;
            for (int32_t kh = 0; kh < ws.h; kh++) {
              int32_t ih = source (oh * p->stride_h - p->pad_top + kh * p->dilation_h, xs.h, p->reflect);
              if (ih < 0)
                continue;
              for (int32_t kw = 0; kw < ws.w; kw++) {
                int32_t iw = source (ow * p->stride_w - p->pad_left + kw * p->dilation_w, xs.w, p->reflect);
                if (iw < 0)
                  continue;
                double *xv = &x[ref_at (xs, n, ic, ih, iw)];
                double *wv = &w[ref_at (ws, oc, icg, kh, kw)];
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

void conv2d_ref_fwd (const double *x, ref_shape xs, const double *w, ref_shape ws, const double *b,
                     const conv2d_ref_params *p, double *y) {
  ref_shape ys = conv2d_ref_out_shape (xs, ws, p);
  for (int32_t n = 0; n < ys.n; n++)
    for (int32_t oc = 0; oc < ys.c; oc++)
      for (int64_t i = 0; i < (int64_t) ys.h * ys.w; i++)
        y[ref_at (ys, n, oc, 0, 0) + i] = b ? b[oc] : 0.0;
  walk ((double *) x, xs, (double *) w, ws, y, p, DIR_FWD);
}

void conv2d_ref_bwd_data (const double *dy, const double *w, ref_shape ws, ref_shape xs, const conv2d_ref_params *p,
                          double *dx) {
  for (int64_t i = 0; i < ref_count (xs); i++)
    dx[i] = 0;
  walk (dx, xs, (double *) w, ws, (double *) dy, p, DIR_DATA);
}

void conv2d_ref_bwd_weight (const double *dy, const double *x, ref_shape xs, ref_shape ws, const conv2d_ref_params *p,
                            double *dw) {
  for (int64_t i = 0; i < ref_count (ws); i++)
    dw[i] = 0;
  walk ((double *) x, xs, dw, ws, (double *) dy, p, DIR_WEIGHT);
}

void conv2d_ref_bwd_bias (const double *dy, ref_shape ys, double *db) {
  for (int32_t oc = 0; oc < ys.c; oc++) {
    double s = 0;
    for (int32_t n = 0; n < ys.n; n++)
      for (int64_t i = 0; i < (int64_t) ys.h * ys.w; i++)
        s += dy[ref_at (ys, n, oc, 0, 0) + i];
    db[oc] = s;
  }
}
