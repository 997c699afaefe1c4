#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "winograd.glsl"
// Winograd F(4x4, 3x3) output transform of a chunk of tiles: y = A^T m A + bias for each tile t0 + j of the products
// m (N, 36*OC, 1, TP) (winograd_input.comp's layout with OC channels), written into y (N,OC,OH,OW) where inside
// it. One invocation per (n, oc) and 4 adjacent tiles of the chunk (j < CT, its tiles before T), reading m as
// vec4 and writing tile rows as vec4 where OW is a multiple of 4.
// winograd_output_texel.comp reads m through a texel buffer (CPU devices).
layout(std430, binding = 0) readonly buffer M { vec4 m4[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { vec4 y4[]; }; // y again
#define LOAD_M4(i) m4[i]
#include "winograd_output.glsl"
