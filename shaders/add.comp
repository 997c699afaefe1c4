#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = alpha * a + beta * b, b broadcast to a's shape.  a, y (N,C,H,W); b each dim equal or 1.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 shape; ivec4 bshape; uint count; float alpha; float beta; } p;
// b of a's shape: b[i] without unravelling i (three integer divisions per element, which llvmpipe runs lane by lane)
layout(constant_id = 0) const bool SAME = false;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint j = SAME ? i : cel_broadcast_offset(p.bshape, cel_unravel(p.shape, i));
  y[i] = p.alpha * a[i] + p.beta * b[j];
}
