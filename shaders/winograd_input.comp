#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "winograd.glsl"
// Winograd F(4x4, 3x3) input transform of the tiles t0 .. t0+TP-1 (a chunk): v = B^T d B of each 6x6 tile d of
// x (N,IC,H,W) as padded (zero or reflect), the input of a 1x1 convolution with 36 groups, v (N, 36*IC, 1, TP):
// element k of the chunk's tile j of (n, ic) at ((n * 36 + k) * IC + ic) * TP + j. Tile t = th * TW + tw covers
// output rows 4*th .. 4*th+3 and columns 4*tw .. 4*tw+3, reading padded-input rows and columns from there on;
// where a partial last tile reaches past the padded input it reads zeros (those outputs are not written).
// Tiles from T on (the last chunk's rest; TP is a multiple of 8 for the blocked kernel's vec4 rows) are zeros.
// One invocation per (n, ic) and 4 adjacent tiles of the chunk, whose elements it writes as vec4 (on lavapipe a
// store whose address is not a constant is a loop over the lanes: a quarter of them).
// winograd_input_texel.comp reads x through a texel buffer (CPU devices: one gather instead of a loop).
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer V { vec4 v4[]; };
#define LOAD_X(i) x[i]
#include "winograd_input.glsl"
