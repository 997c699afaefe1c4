// The sampling of one axis of cel_resize, shared by resize.comp and resize_bwd.comp so that the backward
// re-evaluates exactly the forward's taps. Needs the specialization constant MODE (cel_resize_mode):
// 0 nearest, 1 bilinear (half-pixel, align_corners=False), 2 bilinear align_corners, 3 bilinear asymmetric,
// 4 bicubic (half-pixel, A = -0.75, taps clamped to the edge: PyTorch bicubic align_corners=False).
// `scale` comes from the host as PyTorch computes it in float: in/out (modes 0, 1, 3) or
// (in-1)/(out-1) (mode 2, 0 when out == 1).

// Output index o reads inputs i0 and i1 with weights l0 and l1 (i0 == i1 at the last input; nearest: l1 = 0).
struct ResizeTaps { int i0; int i1; float l0; float l1; };

ResizeTaps resize_taps(int o, int in_size, float scale) {
  ResizeTaps t;
  if (MODE == 0u) {
    // PyTorch: min(floor(dst * scale), in - 1), product rounded to float
    precise float s = float(o) * scale;
    t.i0 = min(int(floor(s)), in_size - 1);
    t.i1 = t.i0;
    t.l0 = 1.0;
    t.l1 = 0.0;
    return t;
  }
  precise float src;
  if (MODE == 1u)
    src = max(fma(scale, float(o) + 0.5, -0.5), 0.0); // PyTorch 1.13 rounds scale*(o+0.5)-0.5 once
  else
    src = scale * float(o);
  t.i0 = min(int(floor(src)), in_size - 1);
  t.i1 = t.i0 < in_size - 1 ? t.i0 + 1 : t.i0;
  t.l1 = clamp(src - float(t.i0), 0.0, 1.0);
  t.l0 = 1.0 - t.l1;
  return t;
}

// Bicubic: output o reads inputs i[0..3] (clamped, so they may repeat) with weights l[0..3].
struct CubicTaps { int i[4]; float l[4]; };

CubicTaps cubic_taps(int o, int in_size, float scale) {
  CubicTaps t;
  precise float src = fma(scale, float(o) + 0.5, -0.5);
  float f = floor(src), x = src - f;
  const float A = -0.75;
  float x1 = x + 1.0, y = 1.0 - x;
  t.l[0] = ((A * x1 - 5.0 * A) * x1 + 8.0 * A) * x1 - 4.0 * A;
  t.l[1] = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
  t.l[2] = ((A + 2.0) * y - (A + 3.0)) * y * y + 1.0;
  t.l[3] = 1.0 - t.l[0] - t.l[1] - t.l[2];
  for (int k = 0; k < 4; k++)
    t.i[k] = clamp(int(f) - 1 + k, 0, in_size - 1);
  return t;
}

// Weight of input i in output o.
float resize_weight(int o, int i, int in_size, float scale) {
  if (MODE == 4u) {
    CubicTaps c = cubic_taps(o, in_size, scale);
    float s = 0.0;
    for (int k = 0; k < 4; k++)
      s += c.i[k] == i ? c.l[k] : 0.0;
    return s;
  }
  ResizeTaps t = resize_taps(o, in_size, scale);
  return (t.i0 == i ? t.l0 : 0.0) + (t.i1 == i ? t.l1 : 0.0);
}

// The outputs [x, y] whose taps can reach input i: src(o) in [i-1, i+1) for bilinear, [i, i+1) for
// nearest, [i-2, i+2) for bicubic, inverted in float and widened by 2 for rounding (every o in it is
// re-evaluated exactly). The first and last inputs also collect the clamped taps beyond the edge.
ivec2 resize_range(int i, int in_size, int out_size, float scale) {
  if (scale <= 0.0 || in_size == 1) return ivec2(0, out_size - 1);
  float lo = MODE == 0u ? float(i) : MODE == 4u ? float(i - 2) : float(i - 1), hi = MODE == 4u ? float(i + 2) : float(i + 1);
  if (MODE == 1u || MODE == 4u) {
    lo = (lo + 0.5) / scale - 0.5;
    hi = (hi + 0.5) / scale - 0.5;
  } else {
    lo /= scale;
    hi /= scale;
  }
  int a = i == 0 ? 0 : max(int(floor(lo)) - 2, 0);
  int b = i == in_size - 1 ? out_size - 1 : min(int(ceil(hi)) + 2, out_size - 1);
  return ivec2(a, b);
}
