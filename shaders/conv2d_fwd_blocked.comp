#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// y = conv2d (x, w) + b, register-blocked: each invocation computes 8 output channels x PX adjacent output
// pixels of one row. Per input channel and kernel row it loads the L = SW*(PX-1) + DW*(KW-1) + 1 input
// columns its PX pixels read (shared by the KW taps); per tap each lane loads the weight of one of the 8
// channels and subgroupBroadcast hands it to the others (one load per subgroup, not per lane; on lavapipe every
// load is a loop over the lanes, so loads, not FMAs, set the speed). Row and column sources (zero or reflect
// padding) are computed outside the channel loop. Needs subgroups of at least 8; lanes past the end run on
// clamped indices and store nothing, so every subgroup is full at the broadcasts.
// Workgroup: 64 pixel blocks (flattened over n, oh, ow blocks) x one block of 8 channels of one group.
// Grid: x (and z when over 65535) = pixel blocks / 64, y = groups * ceil (OC/groups / 8).
// Used for every groups/stride/dilation/padding with KW <= 16 and L <= 32 except depthwise
// (conv2d_fwd_depthwise.comp); shapes of the AnimeGANv2-style nets: 1x1, 3x3, 7x7, stride 1 and 2.
// x (N,IC,H,W), w (OC,IC/groups,KH,KW), b (OC) (w again without bias), y (N,OC,OH,OW).
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; }; // x again, for VEC4_ROWS
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; }; // y again, for VEC4_STORE
#define LOAD_X(i) x[i]
#define LOAD_X4(i) x4[i]
#define LOAD_W(i) w[i]
#include "conv2d_fwd_blocked.glsl"
