#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// dx = dmean / m + dvar * 2 (x - mean) / divisor, with x viewed as (groups, m) rows as in norm_stats.comp.
// x, dx (N,C,H,W); stats, dstats (groups, 2) = (mean, var) and (dmean, dvar).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer S { float stats[]; };
layout(std430, binding = 2) readonly buffer DS { float dstats[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint count; uint m; float inv_m; float two_over_divisor; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint g = i / p.m;
  dx[i] = dstats[2u * g] * p.inv_m + dstats[2u * g + 1u] * p.two_over_divisor * (x[i] - stats[2u * g]);
}
