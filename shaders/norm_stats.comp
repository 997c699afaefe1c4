#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// Statistics of a norm. x is viewed as `groups` contiguous rows of m elements (a row is one (n, c) plane for
// instance norm, one sample for layer norm); stats (groups, 2) = (mean, M2 / divisor).
// One workgroup per row: each thread runs Welford over its strided slice, then Chan's pairwise combine in
// shared memory, so no sum of squares about zero is ever formed (inputs with a large mean stay exact).
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer S { float stats[]; };
#define LOAD_X(i) x[i]
#include "norm_stats.glsl"
