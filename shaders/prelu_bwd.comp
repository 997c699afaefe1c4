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
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float v = x[i], g = dy[i];
  if (p.mode == 1) {
    float a = slope[p.per_channel != 0 ? cel_unravel(p.xshape, i).y : 0];
    dx[i] = v > 0.0 ? g : a * g;
  } else {
    dx[i] = v > 0.0 ? 0.0 : v * g;
  }
}
