// The body of winograd_output.comp and winograd_output_texel.comp (see the first): they declare the bindings and
// LOAD_M4 (vec4) to read m.
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
  ivec4 yshape;
  int tw, ct, tp, t0; // tiles per row, the chunk's tiles, tiles per chunk in m, the chunk's first
  int has_bias;
} p;
// An activation fused after the convolution (cel_conv2d_fuse_act): 0 none, 1 relu, 2 leaky relu of slope ALPHA.
layout(constant_id = 0) const int ACT = 0;
layout(constant_id = 1) const float ALPHA = 0.0;
#include "fused_act.glsl"

void main() {
  uint i = cel_linear_index();
  int oc_count = p.yshape.y, quads = (p.ct + 3) / 4;
  if (i >= uint(p.yshape.x * oc_count * quads)) return;
  int j0 = int(i % uint(quads)) * 4, rest = int(i / uint(quads));
  int oc = rest % oc_count, n = rest / oc_count;
  uint mo = uint((n * 36 * oc_count + oc) * p.tp + j0) / 4u, kstride = uint(oc_count * p.tp) / 4u;
  vec4 m[36];
  [[unroll]] for (int k = 0; k < 36; k++) m[k] = LOAD_M4(mo + uint(k) * kstride);
  float bias = p.has_bias != 0 ? b[oc] : 0.0;
  uint yo = cel_offset(p.yshape, n, oc, 0, 0);
  bool rows4 = p.yshape.w % 4 == 0; // tile rows are aligned vec4 inside the row or wholly past it
  [[unroll]] for (int q = 0; q < 4; q++) {
    if (j0 + q >= p.ct) break;
    int t = p.t0 + j0 + q;
    float e[WM][WT]; // A^T m, column by column
    [[unroll]] for (int c = 0; c < WT; c++) {
      float col[WT], o[WM];
      [[unroll]] for (int a = 0; a < WT; a++) col[a] = m[a * WT + c][q];
      wino_at(col, o);
      [[unroll]] for (int a = 0; a < WM; a++) e[a][c] = o[a];
    }
    int h0 = t / p.tw * WM, w0 = t % p.tw * WM;
    [[unroll]] for (int a = 0; a < WM; a++) {
      float o[WM];
      wino_at(e[a], o);
      if (h0 + a < p.yshape.z) {
        uint ro = yo + uint((h0 + a) * p.yshape.w + w0);
        if (rows4) {
          if (w0 < p.yshape.w) y4[ro / 4u] = act4(vec4(o[0], o[1], o[2], o[3]) + bias);
        } else {
          [[unroll]] for (int c = 0; c < WM; c++)
            if (w0 + c < p.yshape.w) y[ro + uint(c)] = act1(o[c] + bias);
        }
      }
    }
  }
}
