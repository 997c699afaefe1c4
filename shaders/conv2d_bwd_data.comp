#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// dx of y = conv2d (x, w), one invocation per element of x (gather over the taps that read it).
// dy (N,OC,OH,OW), w (OC,IC/groups,KH,KW), dx (N,IC,H,W).
// With reflect padding, row ih of x also appears at unpadded rows -ih and 2*(H-1)-ih; the gradients of those
// copies fold back onto it (likewise for columns). Copies outside the padded extent match no tap.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;

// The unpadded positions holding input position i (size `size`, leading pad `pad`): i and, with reflect,
// its mirror images. Returns the count.
int copies(int i, int size, int pad, out int u[3]) {
  u[0] = i;
  int k = 1;
  if (p.reflect != 0) {
    if (i > 0 && i <= pad) u[k++] = -i;
    if (i < size - 1) u[k++] = 2 * (size - 1) - i;
  }
  return k;
}

void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  ivec4 xi = cel_unravel(p.xshape, i); // (n, ic, ih, iw)
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int oc0 = xi.y / icg_count * ocg_count, icg = xi.y % icg_count;
  int taps = p.kernel.x * p.kernel.y;
  uint plane = uint(p.yshape.z * p.yshape.w);
  uint wstep = uint(icg_count * taps);
  uint wbase = uint((oc0 * icg_count + icg) * taps);
  int uh[3], uw[3];
  int nh = copies(xi.z, p.xshape.z, p.pad.x, uh), nw = copies(xi.w, p.xshape.w, p.pad.y, uw);
  float s = 0.0;
  for (int a = 0; a < nh; a++)
    for (int kh = 0; kh < p.kernel.x; kh++) {
      int th = uh[a] + p.pad.x - kh * p.dilation.x; // = oh * stride
      if (th < 0 || th % p.stride.x != 0 || th / p.stride.x >= p.yshape.z) continue;
      int oh = th / p.stride.x;
      for (int c = 0; c < nw; c++)
        for (int kw = 0; kw < p.kernel.y; kw++) {
          int tw = uw[c] + p.pad.y - kw * p.dilation.y;
          if (tw < 0 || tw % p.stride.y != 0 || tw / p.stride.y >= p.yshape.w) continue;
          int ow = tw / p.stride.y;
          uint yo = cel_offset(p.yshape, xi.x, oc0, oh, ow);
          uint wo = wbase + uint(kh * p.kernel.y + kw);
          for (int oc = 0; oc < ocg_count; oc++, yo += plane, wo += wstep)
            s += dy[yo] * w[wo];
        }
    }
  dx[i] = s;
}
