#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The direct part of adain_apply's content gradient (stats held fixed):
// dx = dy * sqrt (var_s + eps) / sqrt (var_x + eps).  dy, dx (N,C,H,W); stats (N,C,1,2).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer CS { float cstats[]; };
layout(std430, binding = 2) readonly buffer SS { float sstats[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint count; uint hw; float eps; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint g = i / p.hw;
  dx[i] = dy[i] * (sqrt(sstats[2u * g + 1u] + p.eps) / sqrt(cstats[2u * g + 1u] + p.eps));
}
