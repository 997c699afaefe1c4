#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// Gradient of norm_apply with respect to its stats, per row of m elements (groups, 2):
//   dmean = -r * sum (dy gamma),  dvar = -r^3 / 2 * sum (dy gamma (x - mean)),  r = 1 / sqrt (var + eps).
// x, dy (N,C,H,W) viewed as (groups, m) rows; stats (groups, 2); gamma (1,C,1,1), read only when HAS_GAMMA
// (a placeholder is bound otherwise). One workgroup per row, reducing both sums in shared memory; with
// PARTS > 1, workgroup w sums part w % PARTS of row w / PARTS and writes its two sums to the scratch after
// dstats, at 2 * groups + 2 * w, for norm_apply_bwd_stats_combine.comp.
layout(constant_id = 0) const bool HAS_GAMMA = false;
layout(constant_id = 1) const uint PARTS = 1u;
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer S { float stats[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) readonly buffer DY { float dy[]; };
layout(std430, binding = 4) writeonly buffer DS { float dstats[]; };
layout(push_constant) uniform P { uint groups; uint m; uint hw; uint c; float eps; } p;
shared float s_dy[256];
shared float s_dyx[256];
void main() {
  uint w = cel_group_index(), g = w / PARTS, part = w % PARTS;
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  uint span = (p.m + PARTS - 1u) / PARTS, first = min(part * span, p.m), len = min(span, p.m - first);
  uint base = g * p.m + first;
  float mean = stats[2u * g];
  precise float a = 0.0, b = 0.0, ca = 0.0, cb = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = t; k0 < len; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      if (k < len) {
        uint i = base + k;
        float d = dy[i];
        if (HAS_GAMMA) d *= gamma[(i / p.hw) % p.c];
        CEL_KAHAN_ADD(a, ca, d);
        CEL_KAHAN_ADD(b, cb, d * (x[i] - mean));
      }
    }
  s_dy[t] = a;
  s_dyx[t] = b;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) {
      s_dy[t] += s_dy[t + step];
      s_dyx[t] += s_dyx[t + step];
    }
    barrier();
  }
  if (t == 0u) {
    if (PARTS == 1u) {
      float r = 1.0 / sqrt(stats[2u * g + 1u] + p.eps);
      dstats[2u * g] = -(s_dy[0] * r);
      dstats[2u * g + 1u] = -0.5 * r * r * r * s_dyx[0];
    } else {
      dstats[2u * p.groups + 2u * w] = s_dy[0];
      dstats[2u * p.groups + 2u * w + 1u] = s_dyx[0];
    }
  }
}
