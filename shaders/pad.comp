#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y (N,C,H+t+b,W+l+r) = x padded. mode 0: zeros; 1: reflect (PyTorch: the edge is not repeated);
// 2: replicate (the edge repeated).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int top; int left; int mode; uint count; } p;

int reflect_index(int i, int n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * n - 2 - i;
  return i;
}

// Over planes (cel_exec_dispatch_planes): no unravelling of the index per element.
void pad_one(uint plane, uint j) {
  uint ow = uint(p.yshape.w), i = plane * uint(p.yshape.z) * ow + j;
  ivec4 o = ivec4(int(plane / uint(p.yshape.y)), int(plane % uint(p.yshape.y)), int(j / ow), int(j % ow));
  int h = o.z - p.top, w = o.w - p.left;
  bool inside = h >= 0 && h < p.xshape.z && w >= 0 && w < p.xshape.w;
  if (p.mode == 0 && !inside) { y[i] = 0.0; return; }
  if (p.mode == 2) {
    h = clamp(h, 0, p.xshape.z - 1);
    w = clamp(w, 0, p.xshape.w - 1);
  } else {
    h = reflect_index(h, p.xshape.z);
    w = reflect_index(w, p.xshape.w);
  }
  y[i] = x[cel_offset(p.xshape, o.x, o.y, h, w)];
}

void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.yshape.x * p.yshape.y)) return;
  uint hw = uint(p.yshape.z * p.yshape.w);
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP) pad_one(plane, j);
}
