#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Statistics of a norm. x is viewed as `groups` contiguous rows of m elements (a row is one (n, c) plane for
// instance norm, one sample for layer norm); stats (groups, 2) = (mean, M2 / divisor).
// One workgroup per row: each thread runs Welford over its strided slice, then Chan's pairwise combine in
// shared memory, so no sum of squares about zero is ever formed (inputs with a large mean stay exact).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer S { float stats[]; };
layout(push_constant) uniform P { uint groups; uint m; float divisor; } p;
shared uint s_n[256];
shared float s_mean[256];
shared float s_m2[256];
void main() {
  uint g = cel_group_index();
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  uint base = g * p.m;
  uint n = 0u;
  float mean = 0.0, m2 = 0.0;
  for (uint k = t; k < p.m; k += 256u) {
    float v = x[base + k];
    n += 1u;
    float d = v - mean;
    mean += d / float(n);
    m2 += d * (v - mean);
  }
  s_n[t] = n;
  s_mean[t] = mean;
  s_m2[t] = m2;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step && s_n[t + step] > 0u) {
      float na = float(s_n[t]), nb = float(s_n[t + step]), nab = na + nb;
      float delta = s_mean[t + step] - s_mean[t];
      s_mean[t] += delta * (nb / nab);
      s_m2[t] += s_m2[t + step] + delta * delta * (na * (nb / nab));
      s_n[t] += s_n[t + step];
    }
    barrier();
  }
  if (t == 0u) {
    stats[2u * g] = s_mean[0];
    stats[2u * g + 1u] = s_m2[0] / p.divisor;
  }
}
