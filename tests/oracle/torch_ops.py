#!/usr/bin/env python3
"""PyTorch oracle for libcelgan: builds small graphs through the public C API (ctypes) and compares the forward
output and the input gradients of every op with PyTorch.

    python3 tests/oracle/torch_ops.py [path/to/libcelgan.so]     (or CELGAN_LIB=path/to/libcelgan.so)

Output is TAP ('ok' / 'not ok' lines, the '1..N' plan last). An op whose family is not built into the library
(its symbol is missing, or the library says the op is not available) is reported per case as skipped, not failed.
Without torch the whole program is skipped. Values are compared as |got - want| <= tol * (1 + |want|), tol 1e-4
(CELGAN_ORACLE_TOL overrides); the device comes from CELGAN_TEST_DEVICE, validation from CELGAN_VALIDATION.

Reference conventions: resize is compared with F.interpolate (size=...) in float32, since which pixel 'nearest'
picks depends on PyTorch's float rounding; the TF1 asymmetric mode with a hand-written formula. Everything else is
compared with PyTorch in float64 on the same float32 inputs.
"""
import ctypes
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("1..0 # SKIP torch is not installed (Debian: python3-torch)")
    sys.exit(0)

# ---- TAP ------------------------------------------------------------------------------------------

_count = 0
_failed = 0


def tap(ok, name, directive=""):
    global _count, _failed
    _count += 1
    if not ok:
        _failed += 1
    print(f"{'ok' if ok else 'not ok'} {_count} - {name}{' # ' + directive if directive else ''}", flush=True)
    return ok


def diag(msg):
    for line in str(msg).splitlines():
        print(f"# {line}", flush=True)


# ---- the library ----------------------------------------------------------------------------------

CEL_OK = 0
CEL_ERROR_UNSUPPORTED = 6
CEL_NO_NODE = -1


class Shape(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("c", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32)]


class ContextOptions(ctypes.Structure):
    _fields_ = [("device", ctypes.c_char_p), ("memory_budget", ctypes.c_uint64),
                ("pipeline_cache_path", ctypes.c_char_p), ("validation", ctypes.c_bool)]


class Conv2dParams(ctypes.Structure):
    _fields_ = [("stride_h", ctypes.c_int32), ("stride_w", ctypes.c_int32),
                ("pad_top", ctypes.c_int32), ("pad_bottom", ctypes.c_int32),
                ("pad_left", ctypes.c_int32), ("pad_right", ctypes.c_int32),
                ("dilation_h", ctypes.c_int32), ("dilation_w", ctypes.c_int32),
                ("groups", ctypes.c_int32), ("padding_mode", ctypes.c_int)]


class ConvTranspose2dParams(ctypes.Structure):
    _fields_ = [("stride_h", ctypes.c_int32), ("stride_w", ctypes.c_int32),
                ("pad_h", ctypes.c_int32), ("pad_w", ctypes.c_int32),
                ("output_pad_h", ctypes.c_int32), ("output_pad_w", ctypes.c_int32),
                ("dilation_h", ctypes.c_int32), ("dilation_w", ctypes.c_int32),
                ("groups", ctypes.c_int32)]


P = ctypes.c_void_p
NODE = ctypes.c_int32
PNODE = ctypes.POINTER(ctypes.c_int32)
PFLOAT = ctypes.POINTER(ctypes.c_float)
ST = ctypes.c_int

# name: (restype, argtypes). The graph API is required; ops are looked up per case.
CORE_API = {
    "cel_status_string": (ctypes.c_char_p, [ST]),
    "cel_context_create": (ST, [ctypes.POINTER(ContextOptions), ctypes.POINTER(P)]),
    "cel_context_destroy": (None, [P]),
    "cel_context_last_error": (ctypes.c_char_p, [P]),
    "cel_context_validation_messages": (ctypes.c_uint32, [P]),
    "cel_context_validation_log": (ctypes.c_char_p, [P]),
    "cel_graph_create": (ST, [P, ctypes.POINTER(P)]),
    "cel_graph_destroy": (None, [P]),
    "cel_graph_input": (ST, [P, ctypes.c_char_p, Shape, PNODE]),
    "cel_graph_set_requires_grad": (ST, [P, NODE, ctypes.c_bool]),
    "cel_graph_mark_output": (ST, [P, NODE]),
    "cel_graph_shape": (ST, [P, NODE, ctypes.POINTER(Shape)]),
    "cel_graph_backward": (ST, [P, NODE, NODE]),
    "cel_graph_grad": (NODE, [P, NODE]),
    "cel_graph_run": (ST, [P]),
    "cel_graph_set_data": (ST, [P, NODE, PFLOAT, ctypes.c_size_t]),
    "cel_graph_get_data": (ST, [P, NODE, PFLOAT, ctypes.c_size_t]),
}
OP_API = {
    "cel_resize": (ST, [P, NODE, ctypes.c_int32, ctypes.c_int32, ctypes.c_int, PNODE]),
    "cel_activate": (ST, [P, NODE, ctypes.c_int, ctypes.c_float, PNODE]),
    "cel_concat": (ST, [P, NODE, NODE, PNODE]),
    "cel_slice_channels": (ST, [P, NODE, ctypes.c_int32, ctypes.c_int32, PNODE]),
    "cel_conv2d": (ST, [P, NODE, NODE, NODE, ctypes.POINTER(Conv2dParams), PNODE]),
    "cel_conv_transpose2d": (ST, [P, NODE, NODE, NODE, ctypes.POINTER(ConvTranspose2dParams), PNODE]),
    "cel_instance_norm": (ST, [P, NODE, NODE, NODE, ctypes.c_float, PNODE]),
    "cel_layer_norm": (ST, [P, NODE, NODE, NODE, ctypes.c_float, PNODE]),
    "cel_adain": (ST, [P, NODE, NODE, ctypes.c_float, PNODE]),
    "cel_prelu": (ST, [P, NODE, NODE, PNODE]),
    "cel_pixel_shuffle": (ST, [P, NODE, ctypes.c_int32, ctypes.c_bool, PNODE]),
    "cel_pad": (ST, [P, NODE, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int, PNODE]),
}


class Skip(Exception):
    """The op is not in this build of the library."""


class CelError(Exception):
    pass


class Lib:
    def __init__(self, path):
        self.dll = ctypes.CDLL(path)
        for name, (res, args) in CORE_API.items():
            fn = getattr(self.dll, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name[4:], fn)
        opts = ContextOptions(device=(os.environ.get("CELGAN_TEST_DEVICE") or "").encode(), memory_budget=0,
                              pipeline_cache_path=b"", validation=False)
        self.ctx = P()
        st = self.context_create(ctypes.byref(opts), ctypes.byref(self.ctx))
        if st != CEL_OK:
            msg = self.error()
            if self.ctx:
                self.context_destroy(self.ctx)
            print(f"Bail out! cannot create a Vulkan context: {msg}")
            sys.exit(1)

    def op(self, name):
        fn = getattr(self.dll, name, None)
        if fn is None:
            raise Skip(f"{name} is not in this library")
        fn.restype, fn.argtypes = OP_API[name]
        return fn

    def error(self):
        return (self.context_last_error(self.ctx) or b"").decode(errors="replace")

    def check(self, st, what):
        if st == CEL_OK:
            return
        msg = self.error()
        if st == CEL_ERROR_UNSUPPORTED and "not available" in msg:
            raise Skip(msg)
        raise CelError(f"{what}: {self.status_string(st).decode()}: {msg}")


def run_graph(lib, inputs, build, dy_seed):
    """inputs: list of (name, float32 tensor, wants_grad). build (g, nodes) -> output node (ctypes c_int32).
    Runs forward and backward with a random seed gradient; returns (y, dy, {input index: gradient})."""
    g = P()
    lib.check(lib.graph_create(lib.ctx, ctypes.byref(g)), "graph_create")
    keep = []
    try:
        nodes = []
        for name, t, wants_grad in inputs:
            t = t.detach().to(torch.float32).contiguous()
            keep.append(t)
            node = NODE()
            lib.check(lib.graph_input(g, name.encode(), Shape(*t.shape), ctypes.byref(node)), f"input {name}")
            if wants_grad:
                lib.check(lib.graph_set_requires_grad(g, node, True), "set_requires_grad")
            lib.check(lib.graph_set_data(g, node, ctypes.cast(t.data_ptr(), PFLOAT), t.numel()), "set_data")
            nodes.append(node.value)
        y = build(g, nodes)
        shape = Shape()
        lib.check(lib.graph_shape(g, y, ctypes.byref(shape)), "graph_shape")
        ys = (shape.n, shape.c, shape.h, shape.w)
        lib.check(lib.graph_mark_output(g, y), "mark_output")
        dy = torch.rand(ys, generator=dy_seed, dtype=torch.float32) * 2 - 1
        keep.append(dy)
        seed = NODE()
        lib.check(lib.graph_input(g, b"dy", shape, ctypes.byref(seed)), "input dy")
        lib.check(lib.graph_set_data(g, seed, ctypes.cast(dy.data_ptr(), PFLOAT), dy.numel()), "set_data dy")
        lib.check(lib.graph_backward(g, y, seed), "backward")
        grad_nodes = {}
        for i, (name, _, wants_grad) in enumerate(inputs):
            if not wants_grad:
                continue
            gn = lib.graph_grad(g, nodes[i])
            if gn == CEL_NO_NODE:
                raise CelError(f"no gradient for {name}")
            lib.check(lib.graph_mark_output(g, gn), "mark_output grad")
            grad_nodes[i] = gn
        lib.check(lib.graph_run(g), "run")
        out = torch.empty(ys, dtype=torch.float32)
        lib.check(lib.graph_get_data(g, y, ctypes.cast(out.data_ptr(), PFLOAT), out.numel()), "get_data")
        grads = {}
        for i, gn in grad_nodes.items():
            t = torch.empty(inputs[i][1].shape, dtype=torch.float32)
            lib.check(lib.graph_get_data(g, gn, ctypes.cast(t.data_ptr(), PFLOAT), t.numel()), "get_data grad")
            grads[i] = t
        return out, dy, grads
    finally:
        lib.graph_destroy(g)


def compare(got, want, tol):
    """(ok, message) for |got - want| <= tol * (1 + |want|) elementwise."""
    want = want.detach().to(torch.float64)
    got = got.to(torch.float64)
    if got.shape != want.shape:
        return False, f"shape {tuple(got.shape)}, want {tuple(want.shape)}"
    if want.numel() == 0:
        return True, ""
    err = (got - want).abs() / (1 + want.abs())
    err[torch.isnan(got)] = float("inf")
    k = int(torch.argmax(err))
    worst = float(err.view(-1)[k])
    if worst <= tol:
        return True, ""
    return False, (f"worst at flat index {k}: got {float(got.view(-1)[k]):.8g}, want {float(want.view(-1)[k]):.8g} "
                   f"(scaled error {worst:.3g} > {tol:.3g})")


class Oracle:
    def __init__(self, lib, tol):
        self.lib = lib
        self.tol = tol
        self.gen = torch.Generator().manual_seed(int(os.environ.get("CELGAN_TEST_SEED", "20261127")))

    def rand(self, *shape, lo=-1.0, hi=1.0):
        return torch.rand(shape, generator=self.gen, dtype=torch.float32) * (hi - lo) + lo

    def case(self, name, inputs, build, reference, dtype=torch.float64):
        """One case: 'forward' and one 'backward/<input>' point per input that wants a gradient.
        reference (*tensors) -> output, evaluated by torch in `dtype` with autograd."""
        wanted = [i for i, (_, _, g) in enumerate(inputs) if g]
        points = ["forward"] + [f"backward/{inputs[i][0]}" for i in wanted]
        try:
            y, dy, grads = run_graph(self.lib, inputs, lambda g, nodes: build(self.lib, g, nodes), self.gen)
        except Skip as e:
            for p in points:
                tap(True, f"{name}/{p}", f"SKIP {e}")
            return
        except CelError as e:
            for p in points:
                tap(False, f"{name}/{p}")
            diag(f"  {e}")
            return
        ts = [t.detach().to(dtype).requires_grad_(g) for _, t, g in inputs]
        want = reference(*ts)
        ok, msg = compare(y, want, self.tol)
        if not tap(ok, f"{name}/forward"):
            diag("  " + msg)
        if not wanted:
            return
        tg = torch.autograd.grad(want, [ts[i] for i in wanted], dy.to(dtype), allow_unused=True)
        for i, gw in zip(wanted, tg):
            if gw is None:
                gw = torch.zeros_like(ts[i])
            ok, msg = compare(grads[i], gw, self.tol)
            if not tap(ok, f"{name}/backward/{inputs[i][0]}"):
                diag("  " + msg)


def out_node(lib, st, node, what):
    lib.check(st, what)
    return node.value


# ---- resize ---------------------------------------------------------------------------------------

RESIZE_MODES = ["nearest", "bilinear", "bilinear_align_corners", "bilinear_asymmetric", "bicubic"]


def tf1_asymmetric_axis(in_size, out_size):
    """TF1 resize_bilinear (align_corners=False, half_pixel_centers=False): src = dst * in/out in float32."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = torch.arange(out_size, dtype=torch.float32) * scale
    i0 = torch.floor(src).long().clamp(max=in_size - 1)
    i1 = (i0 + 1).clamp(max=in_size - 1)
    l1 = (src - i0.to(torch.float32)).clamp(0, 1)
    return i0, i1, 1 - l1, l1


def tf1_asymmetric(x, oh, ow):
    h0, h1, hl0, hl1 = tf1_asymmetric_axis(x.shape[2], oh)
    w0, w1, wl0, wl1 = tf1_asymmetric_axis(x.shape[3], ow)
    rows = x[:, :, h0, :] * hl0.view(1, 1, -1, 1) + x[:, :, h1, :] * hl1.view(1, 1, -1, 1)
    return rows[:, :, :, w0] * wl0.view(1, 1, 1, -1) + rows[:, :, :, w1] * wl1.view(1, 1, 1, -1)


def resize_reference(mode, oh, ow):
    if mode == 0:
        return lambda x: F.interpolate(x, size=(oh, ow), mode="nearest")
    if mode == 1:
        return lambda x: F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
    if mode == 2:
        return lambda x: F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=True)
    if mode == 4:
        return lambda x: F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False)
    return lambda x: tf1_asymmetric(x, oh, ow)


def test_resize(o):
    sizes = [(4, 5, 8, 10), (5, 3, 13, 7), (12, 8, 4, 2), (12, 8, 6, 4), (13, 11, 5, 4), (7, 6, 1, 1), (5, 4, 1, 3),
             (1, 1, 5, 3), (1, 6, 4, 9), (6, 7, 6, 7), (5, 9, 11, 4), (3, 2, 97, 61), (97, 61, 3, 2),
             (14, 14, 46, 46), (2, 6, 82, 74), (33, 17, 64, 30)]
    for mode, mname in enumerate(RESIZE_MODES):
        for h, w, oh, ow in sizes:
            x = o.rand(2, 3, h, w)

            def build(lib, g, nodes, oh=oh, ow=ow, mode=mode):
                y = NODE()
                return out_node(lib, lib.op("cel_resize")(g, nodes[0], oh, ow, mode, ctypes.byref(y)), y, "resize")

            # float32: the pixel nearest picks depends on PyTorch's float rounding
            o.case(f"/oracle/resize/{mname}/{h}x{w}_to_{oh}x{ow}", [("x", x, True)], build,
                   resize_reference(mode, oh, ow), dtype=torch.float32)


# ---- activations ----------------------------------------------------------------------------------

def test_activations(o):
    acts = [("relu", 0, 0.0, F.relu), ("leaky_relu", 1, 0.2, lambda x: F.leaky_relu(x, 0.2)),
            ("leaky_relu_negative_slope", 1, -0.3, lambda x: F.leaky_relu(x, -0.3)),
            ("tanh", 2, 0.0, torch.tanh), ("sigmoid", 3, 0.0, torch.sigmoid)]
    for name, act, alpha, ref in acts:
        for shape in [(2, 3, 7, 5), (1, 1, 1, 1)]:
            x = o.rand(*shape, lo=-4, hi=4)
            x.view(-1)[::7] = 0  # exact zeros: the slope there follows PyTorch (0 for relu, alpha for leaky)

            def build(lib, g, nodes, act=act, alpha=alpha):
                y = NODE()
                return out_node(lib, lib.op("cel_activate")(g, nodes[0], act, alpha, ctypes.byref(y)), y, "activate")

            o.case(f"/oracle/activate/{name}/{'x'.join(map(str, shape))}", [("x", x, True)], build, ref)


# ---- prelu, pixel shuffle, pad (the ops the ncnn import added) ------------------------------------

def test_upscaler_ops(o):
    for shape, slopes in [((2, 5, 7, 6), 5), ((1, 3, 4, 9), 1)]:
        x = o.rand(*shape, lo=-2, hi=2)
        a = o.rand(1, slopes, 1, 1, lo=-0.5, hi=0.5)

        def build(lib, g, nodes):
            y = NODE()
            return out_node(lib, lib.op("cel_prelu")(g, nodes[0], nodes[1], ctypes.byref(y)), y, "prelu")

        o.case(f"/oracle/prelu/{slopes}_slopes", [("x", x, True), ("slope", a, True)], build,
               lambda x, a: F.prelu(x, a.reshape(-1)))
    for r, inverse, shape in [(2, False, (2, 12, 5, 3)), (3, False, (1, 9, 4, 4)), (2, True, (1, 3, 6, 8))]:
        x = o.rand(*shape)

        def build(lib, g, nodes, r=r, inverse=inverse):
            y = NODE()
            return out_node(lib, lib.op("cel_pixel_shuffle")(g, nodes[0], r, inverse, ctypes.byref(y)), y, "pixel_shuffle")

        o.case(f"/oracle/pixel_shuffle/{'inverse' if inverse else 'forward'}/r{r}", [("x", x, True)], build,
               (lambda x, r=r: F.pixel_unshuffle(x, r)) if inverse else (lambda x, r=r: F.pixel_shuffle(x, r)))
    for mode, mname in [(0, "constant"), (1, "reflect"), (2, "replicate")]:
        x = o.rand(2, 3, 5, 7)

        def build(lib, g, nodes, mode=mode):
            y = NODE()
            return out_node(lib, lib.op("cel_pad")(g, nodes[0], 2, 4, 3, 1, mode, ctypes.byref(y)), y, "pad")

        o.case(f"/oracle/pad/{mname}", [("x", x, True)], build, lambda x, m=mname: F.pad(x, (3, 1, 2, 4), mode=m))


# ---- channels -------------------------------------------------------------------------------------

def test_channels(o):
    for ca, cb, h, w in [(3, 2, 5, 7), (1, 1, 1, 1), (4, 6, 9, 2)]:
        a, b = o.rand(2, ca, h, w), o.rand(2, cb, h, w)

        def build(lib, g, nodes):
            y = NODE()
            return out_node(lib, lib.op("cel_concat")(g, nodes[0], nodes[1], ctypes.byref(y)), y, "concat")

        o.case(f"/oracle/concat/{ca}+{cb}x{h}x{w}", [("a", a, True), ("b", b, True)], build,
               lambda a, b: torch.cat([a, b], dim=1))
    for c, c0, count in [(5, 1, 3), (4, 0, 4), (6, 5, 1)]:
        x = o.rand(2, c, 6, 5)

        def build(lib, g, nodes, c0=c0, count=count):
            y = NODE()
            return out_node(lib, lib.op("cel_slice_channels")(g, nodes[0], c0, count, ctypes.byref(y)), y,
                            "slice_channels")

        o.case(f"/oracle/slice_channels/{c0}+{count}_of_{c}", [("x", x, True)], build,
               lambda x, c0=c0, count=count: x[:, c0:c0 + count])


# ---- convolutions ---------------------------------------------------------------------------------

def test_conv2d(o):
    # (name, N, IC, H, W, OC, KH, KW, stride (h, w), pad (top, bottom, left, right), dilation (h, w), groups,
    #  reflect, bias)
    cases = [
        ("3x3_same", 2, 3, 9, 8, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, False, True),
        ("stride2_dilation2_groups2_asymmetric_pad", 1, 4, 11, 10, 6, 3, 2, (2, 1), (1, 2, 0, 3), (2, 2), 2, False, True),
        ("reflect_5x3", 2, 3, 8, 7, 5, 5, 3, (1, 1), (2, 2, 1, 1), (1, 1), 1, True, True),
        ("reflect_asymmetric_stride2", 1, 2, 9, 9, 3, 4, 4, (2, 2), (1, 2, 2, 1), (1, 1), 1, True, True),
        ("depthwise_no_bias", 2, 4, 7, 6, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4, False, False),
        ("1x1_stride2", 1, 5, 6, 7, 3, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1, False, True),
        ("reflect_dilation3_groups3", 1, 6, 10, 9, 3, 3, 3, (1, 2), (3, 3, 3, 3), (3, 3), 3, True, True),
        ("7x7_reflect3", 1, 3, 12, 11, 4, 7, 7, (1, 1), (3, 3, 3, 3), (1, 1), 1, True, True),
    ]
    for name, n, ic, h, w, oc, kh, kw, stride, pad, dil, groups, reflect, bias in cases:
        inputs = [("x", o.rand(n, ic, h, w), True), ("w", o.rand(oc, ic // groups, kh, kw) * 0.5, True)]
        if bias:
            inputs.append(("b", o.rand(1, oc, 1, 1), True))
        params = Conv2dParams(stride[0], stride[1], pad[0], pad[1], pad[2], pad[3], dil[0], dil[1], groups,
                              1 if reflect else 0)

        def build(lib, g, nodes, params=params):
            y = NODE()
            b = nodes[2] if len(nodes) > 2 else CEL_NO_NODE
            return out_node(lib, lib.op("cel_conv2d")(g, nodes[0], nodes[1], b, ctypes.byref(params),
                                                      ctypes.byref(y)), y, "conv2d")

        def ref(x, wt, b=None, stride=stride, pad=pad, dil=dil, groups=groups, reflect=reflect):
            xp = F.pad(x, (pad[2], pad[3], pad[0], pad[1]), mode="reflect" if reflect else "constant")
            return F.conv2d(xp, wt, None if b is None else b.view(-1), stride=stride, dilation=dil, groups=groups)

        o.case(f"/oracle/conv2d/{name}", inputs, build, ref)


def test_conv_transpose2d(o):
    # (name, N, IC, H, W, OC, KH, KW, stride, pad, output_pad, dilation, groups, bias)
    cases = [
        ("stride2_pad1_output_pad1", 2, 3, 5, 4, 4, 3, 3, (2, 2), (1, 1), (1, 1), (1, 1), 1, True),
        ("groups2_dilation2", 1, 4, 5, 6, 6, 3, 2, (1, 1), (1, 0), (0, 0), (2, 2), 2, True),
        ("stride3_output_pad2", 1, 2, 4, 3, 3, 4, 4, (3, 3), (1, 2), (2, 1), (1, 1), 1, True),
        ("dilation2_output_pad1_no_bias", 2, 3, 4, 4, 2, 3, 3, (2, 1), (2, 1), (1, 0), (2, 2), 1, False),
        ("depthwise_stride2", 1, 4, 6, 5, 4, 4, 4, (2, 2), (1, 1), (0, 0), (1, 1), 4, True),
        ("1x1", 1, 5, 3, 4, 2, 1, 1, (1, 1), (0, 0), (0, 0), (1, 1), 1, True),
    ]
    for name, n, ic, h, w, oc, kh, kw, stride, pad, opad, dil, groups, bias in cases:
        inputs = [("x", o.rand(n, ic, h, w), True), ("w", o.rand(ic, oc // groups, kh, kw) * 0.5, True)]
        if bias:
            inputs.append(("b", o.rand(1, oc, 1, 1), True))
        params = ConvTranspose2dParams(stride[0], stride[1], pad[0], pad[1], opad[0], opad[1], dil[0], dil[1],
                                       groups)

        def build(lib, g, nodes, params=params):
            y = NODE()
            b = nodes[2] if len(nodes) > 2 else CEL_NO_NODE
            return out_node(lib, lib.op("cel_conv_transpose2d")(g, nodes[0], nodes[1], b, ctypes.byref(params),
                                                                ctypes.byref(y)), y, "conv_transpose2d")

        def ref(x, wt, b=None, stride=stride, pad=pad, opad=opad, dil=dil, groups=groups):
            return F.conv_transpose2d(x, wt, None if b is None else b.view(-1), stride=stride, padding=pad,
                                      output_padding=opad, groups=groups, dilation=dil)

        o.case(f"/oracle/conv_transpose2d/{name}", inputs, build, ref)


# ---- norms and AdaIN ------------------------------------------------------------------------------

def test_norms(o):
    eps = 1e-5
    for kind, fn in [("instance_norm", "cel_instance_norm"), ("layer_norm", "cel_layer_norm")]:
        for shape, affine in [((2, 3, 7, 5), True), ((1, 4, 6, 6), False), ((3, 2, 1, 9), True)]:
            n, c, h, w = shape
            x = o.rand(*shape, lo=-2, hi=3)
            inputs = [("x", x, True)]
            if affine:
                inputs += [("gamma", o.rand(1, c, 1, 1, lo=0.5, hi=1.5), True), ("beta", o.rand(1, c, 1, 1), True)]

            def build(lib, g, nodes, fn=fn):
                y = NODE()
                gamma, beta = (nodes[1], nodes[2]) if len(nodes) > 1 else (CEL_NO_NODE, CEL_NO_NODE)
                return out_node(lib, lib.op(fn)(g, nodes[0], gamma, beta, eps, ctypes.byref(y)), y, fn)

            def ref(x, gamma=None, beta=None, kind=kind):
                gv = None if gamma is None else gamma.view(-1)
                bv = None if beta is None else beta.view(-1)
                if kind == "instance_norm":
                    return F.instance_norm(x, weight=gv, bias=bv, eps=eps)
                return F.group_norm(x, 1, weight=gv, bias=bv, eps=eps)

            o.case(f"/oracle/{kind}/{'x'.join(map(str, shape))}{'_affine' if affine else ''}", inputs, build, ref)


def adain_reference(content, style, eps):
    """AdaIN as in the paper's code (calc_mean_std): std = sqrt (unbiased var + eps)."""
    def mean_std(f):
        n, c = f.shape[:2]
        flat = f.reshape(n, c, -1)
        return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)

    cm, cs = mean_std(content)
    sm, ss = mean_std(style)
    return (content - cm) / cs * ss + sm


def test_adain(o):
    eps = 1e-5
    for cshape, sshape in [((2, 3, 7, 5), (2, 3, 6, 9)), ((1, 4, 4, 4), (1, 4, 4, 4)), ((1, 2, 1, 3), (1, 2, 5, 1))]:
        content, style = o.rand(*cshape, lo=-1, hi=2), o.rand(*sshape, lo=-2, hi=1)

        def build(lib, g, nodes):
            y = NODE()
            return out_node(lib, lib.op("cel_adain")(g, nodes[0], nodes[1], eps, ctypes.byref(y)), y, "adain")

        o.case(f"/oracle/adain/{'x'.join(map(str, cshape))}_style_{'x'.join(map(str, sshape))}",
               [("content", content, True), ("style", style, True)], build,
               lambda c, s: adain_reference(c, s, eps))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CELGAN_LIB")
    if not path:
        print("Bail out! give the path of libcelgan.so as the argument or in CELGAN_LIB")
        return 1
    try:
        lib = Lib(os.path.abspath(path))
    except OSError as e:
        print(f"Bail out! cannot load {path}: {e}")
        return 1
    torch.set_num_threads(1)
    o = Oracle(lib, float(os.environ.get("CELGAN_ORACLE_TOL", "1e-4")))
    diag(f"library: {path}; torch {torch.__version__}")
    for test in (test_resize, test_activations, test_upscaler_ops, test_channels, test_conv2d, test_conv_transpose2d,
                 test_norms, test_adain):
        test(o)
    n_val = lib.context_validation_messages(lib.ctx)
    if not tap(n_val == 0, "/oracle/validation/no_messages"):
        diag((lib.context_validation_log(lib.ctx) or b"").decode(errors="replace"))
    lib.context_destroy(lib.ctx)
    print(f"1..{_count}")
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
