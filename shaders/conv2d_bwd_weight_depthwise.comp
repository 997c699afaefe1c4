#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// dw of a depthwise y = conv2d (x, w) (one input channel per group: IC == groups, OC a multiple): one workgroup
// per output channel; its 64 invocations split the N*OH*(OW/PX) blocks of PX adjacent output pixels (or the
// dispatch's slice of them: a long reduction runs as several dispatches, the later ones adding to dw) and each
// accumulates all KH*KW taps, reading per kernel row the L = SW*(PX-1) + DW*(KW-1) + 1 input columns its
// pixels need (shared by the KW taps). The 64 partial sums of each tap meet in shared memory.
// Grid: x = OC. Used for KH*KW <= 64, L <= 32 (the 3x3 depthwise convolutions of inverted-residual blocks).
// dy (N,OC,OH,OW), x (N,IC,H,W), dw (OC,1,KH,KW).
layout(local_size_x = 64) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SW = 1; // stride along w
layout(constant_id = 3) const int DW = 1; // dilation along w
layout(constant_id = 4) const int PX = 8; // output pixels per block
layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) buffer DW_ { float dw[]; };
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
  int block_begin; int block_end; int accumulate; // the pixel blocks summed here; add to dw (a later slice)
} p;

const int L = SW * (PX - 1) + DW * (KW - 1) + 1;
const int TAPS = KH * KW;
const int FLUSH = 16;
shared float partial[64 * TAPS];

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

float acc[TAPS];

// Adds the products of block blk (PX pixels of one output row of channel oc) to acc.
void add_block(int blk, int oc, int ic) {
  int nbw = (p.yshape.w + PX - 1) / PX;
  int bw = blk % nbw, rest = blk / nbw;
  int oh = rest % p.yshape.z, n = rest / p.yshape.z;
  int ow0 = bw * PX;
  uint yo = cel_offset(p.yshape, n, oc, oh, ow0);
  float d[PX];
  [[unroll]] for (int q = 0; q < PX; q++) {
    float v = dy[yo + uint(min(q, p.yshape.w - 1 - ow0))];
    d[q] = ow0 + q < p.yshape.w ? v : 0.0;
  }
  int cols[L];
  bool col_ok[L];
  [[unroll]] for (int t = 0; t < L; t++) {
    int iw = source(ow0 * SW - p.pad.y + t, p.xshape.w);
    col_ok[t] = iw >= 0;
    cols[t] = max(iw, 0);
  }
  uint xo = cel_offset(p.xshape, n, ic, 0, 0);
  [[unroll]] for (int kh = 0; kh < KH; kh++) {
    int ih = source(oh * p.stride.x - p.pad.x + kh * p.dilation.x, p.xshape.z);
    bool row_ok = ih >= 0;
    uint xr = xo + uint(max(ih, 0) * p.xshape.w);
    float seg[L];
    [[unroll]] for (int t = 0; t < L; t++) {
      float v = x[xr + uint(cols[t])];
      seg[t] = row_ok && col_ok[t] ? v : 0.0;
    }
    [[unroll]] for (int kw = 0; kw < KW; kw++)
      [[unroll]] for (int q = 0; q < PX; q++) acc[kh * KW + kw] += d[q] * seg[q * SW + kw * DW];
  }
}

void main() {
  int oc = int(gl_WorkGroupID.x), ic = oc / (p.yshape.y / p.groups);
  int me = int(gl_LocalInvocationID.x);
  float total[TAPS];
  [[unroll]] for (int t = 0; t < TAPS; t++) total[t] = acc[t] = 0.0;

  // this dispatch's slice of the N*OH*ceil(OW/PX) blocks (the C side keeps the loop trips under llvmpipe's
  // cap); every FLUSH blocks the sums move to `total` (shorter chains of fp32 additions)
  for (int blk = p.block_begin + me; blk < p.block_end;) {
    for (int k = 0; k < FLUSH && blk < p.block_end; k++, blk += 64) add_block(blk, oc, ic);
    [[unroll]] for (int t = 0; t < TAPS; t++) {
      total[t] += acc[t];
      acc[t] = 0.0;
    }
  }

  [[unroll]] for (int t = 0; t < TAPS; t++) partial[t * 64 + me] = total[t];
  barrier();
  for (int t = me; t < TAPS; t += 64) {
    float s = 0.0;
    for (int i = 0; i < 64; i++) s += partial[t * 64 + i];
    uint o = uint(oc * TAPS + t);
    dw[o] = p.accumulate != 0 ? dw[o] + s : s;
  }
}
