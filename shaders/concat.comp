#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Concatenation on channels: y (N,C1+C2,H,W) = a (N,C1,H,W) then b (N,C2,H,W); ca = C1.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 yshape; int ca; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 idx = cel_unravel(p.yshape, i);
  if (idx.y < p.ca)
    y[i] = a[cel_offset(ivec4(p.yshape.x, p.ca, p.yshape.zw), idx.x, idx.y, idx.z, idx.w)];
  else
    y[i] = b[cel_offset(ivec4(p.yshape.x, p.yshape.y - p.ca, p.yshape.zw), idx.x, idx.y - p.ca, idx.z, idx.w)];
}
