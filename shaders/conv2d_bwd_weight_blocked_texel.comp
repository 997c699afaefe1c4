#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// conv2d_bwd_weight_blocked.comp reading dy and x through uniform texel buffers (float views; vec4 views of dy
// and x at bindings 3 and 4), as conv2d_fwd_blocked_texel.comp: for CPU devices (cel_context_set_texel_reads).
layout(binding = 0) uniform textureBuffer dy_t;
layout(binding = 1) uniform textureBuffer x_t;
layout(std430, binding = 2) buffer DW_ { float dw[]; };
layout(binding = 3) uniform textureBuffer dy_v4;
layout(binding = 4) uniform textureBuffer x_v4;
#define LOAD_DY(i) texelFetch(dy_t, int(i)).x
#define LOAD_DY4(i) texelFetch(dy_v4, int(i))
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#define LOAD_X4(i) texelFetch(x_v4, int(i))
#define DY_DIRECT
#include "conv2d_bwd_weight_blocked.glsl"
