#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// dx = f'(.) * dy.  u is x for relu (0) and leaky relu (1, slope alpha), y = f(x) for tanh (2) and
// sigmoid (3); u, dy, dx (N,C,H,W). At x == 0 the slope is that of the negative side, as in PyTorch.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer U { float u[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint count; uint act; float alpha; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float v = u[i], g = dy[i];
  float r;
  if (p.act == 0u) r = v > 0.0 ? g : 0.0;
  else if (p.act == 1u) r = v > 0.0 ? g : p.alpha * g;
  else if (p.act == 2u) r = g * (1.0 - v * v);
  else r = g * v * (1.0 - v);
  dx[i] = r;
}
