#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// conv2d_fwd_blocked.comp reading x and the packed weights (conv_weight_pack.comp) through uniform texel buffers
// (x as float and at binding 4 as vec4, the weights as vec4): on lavapipe a texel fetch is one gather across the
// SIMD lanes where a storage-buffer load whose address is not a constant is a loop over the lanes
// (core/ops/conv.c chooses it where the context reads through texel buffers, cel_context_set_texel_reads).
layout(binding = 0) uniform textureBuffer x_t;
layout(binding = 1) uniform textureBuffer wp_v4;
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; }; // y again, for VEC4_STORE
layout(binding = 4) uniform textureBuffer x_v4;
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#define LOAD_X4(i) texelFetch(x_v4, int(i))
#define WPACK
#define LOAD_WP4(i) texelFetch(wp_v4, int(i))
#include "conv2d_fwd_blocked.glsl"
