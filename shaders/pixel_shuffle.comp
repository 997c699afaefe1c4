#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Pixel shuffle (depth to space): y (N,C,H*r,W*r)[n,c,h*r+i,w*r+j] = x (N,C*r*r,H,W)[n,(c*r+i)*r+j,h,w];
// inverse != 0: the inverse (space to depth), x (N,C,H*r,W*r) -> y (N,C*r*r,H,W). Gather form either way.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; int r; int inverse; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 o = cel_unravel(p.yshape, i);
  if (p.inverse == 0) {
    int ii = o.z % p.r, jj = o.w % p.r;
    y[i] = x[cel_offset(p.xshape, o.x, (o.y * p.r + ii) * p.r + jj, o.z / p.r, o.w / p.r)];
  } else {
    int c = o.y / (p.r * p.r), k = o.y % (p.r * p.r);
    y[i] = x[cel_offset(p.xshape, o.x, c, o.z * p.r + k / p.r, o.w * p.r + k % p.r)];
  }
}
