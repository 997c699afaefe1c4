#version 450
#extension GL_EXT_control_flow_attributes : require
// The device's fp32 FMA throughput, the limit benchmarks compare with (core/peak.c, `celgan bench --fma`): each
// invocation runs CHAINS independent chains of vec4 fused multiply-adds (4 FMAs, 8 FLOP each), 8 per round for
// p.rounds rounds, and writes their sum so nothing is optimized away. a and b come from push constants so the
// compiler cannot fold the chains. The best CHAINS is device-specific (enough to hide FMA latency, few enough
// to stay in registers: lavapipe runs 8 lanes per AVX2 register and has 16 of them), so several are measured.
// y (invocations).
layout(local_size_x = 64) in;
layout(constant_id = 0) const int CHAINS = 4;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { float a; float b; int rounds; } p;

void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  vec4 acc[CHAINS];
  [[unroll]] for (int c = 0; c < CHAINS; c++) acc[c] = vec4(float(i) * 1e-9 + float(c), 1.0, 2.0, 3.0);
  vec4 a = vec4(p.a), b = vec4(p.b);
  [[dont_unroll]] for (int r = 0; r < p.rounds; r++)
    [[unroll]] for (int k = 0; k < 8; k++)
      [[unroll]] for (int c = 0; c < CHAINS; c++) acc[c] = fma(acc[c], a, b);
  vec4 s = vec4(0.0);
  [[unroll]] for (int c = 0; c < CHAINS; c++) s += acc[c];
  y[i] = s.x + s.y + s.z + s.w;
}
