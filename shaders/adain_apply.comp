#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = (x - mean_x) / sqrt (var_x + eps) * sqrt (var_s + eps) + mean_s per (n, c).
// x, y (N,C,H,W); content and style stats (N,C,1,2) = (mean, var).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer CS { float cstats[]; };
layout(std430, binding = 2) readonly buffer SS { float sstats[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; uint hw; float eps; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint g = i / p.hw;
  float scale = sqrt(sstats[2u * g + 1u] + p.eps) / sqrt(cstats[2u * g + 1u] + p.eps);
  y[i] = (x[i] - cstats[2u * g]) * scale + sstats[2u * g];
}
