#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = a * b, b broadcast to a's shape.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 shape; ivec4 bshape; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  y[i] = a[i] * b[cel_broadcast_offset(p.bshape, cel_unravel(p.shape, i))];
}
