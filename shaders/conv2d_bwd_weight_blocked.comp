#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dw of y = conv2d (x, w), register-blocked: a workgroup computes a tile of 8 output channels x 8*ICL input
// channels x KT kernel rows x KW taps of one group; lane l of each group of 8 (see SHUFFLE) owns ICL input
// channels and accumulates 8 x ICL x KT x KW sums (T = ICL*KT*KW <= 16; 1x1 kernels take ICL up to 16). The
// 8 groups split the N*OH*(OW/PX) blocks of PX adjacent output pixels (or the dispatch's slice of them: a
// long reduction runs as several dispatches, the later ones adding to dw); per block each lane loads the dy
// values of one output channel, which subgroupBroadcast hands to the others, and the L = SW*(PX-1) +
// DW*(KW-1) + 1 columns of x its PX pixels read through each kernel row (shared by the KW taps). Zero or reflect
// padding is resolved per block with the column sources. Every FLUSH blocks the sums move to shared memory
// (shorter chains of fp32 additions), where the groups' partial sums finally meet.
// Grid: x = groups * ceil (OC/groups / 8) * ceil (IC/groups / (8*ICL)) * ceil (KH / KT).
// Used with subgroups of 8, or of 16 to 64 with subgroupShuffle (conv_weight_blocked_runs), KW <= 16 and
// L <= 32 (the 1x1, 3x3, 7x7 convolutions of the AnimeGANv2-style nets); depthwise ones run
// conv2d_bwd_weight_depthwise.comp. conv_transpose2d's weight gradient runs this with its x as dy and its dy as x.
// dy (N,OC,OH,OW), x (N,IC,H,W), dw (OC,IC/groups,KH,KW).
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 0) readonly buffer DY4_ { vec4 dy4[]; }; // dy again, for DY4
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; }; // x again, for VEC4_ROWS
layout(std430, binding = 2) buffer DW_ { float dw[]; };
#define LOAD_DY(i) dy[i]
#define LOAD_DY4(i) dy4[i]
#define LOAD_X(i) x[i]
#define LOAD_X4(i) x4[i]
#include "conv2d_bwd_weight_blocked.glsl"
