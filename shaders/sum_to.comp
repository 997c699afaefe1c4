#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// y = scale * (x summed over the dims where yshape is 1). One workgroup per output element; the 256
// threads stride over the reduced elements and combine in shared memory. With PARTS > 1, workgroup w sums
// part w % PARTS of output w / PARTS's elements and writes it unscaled to the scratch after y, at
// ycount + w; fold_parts.comp folds the parts.
layout(constant_id = 0) const uint PARTS = 1u;
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; uint ycount; float scale; } p;
shared float partial[256];
void main() {
  uint w = cel_group_index(), o = w / PARTS, part = w % PARTS;
  if (o >= p.ycount) return;
  ivec4 oi = cel_unravel(p.yshape, o);
  // the reduced sub-box: extent r along each dim (1 where kept)
  ivec4 r = ivec4(p.yshape.x == 1 ? p.xshape.x : 1, p.yshape.y == 1 ? p.xshape.y : 1,
                  p.yshape.z == 1 ? p.xshape.z : 1, p.yshape.w == 1 ? p.xshape.w : 1);
  uint total = uint(r.x * r.y * r.z * r.w);
  uint span = (total + PARTS - 1u) / PARTS, first = min(part * span, total), end = min(first + span, total);
  precise float s = 0.0, c = 0.0;
  // CEL_STRIDES_PER_TRIP strides per loop trip: llvmpipe's cap on loop trips (common.glsl)
  for (uint k0 = first + gl_LocalInvocationID.x; k0 < end; k0 += CEL_STRIDES_PER_TRIP * 256u)
    [[unroll]] for (uint u = 0u; u < CEL_STRIDES_PER_TRIP; u++) {
      uint k = k0 + u * 256u;
      if (k < end) {
        ivec4 ki = cel_unravel(r, k);
        ivec4 xi = ivec4(r.x == 1 ? oi.x : ki.x, r.y == 1 ? oi.y : ki.y, r.z == 1 ? oi.z : ki.z, r.w == 1 ? oi.w : ki.w);
        CEL_KAHAN_ADD(s, c, x[cel_offset(p.xshape, xi.x, xi.y, xi.z, xi.w)]);
      }
    }
  partial[gl_LocalInvocationID.x] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (gl_LocalInvocationID.x < step) partial[gl_LocalInvocationID.x] += partial[gl_LocalInvocationID.x + step];
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) {
    if (PARTS == 1u) y[o] = p.scale * partial[0];
    else y[p.ycount + w] = partial[0];
  }
}
