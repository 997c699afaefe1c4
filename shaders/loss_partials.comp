#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// First stage of a mean loss: y[g] = scale * sum over the chunk [g*chunk, (g+1)*chunk) of f(a - b), with
// f = |d| (mode 0) or d*d (mode 1). a, b of `count` elements; y (1,1,1,P), one workgroup per partial;
// the 256 threads stride over the chunk and combine in shared memory. A sum_to node adds the partials.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count; uint chunk; uint mode; float scale; } p;
shared float partial[256];
void main() {
  uint g = gl_WorkGroupID.x;
  uint begin = g * p.chunk, end = min(begin + p.chunk, p.count);
  float s = 0.0;
  for (uint i = begin + gl_LocalInvocationID.x; i < end; i += 256u) {
    float d = a[i] - b[i];
    s += p.mode == 0u ? abs(d) : d * d;
  }
  partial[gl_LocalInvocationID.x] = s;
  barrier();
  for (uint step = 128u; step > 0u; step >>= 1) {
    if (gl_LocalInvocationID.x < step) partial[gl_LocalInvocationID.x] += partial[gl_LocalInvocationID.x + step];
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) y[g] = p.scale * partial[0];
}
