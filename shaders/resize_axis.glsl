// The sampling of one axis of cel_resize, shared by resize.comp and resize_bwd.comp so that the backward
// re-evaluates exactly the forward's taps. Needs the specialization constant MODE (cel_resize_mode):
// 0 nearest, 1 bilinear (half-pixel, align_corners=False), 2 bilinear align_corners, 3 bilinear asymmetric.
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

// Weight of input i in output o.
float resize_weight(int o, int i, int in_size, float scale) {
  ResizeTaps t = resize_taps(o, in_size, scale);
  return (t.i0 == i ? t.l0 : 0.0) + (t.i1 == i ? t.l1 : 0.0);
}

// The outputs [x, y] whose taps can reach input i: src(o) in [i-1, i+1) for bilinear, [i, i+1) for
// nearest, inverted in float and widened by 2 for rounding (every o in it is re-evaluated exactly).
ivec2 resize_range(int i, int in_size, int out_size, float scale) {
  if (scale <= 0.0 || in_size == 1) return ivec2(0, out_size - 1);
  float lo = MODE == 0u ? float(i) : float(i - 1), hi = float(i + 1);
  if (MODE == 1u) {
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
