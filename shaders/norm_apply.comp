#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = (x - mean) / sqrt (var + eps) * gamma + beta.  x, y (N,C,H,W) viewed as (groups, m) rows;
// stats (groups, 2) = (mean, var); gamma, beta (1,C,1,1), read only when HAS_GAMMA / HAS_BETA
// (a placeholder is bound otherwise).
layout(constant_id = 0) const bool HAS_GAMMA = false;
layout(constant_id = 1) const bool HAS_BETA = false;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer S { float stats[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) readonly buffer B { float beta[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
#define LOAD_X(i) x[i]
#define LOAD_S(i) stats[i]
#define LOAD_G(i) gamma[i]
#define LOAD_B(i) beta[i]
#include "norm_apply.glsl"
