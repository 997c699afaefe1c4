#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// One Adam step in place, as torch.optim.Adam (weight decay is L2 added to the gradient, not AdamW):
//   g = grad + weight_decay * param
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   param -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// param, grad, m, v of `count` elements; hyper = (lr, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, 0).
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Param { float param[]; };
layout(std430, binding = 1) readonly buffer Grad { float grad[]; };
layout(std430, binding = 2) buffer M { float m[]; };
layout(std430, binding = 3) buffer V { float v[]; };
layout(std430, binding = 4) readonly buffer H { float hyper[]; };
layout(push_constant) uniform P { uint count; float beta1; float beta2; float eps; float weight_decay; } p;
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float x = param[i];
  float g = grad[i] + p.weight_decay * x;
  float mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  float vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = x - hyper[0] / hyper[1] * mi / (sqrt(vi) / sqrt(hyper[2]) + p.eps);
}
