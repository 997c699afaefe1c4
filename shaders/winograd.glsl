// The three transforms of Winograd's F(4x4, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016): a 3x3 stride-1 convolution of a 6x6 input tile d with a kernel g is A^T [(G g G^T) . (B^T d B)] A,
// the 4x4 output tile, with 36 multiplications per tile and channel pair instead of 144. conv.c runs the
// products of all channel pairs as one 1x1 convolution with 36 groups (the blocked forward), between
// winograd_input.comp and winograd_output.comp; winograd_weight.comp transforms the kernel.
const int WT = 6; // input tile edge
const int WM = 4; // output tile edge

// B^T v for one column or row v of a 6x6 tile.
void wino_bt(in float v[WT], out float o[WT]) {
  o[0] = 4.0 * v[0] - 5.0 * v[2] + v[4];
  o[1] = -4.0 * (v[1] + v[2]) + v[3] + v[4];
  o[2] = 4.0 * (v[1] - v[2]) - v[3] + v[4];
  o[3] = 2.0 * (v[3] - v[1]) - v[2] + v[4];
  o[4] = 2.0 * (v[1] - v[3]) - v[2] + v[4];
  o[5] = 4.0 * v[1] - 5.0 * v[3] + v[5];
}

// G v for one column or row v of a 3x3 kernel.
void wino_g(in float v[3], out float o[WT]) {
  o[0] = 0.25 * v[0];
  o[1] = -(v[0] + v[1] + v[2]) / 6.0;
  o[2] = -(v[0] - v[1] + v[2]) / 6.0;
  o[3] = v[0] / 24.0 + v[1] / 12.0 + v[2] / 6.0;
  o[4] = v[0] / 24.0 - v[1] / 12.0 + v[2] / 6.0;
  o[5] = v[2];
}

// A^T v for one column or row v of a 6x6 product tile.
void wino_at(in float v[WT], out float o[WM]) {
  float s12 = v[1] + v[2], d12 = v[1] - v[2], s34 = v[3] + v[4], d34 = v[3] - v[4];
  o[0] = v[0] + s12 + s34;
  o[1] = d12 + 2.0 * d34;
  o[2] = s12 + 4.0 * s34;
  o[3] = d12 + 8.0 * d34 + v[5];
}
