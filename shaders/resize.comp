#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// y = x resized on H and W, separable taps per axis (resize_axis.glsl).  x (N,C,H,W), y (N,C,OH,OW).
// Grid: (x, planes) with planes over y and z (N*C past 65535): workgroup (x, plane) covers elements x*256 .. of
// the plane, striding by the grid's width (one division per element for the row, not unravelling the index).
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#define LOAD_X(i) x[i]
#include "resize.glsl"
