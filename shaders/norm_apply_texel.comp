#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// norm_apply.comp reading its inputs through uniform texel buffers: on lavapipe a texel fetch is one gather across
// the SIMD lanes where a storage-buffer load whose address is not a constant is a loop over the lanes
// (core/ops/norm.c chooses it where the context reads through texel buffers, cel_context_set_texel_reads).
layout(constant_id = 0) const bool HAS_GAMMA = false;
layout(constant_id = 1) const bool HAS_BETA = false;
layout(binding = 0) uniform textureBuffer x_t;
layout(binding = 1) uniform textureBuffer stats_t;
layout(binding = 2) uniform textureBuffer gamma_t;
layout(binding = 3) uniform textureBuffer beta_t;
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#define LOAD_S(i) texelFetch(stats_t, int(i)).x
#define LOAD_G(i) texelFetch(gamma_t, int(i)).x
#define LOAD_B(i) texelFetch(beta_t, int(i)).x
#include "norm_apply.glsl"
