#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dw of y = conv_transpose2d (x, w): dw[ic, ocg, kh, kw] = sum over (n, ih, iw) of
// x[n, ic, ih, iw] * dy[n, oc, ih * stride - pad + kh * dilation, ...]. One workgroup per weight element; its
// 256 threads stride over the N*H*W input positions and combine in shared memory (as sum_to.comp).
// x (N,IC,H,W), dy (N,OC,OH,OW), dw (IC,OC/groups,KH,KW).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) writeonly buffer DW { float dw[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w)
  int groups; int has_bias; uint count;
} p;
shared float partial[256];

void main() {
  uint o = cel_group_index();
  if (o >= p.count) return;
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  ivec4 wi = cel_unravel(ivec4(p.xshape.y, ocg_count, p.kernel), o); // (ic, ocg, kh, kw)
  int oc = wi.x / icg_count * ocg_count + wi.y;
  int h_off = wi.z * p.dilation.x - p.pad.x, w_off = wi.w * p.dilation.y - p.pad.y;
  uint plane = uint(p.xshape.z * p.xshape.w), total = uint(p.xshape.x) * plane;
  precise float s = 0.0, c = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = gl_LocalInvocationID.x; k0 < total; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      int n = int(k / plane), r = int(k % plane);
      int oh = r / p.xshape.w * p.stride.x + h_off, ow = r % p.xshape.w * p.stride.y + w_off;
      if (k < total && oh >= 0 && oh < p.yshape.z && ow >= 0 && ow < p.yshape.w)
        CEL_KAHAN_ADD(s, c, x[cel_offset(p.xshape, n, wi.x, 0, 0) + uint(r)] * dy[cel_offset(p.yshape, n, oc, oh, ow)]);
    }
  partial[gl_LocalInvocationID.x] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (gl_LocalInvocationID.x < step) partial[gl_LocalInvocationID.x] += partial[gl_LocalInvocationID.x + step];
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) dw[o] = partial[0];
}
