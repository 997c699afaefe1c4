#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = f(x), f by act (cel_activation: 0 relu, 1 leaky relu with slope alpha, 2 tanh, 3 sigmoid).  x, y (N,C,H,W).
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#define LOAD_X(i) x[i]
#include "activate.glsl"
