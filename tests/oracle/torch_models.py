#!/usr/bin/env python3
"""PyTorch oracle for whole networks: CelGAN's model families and a GAN step built with the graph API.

    python3 tests/oracle/torch_models.py path/to/libcelgan.so     (CELGAN_SOURCE_DIR: the source tree)

1. style-generator: for each configuration (data/configs/*.json and variants with instance norm, transposed
   convolutions and residual blocks), CelGAN writes a model file with fresh weights; an independent PyTorch
   implementation of the family, written from docs/model-format.md, loads the same file; both run the same
   image (odd sizes included) and must agree within 1e-4. The same for the reference-generator and
   reference-gan families, with references of another size than the image.
2. A small generator (the fast configuration) followed by a spectral-norm PatchGAN discriminator and an LSGAN
   loss, built with the graph API: the loss, the gradient of the input image and of every generator and
   discriminator weight must match PyTorch's autograd.
TAP output; the helpers come from torch_ops.py.
"""
import ctypes
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ops as T  # noqa: E402  (skips the whole program when torch is missing)
from torch_ops import P, NODE, PNODE, PFLOAT, ST, Shape, Conv2dParams, tap, diag, compare  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MODEL_API = {
    "cel_model_create_file": (ST, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint64, P, ctypes.c_size_t, ctypes.c_char_p,
                                   ctypes.c_size_t]),
    "cel_model_load": (ST, [ctypes.c_char_p, ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_size_t]),
    "cel_model_free": (None, [P]),
    "cel_model_build": (ST, [P, P, NODE, NODE, PNODE]),
    "cel_graph_find": (ST, [P, ctypes.c_char_p, PNODE]),
    "cel_graph_param": (ST, [P, ctypes.c_char_p, Shape, PNODE]),
    "cel_graph_state": (ST, [P, ctypes.c_char_p, Shape, PNODE]),
    "cel_spectral_norm": (ST, [P, NODE, NODE, ctypes.c_int32, ctypes.c_bool, ctypes.c_float, PNODE]),
    "cel_mean_squared_error": (ST, [P, NODE, NODE, PNODE]),
    "cel_fill": (ST, [P, Shape, ctypes.c_float, PNODE]),
}


def bind(lib):
    for name, (res, args) in MODEL_API.items():
        fn = getattr(lib.dll, name)
        fn.restype, fn.argtypes = res, args
        setattr(lib, name[4:], fn)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        dt = torch.float32 if v["dtype"] == "F32" else torch.float16
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dt).reshape(v["shape"]).to(torch.float32)
        tensors[k] = t
    return tensors, meta


# ---- the style-generator family in PyTorch, from docs/model-format.md -----------------------------

class StyleGenerator:
    def __init__(self, cfg, w):
        self.c = cfg
        self.w = w
        self.norm = cfg.get("norm", "layer")
        self.pad_mode = cfg.get("padding_mode", "reflect")
        self.slope = cfg.get("slope", 0.2)

    def conv(self, x, prefix, k, stride=1, pad=None, groups=1, act=True, norm=True):
        if pad is None:
            pad = (k // 2,) * 4  # left, right, top, bottom for F.pad
        mode = "reflect" if self.pad_mode == "reflect" else "constant"
        x = F.pad(x, pad, mode=mode)
        has_norm = norm and self.norm != "none"
        b = self.w.get(prefix + ".conv.bias")
        x = F.conv2d(x, self.w[prefix + ".conv.weight"], b, stride=stride, groups=groups)
        if has_norm:
            g, be = self.w[prefix + ".norm.weight"], self.w[prefix + ".norm.bias"]
            if self.norm == "layer" and getattr(self, "var_mean_norm", False):
                # the same layer norm as one var_mean reduction (what tuned PyTorch code does)
                var, mean = torch.var_mean(x, dim=(1, 2, 3), keepdim=True, unbiased=False)
                x = (x - mean) * torch.rsqrt(var + 1e-5) * g.view(1, -1, 1, 1) + be.view(1, -1, 1, 1)
            elif self.norm == "layer":
                x = F.group_norm(x, 1, g, be, eps=1e-5)
            else:
                x = F.instance_norm(x, weight=g, bias=be, eps=1e-5)
        if act:
            x = F.leaky_relu(x, self.slope)
        return x

    def __call__(self, img):
        c = self.c
        widths = c["widths"]
        x = self.conv(img, "stem", c.get("stem_kernel", 7))
        stage_out = [x]
        for s in range(1, len(widths)):
            x = self.conv(x, f"down{s}.0", 3, stride=2, pad=(0, 1, 0, 1))
            for k in range(1, c.get("down_convs", 1) + 1):
                x = self.conv(x, f"down{s}.{k}", 3)
            stage_out.append(x)
        if c.get("mid_conv", 0):
            x = self.conv(x, "mid.pre", 3)
        cur = widths[-1]
        for b in range(c.get("blocks", 4)):
            skip = x
            if c.get("block", "residual") == "residual":
                x = self.conv(x, f"blocks.{b}.0", 3)
                x = self.conv(x, f"blocks.{b}.1", 3, act=False)
            else:
                e = c.get("expansion", 2)
                out_w = c.get("block_width", widths[-1])
                bott = cur * e
                if e != 1:
                    x = self.conv(x, f"blocks.{b}.expand", 1)
                x = self.conv(x, f"blocks.{b}.dw", 3, groups=bott)
                x = self.conv(x, f"blocks.{b}.pw", 1, act=False)
                if out_w != cur:
                    cur = out_w
                    continue
            x = skip + x
        if cur != widths[-1]:
            x = self.conv(x, "mid.post", 3)
        up_w = c.get("up_widths", widths[1:])
        for lvl in range(len(up_w) - 1, -1, -1):
            if c.get("upsample", "resize") == "resize":
                size = img.shape[-2:] if lvl == 0 else stage_out[lvl].shape[-2:]
                ac = bool(c.get("align_corners", 1))
                x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=ac)
            else:
                x = F.conv_transpose2d(x, self.w[f"up{lvl}.upsample.weight"], self.w[f"up{lvl}.upsample.bias"],
                                       stride=2, padding=1)
            for k in range(c.get("up_convs", 1)):
                x = self.conv(x, f"up{lvl}.{k}", 3)
            if c.get("skips", 0):
                x = x + stage_out[lvl]
        x = self.conv(x, "head", c.get("head_kernel", 7))
        x = F.conv2d(x, self.w["out.weight"])
        return torch.tanh(x)


class ReferenceGenerator:
    """The reference-generator family from docs/model-format.md."""

    def __init__(self, cfg, w):
        self.c, self.w = cfg, w
        self.mode = "reflect" if cfg.get("padding_mode", "reflect") == "reflect" else "constant"
        self.slope = cfg.get("slope", 0.2)

    def conv(self, x, prefix, k, stride=1, pad=None, act=True):
        x = F.pad(x, pad if pad is not None else (k // 2,) * 4, mode=self.mode)
        x = F.conv2d(x, self.w[prefix + ".conv.weight"], self.w[prefix + ".conv.bias"], stride=stride)
        return F.leaky_relu(x, self.slope) if act else x

    def encode(self, x, which):
        widths = self.c["widths"]
        x = self.conv(x, f"enc.{which}.stem", self.c.get("stem_kernel", 3))
        stages = [x]
        for s in range(1, len(widths)):
            x = self.conv(x, f"enc.{which}.down{s}", 3, stride=2, pad=(0, 1, 0, 1))
            stages.append(x)
        return x, stages

    def __call__(self, img, ref):
        c, cs = self.encode(img, "content")
        s, _ = self.encode(ref, "style")
        cv, cm = torch.var_mean(c, dim=(2, 3), keepdim=True, unbiased=True)
        sv, sm = torch.var_mean(s, dim=(2, 3), keepdim=True, unbiased=True)
        x = (c - cm) / torch.sqrt(cv + 1e-5) * torch.sqrt(sv + 1e-5) + sm
        for b in range(self.c.get("blocks", 2)):
            x = x + self.conv(self.conv(x, f"dec.blocks.{b}.0", 3), f"dec.blocks.{b}.1", 3, act=False)
        for lvl in range(len(self.c["widths"]) - 2, -1, -1):
            x = F.interpolate(x, size=tuple(cs[lvl].shape[-2:]), mode="bilinear",
                              align_corners=bool(self.c.get("align_corners", 0)))
            x = self.conv(x, f"dec.up{lvl}", 3)
        x = self.conv(x, "dec.head", self.c.get("head_kernel", 3), act=False)
        return torch.tanh(x)


class ReferenceGAN:
    """The reference-gan family from docs/model-format.md (celgan train --reference-guided)."""

    def __init__(self, cfg, w):
        self.c, self.w = cfg, w
        self.mode = "reflect" if cfg.get("padding_mode", "reflect") == "reflect" else "constant"
        self.slope = cfg.get("slope", 0.2)

    def pad(self, x, k):
        return F.pad(x, (k // 2,) * 4, mode=self.mode)

    def style_code(self, ref):
        """The style encoder: convolutions with bias and LeakyReLU, a global average pool, a linear layer."""
        sw = self.c.get("style_widths", self.c["widths"])
        k = self.c.get("stem_kernel", 5)
        x = F.leaky_relu(F.conv2d(self.pad(ref, k), self.w["enc.style.stem.conv.weight"],
                                  self.w["enc.style.stem.conv.bias"]), self.slope)
        for s in range(1, len(sw)):
            x = F.leaky_relu(F.conv2d(F.pad(x, (0, 1, 0, 1), mode=self.mode), self.w[f"enc.style.down{s}.conv.weight"],
                                      self.w[f"enc.style.down{s}.conv.bias"], stride=2), self.slope)
        x = x.mean(dim=(2, 3), keepdim=True)
        return F.conv2d(x, self.w["enc.style.code.weight"], self.w["enc.style.code.bias"])

    def content_conv(self, x, prefix, k, stride, pad):
        x = F.conv2d(F.pad(x, pad, mode=self.mode), self.w[prefix + ".conv.weight"], stride=stride)
        x = F.instance_norm(x, weight=self.w[prefix + ".norm.weight"], bias=self.w[prefix + ".norm.bias"], eps=1e-5)
        return F.leaky_relu(x, self.slope)

    def adain_conv(self, x, prefix, code, act=True):
        x = F.instance_norm(F.conv2d(self.pad(x, 3), self.w[prefix + ".conv.weight"]), eps=1e-5)
        gamma = F.conv2d(code, self.w[prefix + ".gamma.weight"], self.w[prefix + ".gamma.bias"])
        beta = F.conv2d(code, self.w[prefix + ".beta.weight"], self.w[prefix + ".beta.bias"])
        x = x * (1 + gamma) + beta
        return F.leaky_relu(x, self.slope) if act else x

    def __call__(self, img, ref, code=None):
        widths = self.c["widths"]
        code = self.style_code(ref) if code is None else code
        x = self.content_conv(img, "enc.content.stem", self.c.get("stem_kernel", 5), 1, (self.c.get("stem_kernel", 5) // 2,) * 4)
        stages = [x]
        for s in range(1, len(widths)):
            x = self.content_conv(x, f"enc.content.down{s}", 3, 2, (0, 1, 0, 1))
            stages.append(x)
        for b in range(self.c.get("blocks", 2)):
            x = x + self.adain_conv(self.adain_conv(x, f"dec.blocks.{b}.0", code), f"dec.blocks.{b}.1", code, act=False)
        for lvl in range(len(widths) - 2, -1, -1):
            x = F.interpolate(x, size=tuple(stages[lvl].shape[-2:]), mode="bilinear",
                              align_corners=bool(self.c.get("align_corners", 0)))
            x = self.adain_conv(x, f"dec.up{lvl}", code)
        k = self.c.get("head_kernel", 5)
        x = F.conv2d(self.pad(x, k), self.w["dec.head.conv.weight"], self.w["dec.head.conv.bias"])
        return torch.tanh(x)


def celgan_model_forward(lib, path, img, ref=None):
    """Loads a model file with CelGAN and runs its graph on img (1,C,H,W); returns the output."""
    model = P()
    err = ctypes.create_string_buffer(1024)
    T.CelError  # noqa
    st = lib.model_load(path.encode(), ctypes.byref(model), err, 1024)
    if st:
        raise T.CelError(f"model_load: {err.value.decode()}")
    g = P()
    try:
        lib.check(lib.graph_create(lib.ctx, ctypes.byref(g)), "graph_create")
        x, y = NODE(), NODE()
        img = img.contiguous()
        lib.check(lib.graph_input(g, b"image", Shape(*img.shape), ctypes.byref(x)), "input")
        lib.check(lib.graph_set_data(g, x, ctypes.cast(img.data_ptr(), PFLOAT), img.numel()), "set_data")
        r = NODE(T.CEL_NO_NODE)
        if ref is not None:
            ref = ref.contiguous()
            lib.check(lib.graph_input(g, b"reference", Shape(*ref.shape), ctypes.byref(r)), "input reference")
            lib.check(lib.graph_set_data(g, r, ctypes.cast(ref.data_ptr(), PFLOAT), ref.numel()), "set_data reference")
        lib.check(lib.model_build(model, g, x, r, ctypes.byref(y)), "model_build")
        shape = Shape()
        lib.check(lib.graph_shape(g, y, ctypes.byref(shape)), "shape")
        lib.check(lib.graph_mark_output(g, y), "mark_output")
        lib.check(lib.graph_run(g), "run")
        out = torch.empty((shape.n, shape.c, shape.h, shape.w))
        lib.check(lib.graph_get_data(g, y, ctypes.cast(out.data_ptr(), PFLOAT), out.numel()), "get_data")
        return out
    finally:
        if g:
            lib.graph_destroy(g)
        lib.model_free(model)


def create_model(lib, path, cfg, seed):
    err = ctypes.create_string_buffer(1024)
    st = lib.model_create_file(path.encode(), json.dumps(cfg).encode(), seed, None, 0, err, 1024)
    if st:
        raise T.CelError(f"model_create_file: {err.value.decode()}")


def test_families(lib, tmp, src, gen):
    cfgs = {}
    for name in ("fast", "animeganv2", "unet"):
        with open(os.path.join(src, "data", "configs", name + ".json")) as f:
            cfgs[name] = json.load(f)
    cfgs["instance-convtranspose-zero"] = dict(cfgs["fast"], norm="instance", upsample="conv-transpose",
                                               padding_mode="zero", blocks=2)
    cfgs["residual-no-norm"] = dict(cfgs["fast"], norm="none", blocks=1, widths=[8, 16], up_widths=[8])
    sizes = {"fast": [(61, 75), (64, 64)], "animeganv2": [(57, 43)], "unet": [(61, 75), (40, 36)], "instance-convtranspose-zero": [(48, 64)],
             "residual-no-norm": [(33, 29)]}
    for name, cfg in cfgs.items():
        path = os.path.join(tmp, name + ".safetensors")
        try:
            create_model(lib, path, cfg, 5)
        except T.CelError as e:
            tap(False, f"/models/{name}/create")
            diag(str(e))
            continue
        w, _ = read_safetensors(path)
        ref = StyleGenerator(cfg, {k: v.double() for k, v in w.items()})
        for (h, wd) in sizes[name]:
            img = torch.rand((1, 3, h, wd), generator=gen) * 2 - 1
            try:
                got = celgan_model_forward(lib, path, img)
            except T.CelError as e:
                tap(False, f"/models/{name}/{h}x{wd}/forward_matches_pytorch")
                diag(str(e))
                continue
            want = ref(img.double())
            ok, msg = compare(got, want, 1e-4)
            if not tap(ok, f"/models/{name}/{h}x{wd}/forward_matches_pytorch"):
                diag(msg)
            else:
                diag(f"  max abs difference {float((got.double() - want).abs().max()):.2e}")


def test_reference_family(lib, tmp, src, gen):
    with open(os.path.join(src, "data", "configs", "reference.json")) as f:
        cfg = json.load(f)
    path = os.path.join(tmp, "reference.safetensors")
    create_model(lib, path, cfg, 3)
    w, _ = read_safetensors(path)
    ref_net = ReferenceGenerator(cfg, {k: v.double() for k, v in w.items()})
    for (h, wd), (rh, rw) in (((45, 61), (32, 48)), ((64, 64), (71, 39))):
        img = torch.rand((1, 3, h, wd), generator=gen) * 2 - 1
        style = torch.rand((1, 3, rh, rw), generator=gen) * 2 - 1
        name = f"/models/reference-generator/{h}x{wd}_style_{rh}x{rw}/forward_matches_pytorch"
        try:
            got = celgan_model_forward(lib, path, img, style)
        except T.CelError as e:
            tap(False, name)
            diag(str(e))
            continue
        want = ref_net(img.double(), style.double())
        ok, msg = compare(got, want, 1e-4)
        if not tap(ok, name):
            diag(msg)


def test_reference_gan_family(lib, tmp, src, gen):
    with open(os.path.join(src, "data", "configs", "reference-gan.json")) as f:
        cfg = json.load(f)
    path = os.path.join(tmp, "reference-gan.safetensors")
    create_model(lib, path, cfg, 4)
    w, _ = read_safetensors(path)
    net = ReferenceGAN(cfg, {k: v.double() for k, v in w.items()})
    for (h, wd), (rh, rw) in (((45, 61), (32, 48)), ((64, 64), (71, 39))):
        img = torch.rand((1, 3, h, wd), generator=gen) * 2 - 1
        style = torch.rand((1, 3, rh, rw), generator=gen) * 2 - 1
        name = f"/models/reference-gan/{h}x{wd}_style_{rh}x{rw}/forward_matches_pytorch"
        try:
            got = celgan_model_forward(lib, path, img, style)
        except T.CelError as e:
            tap(False, name)
            diag(str(e))
            continue
        want = net(img.double(), style.double())
        ok, msg = compare(got, want, 1e-4)
        if not tap(ok, name):
            diag(msg)


# ---- a GAN step: generator + spectral-norm PatchGAN + LSGAN loss, with gradients --------------------

D_LAYERS = [  # (name, in, out, kernel, stride, spectral norm, norm, act)
    ("d.0", 3, 16, 4, 2, True, False, True),
    ("d.1", 16, 32, 4, 2, True, True, True),
    ("d.2", 32, 1, 3, 1, True, False, False),
]


def test_gan_step(lib, tmp, src, gen):
    with open(os.path.join(src, "data", "configs", "fast.json")) as f:
        cfg = dict(json.load(f), blocks=2)
    path = os.path.join(tmp, "gan-g.safetensors")
    create_model(lib, path, cfg, 9)
    wts, _ = read_safetensors(path)
    img = (torch.rand((2, 3, 40, 36), generator=gen) * 2 - 1).contiguous()
    dw = {}
    for name, cin, cout, k, s, sn, norm, act in D_LAYERS:
        bound = 1 / (cin * k * k) ** 0.5
        dw[name + ".weight"] = ((torch.rand((cout, cin, k, k), generator=gen) * 2 - 1) * bound).contiguous()
        dw[name + ".bias"] = ((torch.rand((cout,), generator=gen) * 2 - 1) * bound).contiguous()
        u = torch.rand((cout,), generator=gen) + 0.1
        dw[name + ".u"] = (u / u.norm()).contiguous()

    # CelGAN: the graph API end to end
    model = P()
    err = ctypes.create_string_buffer(1024)
    lib.check(lib.model_load(path.encode(), ctypes.byref(model), err, 1024), "model_load")
    g = P()
    keep = []
    names = [f"/gan/{p}" for p in ("loss", "grad/image")] + [f"/gan/grad/{k}" for k in wts] + \
            [f"/gan/grad/{k}" for k in dw if not k.endswith(".u")]
    try:
        lib.check(lib.graph_create(lib.ctx, ctypes.byref(g)), "graph_create")

        def new_input(nm, t, param=False, state=False):
            t = t.contiguous()
            keep.append(t)
            n = NODE()
            shape = Shape(*([1] * (4 - t.dim()) + list(t.shape))) if t.dim() < 4 else Shape(*t.shape)
            if t.dim() == 1 and not state:
                shape = Shape(1, t.shape[0], 1, 1)  # biases are (1, C, 1, 1); states stay (1, 1, 1, n)
            f = lib.graph_param if param else lib.graph_state if state else lib.graph_input
            lib.check(f(g, nm.encode(), shape, ctypes.byref(n)), "leaf " + nm)
            lib.check(lib.graph_set_data(g, n, ctypes.cast(t.data_ptr(), PFLOAT), t.numel()), "set_data " + nm)
            return n.value

        x = new_input("image", img)
        lib.check(lib.graph_set_requires_grad(g, x, True), "requires_grad")
        y = NODE()
        lib.check(lib.model_build(model, g, x, T.CEL_NO_NODE, ctypes.byref(y)), "model_build")
        h = y.value
        dnodes = {}
        for name, cin, cout, k, s, sn, norm, act in D_LAYERS:
            wn = new_input(name + ".weight", dw[name + ".weight"], param=True)
            bn = new_input(name + ".bias", dw[name + ".bias"], param=True)
            state = torch.zeros(cout + cin * k * k + 1)
            state[:cout] = dw[name + ".u"]
            un = new_input(name + ".u", state, state=True)
            dnodes[name] = (wn, bn)
            wsn = NODE()
            lib.check(lib.spectral_norm(g, wn, un, 1, True, 1e-12, ctypes.byref(wsn)), "spectral_norm")
            p = Conv2dParams(stride_h=s, stride_w=s, pad_top=1, pad_bottom=1, pad_left=1, pad_right=1, groups=1)
            out = NODE()
            lib.check(T.Lib.op(lib, "cel_conv2d")(g, h, wsn, bn, ctypes.byref(p), ctypes.byref(out)), "conv2d")
            h = out.value
            if norm:
                lib.check(T.Lib.op(lib, "cel_instance_norm")(g, h, T.CEL_NO_NODE, T.CEL_NO_NODE, 1e-5, ctypes.byref(out)),
                          "instance_norm")
                h = out.value
            if act:
                lib.check(T.Lib.op(lib, "cel_activate")(g, h, 1, 0.2, ctypes.byref(out)), "leaky")
                h = out.value
        shape = Shape()
        lib.check(lib.graph_shape(g, h, ctypes.byref(shape)), "shape")
        ones, loss = NODE(), NODE()
        lib.check(lib.fill(g, shape, 1.0, ctypes.byref(ones)), "fill")
        lib.check(lib.mean_squared_error(g, h, ones, ctypes.byref(loss)), "mse")
        lib.check(lib.graph_mark_output(g, loss), "mark")
        lib.check(lib.graph_backward(g, loss, T.CEL_NO_NODE), "backward")
        grads = {"image": lib.graph_grad(g, x)}
        for k in wts:
            n = NODE()
            lib.check(lib.graph_find(g, k.encode(), ctypes.byref(n)), "find " + k)
            grads[k] = lib.graph_grad(g, n.value)
        for name, (wn, bn) in dnodes.items():
            grads[name + ".weight"] = lib.graph_grad(g, wn)
            grads[name + ".bias"] = lib.graph_grad(g, bn)
        for k, n in grads.items():
            lib.check(lib.graph_mark_output(g, n), "mark grad " + k)
        lib.check(lib.graph_run(g), "run")
        got_loss = torch.empty(1)
        lib.check(lib.graph_get_data(g, loss, ctypes.cast(got_loss.data_ptr(), PFLOAT), 1), "get loss")
        got = {}
        for k, n in grads.items():
            ref_shape = img.shape if k == "image" else (wts[k].shape if k in wts else dw[k].shape)
            t = torch.empty(ref_shape)
            lib.check(lib.graph_get_data(g, n, ctypes.cast(t.data_ptr(), PFLOAT), t.numel()), "get grad " + k)
            got[k] = t
    except (T.CelError, T.Skip) as e:
        for nm in names:
            tap(False, nm)
        diag(str(e))
        return
    finally:
        if g:
            lib.graph_destroy(g)
        lib.model_free(model)

    # PyTorch: the same network in float64
    tw = {k: v.double().requires_grad_(True) for k, v in wts.items()}
    td = {k: v.double().requires_grad_(not k.endswith(".u")) for k, v in dw.items()}
    ti = img.double().requires_grad_(True)
    h = StyleGenerator(cfg, tw)(ti)
    for name, cin, cout, k, s, sn, norm, act in D_LAYERS:
        w = td[name + ".weight"]
        wm = w.reshape(cout, -1)
        with torch.no_grad():  # one power iteration, u and v constants (torch.nn.utils.spectral_norm)
            u = td[name + ".u"]
            v = F.normalize(wm.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(wm @ v, dim=0, eps=1e-12)
        sigma = torch.dot(u, wm @ v)
        h = F.conv2d(h, w / sigma, td[name + ".bias"], stride=s, padding=1)
        if norm:
            h = F.instance_norm(h, eps=1e-5)
        if act:
            h = F.leaky_relu(h, 0.2)
    want_loss = ((h - 1) ** 2).mean()
    keys = ["image"] + list(wts) + [k for k in dw if not k.endswith(".u")]
    leaves = [ti] + [tw[k] for k in wts] + [td[k] for k in dw if not k.endswith(".u")]
    want = dict(zip(keys, torch.autograd.grad(want_loss, leaves)))
    ok, msg = compare(got_loss, want_loss.reshape(1), 1e-4)
    if not tap(ok, "/gan/loss"):
        diag(msg)
    worst = 0.0
    # Gradients are sums of many terms: compare relative to the tensor's largest value, with a floor for the
    # ones that are zero in exact arithmetic (a bias right before a norm) where both sides are rounding noise.
    floor = 1e-3 * max(float(v.abs().max()) for v in want.values())
    for k in keys:
        scale = max(float(want[k].abs().max()), floor)
        err = float((got[k].double() - want[k]).abs().max()) / scale
        worst = max(worst, err)
        if not tap(err <= 2e-4, f"/gan/grad/{k}"):
            diag(f"  max error {err:.3g} of the gradient's largest magnitude {scale:.3g}")
    diag(f"  worst gradient error relative to its tensor's largest value: {worst:.2e}")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CELGAN_LIB")
    src = os.environ.get("CELGAN_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    lib = T.Lib(os.path.abspath(path))
    bind(lib)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(int(os.environ.get("CELGAN_TEST_SEED", "20261127")))
    with tempfile.TemporaryDirectory() as tmp:
        test_families(lib, tmp, src, gen)
        test_reference_family(lib, tmp, src, gen)
        test_reference_gan_family(lib, tmp, src, gen)
        test_gan_step(lib, tmp, src, gen)
    n_val = lib.context_validation_messages(lib.ctx)
    if not tap(n_val == 0, "/oracle/validation/no_messages"):
        diag((lib.context_validation_log(lib.ctx) or b"").decode(errors="replace"))
    lib.context_destroy(lib.ctx)
    print(f"1..{T._count}")
    return 1 if T._failed else 0


if __name__ == "__main__":
    sys.exit(main())
