#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// y = conv2d (x, w) + b for depthwise convolutions (one input channel per group: IC == groups, OC a multiple),
// register-blocked: each invocation computes a PY x PX block of output pixels of one channel. It loads the
// R = SH*(PY-1) + DH*(KH-1) + 1 input rows x L = SW*(PX-1) + DW*(KW-1) + 1 columns the block reads once, so
// each input value serves up to KH*KW taps. The channel is the workgroup's, so the KH*KW weights are loaded
// once per subgroup (8 per load) and handed out by subgroupBroadcast. Needs subgroups of at least 8; lanes past
// the end run on clamped indices and store nothing. Row and column sources (zero or reflect padding) are
// computed once. Workgroup: 64 pixel blocks (flattened over n and the block grid) of one output channel.
// Grid: x (and z when over 65535) = pixel blocks / 64, y = OC. Used when R, L <= 32 and KH*KW <= 64
// (the 3x3 depthwise convolutions of inverted-residual blocks). With flip it reads the kernel rotated by 180
// degrees: the gradient wrt x of a stride-1 depthwise convolution (x is then dy and y dx).
// x (N,IC,H,W), w (OC,1,KH,KW), b (OC) (w again without bias), y (N,OC,OH,OW).
layout(local_size_x = 64) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SH = 1; // stride
layout(constant_id = 3) const int SW = 1;
layout(constant_id = 4) const int DH = 1; // dilation
layout(constant_id = 5) const int DW = 1;
layout(constant_id = 6) const int PY = 4; // output rows per invocation
layout(constant_id = 7) const int PX = 8; // output columns per invocation
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float b[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;

const int R = SH * (PY - 1) + DH * (KH - 1) + 1;
const int L = SW * (PX - 1) + DW * (KW - 1) + 1;
const int TAPS = KH * KW;
const int WLOADS = (TAPS + 7) / 8;

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

void main() {
  int oc = int(gl_WorkGroupID.y);
  int ic = oc / (p.yshape.y / p.groups);
  int nbx = (p.yshape.w + PX - 1) / PX, nby = (p.yshape.z + PY - 1) / PY;
  int lin = int((gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x);
  int bx = lin % nbx, rest = lin / nbx;
  int by = rest % nby, n = rest / nby;
  bool live = n < p.yshape.x;
  n = min(n, p.yshape.x - 1);
  int oh0 = by * PY, ow0 = bx * PX;

  // Weights: lane l loads taps l, l+8, ...; tap k is broadcast from lane k % 8 of load k / 8.
  float wl[WLOADS];
  [[unroll]] for (int k = 0; k < WLOADS; k++)
  {
    int tap = min(k * 8 + int(gl_SubgroupInvocationID % 8u), TAPS - 1);
    wl[k] = w[uint(oc * TAPS + (p.flip != 0 ? TAPS - 1 - tap : tap))];
  }
  float wt[TAPS];
#define BCAST(j) if (k * 8 + j < TAPS) wt[k * 8 + j] = subgroupBroadcast(wl[k], j);
  [[unroll]] for (int k = 0; k < WLOADS; k++) { BCAST(0) BCAST(1) BCAST(2) BCAST(3) BCAST(4) BCAST(5) BCAST(6) BCAST(7) }
#undef BCAST

  int cols[L];
  bool col_ok[L];
  [[unroll]] for (int t = 0; t < L; t++) {
    int iw = source(ow0 * SW - p.pad.y + t, p.xshape.w);
    col_ok[t] = iw >= 0;
    cols[t] = max(iw, 0);
  }
  float acc[PY][PX];
  [[unroll]] for (int r = 0; r < PY; r++)
    [[unroll]] for (int q = 0; q < PX; q++) acc[r][q] = 0.0;

  uint xo = uint((n * p.xshape.y + ic) * p.xshape.z) * uint(p.xshape.w);
  [[unroll]] for (int i = 0; i < R; i++) {
    int ih = source(oh0 * SH - p.pad.x + i, p.xshape.z);
    bool row_ok = ih >= 0;
    uint xr = xo + uint(max(ih, 0) * p.xshape.w);
    float seg[L];
    [[unroll]] for (int t = 0; t < L; t++) {
      float v = x[xr + uint(cols[t])];
      seg[t] = row_ok && col_ok[t] ? v : 0.0;
    }
    // Output row r reads this input row with kernel row kh = (i - r*SH) / DH when that divides and is in range.
    // Computing kh (not testing every kh) keeps the unrolled code before folding small: the driver's compile
    // time (lavapipe's start-up) grows with it.
    [[unroll]] for (int r = 0; r < PY; r++) {
      int d = i - r * SH;
      if (d >= 0 && d % DH == 0 && d / DH < KH) {
        int kh = d / DH;
        [[unroll]] for (int kw = 0; kw < KW; kw++)
          [[unroll]] for (int q = 0; q < PX; q++) acc[r][q] += wt[kh * KW + kw] * seg[q * SW + kw * DW];
      }
    }
  }

  if (!live) return;
  float bias = p.has_bias != 0 ? b[oc] : 0.0;
  [[unroll]] for (int r = 0; r < PY; r++)
    if (oh0 + r < p.yshape.z) {
      uint yo = cel_offset(p.yshape, n, oc, oh0 + r, ow0);
      [[unroll]] for (int q = 0; q < PX; q++)
        if (ow0 + q < p.yshape.w) y[yo + uint(q)] = acc[r][q] + bias;
    }
}
