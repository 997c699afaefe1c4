#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// Gram matrix per sample: x (N,C,H,W) -> y (N,1,C,C), y[n][i][j] = scale * sum_hw x[n][i][hw] * x[n][j][hw].
// Tiled as a matrix product X X^T with X (C, HW): workgroup (ti, tj, n) computes the 16x16 tile of rows
// ti*16.. and columns tj*16.., one element per thread, stepping over HW KC at a time through shared
// memory. y is symmetric: only tiles with ti <= tj run, and an off-diagonal tile also writes its
// transpose. Cost: N*C*C*HW/2 multiply-adds; each element of x read about C/16 times.
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint c; uint hw; float scale; } p;
#define KC 64
shared float ta[16][KC + 1], tb[16][KC + 1]; // rows of tile i and tile j, KC steps of HW (padded: no bank conflicts)
void main() {
  uint ti = gl_WorkGroupID.x, tj = gl_WorkGroupID.y, n = gl_WorkGroupID.z;
  if (ti > tj) return;
  uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
  uint base = n * p.c * p.hw, ri = ti * 16u + ly, rj = tj * 16u + ly;
  float s = 0.0;
  for (uint k0 = 0u; k0 < p.hw; k0 += KC) {
    [[unroll]] for (uint q0 = 0u; q0 < KC; q0 += 16u) {
      uint q = q0 + lx, k = k0 + q;
      ta[ly][q] = ri < p.c && k < p.hw ? x[base + ri * p.hw + k] : 0.0;
      tb[ly][q] = rj < p.c && k < p.hw ? x[base + rj * p.hw + k] : 0.0;
    }
    barrier();
    // unrolled, as the loads above: llvmpipe's cap on loop trips (common.glsl); as a loop this one came out 10 %
    // short at HW = 65536 (a 256x256 feature map). The outer loop runs HW / 64 times.
    [[unroll]] for (uint kk = 0u; kk < KC; kk++) s += ta[ly][kk] * tb[lx][kk];
    barrier();
  }
  uint i = ti * 16u + ly, j = tj * 16u + lx;
  if (i < p.c && j < p.c) {
    y[(n * p.c + i) * p.c + j] = p.scale * s;
    if (ti != tj) y[(n * p.c + j) * p.c + i] = p.scale * s;
  }
}
