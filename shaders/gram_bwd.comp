#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Gradient of the Gram matrix: dx[n] = S X with S = s[n] (C, C) from gram_sym.comp (scale * (dG + dG^T))
// and X = x[n] (C, HW). x, dx (N,C,H,W); s (N*C,C,1,1). Tiled matrix product: workgroup (tile, n) computes a 16x16 tile of dx
// (16 channels by 16 positions; the tile index runs over a 2-D grid of groups), stepping over the C
// channels of the sum KC at a time through shared memory. Cost: N*C*C*HW multiply-adds.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer SY { float sym[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint c; uint hw; float scale; } p;
#define KC 64
shared float ts[16][KC + 1]; // S rows of this tile's channels, KC summed channels
shared float tx[KC][17];     // X rows of the KC summed channels, this tile's positions
void main() {
  uint kt = (p.hw + 15u) / 16u, t = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (t >= kt * ((p.c + 15u) / 16u)) return;
  uint k0 = (t % kt) * 16u, c0 = (t / kt) * 16u, n = gl_WorkGroupID.z;
  uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
  uint g = n * p.c * p.c, base = n * p.c * p.hw, c = c0 + ly, k = k0 + lx;
  float s = 0.0;
  for (uint j0 = 0u; j0 < p.c; j0 += KC) {
    uint jn = min(KC, p.c - j0); // the channels of this step (fewer than KC for narrow features: no zero work)
    for (uint q = lx; q < jn; q += 16u) { // ts[ly][q] = S[c][j0 + q]
      uint j = j0 + q;
      ts[ly][q] = c < p.c ? sym[g + c * p.c + j] : 0.0;
    }
    for (uint q = ly; q < jn; q += 16u) { // tx[q][lx] = X[j0 + q][k]
      uint j = j0 + q;
      tx[q][lx] = k < p.hw ? x[base + j * p.hw + k] : 0.0;
    }
    barrier();
    for (uint jj = 0u; jj < jn; jj++) s += ts[ly][jj] * tx[jj][lx];
    barrier();
  }
  if (c < p.c && k < p.hw) dx[base + c * p.hw + k] = p.scale * s;
}
