#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = scale * x + shift
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; float scale; float shift; } p;
void main() {
  uint i = cel_linear_index();
  if (i < p.count) y[i] = p.scale * x[i] + p.shift;
}
