// The body of norm_apply.comp and norm_apply_texel.comp (see the first): they declare the bindings (x, stats,
// gamma, beta at 0..3, y at 4) and the LOAD_ macros that read them.
// Over planes (cel_exec_dispatch_planes): an invocation divides nothing per element (llvmpipe has no vector integer
// division: it ran one per lane) and computes the plane's scale and shift once.
layout(local_size_x = 256) in;
layout(push_constant) uniform P { uint count; uint m; uint hw; uint c; float eps; } p;
// An activation fused after the norm (cel_norm_apply_fuse_act): 0 none, 1 relu, 2 leaky relu of slope ALPHA,
// as activate.glsl computes them.
layout(constant_id = 2) const int ACT = 0;
layout(constant_id = 3) const float ALPHA = 0.0;
#include "fused_act.glsl"
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= p.count / p.hw) return;
  uint c = plane % p.c, n = plane / p.c;
  uint g = p.m == p.hw ? plane : n; // statistics per (n, c) or per n
  float mean = LOAD_S(2u * g), scale = 1.0 / sqrt(LOAD_S(2u * g + 1u) + p.eps);
  if (HAS_GAMMA) scale *= LOAD_G(c);
  float shift = HAS_BETA ? LOAD_B(c) : 0.0;
  uint base = plane * p.hw;
  for (uint j = CEL_PLANE_FIRST; j < p.hw; j += CEL_PLANE_STEP) {
    y[base + j] = act1((LOAD_X(base + j) - mean) * scale + shift);
  }
}
