#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = x > 0 ? x : slope[c] * x.  x, y (N,C,H,W); slope (C) or one value (per_channel 0).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer A { float slope[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; int per_channel; int mode; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float v = x[i];
  float a = slope[p.per_channel != 0 ? cel_unravel(p.xshape, i).y : 0];
  y[i] = v > 0.0 ? v : a * v;
}
