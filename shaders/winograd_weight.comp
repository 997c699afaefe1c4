#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "winograd.glsl"
// Winograd F(4x4, 3x3) kernel transform: u = G g G^T (6x6) of each (oc, ic) kernel g of w (OC, IC, 3, 3), laid out
// as the weights of a 1x1 convolution with 36 groups, u (36*OC, IC, 1, 1): element k of (oc, ic)'s transform at
// (k * OC + oc) * IC + ic. With flip, the kernels of the gradient wrt x of a convolution with w (IC, OC, 3, 3):
// g is w's (ic, oc) kernel rotated by 180 degrees. One invocation per (oc, ic).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer W { float w[]; };
layout(std430, binding = 1) writeonly buffer U { float u[]; };
// packed: u in the layout conv_weight_pack.comp gives the products' texel variant (36 groups of OC x IC, blocks of 8
// output channels 8 floats apart: u[((pos * ceil(OC/8) + oc/8) * IC + ic) * 8 + oc % 8], zeros past OC); the
// invocations then cover OC rounded up to 8.
layout(push_constant) uniform P { int oc; int ic; int flip; int packed; } p;

void main() {
  uint i = cel_linear_index();
  int ocs = p.packed != 0 ? (p.oc + 7) / 8 * 8 : p.oc;
  if (i >= uint(ocs * p.ic)) return;
  int oc = int(i) / p.ic, ic = int(i) % p.ic;
  bool live = oc < p.oc;
  int ocr = min(oc, p.oc - 1);
  float t[WT][3]; // G g
  [[unroll]] for (int c = 0; c < 3; c++) {
    float col[3], o[WT];
    [[unroll]] for (int r = 0; r < 3; r++)
      col[r] = !live ? 0.0 : p.flip != 0 ? w[uint(ic * p.oc + ocr) * 9u + uint(8 - r * 3 - c)]
                                         : w[uint(ocr * p.ic + ic) * 9u + uint(r * 3 + c)];
    wino_g(col, o);
    [[unroll]] for (int r = 0; r < WT; r++) t[r][c] = o[r];
  }
  [[unroll]] for (int r = 0; r < WT; r++) {
    float o[WT];
    wino_g(t[r], o);
    [[unroll]] for (int c = 0; c < WT; c++) {
      int pos = r * WT + c;
      uint at = p.packed != 0 ? uint(((pos * (ocs / 8) + oc / 8) * p.ic + ic) * 8 + oc % 8)
                              : uint((pos * p.oc + oc) * p.ic + ic);
      u[at] = o[c];
    }
  }
}
