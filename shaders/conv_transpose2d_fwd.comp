#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = conv_transpose2d (x, w) + b, one invocation per output element (gather over the input elements whose
// kernel taps land on it: oh = ih * stride - pad + kh * dilation).
// x (N,IC,H,W), w (IC,OC/groups,KH,KW), b (OC) (w again when has_bias is 0), y (N,OC,OH,OW).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w)
  int groups; int has_bias; uint count;
} p;

void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 o = cel_unravel(p.yshape, i); // (n, oc, oh, ow)
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int ic0 = o.y / ocg_count * icg_count, ocg = o.y % ocg_count;
  int taps = p.kernel.x * p.kernel.y;
  uint plane = uint(p.xshape.z * p.xshape.w);
  uint wstep = uint(ocg_count * taps);
  uint wbase = uint((ic0 * ocg_count + ocg) * taps);
  float s = p.has_bias != 0 ? b[o.y] : 0.0;
  for (int kh = 0; kh < p.kernel.x; kh++) {
    int th = o.z + p.pad.x - kh * p.dilation.x; // = ih * stride
    if (th < 0 || th % p.stride.x != 0 || th / p.stride.x >= p.xshape.z) continue;
    int ih = th / p.stride.x;
    for (int kw = 0; kw < p.kernel.y; kw++) {
      int tw = o.w + p.pad.y - kw * p.dilation.y;
      if (tw < 0 || tw % p.stride.y != 0 || tw / p.stride.y >= p.xshape.w) continue;
      int iw = tw / p.stride.y;
      uint xo = cel_offset(p.xshape, o.x, ic0, ih, iw);
      uint wo = wbase + uint(kh * p.kernel.y + kw);
      for (int c = 0; c < icg_count; c++, xo += plane, wo += wstep)
        s += x[xo] * w[wo];
    }
  }
  y[i] = s;
}
