#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// conv2d_bwd_data_blocked.comp reading dy (float, and as vec4 at binding 4) and the packed weights
// (conv_weight_pack.comp, vec4) through uniform texel buffers, as conv2d_fwd_blocked_texel.comp: for CPU devices
// (cel_context_set_texel_reads).
layout(binding = 0) uniform textureBuffer dy_t;
layout(binding = 1) uniform textureBuffer wp_v4; // w packed (conv_weight_pack.comp, transposed)
layout(std430, binding = 2) readonly buffer B { float b[]; }; // conv_transpose2d's bias (w again without)
layout(std430, binding = 3) writeonly buffer DX { float dx[]; };
layout(binding = 4) uniform textureBuffer dy_v4;
#define LOAD_DY(i) texelFetch(dy_t, int(i)).x
#define LOAD_DY4(i) texelFetch(dy_v4, int(i))
#define WPACK
#define LOAD_WP4(i) texelFetch(wp_v4, int(i))
#include "conv2d_bwd_data_blocked.glsl"
