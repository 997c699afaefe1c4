#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Second pass of a split norm_apply_bwd_stats (PARTS > 1): one workgroup per row adds the row's PARTS pairs
// of sums (sum dy gamma, sum dy gamma (x - mean)) from the scratch after dstats (at 2 * groups + 2 * (row *
// PARTS + part)) and writes dmean = -r * sum (dy gamma), dvar = -r^3 / 2 * sum (dy gamma (x - mean)).
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint PARTS = 2u;
layout(std430, binding = 0) readonly buffer S { float stats[]; };
layout(std430, binding = 1) buffer DS { float dstats[]; };
layout(push_constant) uniform P { uint groups; uint m; uint hw; uint c; float eps; } p;
shared float s_dy[256];
shared float s_dyx[256];
void main() {
  uint g = cel_group_index();
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  precise float a = 0.0, b = 0.0, ca = 0.0, cb = 0.0;
  for (uint part = t; part < PARTS; part += 256u) {
    uint o = 2u * p.groups + 2u * (g * PARTS + part);
    CEL_KAHAN_ADD(a, ca, dstats[o]);
    CEL_KAHAN_ADD(b, cb, dstats[o + 1u]);
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
    float r = 1.0 / sqrt(stats[2u * g + 1u] + p.eps);
    dstats[2u * g] = -(s_dy[0] * r);
    dstats[2u * g + 1u] = -0.5 * r * r * r * s_dyx[0];
  }
}
