// An activation fused after the op that writes it (cel_conv2d_fuse_act, cel_norm_apply_fuse_act), as activate.glsl
// computes them: ACT 0 none, 1 relu, 2 leaky relu of slope ALPHA. The including shader declares ACT and ALPHA as
// specialization constants before including this.
float act1(float v) { return ACT == 1 ? max(v, 0.0) : ACT == 2 ? (v > 0.0 ? v : ALPHA * v) : v; }
vec4 act4(vec4 v) { return ACT == 1 ? max(v, 0.0) : ACT == 2 ? mix(ALPHA * v, v, greaterThan(v, vec4(0.0))) : v; }
