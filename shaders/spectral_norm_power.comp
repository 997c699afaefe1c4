#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Power iteration of spectral normalization, as torch.nn.utils.spectral_norm. w (OC, K) row-major; the
// state s (OC+K+1) holds u (OC), v (K), sigma, read and written in place. One workgroup of 256 threads:
//   u all zero: u = normalize(hash vector) (see cel_spectral_norm in core/ops/spectral_norm.c)
//   update and iterations > 0: repeat { v = normalize(W^T u); u = normalize(W v) }; sigma = u . (W v)
//   otherwise (eval): sigma = u . (W v) with the stored u, v (v = normalize(W^T u) first if u was zero)
// with normalize(x) = x / max(|x|, eps). Cost: 2*OC*K multiply-adds per iteration on one workgroup.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer W { float w[]; };
layout(std430, binding = 1) coherent buffer S { float s[]; };
layout(push_constant) uniform P { uint oc; uint k; uint iterations; uint update; float eps; } p;
shared float red[256];

// Sum over the workgroup; every thread gets the result.
float workgroup_sum(float x) {
  uint t = gl_LocalInvocationID.x;
  red[t] = x;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) red[t] += red[t + step];
    barrier();
  }
  float r = red[0];
  barrier();
  return r;
}

// Makes this workgroup's writes to s visible to all its threads.
void sync_state() {
  memoryBarrierBuffer();
  barrier();
}

uint hash(uint x) {
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}

// Four 22-bit uniforms summed (exact in fp32) minus their mean: approximately normal, same as the reference.
float hash_normal(uint i) {
  uint sum = 0u;
  for (uint j = 0u; j < 4u; j++) sum += hash(4u * i + j + 0x9e3779b9u) >> 10;
  return float(sum) * (1.0 / 4194304.0) - 2.0;
}

// v = normalize(W^T u): one thread per column (coalesced rows of W).
void update_v() {
  uint t = gl_LocalInvocationID.x;
  float ss = 0.0;
  for (uint c = t; c < p.k; c += 256u) {
    float acc = 0.0;
    for (uint o = 0u; o < p.oc; o++) acc += w[o * p.k + c] * s[o];
    s[p.oc + c] = acc;
    ss += acc * acc;
  }
  float d = max(sqrt(workgroup_sum(ss)), p.eps);
  for (uint c = t; c < p.k; c += 256u) s[p.oc + c] /= d;
  sync_state();
}

// r = W v with 8 rows at a time, 32 threads per row. store: u = normalize(r) and returns u . r (sigma);
// otherwise returns u . r with the stored u.
float update_u(bool store) {
  uint t = gl_LocalInvocationID.x, row = t / 32u, lane = t % 32u;
  float acc = 0.0;
  for (uint o0 = 0u; o0 < p.oc; o0 += 8u) {
    uint o = o0 + row;
    float x = 0.0;
    if (o < p.oc)
      for (uint c = lane; c < p.k; c += 32u) x += w[o * p.k + c] * s[p.oc + c];
    red[t] = x;
    barrier();
    for (uint step = 16u; step > 0u; step >>= 1) {
      if (lane < step) red[t] += red[t + step];
      barrier();
    }
    // red[t] of lane 0 is rewritten only by this thread in the next round
    if (lane == 0u && o < p.oc) {
      float r = red[t];
      if (store) {
        s[o] = r;
        acc += r * r;
      } else {
        acc += s[o] * r;
      }
    }
  }
  memoryBarrierBuffer();
  float total = workgroup_sum(acc);
  if (!store) return total;
  float d = max(sqrt(total), p.eps), dot = 0.0;
  for (uint o = t; o < p.oc; o += 256u) {
    float r = s[o], u = r / d;
    s[o] = u;
    dot += u * r;
  }
  float sigma = workgroup_sum(dot);
  sync_state();
  return sigma;
}

void main() {
  uint t = gl_LocalInvocationID.x;
  float mag = 0.0;
  for (uint o = t; o < p.oc; o += 256u) mag += abs(s[o]);
  bool fresh = workgroup_sum(mag) == 0.0;
  if (fresh) {
    float ss = 0.0;
    for (uint o = t; o < p.oc; o += 256u) {
      float z = hash_normal(o);
      s[o] = z;
      ss += z * z;
    }
    float d = max(sqrt(workgroup_sum(ss)), p.eps);
    for (uint o = t; o < p.oc; o += 256u) s[o] /= d;
    sync_state();
  }
  uint iterations = p.update != 0u ? p.iterations : 0u;
  float sigma;
  if (iterations == 0u) {
    if (fresh) update_v();
    sigma = update_u(false);
  } else {
    for (uint i = 0u; i < iterations; i++) {
      update_v();
      sigma = update_u(true);
    }
  }
  if (t == 0u) s[p.oc + p.k] = sigma;
}
