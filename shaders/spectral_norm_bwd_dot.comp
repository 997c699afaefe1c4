#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// First stage of <dy, w> for the spectral norm backward: y[g] = sum over the chunk [g*chunk, (g+1)*chunk)
// of dy * w. dy, w of `count` elements; y (1,1,1,256), one workgroup per partial.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; uint chunk; } p;
shared float partial[256];
void main() {
  uint g = gl_WorkGroupID.x;
  uint begin = g * p.chunk, end = min(begin + p.chunk, p.count);
  float s = 0.0;
  for (uint i = begin + gl_LocalInvocationID.x; i < end; i += 256u) s += dy[i] * w[i];
  partial[gl_LocalInvocationID.x] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (gl_LocalInvocationID.x < step) partial[gl_LocalInvocationID.x] += partial[gl_LocalInvocationID.x + step];
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) y[g] = partial[0];
}
