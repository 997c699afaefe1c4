#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// dx = gradient of resize, in gather form (no atomics): each input pixel sums dy over the few outputs
// that can read it, with the forward's weights re-evaluated.  dy (N,C,OH,OW), dx (N,C,H,W).
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint MODE = 0;
#include "resize_axis.glsl"
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; float scale_h; float scale_w; uint count; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 x = cel_unravel(p.xshape, i);
  ivec2 rh = resize_range(x.z, p.xshape.z, p.yshape.z, p.scale_h);
  ivec2 rw = resize_range(x.w, p.xshape.w, p.yshape.w, p.scale_w);
  float s = 0.0;
  for (int oh = rh.x; oh <= rh.y; oh++) {
    float wh = resize_weight(oh, x.z, p.xshape.z, p.scale_h);
    if (wh == 0.0) continue;
    uint row = cel_offset(p.yshape, x.x, x.y, oh, 0);
    float t = 0.0;
    for (int ow = rw.x; ow <= rw.y; ow++)
      t += resize_weight(ow, x.w, p.xshape.w, p.scale_w) * dy[row + uint(ow)];
    s += wh * t;
  }
  dx[i] = s;
}
