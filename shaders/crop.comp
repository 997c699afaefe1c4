#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y (N,C,h,w) = x[:, :, y0:y0+h, x0:x0+w]
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int y0; int x0; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 o = cel_unravel(p.yshape, i);
  y[i] = x[cel_offset(p.xshape, o.x, o.y, o.z + p.y0, o.w + p.x0)];
}
