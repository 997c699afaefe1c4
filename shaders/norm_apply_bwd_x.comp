#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The direct part of norm_apply's input gradient (stats held fixed): dx = dy * gamma / sqrt (var + eps).
// dy, dx (N,C,H,W) viewed as (groups, m) rows; stats (groups, 2); gamma (1,C,1,1), read only when HAS_GAMMA
// (a placeholder is bound otherwise).
layout(constant_id = 0) const bool HAS_GAMMA = false;
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer S { float stats[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint count; uint m; uint hw; uint c; float eps; } p;
// Over planes (cel_exec_dispatch_planes) as norm_apply.glsl: no integer division per element.
void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= p.count / p.hw) return;
  uint c = plane % p.c, n = plane / p.c;
  uint g = p.m == p.hw ? plane : n; // statistics per (n, c) or per n
  float gm = HAS_GAMMA ? gamma[c] : 1.0, r = 1.0 / sqrt(stats[2u * g + 1u] + p.eps);
  uint base = plane * p.hw;
  // same products as norm_apply_bwd_stats.comp, so that the two parts of dx cancel exactly where they should
  for (uint j = CEL_PLANE_FIRST; j < p.hw; j += CEL_PLANE_STEP) {
    float d = dy[base + j];
    if (HAS_GAMMA) d *= gm;
    dx[base + j] = d * r;
  }
}
