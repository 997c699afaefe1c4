// Shared definitions for every compute shader. Include with
//   #extension GL_GOOGLE_include_directive : require
//   #include "common.glsl"
// Tensors are NCHW fp32 arrays bound as std430 storage buffers at bindings 0..n-1; parameters come in a
// push-constant block mirrored by a C struct (pinned with _Static_assert in the op's .c file).

// llvmpipe (lavapipe) counts the loop trips of each invocation, all loops together, and once 65535 have run it
// ends every loop early (its guard against endless loops), silently. No invocation may loop more often than that:
// unrolled loops do not count, so long loops unroll part of their stride, or the work is split across
// dispatches (conv2d_bwd_weight_blocked.comp). A tensor on lavapipe holds at most 2^25 floats (its storage
// buffer range is 128 MiB), so a loop striding by 256 through one tensor takes 4 strides per trip: at most
// 32768 trips.
const uint CEL_STRIDES_PER_TRIP = 4u;

// Compensated (Kahan) accumulation for the long per-invocation sums of the reductions: sum += v, with the
// rounding error carried in c (start both at 0). Declare sum and c `precise` (NoContraction): without it a
// compiler may fold the compensation away. With a plain running sum, the 82944 strides per invocation of a
// 4608x4608 plane left adain's style gradient 0.6% off (test-adain, seed 20261128, on lavapipe and an H200).
#define CEL_KAHAN_ADD(sum, c, v) { precise float y_ = (v) - (c); precise float t_ = (sum) + y_; c = (t_ - (sum)) - y_; sum = t_; }

// Linear invocation index of a 1-D dispatch split over x and y (cel_exec_dispatch_1d). A macro, not a function:
// gl_WorkGroupSize is (1, 1, 1) in code compiled before the shader's `layout(local_size_x = ...) in;` (as a
// function here it was, and every 1-D op skipped or overwrote elements past 65535 workgroups).
#define cel_linear_index() (gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// A dispatch over planes (cel_exec_dispatch_planes): the workgroup's plane (n * C + c), and the elements of the
// plane its invocation takes: for (uint j = CEL_PLANE_FIRST; j < hw; j += CEL_PLANE_STEP). An index into a
// plane costs no integer division per element, which llvmpipe runs lane by lane.
#define CEL_PLANE_INDEX (gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y)
#define CEL_PLANE_FIRST (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x)
#define CEL_PLANE_STEP (gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// Linear index of the workgroup in a 2-D grid of workgroups (one workgroup per output element).
uint cel_group_index() {
  return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}

// Offset of element (n, c, h, w) in a tensor of shape (N, C, H, W); broadcasting dims of size 1 read index 0.
uint cel_offset(ivec4 shape, int n, int c, int h, int w) {
  return uint(((n * shape.y + c) * shape.z + h) * shape.w + w);
}

uint cel_broadcast_offset(ivec4 shape, ivec4 idx) {
  ivec4 i = ivec4(shape.x == 1 ? 0 : idx.x, shape.y == 1 ? 0 : idx.y, shape.z == 1 ? 0 : idx.z,
                  shape.w == 1 ? 0 : idx.w);
  return cel_offset(shape, i.x, i.y, i.z, i.w);
}

ivec4 cel_unravel(ivec4 shape, uint i) {
  int w = int(i % uint(shape.w)); i /= uint(shape.w);
  int h = int(i % uint(shape.z)); i /= uint(shape.z);
  int c = int(i % uint(shape.y)); i /= uint(shape.y);
  return ivec4(int(i), c, h, w);
}
