#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dgamma[c] = sum over (n, h, w) of dy * (x - mean) / sqrt (var + eps).  x, dy (N,C,H,W); stats (N,G,1,2)
// with G = C (instance) or 1 (layer); dgamma (1,C,1,1). One workgroup per channel; with PARTS > 1, workgroup
// w sums part w % PARTS of channel w / PARTS's N*H*W products into the scratch after dgamma, at C + w, and
// fold_parts.comp folds the parts.
layout(constant_id = 0) const uint PARTS = 1u;
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer S { float stats[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DG { float dgamma[]; };
layout(push_constant) uniform P { uint n; uint c; uint hw; uint groups_per_sample; float eps; } p;
shared float partial[256];
void main() {
  uint w = cel_group_index(), ch = w / PARTS, part = w % PARTS;
  if (ch >= p.c) return;
  uint t = gl_LocalInvocationID.x;
  uint sg = p.groups_per_sample == 1u ? 0u : ch;
  uint total = p.n * p.hw, span = (total + PARTS - 1u) / PARTS, first = min(part * span, total);
  uint end = min(first + span, total);
  precise float s = 0.0, c = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = first + t; k0 < end; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      if (k < end) {
        uint nn = k / p.hw;
        uint i = (nn * p.c + ch) * p.hw + k % p.hw;
        uint g = nn * p.groups_per_sample + sg;
        CEL_KAHAN_ADD(s, c, dy[i] * (x[i] - stats[2u * g]) / sqrt(stats[2u * g + 1u] + p.eps));
      }
    }
  partial[t] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) partial[t] += partial[t + step];
    barrier();
  }
  if (t == 0u) {
    if (PARTS == 1u) dgamma[ch] = partial[0];
    else dgamma[p.c + w] = partial[0];
  }
}
