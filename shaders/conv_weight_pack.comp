#version 450
// Packs a convolution's weights w (OC, IC/groups, KH, KW) for the blocked kernels' texel-buffer variants
// (conv2d_fwd_blocked_texel.comp, conv2d_bwd_data_blocked_texel.comp): wp[group][block][b][tap][8], where a
// block holds BLK (8 or 4) channels of the dimension an invocation's sums run over (output channels forward, input
// channels for the gradient wrt x: transpose), b the other one, the channels of a block 8 floats apart
// (zeros past BLK and past the group's end). An invocation then reads the 8 channels of a tap as two vec4 at an
// address all lanes share, where on lavapipe handing them around by subgroupBroadcast cost half the kernel's time.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer W { float w[]; };
layout(std430, binding = 1) writeonly buffer WP { float wp[]; };
layout(push_constant) uniform P {
  int groups; int na; int nb; int taps; // na: the blocked channels per group; nb: the others per group
  int transpose; // 0: w[(group*na + a)][b][tap] (forward); 1: w[(group*nb + b)][a][tap] (gradient wrt x)
  int blk;       // channels per block: 8, or 4 (the first 4 of each 8 floats)
  uint count;    // floats of wp
} p;

void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  int j = int(i % 8u), r = int(i / 8u);
  int t = r % p.taps; r /= p.taps;
  int b = r % p.nb; r /= p.nb;
  int nblocks = (p.na + p.blk - 1) / p.blk;
  int blk = r % nblocks, group = r / nblocks;
  int a = blk * p.blk + j;
  float v = 0.0;
  if (j < p.blk && a < p.na) {
    int src = p.transpose == 0 ? ((group * p.na + a) * p.nb + b) * p.taps + t : ((group * p.nb + b) * p.na + a) * p.taps + t;
    v = w[src];
  }
  wp[i] = v;
}
