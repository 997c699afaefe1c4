#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Gradient of w / sigma with u, v constant (sigma = u^T W v, so dsigma/dW = u v^T):
//   dw = dy / sigma - (<dy, w> / sigma^2) u v^T
// dy, dw (OC, K); s (OC+K+1) holds u, v, sigma of the forward; dots (256) the partials of <dy, w>, which
// every workgroup adds up first (second stage of the reduction).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer S { float s[]; };
layout(std430, binding = 2) readonly buffer D { float dots[]; };
layout(std430, binding = 3) writeonly buffer DW { float dw[]; };
layout(push_constant) uniform P { uint count; uint oc; uint k; } p;
shared float partial[256];
void main() {
  uint t = gl_LocalInvocationID.x;
  partial[t] = dots[t];
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) partial[t] += partial[t + step];
    barrier();
  }
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float sigma = s[p.oc + p.k];
  dw[i] = dy[i] / sigma - partial[0] / (sigma * sigma) * s[i / p.k] * s[p.oc + i % p.k];
}
