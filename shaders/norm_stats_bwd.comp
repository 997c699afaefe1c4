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
layout(push_constant) uniform P { uint count; uint m; uint hw; uint c; float inv_m; float two_over_divisor; } p;
// Over planes (cel_exec_dispatch_planes): the row's statistics once per invocation, no division per element.
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= p.count / p.hw) return;
  uint g = p.m == p.hw ? plane : plane / p.c; // statistics per (n, c) or per n
  float a = dstats[2u * g] * p.inv_m, b = dstats[2u * g + 1u] * p.two_over_divisor, mean = stats[2u * g];
  uint base = plane * p.hw;
  for (uint j = CEL_PLANE_FIRST; j < p.hw; j += CEL_PLANE_STEP) dx[base + j] = a + b * (x[base + j] - mean);
}
