#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
#include "winograd.glsl"
// winograd_input.comp reading x through a texel buffer (where the context reads so).
layout(binding = 0) uniform textureBuffer x_t;
layout(std430, binding = 1) writeonly buffer V { vec4 v4[]; };
#define LOAD_X(i) texelFetch(x_t, int(i)).x
#include "winograd_input.glsl"
