#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = w / sigma, with sigma at s[sigma_at] (the spectral norm state after the power iteration).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer W { float w[]; };
layout(std430, binding = 1) readonly buffer S { float s[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; uint sigma_at; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  y[i] = w[i] / s[p.sigma_at];
}
