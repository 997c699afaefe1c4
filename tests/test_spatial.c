/* pad (zero, reflect; asymmetric, per side) and crop: forward, backward, finite differences, errors. */
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
  return cel_pad (g, in[0], c->t, c->b, c->l, c->r, c->reflect ? CEL_PAD_REFLECT : CEL_PAD_ZERO, out);
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

int main (void) {
  oc_context ();
  for (int i = 0; i < 24; i++) {
    sp_case c = { .x = { oc_rand_int (1, 2), oc_rand_int (1, 4), oc_rand_int (1, 12), oc_rand_int (1, 12) } };
    c.reflect = i % 2;
    int32_t mh = c.reflect ? c.x.h - 1 : 4, mw = c.reflect ? c.x.w - 1 : 4;
    c.t = oc_rand_int (0, mh); c.b = oc_rand_int (0, mh); c.l = oc_rand_int (0, mw); c.r = oc_rand_int (0, mw);
    if (i == 0) { c.x = (cel_shape) { 1, 2, 7, 9 }; c.t = 6; c.b = 6; c.l = 8; c.r = 8; c.reflect = 0; }
    if (i == 1) { c.x = (cel_shape) { 1, 2, 7, 9 }; c.t = 6; c.b = 6; c.l = 8; c.r = 8; }
    char name[96];
    snprintf (name, sizeof name, "/pad/%s/%d_%d_%d_%d_on_%dx%d", c.reflect ? "reflect" : "zero", c.t, c.b, c.l, c.r, c.x.h, c.x.w);
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
  cel_graph_destroy (g);
  return tap_finish ();
}
