#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// dx (N,C,H,W) from dy of pad (N,C,H+t+b,W+l+r), gather form: every padded position whose source is
// (h, w) contributes. Zero mode: the direct position only; reflect: also the mirrored positions;
// replicate: the edge rows and columns also collect every padded row or column beyond them.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int top; int left; int mode; uint count; } p;

// Over planes (cel_exec_dispatch_planes): no unravelling of the index per element.
void pad_bwd_one(uint plane, uint j) {
  uint w = uint(p.xshape.w), i = plane * uint(p.xshape.z) * w + j;
  ivec4 o = ivec4(int(plane / uint(p.xshape.y)), int(plane % uint(p.xshape.y)), int(j / w), int(j % w));
  if (p.mode == 2) {
    int r0 = o.z == 0 ? 0 : o.z + p.top, r1 = o.z == p.xshape.z - 1 ? p.yshape.z - 1 : o.z + p.top;
    int c0 = o.w == 0 ? 0 : o.w + p.left, c1 = o.w == p.xshape.w - 1 ? p.yshape.w - 1 : o.w + p.left;
    float s = 0.0;
    for (int a = r0; a <= r1; a++)
      for (int b = c0; b <= c1; b++)
        s += dy[cel_offset(p.yshape, o.x, o.y, a, b)];
    dx[i] = s;
    return;
  }
  bool reflect = p.mode == 1;
  int bottom = p.yshape.z - p.xshape.z - p.top, right = p.yshape.w - p.xshape.w - p.left;
  // rows: direct + up to two mirrors; columns likewise
  int rows[3], cols[3];
  int nr = 0, nc = 0;
  rows[nr++] = o.z + p.top;
  cols[nc++] = o.w + p.left;
  if (reflect) {
    if (o.z >= 1 && o.z <= p.top) rows[nr++] = p.top - o.z;
    if (o.z >= p.xshape.z - 1 - bottom && o.z <= p.xshape.z - 2) rows[nr++] = 2 * p.xshape.z - 2 - o.z + p.top;
    if (o.w >= 1 && o.w <= p.left) cols[nc++] = p.left - o.w;
    if (o.w >= p.xshape.w - 1 - right && o.w <= p.xshape.w - 2) cols[nc++] = 2 * p.xshape.w - 2 - o.w + p.left;
  }
  float s = 0.0;
  for (int a = 0; a < nr; a++)
    for (int b = 0; b < nc; b++)
      s += dy[cel_offset(p.yshape, o.x, o.y, rows[a], cols[b])];
  dx[i] = s;
}

void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.xshape.x * p.xshape.y)) return;
  uint hw = uint(p.xshape.z * p.xshape.w);
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP) pad_bwd_one(plane, j);
}
