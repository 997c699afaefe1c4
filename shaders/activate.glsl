// The body of activate.comp and activate_texel.comp (see the first): they declare the bindings (x at 0, y at 1)
// and the LOAD_X macro that reads x.
layout(local_size_x = 256) in;
layout(push_constant) uniform P { uint count; uint act; float alpha; } p;
// tanh and sigmoid that stay finite for any x: GLSL's tanh is only "inherited from sinh/cosh", which a
// driver may evaluate as inf / inf for large |x|. Near 0 a Taylor series keeps the relative precision
// that 1 - exp(-2|x|) would cancel away.
float activate_tanh(float v) {
  float v2 = v * v;
  if (v2 < 0.015625) return v * (1.0 + v2 * (-1.0 / 3.0 + v2 * (2.0 / 15.0 + v2 * (-17.0 / 315.0 + v2 * (62.0 / 2835.0)))));
  float t = exp(-2.0 * abs(v));
  float r = (1.0 - t) / (1.0 + t);
  return v < 0.0 ? -r : r;
}
float activate_sigmoid(float v) {
  return 1.0 / (1.0 + exp(-v));
}
void main() {
  uint i = cel_linear_index();
  if (i >= p.count) return;
  float v = LOAD_X(i);
  float r;
  if (p.act == 0u) r = max(v, 0.0);
  else if (p.act == 1u) r = v > 0.0 ? v : p.alpha * v;
  else if (p.act == 2u) r = activate_tanh(v);
  else r = activate_sigmoid(v);
  y[i] = r;
}
