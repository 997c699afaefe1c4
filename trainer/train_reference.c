/* The losses of celgan train --reference-guided (docs/training.md): a reference-gan generator G (image,
 * reference) with style encoder E (the style code), judged by spectral-norm PatchGANs at several scales.
 * With x the photos, r the references (style images) and y = G (x, r):
 *   adversarial (LSGAN)    D_k: (D_k (r) - 1)^2 + D_k (y)^2;  G: (D_k (y) - 1)^2, summed over the scales k
 *   content                the random-feature (or VGG) L1 between x and y, as for the style-generator
 *   style reconstruction   |E (y) - E (r)|, the reference's code a constant (the output carries its style)
 *   self-reconstruction    |G (r, r) - r|   (a reference used as its own input comes back unchanged)
 *   cycle                  |G (y, x) - x|   (the photo's own style brings the photo back)
 *   feature matching       |mean D_k features (r) - mean D_k features (y)| per hidden layer, as for the
 *                          style-generator
 * The warm-up trains G on content and self-reconstruction. */
#include "train_build.h"

/* x at discriminator scale k: k = 0 the image, else bilinearly halved k times (2x2 means of even sizes). */
static cel_node at_scale (bld *b, const train_setup *s, cel_node x, int32_t k) {
  cel_node out = CEL_NO_NODE;
  if (k == 0)
    return x;
  int32_t size = s->crop >> k;
  return TRY (b, "resize", cel_resize (b->g, x, size, size, CEL_RESIZE_BILINEAR, &out));
}

/* G (image, reference), sharing the parameters of the first build. */
static cel_node generate (bld *b, const train_setup *s, cel_node image, cel_node reference) {
  cel_node out = CEL_NO_NODE;
  return TRY (b, "generator", cel_model_build (s->model, b->g, image, reference, &out));
}

cel_node train_reference_losses (bld *b, const train_setup *s, bool gan, const disc *d, int32_t n_scales, cel_node content,
                                 cel_node ref_code) {
  train_graph *tg = b->tg;
  cel_node photo = tg->photo, ref = tg->style, fake = tg->fake;
  const train_weights *w = &s->w;
  cel_node self_rec = bld_mae (b, generate (b, s, ref, ref), ref);
  tg->loss[LOSS_SELF_REC] = self_rec;
  if (!gan) {
    cel_node terms[2] = { content, self_rec };
    float weights[2] = { w->warmup_content, w->self_rec };
    return tg->loss[LOSS_G] = bld_weighted_sum (b, terms, weights, 2);
  }
  /* discriminators: real references against stopped outputs; G's term through the stopped weights */
  cel_node fake_stopped = bld_stop (b, fake), d_real = CEL_NO_NODE, d_fake = CEL_NO_NODE, g_adv = CEL_NO_NODE, fm = CEL_NO_NODE;
  bool want_fm = w->fm > 0;
  /* at function scope: declared in the loop body, gcc 14 (-O2, Debian 13) gave real_feat[0]'s slot to an inlined
   * at_scale's result at scale 1, so feature matching compared D's features with an image */
  cel_node real_feat[MAX_D_LAYERS] = { 0 }, fake_feat[MAX_D_LAYERS] = { 0 };
  for (int32_t k = 0; k < n_scales; k++) {
    cel_node r = bld_mse_to (b, bld_discriminate (b, &d[k], at_scale (b, s, ref, k), false, want_fm ? real_feat : NULL), 1);
    cel_node q = bld_mse_to (b, bld_discriminate (b, &d[k], at_scale (b, s, fake_stopped, k), false, NULL), 0);
    cel_node a = bld_mse_to (b, bld_discriminate (b, &d[k], at_scale (b, s, fake, k), true, want_fm ? fake_feat : NULL), 1);
    d_real = k == 0 ? r : bld_add (b, d_real, r, 1, 1);
    d_fake = k == 0 ? q : bld_add (b, d_fake, q, 1, 1);
    g_adv = k == 0 ? a : bld_add (b, g_adv, a, 1, 1);
    for (int32_t l = 0; want_fm && l < d[k].n - 1; l++) {
      cel_node t = bld_mae (b, bld_channel_means (b, bld_stop (b, real_feat[l])), bld_channel_means (b, fake_feat[l]));
      fm = fm == CEL_NO_NODE ? t : bld_add (b, fm, t, 1, 1);
    }
  }
  tg->loss[LOSS_D_REAL] = d_real;
  tg->loss[LOSS_D_FAKE] = d_fake;
  cel_node dl[2] = { d_real, d_fake };
  float dw[2] = { w->adv_d * w->d_real, w->adv_d * w->d_fake };
  tg->loss[LOSS_D] = bld_weighted_sum (b, dl, dw, 2);
  tg->loss[LOSS_G_ADV] = g_adv;
  tg->loss[LOSS_FM] = fm;

  /* style reconstruction: the output's style code against the reference's (a constant here) */
  static const char *const code_name = "style.code";
  cel_node fake_code = CEL_NO_NODE;
  if (!b->st && (b->st = cel_model_build_nodes (s->model, b->g, CEL_NO_NODE, fake, 1, &code_name, &fake_code)))
    b->what = "style encoder";
  tg->loss[LOSS_STYLE_REC] = bld_mae (b, fake_code, bld_stop (b, ref_code));
  /* cycle: the output restyled with the photo as the reference */
  tg->loss[LOSS_CYCLE] = bld_mae (b, generate (b, s, fake, photo), photo);

  cel_node gl[6] = { g_adv, content, tg->loss[LOSS_STYLE_REC], self_rec, tg->loss[LOSS_CYCLE], fm };
  float gw[6] = { w->adv_g, w->content, w->style_rec, w->self_rec, w->cycle, w->fm };
  tg->loss[LOSS_G] = bld_weighted_sum (b, gl, gw, want_fm ? 6 : 5);
  return bld_add (b, tg->loss[LOSS_G], tg->loss[LOSS_D], 1, 1);
}
