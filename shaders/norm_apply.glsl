// The body of norm_apply.comp and norm_apply_texel.comp (see the first): they declare the bindings (x, stats,
// gamma, beta at 0..3, y at 4) and the LOAD_ macros that read them.
layout(local_size_x = 256) in;
layout(push_constant) uniform P { uint count; uint m; uint hw; uint c; float eps; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint g = i / p.m, c = (i / p.hw) % p.c;
  float v = (LOAD_X(i) - LOAD_S(2u * g)) / sqrt(LOAD_S(2u * g + 1u) + p.eps);
  if (HAS_GAMMA) v *= LOAD_G(c);
  if (HAS_BETA) v += LOAD_B(c);
  y[i] = v;
}
