#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = x > 0 ? x : slope[c] * x.  x, y (N,C,H,W); slope (C) or one value (per_channel 0).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer A { float slope[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; int per_channel; int mode; uint count; } p;
// Over planes (cel_exec_dispatch_planes): the slope once per invocation, no unravelling per element.
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.xshape.x * p.xshape.y)) return;
  float a = slope[p.per_channel != 0 ? plane % uint(p.xshape.y) : 0u];
  uint hw = uint(p.xshape.z * p.xshape.w), base = plane * hw;
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP) {
    float v = x[base + j];
    y[base + j] = v > 0.0 ? v : a * v;
  }
}
