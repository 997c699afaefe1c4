// The body of conv2d_fwd_blocked.comp and conv2d_fwd_blocked_texel.comp (see the first): they declare the
// bindings (y also as vec4: y4) and LOAD_X (float), LOAD_X4 (vec4) and LOAD_W (float) to read x and w; or, with
// WPACK defined (the texel variant), LOAD_WP4 (vec4) reading w packed by conv_weight_pack.comp: an invocation
// reads its 8 output channels' tap as two vec4 at an address the subgroup shares, where each lane otherwise
// loads one channel's and hands it to the others by subgroupBroadcast (on lavapipe, 8 broadcasts cost more than
// the tap's 64 FMAs: a 64 -> 64 3x3 convolution took 1.6-2x the time).
layout(local_size_x = 64) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SW = 1;        // stride along w
layout(constant_id = 3) const int DW = 1;        // dilation along w
layout(constant_id = 4) const int PX = 8;        // output pixels per invocation
layout(constant_id = 5) const int UNROLL_KH = 1; // unroll the kernel rows (small kernels; big ones overflow the i-cache)
// Rows read 4 floats at a time (x4): stride 1 along w, W a multiple of PX and PX of 4, OW <= W, and
// 0 <= PAD_L (the left padding) <= DW*(KW-1). Then the columns PAD_L .. PAD_L+PX-1 of a block's L are x's
// ow0 .. ow0+PX-1, inside the row and on a multiple of 4 floats: PX/4 vec4 loads; the other DW*(KW-1) columns
// (the padding sides: reflect or zero) are read one by one. On lavapipe one vec4 load is one loop over the
// lanes instead of four: a 3x3 kernel row takes 2 + 2 loads for 8 pixels instead of 10.
layout(constant_id = 6) const int VEC4_ROWS = 0;
layout(constant_id = 7) const int PAD_L = 0;
// Results written 4 floats at a time through y4 (y's vec4 view): PX a multiple of 4 and OW of 4, so that a
// block's pixels split into aligned groups of 4 that are inside the row or past it whole. On lavapipe a store
// whose address is not a constant is a loop over the lanes: a quarter of them.
layout(constant_id = 8) const int VEC4_STORE = 0;
// An activation fused after the convolution (cel_conv2d_fuse_act): 0 none, 1 relu, 2 leaky relu of slope ALPHA.
layout(constant_id = 9) const int ACT = 0;
layout(constant_id = 10) const float ALPHA = 0.0;
#include "fused_act.glsl"
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;

const int OCB = 8;
const int L = SW * (PX - 1) + DW * (KW - 1) + 1;

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

float acc[OCB][PX];
int cols[L];
bool col_ok[L];

// Adds the taps of kernel row kh for the input channel whose plane starts at xo; wo: this lane's weights.
void kernel_row(int kh, int oh, uint xo, uint wo) { // wo: the lane's weights, or (WPACK) the block's packed vec4
  int ih = source(oh * p.stride.x - p.pad.x + kh * p.dilation.x, p.xshape.z);
  bool row_ok = ih >= 0;
  uint xr = xo + uint(max(ih, 0) * p.xshape.w);
  float seg[L];
  if (VEC4_ROWS != 0) {
    uint v0 = (xr + uint(cols[PAD_L])) / 4u; // cols[PAD_L] is ow0
    [[unroll]] for (int m = 0; m < PX / 4; m++) {
      vec4 v = LOAD_X4(v0 + uint(m));
      [[unroll]] for (int k = 0; k < 4; k++) seg[PAD_L + 4 * m + k] = row_ok ? v[k] : 0.0;
    }
    [[unroll]] for (int t = 0; t < L; t++) {
      if (t < PAD_L || t >= PAD_L + PX) {
        float v = LOAD_X(xr + uint(cols[t]));
        seg[t] = row_ok && col_ok[t] ? v : 0.0;
      }
    }
  } else {
    [[unroll]] for (int t = 0; t < L; t++) {
      float v = LOAD_X(xr + uint(cols[t]));
      seg[t] = row_ok && col_ok[t] ? v : 0.0;
    }
  }
  [[unroll]] for (int kw = 0; kw < KW; kw++) {
#ifdef WPACK
    vec4 wa = LOAD_WP4(wo + uint(2 * (kh * KW + kw))), wb = LOAD_WP4(wo + uint(2 * (kh * KW + kw) + 1));
#define WJ(j) (j < 4 ? wa[j & 3] : wb[j & 3])
#else
    float wl = LOAD_W(wo + uint(kh * KW + kw));
#define WJ(j) subgroupBroadcast(wl, j)
#endif
#define TAP(j) {                                                                                          \
      float wj = WJ(j);                                                                                     \
      [[unroll]] for (int q = 0; q < PX; q++) acc[j][q] += wj * seg[q * SW + kw * DW];                      \
    }
    TAP(0) TAP(1) TAP(2) TAP(3) TAP(4) TAP(5) TAP(6) TAP(7)
#undef TAP
#undef WJ
  }
}

void main() {
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int blocks_per_group = (ocg_count + OCB - 1) / OCB;
  int group = int(gl_WorkGroupID.y) / blocks_per_group;
  int oc0 = group * ocg_count + int(gl_WorkGroupID.y) % blocks_per_group * OCB;
  int oc_end = (group + 1) * ocg_count;

  int nbw = (p.yshape.w + PX - 1) / PX;
  int lin = int((gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x);
  int bw = lin % nbw, rest = lin / nbw;
  int oh = rest % p.yshape.z, n = rest / p.yshape.z;
  bool live = n < p.yshape.x;
  n = min(n, p.yshape.x - 1);
  int ow0 = bw * PX;

  [[unroll]] for (int t = 0; t < L; t++) {
    int iw = source(ow0 * SW - p.pad.y + t, p.xshape.w);
    col_ok[t] = iw >= 0;
    cols[t] = max(iw, 0);
  }
  [[unroll]] for (int j = 0; j < OCB; j++)
    [[unroll]] for (int q = 0; q < PX; q++) acc[j][q] = 0.0;

  int taps = KH * KW;
#ifdef WPACK
  // the workgroup's block of packed weights: 2 vec4 per tap and input channel
  uint wo = gl_WorkGroupID.y * uint(icg_count * taps * 2), wstep = uint(2 * taps);
#else
  // This lane loads the weights of channel oc0 + lane % 8, clamped into the group (unused past its end).
  uint wo = uint(min(oc0 + int(gl_SubgroupInvocationID % 8u), oc_end - 1) * icg_count * taps), wstep = uint(taps);
#endif
  uint plane = uint(p.xshape.z * p.xshape.w);
  uint xo = uint((n * p.xshape.y + group * icg_count) * p.xshape.z) * uint(p.xshape.w);
  int c = 0;
  if (KH * KW == 1) {
    // 1x1 (and Winograd's products): eight input channels per trip (on lavapipe 1.4x for 256 -> 256 at 32x32)
    for (; c + 8 <= icg_count; c += 8, xo += 8u * plane, wo += 8u * wstep)
      [[unroll]] for (int u = 0; u < 8; u++) kernel_row(0, oh, xo + uint(u) * plane, wo + uint(u) * wstep);
  }
  for (; c < icg_count; c++, xo += plane, wo += wstep) {
    if (UNROLL_KH != 0) {
      [[unroll]] for (int kh = 0; kh < KH; kh++) kernel_row(kh, oh, xo, wo);
    } else {
      [[dont_unroll]] for (int kh = 0; kh < KH; kh++) kernel_row(kh, oh, xo, wo);
    }
  }

  if (!live) return;
  [[unroll]] for (int j = 0; j < OCB; j++) {
    int oc = oc0 + j;
    if (oc < oc_end) {
      float bias = p.has_bias != 0 ? b[oc] : 0.0;
      uint yo = cel_offset(p.yshape, n, oc, oh, ow0);
      if (VEC4_STORE != 0) {
        [[unroll]] for (int m = 0; m < PX / 4; m++)
          if (ow0 + 4 * m < p.yshape.w)
            y4[yo / 4u + uint(m)] = act4(vec4(acc[j][4 * m], acc[j][4 * m + 1], acc[j][4 * m + 2], acc[j][4 * m + 3]) + bias);
      } else {
        [[unroll]] for (int q = 0; q < PX; q++)
          if (ow0 + q < p.yshape.w) y[yo + uint(q)] = act1(acc[j][q] + bias);
      }
    }
  }
}
