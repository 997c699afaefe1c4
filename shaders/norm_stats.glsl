// The body of norm_stats.comp and norm_stats_texel.comp (see the first): they declare the bindings (x at 0,
// stats at 1) and the LOAD_X macro that reads x.
layout(local_size_x = 256) in;
layout(push_constant) uniform P { uint groups; uint m; float divisor; } p;
// Workgroups per row: with PARTS > 1 workgroup w takes part w % PARTS of row w / PARTS (rows of one sample
// for layer norm would leave a GPU nearly idle) and writes its (count, mean, M2) to the scratch after the
// stats, at 2 * groups + 3 * w (the count as uint bits); norm_stats_combine.comp folds them.
layout(constant_id = 0) const uint PARTS = 1u;
const uint CHUNK = 64u;
shared uint s_n[256];
shared float s_mean[256];
shared float s_m2[256];
void main() {
  uint w = cel_group_index(), g = w / PARTS, part = w % PARTS;
  if (g >= p.groups) return;
  uint t = gl_LocalInvocationID.x;
  uint span = (p.m + PARTS - 1u) / PARTS, first = min(part * span, p.m), len = min(span, p.m - first);
  uint base = g * p.m + first;
  uint n = 0u;
  float mean = 0.0, m2 = 0.0;
  // Chunks of CHUNK strides (one loop trip each: llvmpipe's cap on loop trips, common.glsl): Welford within the
  // chunk, then Chan's combine into the thread's running statistics. The running mean takes one rounding per
  // chunk instead of one per element: the mean of a 4608x4608 ramp was 3e-4 off with one per element, 2e-5
  // with chunks of 16, under 1e-5 with 64.
  for (uint k0 = t; k0 < len; k0 += CHUNK * 256u) {
    uint cn = 0u;
    float cmean = 0.0, cm2 = 0.0;
    [[unroll]] for (uint u = 0u; u < CHUNK; u++) {
      uint k = k0 + u * 256u;
      if (k < len) {
        float v = LOAD_X(base + k);
        cn += 1u;
        float d = v - cmean;
        cmean += d / float(cn);
        cm2 += d * (v - cmean);
      }
    }
    float na = float(n), nb = float(cn), nab = na + nb;
    float delta = cmean - mean;
    mean += delta * (nb / nab);
    m2 += cm2 + delta * delta * (na * (nb / nab));
    n += cn;
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
    if (PARTS == 1u) {
      stats[2u * g] = s_mean[0];
      stats[2u * g + 1u] = s_m2[0] / p.divisor;
    } else {
      uint o = 2u * p.groups + 3u * w;
      stats[o] = uintBitsToFloat(s_n[0]);
      stats[o + 1u] = s_mean[0];
      stats[o + 2u] = s_m2[0];
    }
  }
}
