#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y (N,C,h,w) = x[:, :, y0:y0+h, x0:x0+w]
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int y0; int x0; uint count; } p;
// Over planes (cel_exec_dispatch_planes): one division per element for the row, not unravelling the index.
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.yshape.x * p.yshape.y)) return;
  uint w = uint(p.yshape.w), hw = uint(p.yshape.z) * w, base = plane * hw;
  uint xbase = (plane * uint(p.xshape.z) + uint(p.y0)) * uint(p.xshape.w) + uint(p.x0);
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP)
    y[base + j] = x[xbase + (j / w) * uint(p.xshape.w) + j % w];
}
