#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Second pass of a split norm_stats (norm_stats.glsl with PARTS > 1): one workgroup per row folds the row's
// PARTS (count, mean, M2) triples from the scratch after the stats (at 2 * groups + 3 * (row * PARTS + part))
// by Chan's pairwise combine and writes stats (groups, 2) = (mean, M2 / divisor).
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint PARTS = 2u;
layout(std430, binding = 0) buffer S { float stats[]; };
layout(push_constant) uniform P { uint groups; uint m; float divisor; } p;
shared uint s_n[256];
shared float s_mean[256];
shared float s_m2[256];
void main() {
  uint g = cel_group_index();
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  uint n = 0u;
  float mean = 0.0, m2 = 0.0;
  for (uint part = t; part < PARTS; part += 256u) {
    uint o = 2u * p.groups + 3u * (g * PARTS + part);
    uint nb = floatBitsToUint(stats[o]);
    if (nb == 0u) continue;
    float na = float(n), nab = na + float(nb);
    float delta = stats[o + 1u] - mean;
    mean += delta * (float(nb) / nab);
    m2 += stats[o + 2u] + delta * delta * (na * (float(nb) / nab));
    n += nb;
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
