#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dw of y = conv2d (x, w). One workgroup per weight element; its 256 threads stride over the N*OH*OW output
// positions and combine in shared memory (as sum_to.comp), so large images do not serialize.
// dy (N,OC,OH,OW), x (N,IC,H,W), dw (OC,IC/groups,KH,KW).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer DW { float dw[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;
shared float partial[256];

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

void main() {
  uint o = cel_group_index();
  if (o >= p.count) return;
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  ivec4 wi = cel_unravel(ivec4(p.yshape.y, icg_count, p.kernel), o); // (oc, icg, kh, kw)
  int ic = wi.x / ocg_count * icg_count + wi.y;
  int h_off = wi.z * p.dilation.x - p.pad.x, w_off = wi.w * p.dilation.y - p.pad.y;
  uint plane = uint(p.yshape.z * p.yshape.w), total = uint(p.yshape.x) * plane;
  precise float s = 0.0, c = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = gl_LocalInvocationID.x; k0 < total; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      int n = int(k / plane), r = int(k % plane);
      int oh = r / p.yshape.w, ow = r % p.yshape.w;
      int ih = source(oh * p.stride.x + h_off, p.xshape.z), iw = source(ow * p.stride.y + w_off, p.xshape.w);
      if (k < total && ih >= 0 && iw >= 0)
        CEL_KAHAN_ADD(s, c, dy[cel_offset(p.yshape, n, wi.x, 0, 0) + uint(r)] * x[cel_offset(p.xshape, n, ic, ih, iw)]);
    }
  partial[gl_LocalInvocationID.x] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (gl_LocalInvocationID.x < step) partial[gl_LocalInvocationID.x] += partial[gl_LocalInvocationID.x + step];
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) dw[o] = partial[0];
}
