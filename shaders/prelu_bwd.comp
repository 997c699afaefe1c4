#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// PReLU backward, per element of x (N,C,H,W). mode 1: dx = x > 0 ? dy : slope[c] * dy; mode 2: the
// slope's per-element gradient x > 0 ? 0 : x * dy (summed to the slope's shape by sum_to). At x == 0 the
// negative side, as PyTorch.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer A { float slope[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { ivec4 xshape; int per_channel; int mode; uint count; } p;
// Over planes (cel_exec_dispatch_planes): the slope once per invocation, no unravelling per element.
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.xshape.x * p.xshape.y)) return;
  float a = slope[p.per_channel != 0 ? plane % uint(p.xshape.y) : 0u];
  uint hw = uint(p.xshape.z * p.xshape.w), base = plane * hw;
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP) {
    uint i = base + j;
    float v = x[i], g = dy[i];
    dx[i] = p.mode == 1 ? (v > 0.0 ? g : a * g) : (v > 0.0 ? 0.0 : v * g);
  }
}
