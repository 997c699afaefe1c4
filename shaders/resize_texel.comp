#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
// resize.comp reading x through a texel buffer (where the context reads so: on lavapipe a texel fetch is one
// gather, a storage-buffer load a loop over the lanes).
layout(binding = 0) uniform textureBuffer x_t;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#include "resize.glsl"
