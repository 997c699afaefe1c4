// The body of norm_apply.comp and norm_apply_texel.comp (see the first): they declare the bindings (x, stats,
// gamma, beta at 0..3, y at 4) and the LOAD_ macros that read them.
layout(local_size_x = 256) in;
layout(push_constant) uniform P { uint count; uint m; uint hw; uint c; float eps; } p;
// An activation fused after the norm (cel_norm_apply_fuse_act): 0 none, 1 relu, 2 leaky relu of slope ALPHA,
// as activate.glsl computes them.
layout(constant_id = 2) const int ACT = 0;
layout(constant_id = 3) const float ALPHA = 0.0;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint g = i / p.m, c = (i / p.hw) % p.c;
  float v = (LOAD_X(i) - LOAD_S(2u * g)) / sqrt(LOAD_S(2u * g + 1u) + p.eps);
  if (HAS_GAMMA) v *= LOAD_G(c);
  if (HAS_BETA) v += LOAD_B(c);
  if (ACT == 1) v = max(v, 0.0);
  else if (ACT == 2) v = v > 0.0 ? v : ALPHA * v;
  y[i] = v;
}
