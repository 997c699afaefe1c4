#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = conv2d (x, w) + b, one invocation per output element (gather).
// x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (OC) (w again when has_bias is 0), y (N,OC,OH,OW).
// Padding: zeros, or PyTorch 'reflect' (each pad < the input size, so one fold suffices).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 o = cel_unravel(p.yshape, i); // (n, oc, oh, ow)
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int ic0 = o.y / ocg_count * icg_count;
  int taps = p.kernel.x * p.kernel.y;
  uint plane = uint(p.xshape.z * p.xshape.w);
  uint wbase = uint(o.y * icg_count * taps);
  int h0 = o.z * p.stride.x - p.pad.x, w0 = o.w * p.stride.y - p.pad.y;
  float s = p.has_bias != 0 ? b[o.y] : 0.0;
  for (int kh = 0; kh < p.kernel.x; kh++) {
    int ih = source(h0 + kh * p.dilation.x, p.xshape.z);
    if (ih < 0) continue;
    for (int kw = 0; kw < p.kernel.y; kw++) {
      int iw = source(w0 + kw * p.dilation.y, p.xshape.w);
      if (iw < 0) continue;
      uint xo = cel_offset(p.xshape, o.x, ic0, ih, iw);
      uint wo = wbase + uint(kh * p.kernel.y + kw);
      for (int c = 0; c < icg_count; c++, xo += plane, wo += uint(taps))
        s += x[xo] * w[wo];
    }
  }
  y[i] = s;
}
