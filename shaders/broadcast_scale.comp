#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = scale * x broadcast to yshape (x each dim equal or 1).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 yshape; ivec4 xshape; uint count; float scale; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  y[i] = p.scale * x[cel_broadcast_offset(p.xshape, cel_unravel(p.yshape, i))];
}
