#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The weights of the Gram matrix's gradient: s[n] = scale * (dy[n] + dy[n]^T), per sample. dy (N,1,C,C),
// s (N*C,C,1,1), the same N*C*C floats in the same order: one invocation each.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) writeonly buffer S { float s[]; };
layout(push_constant) uniform P { uint count; uint c; float scale; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  uint cc = p.c * p.c, n = i / cc, r = i % cc, a = r / p.c, b = r % p.c;
  s[i] = p.scale * (dy[i] + dy[n * cc + b * p.c + a]);
}
