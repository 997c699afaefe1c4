/* pad (zero, reflect, replicate; asymmetric, per side), crop and pixel shuffle: forward, backward, finite differences, errors. */
#include "opcheck.h"
#include "spatial_ref.h"

#include <stdio.h>
#include <string.h>

typedef struct { cel_shape x; int32_t t, b, l, r; int reflect; int32_t y0, x0, h, w; } sp_case;

static ref_shape rs (cel_shape s) {
  return (ref_shape) { s.n, s.c, s.h, s.w };
}

static cel_status build_pad (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const sp_case *c = ud;
  return cel_pad (g, in[0], c->t, c->b, c->l, c->r, (cel_padding_mode) c->reflect, out);
}
static void ref_pad (const double *const *in, double *out, const void *ud) {
  const sp_case *c = ud;
  pad_ref_fwd (in[0], rs (c->x), c->t, c->b, c->l, c->r, c->reflect, out);
}
static void ref_pad_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const sp_case *c = ud;
  pad_ref_bwd (dy, rs (c->x), c->t, c->b, c->l, c->r, c->reflect, din[0]);
}
static cel_status build_crop (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const sp_case *c = ud;
  return cel_crop (g, in[0], c->y0, c->x0, c->h, c->w, out);
}
static void ref_crop (const double *const *in, double *out, const void *ud) {
  const sp_case *c = ud;
  crop_ref_fwd (in[0], rs (c->x), c->y0, c->x0, c->h, c->w, out);
}
static void ref_crop_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const sp_case *c = ud;
  crop_ref_bwd (dy, rs (c->x), c->y0, c->x0, c->h, c->w, din[0]);
}

typedef struct { cel_shape x; int32_t r; int inverse; } shuffle_case;

static cel_status build_shuffle (cel_graph *g, const cel_node *in, cel_node *out, const void *ud) {
  const shuffle_case *c = ud;
  return cel_pixel_shuffle (g, in[0], c->r, c->inverse, out);
}
static void ref_shuffle (const double *const *in, double *out, const void *ud) {
  const shuffle_case *c = ud;
  pixel_shuffle_ref_fwd (in[0], rs (c->x), c->r, c->inverse, out);
}
/* the gradient of a shuffle is the inverse shuffle of dy */
static void ref_shuffle_bwd (const double *const *in, const double *dy, double *const *din, const void *ud) {
  (void) in;
  const shuffle_case *c = ud;
  int32_t r = c->r;
  ref_shape ys = c->inverse ? (ref_shape) { c->x.n, c->x.c * r * r, c->x.h / r, c->x.w / r }
                            : (ref_shape) { c->x.n, c->x.c / (r * r), c->x.h * r, c->x.w * r };
  pixel_shuffle_ref_fwd (dy, ys, r, !c->inverse, din[0]);
}

static void check_shuffle (int32_t n, int32_t c, int32_t h, int32_t w, int32_t r, int inverse) {
  shuffle_case k = { inverse ? (cel_shape) { n, c, h * r, w * r } : (cel_shape) { n, c * r * r, h, w }, r, inverse };
  cel_shape ys = inverse ? (cel_shape) { n, c * r * r, h, w } : (cel_shape) { n, c, h * r, w * r };
  char name[96];
  snprintf (name, sizeof name, "/pixel_shuffle/%s/r%d_%dx%dx%d", inverse ? "inverse" : "forward", r, c, h, w);
  oc_spec s = { .name = name, .n_in = 1, .in_shape = { k.x }, .in_grad = { true }, .out_shape = ys, .build = build_shuffle,
                .fwd = ref_shuffle, .bwd = ref_shuffle_bwd, .ud = &k };
  oc_check (&s);
}

int main (void) {
  oc_context ();
  for (int i = 0; i < 36; i++) {
    sp_case c = { .x = { oc_rand_int (1, 2), oc_rand_int (1, 4), oc_rand_int (1, 12), oc_rand_int (1, 12) } };
    c.reflect = i % 3;
    int32_t mh = c.reflect == 1 ? c.x.h - 1 : 4, mw = c.reflect == 1 ? c.x.w - 1 : 4;
    c.t = oc_rand_int (0, mh); c.b = oc_rand_int (0, mh); c.l = oc_rand_int (0, mw); c.r = oc_rand_int (0, mw);
    if (i == 0) { c.x = (cel_shape) { 1, 2, 7, 9 }; c.t = 6; c.b = 6; c.l = 8; c.r = 8; c.reflect = 0; }
    if (i == 1) { c.x = (cel_shape) { 1, 2, 7, 9 }; c.t = 6; c.b = 6; c.l = 8; c.r = 8; }
    if (i == 2) { c.x = (cel_shape) { 1, 2, 1, 1 }; c.t = 3; c.b = 2; c.l = 1; c.r = 4; }
    /* reflect wider than one workgroup of pad_fold.comp's columns (64), with bands of every size */
    if (i == 3) { c.x = (cel_shape) { 2, 3, 5, 131 }; c.t = 4; c.b = 1; c.l = 2; c.r = 3; c.reflect = 1; }
    char name[96];
    snprintf (name, sizeof name, "/pad/%s/%d_%d_%d_%d_on_%dx%d", c.reflect == 2 ? "replicate" : c.reflect ? "reflect" : "zero", c.t, c.b, c.l, c.r, c.x.h, c.x.w);
    cel_shape ys = { c.x.n, c.x.c, c.x.h + c.t + c.b, c.x.w + c.l + c.r };
    oc_spec s = { .name = name, .n_in = 1, .in_shape = { c.x }, .in_grad = { true }, .out_shape = ys, .build = build_pad,
                  .fwd = ref_pad, .bwd = ref_pad_bwd, .ud = &c };
    oc_check (&s);
  }
  for (int i = 0; i < 12; i++) {
    sp_case c = { .x = { oc_rand_int (1, 2), oc_rand_int (1, 4), oc_rand_int (1, 14), oc_rand_int (1, 14) } };
    c.h = oc_rand_int (1, c.x.h); c.w = oc_rand_int (1, c.x.w);
    c.y0 = oc_rand_int (0, c.x.h - c.h); c.x0 = oc_rand_int (0, c.x.w - c.w);
    char name[96];
    snprintf (name, sizeof name, "/crop/%dx%d_at_%d_%d_of_%dx%d", c.h, c.w, c.y0, c.x0, c.x.h, c.x.w);
    cel_shape ys = { c.x.n, c.x.c, c.h, c.w };
    oc_spec s = { .name = name, .n_in = 1, .in_shape = { c.x }, .in_grad = { true }, .out_shape = ys, .build = build_crop,
                  .fwd = ref_crop, .bwd = ref_crop_bwd, .ud = &c };
    oc_check (&s);
  }
  for (int i = 0; i < 8; i++)
    check_shuffle (oc_rand_int (1, 2), oc_rand_int (1, 3), oc_rand_int (1, 7), oc_rand_int (1, 7), oc_rand_int (1, 4), i % 2);
  check_shuffle (1, 3, 31, 17, 4, 0);
  cel_graph *g = NULL;
  cel_node x, y;
  cel_graph_create (oc_context (), &g);
  cel_graph_input (g, "x", (cel_shape) { 1, 1, 4, 4 }, &x);
  tap_ok (cel_pad (g, x, 4, 0, 0, 0, CEL_PAD_REFLECT, &y) == CEL_ERROR_INVALID_ARGUMENT &&
          strstr (cel_context_last_error (oc_context ()), "pad"), "/pad/errors/reflect_as_large_as_input");
  tap_ok (cel_pad (g, x, -1, 0, 0, 0, CEL_PAD_ZERO, &y) == CEL_ERROR_INVALID_ARGUMENT, "/pad/errors/negative");
  tap_ok (cel_crop (g, x, 2, 0, 3, 4, &y) == CEL_ERROR_INVALID_ARGUMENT && strstr (cel_context_last_error (oc_context ()), "crop"),
          "/crop/errors/window_outside");
  tap_ok (cel_crop (g, x, 0, 0, 0, 4, &y) == CEL_ERROR_INVALID_ARGUMENT, "/crop/errors/empty_window");
  tap_ok (cel_pixel_shuffle (g, x, 2, false, &y) == CEL_ERROR_INVALID_ARGUMENT &&
          strstr (cel_context_last_error (oc_context ()), "pixel_shuffle"), "/pixel_shuffle/errors/channels_not_multiple");
  tap_ok (cel_pixel_shuffle (g, x, 3, true, &y) == CEL_ERROR_INVALID_ARGUMENT, "/pixel_shuffle/errors/size_not_multiple");
  tap_ok (cel_pixel_shuffle (g, x, 0, false, &y) == CEL_ERROR_INVALID_ARGUMENT, "/pixel_shuffle/errors/zero_factor");
  cel_graph_destroy (g);
  return tap_finish ();
}
