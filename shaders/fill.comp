#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y[i] = value
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; float value; } p;
void main() {
  uint i = cel_linear_index();
  if (i < p.count) y[i] = p.value;
}
