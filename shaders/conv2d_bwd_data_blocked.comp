#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dx of y = conv2d (x, w) with zero padding, register-blocked as conv2d_fwd_blocked.comp: each invocation
// gathers 8 input channels x PX adjacent columns of one row of dx, reducing over the output channels of its
// group and the kernel taps. dx column j receives dy column (j + pad_left - kw*DW) / SW when that divides; PX is a
// multiple of SW, so which (pixel, tap) pairs divide is fixed by PLM = pad_left mod SW (a specialization
// constant) and the dy columns they read form one run of L columns, loaded once per (output channel, kernel
// row). Each lane loads the weight of one of the 8 channels and subgroupBroadcast hands it to the others. A
// kernel row that no lane of the subgroup can use (stride) is skipped as a whole where branches are real (GPUs;
// lavapipe predicates them); subgroupAny keeps the broadcasts in uniform control flow. Reflect padding is handled
// by the host: it runs this on the padded input's grid (pads 0) and folds the result with pad_bwd.comp. Needs
// subgroups of at least 8.
// Workgroup: 64 pixel blocks (flattened over n, ih, iw blocks) x one block of 8 input channels of one group.
// Grid: x (and z when over 65535) = pixel blocks / 64, y = groups * ceil (IC/groups / 8). Used for KW <= 16,
// L <= 32 (every conv2d of the AnimeGANv2-style nets: 1x1, 3x3, 7x7, stride 1 and 2).
// dy (N,OC,OH,OW), w (OC,IC/groups,KH,KW), b (IC) (w again when has_bias is 0), dx (N,IC,H,W).
// conv_transpose2d's forward is the same gather: it runs this with x as dy, y as dx and its bias.
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 0) readonly buffer DY4_ { vec4 dy4[]; }; // dy again, for WIN4
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; }; // conv_transpose2d's bias (w again without)
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
#define LOAD_DY(i) dy[i]
#define LOAD_DY4(i) dy4[i]
#define LOAD_W(i) w[i]
#include "conv2d_bwd_data_blocked.glsl"
