#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_samplerless_texture_functions : require
#include "common.glsl"
#include "winograd.glsl"
// winograd_output.comp reading m through a vec4 texel buffer (where the context reads so).
layout(binding = 0) uniform textureBuffer m_v4;
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { vec4 y4[]; }; // y again
#define LOAD_M4(i) texelFetch(m_v4, int(i))
#include "winograd_output.glsl"
