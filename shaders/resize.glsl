// The body of resize.comp and resize_texel.comp (see the first): they declare the bindings (x at 0, y at 1) and
// LOAD_X, which reads x.
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint MODE = 0;
#include "resize_axis.glsl"
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; float scale_h; float scale_w; uint count; } p;
void resize_one(uint plane, uint j) {
  uint ow_count = uint(p.yshape.w);
  ivec4 o = ivec4(int(plane / uint(p.yshape.y)), int(plane % uint(p.yshape.y)), int(j / ow_count), int(j % ow_count));
  uint i = plane * uint(p.yshape.z) * ow_count + j;
  if (MODE == 4u) {
    CubicTaps ch = cubic_taps(o.z, p.xshape.z, p.scale_h), cw = cubic_taps(o.w, p.xshape.w, p.scale_w);
    float s = 0.0;
    for (int a = 0; a < 4; a++) {
      uint row = cel_offset(p.xshape, o.x, o.y, ch.i[a], 0);
      float t = 0.0;
      for (int b = 0; b < 4; b++)
        t += cw.l[b] * LOAD_X(row + uint(cw.i[b]));
      s += ch.l[a] * t;
    }
    y[i] = s;
    return;
  }
  ResizeTaps th = resize_taps(o.z, p.xshape.z, p.scale_h);
  ResizeTaps tw = resize_taps(o.w, p.xshape.w, p.scale_w);
  uint r0 = cel_offset(p.xshape, o.x, o.y, th.i0, 0), r1 = cel_offset(p.xshape, o.x, o.y, th.i1, 0);
  y[i] = th.l0 * (tw.l0 * LOAD_X(r0 + uint(tw.i0)) + tw.l1 * LOAD_X(r0 + uint(tw.i1))) +
         th.l1 * (tw.l0 * LOAD_X(r1 + uint(tw.i0)) + tw.l1 * LOAD_X(r1 + uint(tw.i1)));
}

void main() {
  uint plane = CEL_PLANE_INDEX;
  if (plane >= uint(p.yshape.x * p.yshape.y)) return;
  uint hw = uint(p.yshape.z * p.yshape.w);
  for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP) resize_one(plane, j);
}
