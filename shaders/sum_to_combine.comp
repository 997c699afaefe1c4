#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Second pass of a split sum_to (sum_to.comp with PARTS > 1): one workgroup per output element adds its PARTS
// partial sums from the scratch after y (at ycount + o * PARTS + part), compensated, and scales.
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint PARTS = 2u;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(push_constant) uniform P { ivec4 xshape; ivec4 yshape; uint ycount; float scale; } p;
shared float partial[256];
void main() {
  uint o = cel_group_index();
  if (o >= p.ycount) return;
  uint t = gl_LocalInvocationID.x;
  precise float s = 0.0, c = 0.0;
  for (uint part = t; part < PARTS; part += 256u) CEL_KAHAN_ADD(s, c, y[p.ycount + o * PARTS + part]);
  partial[t] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) partial[t] += partial[t + step];
    barrier();
  }
  if (t == 0u) y[o] = p.scale * partial[0];
}
