// The body of conv2d_bwd_data_blocked.comp and conv2d_bwd_data_blocked_texel.comp (see the first): they declare the bindings and the
// LOAD_ macros that read them; with WPACK defined (the texel variant) LOAD_WP4 reads w packed by
// conv_weight_pack.comp (transposed: the workgroup's ICB input channels of a tap as two vec4), instead of each lane
// loading one channel's weight for subgroupBroadcast (see conv2d_fwd_blocked.glsl).
layout(local_size_x = 64) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SW = 1;        // stride along w
layout(constant_id = 3) const int DW = 1;        // dilation along w
layout(constant_id = 4) const int PX = 8;        // dx columns per invocation, a multiple of SW
layout(constant_id = 5) const int PLM = 0;       // pad_left mod SW (in 0..SW-1)
layout(constant_id = 6) const int UNROLL_KH = 1; // unroll the kernel rows (small kernels)
layout(constant_id = 7) const int SH = 1;        // stride along h (a constant: the division is by it)
// WIN4: dy's rows read as aligned vec4 (stride 1, OW a multiple of 4, PX of 4): the L columns a block reads start
// at R = (pad_left - DW*(KW-1)) mod 4 within their first vec4, so (R + L + 3) / 4 loads (clamped into the row;
// the columns outside it are zero padding anyway) cover them. On lavapipe a vec4 load costs about one float
// load: a 3x3 kernel row takes 3 loads for 8 pixels instead of 10.
layout(constant_id = 8) const int WIN4 = 0;
layout(constant_id = 9) const int R = 0;
// dx channels per invocation: 8, or 4 where a group has at most 4 (a transposed convolution to RGB: 3 of 4
// lanes' sums used instead of 3 of 8)
layout(constant_id = 10) const int ICB = 8;
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
} p;

// Floor division and remainder for the small constants below (a > -64*b).
int fdiv(int a, int b) { return (a + 64 * b) / b - 64; }
int fmod(int a, int b) { return a - b * fdiv(a, b); }
// (pixel q, tap kw) reads dy column ob + fdiv(PLM + q - kw*DW, SW) - E0 when fmod(...) == 0.
const int E0 = (PLM - (KW - 1) * DW + 64 * SW) / SW - 64;
const int L = (PLM + PX - 1) / SW - E0 + 1;

float acc[ICB][PX];
int cols[L];
bool col_ok[L];
int win0; // WIN4: the row's vec4 holding dy column ob - R

// The dy row (offset in its plane) that dx row ih reads through kernel row kh, and whether there is one.
bool dy_row(int kh, int ih, out uint row) {
  int th = ih + p.pad.x - kh * p.dilation.x; // = oh * SH
  int oh = th / SH;
  row = uint(clamp(oh, 0, p.yshape.z - 1) * p.yshape.w);
  return th >= 0 && th == oh * SH && oh < p.yshape.z;
}

// Adds the taps of kernel row kh, reading dy row yr (offset in the plane yo) where row_ok; wo: this lane's
// weights. Called in uniform control flow only where some lane of the subgroup has row_ok.
void kernel_row(int kh, uint yr, bool row_ok, uint yo, uint wo) { // wo: the lane's weights, or (WPACK) the block's
  float seg[L];
  if (WIN4 != 0) {
    uint r4 = (yo + yr) / 4u;
    int last = p.yshape.w / 4 - 1;
    [[unroll]] for (int m = 0; m < (R + L + 3) / 4; m++) {
      vec4 v = LOAD_DY4(r4 + uint(clamp(win0 + m, 0, last)));
      [[unroll]] for (int k = 0; k < 4; k++) {
        const int t = 4 * m + k - R;
        if (t >= 0 && t < L) seg[t] = row_ok && col_ok[t] ? v[k] : 0.0;
      }
    }
  } else {
    [[unroll]] for (int t = 0; t < L; t++) {
      float v = LOAD_DY(yo + yr + uint(cols[t]));
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
      [[unroll]] for (int q = 0; q < PX; q++)                                                               \
        if (fmod(PLM + q - kw * DW, SW) == 0) acc[j][q] += wj * seg[fdiv(PLM + q - kw * DW, SW) - E0];      \
    }
    TAP(0) TAP(1) TAP(2) TAP(3)
    if (ICB > 4) { TAP(4) TAP(5) TAP(6) TAP(7) }
#undef TAP
#undef WJ
  }
}

void main() {
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int blocks_per_group = (icg_count + ICB - 1) / ICB;
  int group = int(gl_WorkGroupID.y) / blocks_per_group;
  int icg0 = int(gl_WorkGroupID.y) % blocks_per_group * ICB;
  int ic0 = group * icg_count + icg0;

  int nbw = (p.xshape.w + PX - 1) / PX;
  int lin = int((gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x);
  int bw = lin % nbw, rest = lin / nbw;
  int ih = rest % p.xshape.z, n = rest / p.xshape.z;
  bool live = n < p.xshape.x;
  n = min(n, p.xshape.x - 1);
  int iw0 = bw * PX;

  int ob = (iw0 + p.pad.y - PLM) / SW + E0; // dy column of seg[0]
  [[unroll]] for (int t = 0; t < L; t++) {
    col_ok[t] = ob + t >= 0 && ob + t < p.yshape.w;
    cols[t] = clamp(ob + t, 0, p.yshape.w - 1);
  }
  win0 = (ob - R) >> 2; // ob - R is a multiple of 4 (may be negative)
  [[unroll]] for (int j = 0; j < ICB; j++)
    [[unroll]] for (int q = 0; q < PX; q++) acc[j][q] = 0.0;

  int taps = KH * KW;
#ifdef WPACK
  // the workgroup's block of packed weights: 2 vec4 per tap and output channel
  uint wstep = uint(2 * taps);
  uint wo = gl_WorkGroupID.y * uint(ocg_count * taps * 2);
#else
  // This lane loads the weights of input channel icg0 + lane % 8 of the group, clamped (unused past its end).
  uint wstep = uint(icg_count * taps);
  uint wo = uint((group * ocg_count * icg_count + min(icg0 + int(gl_SubgroupInvocationID % 8u), icg_count - 1)) * taps);
#endif
  uint plane = uint(p.yshape.z * p.yshape.w);
  uint yo = uint(n * p.yshape.y + group * ocg_count) * plane;
  if (UNROLL_KH != 0) {
    uint rows[KH];
    bool row_ok[KH], any_ok[KH];
    [[unroll]] for (int kh = 0; kh < KH; kh++) {
      row_ok[kh] = dy_row(kh, ih, rows[kh]);
      any_ok[kh] = subgroupAny(row_ok[kh]);
    }
    for (int oc = 0; oc < ocg_count; oc++, yo += plane, wo += wstep)
      [[unroll]] for (int kh = 0; kh < KH; kh++)
        if (any_ok[kh]) kernel_row(kh, rows[kh], row_ok[kh], yo, wo);
  } else {
    for (int oc = 0; oc < ocg_count; oc++, yo += plane, wo += wstep)
      [[dont_unroll]] for (int kh = 0; kh < KH; kh++) {
        uint row;
        bool row_ok = dy_row(kh, ih, row);
        if (subgroupAny(row_ok)) kernel_row(kh, row, row_ok, yo, wo);
      }
  }

  if (!live) return;
  [[unroll]] for (int j = 0; j < ICB; j++) {
    if (icg0 + j < icg_count) {
      uint xo = cel_offset(p.xshape, n, ic0 + j, ih, iw0);
      float bias = p.has_bias != 0 ? b[ic0 + j] : 0.0;
      [[unroll]] for (int q = 0; q < PX; q++)
        if (iw0 + q < p.xshape.w) dx[xo + uint(q)] = acc[j][q] + bias;
    }
  }
}
