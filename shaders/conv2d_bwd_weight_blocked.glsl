// The body of conv2d_bwd_weight_blocked.comp and conv2d_bwd_weight_blocked_texel.comp (see the first): they declare the bindings and the
// LOAD_ macros that read them.
layout(local_size_x = 64) in;
layout(constant_id = 0) const int KH = 3;
layout(constant_id = 1) const int KW = 3;
layout(constant_id = 2) const int SW = 1; // stride along w
layout(constant_id = 3) const int DW = 1; // dilation along w
layout(constant_id = 4) const int PX = 4; // output pixels per block
layout(constant_id = 5) const int KT = 3; // kernel rows per tile
layout(constant_id = 6) const int ICL = 1; // input channels per lane
// VEC4_ROWS: x's columns PAD_L .. PAD_L+PX-1 of a block read as vec4 (conditions as conv2d_fwd_blocked.comp's);
// DY4: dy's PX pixels read as vec4 (OW a multiple of 4, PX 4). On lavapipe a vec4 load costs about one float load.
layout(constant_id = 7) const int VEC4_ROWS = 0;
layout(constant_id = 8) const int PAD_L = 0;
layout(constant_id = 9) const int DY4 = 0;
// Lanes work in groups of 8 (lane = invocation % 8 of its subgroup) that share a block of pixels: a whole
// subgroup on lavapipe, which hands dy around by subgroupBroadcast; with SHUFFLE, subgroups of 16 to 64 hold
// several groups, and subgroupShuffle reads within the lane's own group.
layout(constant_id = 10) const int SHUFFLE = 0;
// With DY_DIRECT defined (the texel variant, for lavapipe) every lane reads the 8 channels' dy itself instead.
layout(push_constant) uniform P {
  ivec4 xshape; ivec4 yshape;
  ivec2 kernel; ivec2 stride; ivec2 dilation; ivec2 pad; // (h, w); pad is (top, left)
  int groups; int reflect; int has_bias; uint count;
  int flip; // read the kernel rotated by 180 degrees (conv2d_fwd_depthwise.comp as a gradient wrt x)
  int block_begin; int block_end; int accumulate; // the pixel blocks summed here; add to dw (a later slice)
  float out_scale; // dw scaled by it (Gram matrices: core/ops/loss.c)
} p;

const int L = SW * (PX - 1) + DW * (KW - 1) + 1;
const int T = ICL * KT * KW; // sums per (lane, output channel): [input channel][kernel row][tap]
// Blocks between flushes to shared memory: lavapipe stores to shared memory lane by lane, so flushes cost; a
// register chain then sums 64 * PX products (training profile, 128x128 batch 2, four alternated pairs: weight
// gradient 1385 ms with 16, 1178 ms with 64; 2150 ms with 4).
const int FLUSH = 64;
shared float partial[8 * 8 * 8 * T]; // [group of 8 lanes][oc][lane][T]

// Input row (or column) at unpadded position i; -1 for a zero of the padding.
int source(int i, int size) {
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

float acc[8][T];

// Adds the products of the block of PX pixels of row oh of image n from column ow0 on for the lane's channels: dy
// of output channels oc0 .. oc0+7 (below oc_end; lane j loads my_oc's and broadcasts it, or with DY_DIRECT each
// lane loads all 8), x of input channels first_ic + 8*i of the group from kernel row kh0 on. A block that is not
// live (past the slice's end) adds zeros: every group of the workgroup runs the same number of blocks, so no lane
// leaves the loop while others of its subgroup still shuffle.
void add_block(bool live, int n, int oh, int ow0, int group, int first_ic, int my_oc, int oc0, int oc_end, int kh0) {
  int icg_count = p.xshape.y / p.groups;
  float d[8][PX];
#ifdef DY_DIRECT
  // dy of the 8 output channels at the PX pixels (zero past the row's end): every lane reads them (the same
  // addresses across its group of 8); on lavapipe the 32 subgroupBroadcasts of a block cost more than the loads
  // (a 64 -> 64 3x3 weight gradient took 1.4x the time)
  uint plane = uint(p.yshape.z * p.yshape.w);
  uint y0 = uint(n * p.yshape.y + oc0) * plane + uint(oh * p.yshape.w + ow0);
  [[unroll]] for (int j = 0; j < 8; j++) {
    uint yj = y0 + uint(min(j, oc_end - 1 - oc0)) * plane;
    if (DY4 != 0) {
      [[unroll]] for (int m = 0; m < PX / 4; m++) {
        vec4 v = LOAD_DY4(yj / 4u + uint(m));
        [[unroll]] for (int k = 0; k < 4; k++) d[j][4 * m + k] = live ? v[k] : 0.0;
      }
    } else {
      [[unroll]] for (int q = 0; q < PX; q++) {
        float v = LOAD_DY(yj + uint(min(q, p.yshape.w - 1 - ow0)));
        d[j][q] = live && ow0 + q < p.yshape.w ? v : 0.0;
      }
    }
  }
#else
  // dy of the 8 output channels at the PX pixels (zero past the row's end), broadcast from lanes 0..7
  uint yo = uint(n * p.yshape.y + my_oc) * uint(p.yshape.z * p.yshape.w) + uint(oh * p.yshape.w + ow0);
  float dl[PX];
  if (DY4 != 0) {
    [[unroll]] for (int m = 0; m < PX / 4; m++) {
      vec4 v = LOAD_DY4(yo / 4u + uint(m));
      [[unroll]] for (int k = 0; k < 4; k++) dl[4 * m + k] = live ? v[k] : 0.0;
    }
  } else {
    [[unroll]] for (int q = 0; q < PX; q++) {
      float v = LOAD_DY(yo + uint(min(q, p.yshape.w - 1 - ow0)));
      dl[q] = live && ow0 + q < p.yshape.w ? v : 0.0;
    }
  }
  [[unroll]] for (int q = 0; q < PX; q++) {
#define BC(j) if (SHUFFLE != 0) d[j][q] = subgroupShuffle(dl[q], (gl_SubgroupInvocationID & ~7u) | uint(j)); else d[j][q] = subgroupBroadcast(dl[q], j);
    BC(0) BC(1) BC(2) BC(3) BC(4) BC(5) BC(6) BC(7)
#undef BC
  }
#endif
  int cols[L];
  bool col_ok[L];
  [[unroll]] for (int t = 0; t < L; t++) {
    int iw = source(ow0 * SW - p.pad.y + t, p.xshape.w);
    col_ok[t] = iw >= 0;
    cols[t] = max(iw, 0);
  }
  [[unroll]] for (int kt = 0; kt < KT; kt++) {
    int ih = source(oh * p.stride.x - p.pad.x + (kh0 + kt) * p.dilation.x, p.xshape.z);
    bool row_ok = ih >= 0 && kh0 + kt < KH;
    [[unroll]] for (int i = 0; i < ICL; i++) {
      int ic = group * icg_count + min(first_ic + 8 * i, icg_count - 1);
      uint xr = uint((n * p.xshape.y + ic) * p.xshape.z + max(ih, 0)) * uint(p.xshape.w);
      float seg[L];
      if (VEC4_ROWS != 0) {
        uint v0 = (xr + uint(cols[PAD_L])) / 4u; // cols[PAD_L] is ow0
        [[unroll]] for (int m = 0; m < PX / 4; m++) {
          vec4 v = LOAD_X4(v0 + uint(m));
          [[unroll]] for (int k = 0; k < 4; k++) seg[PAD_L + 4 * m + k] = row_ok ? v[k] : 0.0;
        }
      }
      [[unroll]] for (int t = 0; t < L; t++) {
        if (VEC4_ROWS == 0 || t < PAD_L || t >= PAD_L + PX) {
          float v = LOAD_X(xr + uint(cols[t]));
          seg[t] = row_ok && col_ok[t] ? v : 0.0;
        }
      }
      [[unroll]] for (int kw = 0; kw < KW; kw++)
        [[unroll]] for (int j = 0; j < 8; j++)
          [[unroll]] for (int q = 0; q < PX; q++) acc[j][(i * KT + kt) * KW + kw] += d[j][q] * seg[q * SW + kw * DW];
    }
  }
}

void main() {
  int icg_count = p.xshape.y / p.groups, ocg_count = p.yshape.y / p.groups;
  int oc_blocks = (ocg_count + 7) / 8, ic_blocks = (icg_count + 8 * ICL - 1) / (8 * ICL), kh_blocks = (KH + KT - 1) / KT;
  int tile = int(gl_WorkGroupID.x);
  int khb = tile % kh_blocks; tile /= kh_blocks;
  int icb = tile % ic_blocks; tile /= ic_blocks;
  int ocb = tile % oc_blocks;
  int group = tile / oc_blocks;
  // the group of 8 (sg, 0..7 in the workgroup of 64) and the lane in it
  int lane = int(gl_SubgroupInvocationID % 8u), sg = int(gl_SubgroupID * (gl_SubgroupSize / 8u) + gl_SubgroupInvocationID / 8u);
  int oc0 = group * ocg_count + ocb * 8, oc_end = (group + 1) * ocg_count;
  int first_ic = icb * 8 * ICL + lane; // the lane's input channels in the group: first_ic + 8*i, i < ICL
  int my_oc = min(oc0 + lane, oc_end - 1); // the dy channel this lane loads
  int kh0 = khb * KT;

  [[unroll]] for (int j = 0; j < 8; j++)
    [[unroll]] for (int t = 0; t < T; t++) {
      acc[j][t] = 0.0;
      partial[((sg * 8 + j) * 8 + lane) * T + t] = 0.0;
    }
  // llvmpipe predicates branches (both sides run), so the flush follows a loop of FLUSH blocks, not an if.
  // this dispatch's slice of the N*OH*ceil(OW/PX) blocks (the C side keeps the loop trips under llvmpipe's cap)
  // each group of 8 lanes sums a contiguous run of the slice's blocks, stepping (block column, row, image)
  // without a division per block; the runs have one length (a group past the slice's end adds zeros)
  int nbw = (p.yshape.w + PX - 1) / PX;
  int per = (p.block_end - p.block_begin + 7) / 8;
  int blk = p.block_begin + sg * per, last = min(blk + per, p.block_end);
  int b1 = min(blk, p.block_end - 1);
  int bw = b1 % nbw, rest = b1 / nbw;
  int oh = rest % p.yshape.z, n = rest / p.yshape.z;
  for (int done = 0; done < per;) {
    for (int k = 0; k < FLUSH && done < per; k++, done++, blk++) {
      add_block(blk < last, n, oh, bw * PX, group, first_ic, my_oc, oc0, oc_end, kh0);
      bw++;
      if (bw == nbw) { bw = 0; oh++; }
      if (oh == p.yshape.z) { oh = 0; n++; }
      n = min(n, p.yshape.x - 1);
    }
    [[unroll]] for (int j = 0; j < 8; j++)
      [[unroll]] for (int t = 0; t < T; t++) {
        partial[((sg * 8 + j) * 8 + lane) * T + t] += acc[j][t];
        acc[j][t] = 0.0;
      }
  }

  barrier();
  for (int e = int(gl_LocalInvocationID.x); e < 8 * 8 * T; e += 64) {
    int t = e % T, l = e / T % 8, j = e / T / 8;
    int i = t / (KT * KW), kh = kh0 + t / KW % KT, kw = t % KW;
    int oc = oc0 + j, icg = icb * 8 * ICL + l + 8 * i;
    if (kh < KH && oc < oc_end && icg < icg_count) {
      float s = 0.0;
      [[unroll]] for (int g = 0; g < 8; g++) s += partial[g * 8 * 8 * T + e];
      uint o = uint(((oc * icg_count + icg) * KH + kh) * KW + kw);
      s *= p.out_scale;
      dw[o] = p.accumulate != 0 ? dw[o] + s : s;
    }
  }
}
