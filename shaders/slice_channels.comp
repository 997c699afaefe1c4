#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Channel window: y[n,c,h,w] = x[n,c+shift,h,w] where 0 <= c+shift < C_x, else 0.  x (N,Cx,H,W), y (N,Cy,H,W).
// A slice of channels [c0, c0+Cy) is shift = c0; its backward (placement at c0, zeros around) is shift = -c0.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int shift; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 idx = cel_unravel(p.yshape, i);
  int c = idx.y + p.shift;
  y[i] = c >= 0 && c < p.xshape.y ? x[cel_offset(p.xshape, idx.x, c, idx.z, idx.w)] : 0.0;
}
