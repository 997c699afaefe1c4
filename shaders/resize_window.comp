#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// A window of a resize, for tiled execution: y is the window [oy0, oy0+OH) x [ox0, ox0+OW) of resizing a
// (GH, GW) tensor to (GOH, GOW); x is the window of that tensor starting at (iy0, ix0), holding every
// input the output window reads. Taps are those of the whole-image resize (resize_axis.glsl).
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint MODE = 0;
#include "resize_axis.glsl"
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape; float scale_h; float scale_w; uint count;
  int in_global_h; int in_global_w; int iy0; int ix0; int oy0; int ox0;
} p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 o = cel_unravel(p.yshape, i);
  if (MODE == 4u) {
    CubicTaps ch = cubic_taps(o.z + p.oy0, p.in_global_h, p.scale_h), cw = cubic_taps(o.w + p.ox0, p.in_global_w, p.scale_w);
    float s = 0.0;
    for (int a = 0; a < 4; a++) {
      uint row = cel_offset(p.xshape, o.x, o.y, ch.i[a] - p.iy0, 0);
      float t = 0.0;
      for (int b = 0; b < 4; b++)
        t += cw.l[b] * x[row + uint(cw.i[b] - p.ix0)];
      s += ch.l[a] * t;
    }
    y[i] = s;
    return;
  }
  ResizeTaps th = resize_taps(o.z + p.oy0, p.in_global_h, p.scale_h);
  ResizeTaps tw = resize_taps(o.w + p.ox0, p.in_global_w, p.scale_w);
  int h0 = th.i0 - p.iy0, h1 = th.i1 - p.iy0, w0 = tw.i0 - p.ix0, w1 = tw.i1 - p.ix0;
  uint r0 = cel_offset(p.xshape, o.x, o.y, h0, 0), r1 = cel_offset(p.xshape, o.x, o.y, h1, 0);
  y[i] = th.l0 * (tw.l0 * x[r0 + uint(w0)] + tw.l1 * x[r0 + uint(w1)]) +
         th.l1 * (tw.l0 * x[r1 + uint(w0)] + tw.l1 * x[r1 + uint(w1)]);
}
