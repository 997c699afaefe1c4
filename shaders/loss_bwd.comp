#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Gradient of a mean loss for one of its inputs: dx[i] = scale * dy[i / chunk] * f'(a[i] - b[i]) with
// f' = sign(d) (mode 0, 0 at d = 0 as PyTorch) or d (mode 1; the 2 is in scale). a, b, dx of `count`
// elements; dy (1,1,1,P) the gradient of the partials. scale carries 1/count and the sign for b.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform P { uint count; uint chunk; uint mode; float scale; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float d = a[i] - b[i];
  dx[i] = p.scale * dy[i / p.chunk] * (p.mode == 0u ? sign(d) : d);
}
