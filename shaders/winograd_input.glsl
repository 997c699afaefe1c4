// The body of winograd_input.comp and winograd_input_texel.comp (see the first): they declare the bindings and
// LOAD_X (float) to read x.
layout(local_size_x = 64) in;
layout(push_constant) uniform P {
  ivec4 xshape;
  int tw, t, tp, t0; // tiles per row, tiles, tiles per chunk (a multiple of 8), the chunk's first
  int pad_top, pad_left, padded_h, padded_w; // padded extent: H + top + bottom, W + left + right
  int reflect;
} p;

// Row or column of x at padded position i (0 .. padded-1), or -1 for a zero.
int source(int i, int pad, int padded, int size) {
  if (i >= padded) return -1;
  i -= pad;
  if (p.reflect != 0) {
    i = abs(i);
    return i >= size ? 2 * (size - 1) - i : i;
  }
  return i >= 0 && i < size ? i : -1;
}

void main() {
  uint i = cel_linear_index();
  int ic_count = p.xshape.y, quads = p.tp / 4;
  if (i >= uint(p.xshape.x * ic_count * quads)) return;
  int j0 = int(i % uint(quads)) * 4, rest = int(i / uint(quads));
  int ic = rest % ic_count, n = rest / ic_count;
  uint xo = uint((n * ic_count + ic) * p.xshape.z) * uint(p.xshape.w);
  vec4 r[36]; // element k of the four tiles
  [[unroll]] for (int q = 0; q < 4; q++) {
    int t = p.t0 + j0 + q;
    float d[WT][WT];
    if (t < p.t) {
      int h0 = t / p.tw * WM, w0 = t % p.tw * WM;
      int cols[WT];
      [[unroll]] for (int c = 0; c < WT; c++) cols[c] = source(w0 + c, p.pad_left, p.padded_w, p.xshape.w);
      [[unroll]] for (int a = 0; a < WT; a++) {
        int ih = source(h0 + a, p.pad_top, p.padded_h, p.xshape.z);
        [[unroll]] for (int c = 0; c < WT; c++) {
          float v = LOAD_X(xo + uint(max(ih, 0) * p.xshape.w + max(cols[c], 0)));
          d[a][c] = ih >= 0 && cols[c] >= 0 ? v : 0.0;
        }
      }
    } else {
      [[unroll]] for (int a = 0; a < WT; a++)
        [[unroll]] for (int c = 0; c < WT; c++) d[a][c] = 0.0;
    }
    float e[WT][WT]; // B^T d, column by column
    [[unroll]] for (int c = 0; c < WT; c++) {
      float col[WT], o[WT];
      [[unroll]] for (int a = 0; a < WT; a++) col[a] = d[a][c];
      wino_bt(col, o);
      [[unroll]] for (int a = 0; a < WT; a++) e[a][c] = o[a];
    }
    [[unroll]] for (int a = 0; a < WT; a++) {
      float o[WT];
      wino_bt(e[a], o);
      [[unroll]] for (int c = 0; c < WT; c++) r[a * WT + c][q] = o[c];
    }
  }
  uint vo = uint((n * 36 * ic_count + ic) * p.tp + j0) / 4u, kstride = uint(ic_count * p.tp) / 4u;
  [[unroll]] for (int k = 0; k < 36; k++) v4[vo + uint(k) * kstride] = r[k];
}
