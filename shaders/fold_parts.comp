#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Second pass of a split reduction of `count` outputs (sum_to.comp, norm_apply_bwd_gamma.comp with PARTS > 1):
// one workgroup per output adds its PARTS partial sums from the scratch after the outputs (at count + o * PARTS
// + part), compensated, and scales (cel_exec_fold_parts).
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint PARTS = 2u;
layout(std430, binding = 0) buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; float scale; } p;
shared float partial[256];
void main() {
  uint o = cel_group_index();
  if (o >= p.count) return;
  uint t = gl_LocalInvocationID.x;
  precise float s = 0.0, c = 0.0;
  for (uint part = t; part < PARTS; part += 256u) CEL_KAHAN_ADD(s, c, y[p.count + o * PARTS + part]);
  partial[t] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (t < step) partial[t] += partial[t + step];
    barrier();
  }
  if (t == 0u) y[o] = p.scale * partial[0];
}
