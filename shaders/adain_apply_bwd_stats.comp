#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// Gradient of adain_apply with respect to one of its stats inputs, per (n, c), from
// A = sum dy and B = sum dy (x - mean_x) over the plane, with r = 1 / sqrt (var_x + eps), s = sqrt (var_s + eps):
//   content (style == 0): dmean_x = -s r A,  dvar_x = -s r^3 B / 2
//   style   (style == 1): dmean_s = A,       dvar_s = r B / (2 s)
// x, dy (N,C,H,W); stats and the result (N,C,1,2). One workgroup per (n, c).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer CS { float cstats[]; };
layout(std430, binding = 2) readonly buffer SS { float sstats[]; };
layout(std430, binding = 3) readonly buffer DY { float dy[]; };
layout(std430, binding = 4) writeonly buffer D { float dstats[]; };
layout(push_constant) uniform P { uint groups; uint hw; float eps; uint style; } p;
shared float s_a[256];
shared float s_b[256];
void main() {
  uint g = cel_group_index();
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  uint base = g * p.hw;
  float mean = cstats[2u * g];
  precise float a = 0.0, b = 0.0, ca = 0.0, cb = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = t; k0 < p.hw; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      if (k < p.hw) {
        float d = dy[base + k];
        CEL_KAHAN_ADD(a, ca, d);
        CEL_KAHAN_ADD(b, cb, d * (x[base + k] - mean));
      }
    }
  s_a[t] = a;
  s_b[t] = b;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) {
      s_a[t] += s_a[t + step];
      s_b[t] += s_b[t + step];
    }
    barrier();
  }
  if (t == 0u) {
    float r = 1.0 / sqrt(cstats[2u * g + 1u] + p.eps);
    float s = sqrt(sstats[2u * g + 1u] + p.eps);
    if (p.style == 0u) {
      dstats[2u * g] = -s * r * s_a[0];
      dstats[2u * g + 1u] = -0.5 * s * r * r * r * s_b[0];
    } else {
      dstats[2u * g] = s_a[0];
      dstats[2u * g + 1u] = 0.5 * r * s_b[0] / s;
    }
  }
}
