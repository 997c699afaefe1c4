#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// activate.comp reading x through a uniform texel buffer: on lavapipe a texel fetch is one gather across the SIMD
// lanes where a storage-buffer load whose address is not a constant is a loop over the lanes (core/ops/activation.c
// chooses it where the context reads through texel buffers, cel_context_set_texel_reads).
layout(binding = 0) uniform textureBuffer x_t;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#include "activate.glsl"
