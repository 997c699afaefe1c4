#!/usr/bin/python3
"""Exact-arithmetic reference of imported ncnn models: a float64 PyTorch interpreter of CelGAN's `graph`
architecture (docs/model-format.md), with the pixel handling of `celgan apply` (docs/ncnn-import.md).

  ncnn_f64.py check MODEL IMAGE OURS [--levels L] [--peer PEER]
        runs MODEL on IMAGE in float64 and checks that OURS (the PNG `celgan apply` wrote, 8 or 16 bits) is the
        reference rounded to the file's bit depth: |ours - ref| <= 0.5 + L levels of that file (L default 0.05),
        on every value. With --peer, also that the peer program's deviation from the reference is of the size
        fp16 storage gives: its 99.9th percentile at most 1.5 times that of the emulation below (winograd43),
        rounded to 8 bits. Prints 'result 0|1 NAME' per check and '#' diagnostics; exits 1 when one fails.
  ncnn_f64.py compare MODEL IMAGE NAME=PNG... [--emulate]
        prints mean, 99.9th percentile and max of |PNG - ref| in 8-bit levels for each PNG (peer, ours, ...),
        and of float32 runs and (--emulate) fp16-storage emulations of the same interpreter against float64.

Pixels as `celgan apply` handles them for imported models: values / 255 (input_range [0, 1]), RGB, a gray
image as gray RGB whose output is the luma (BT.601) of the clamped channels; alpha is not the network's and is
left out (the compared values are the colour channels). The graph itself pads, crops and adds what the
program does.

Emulating the peers (ncnn with use_fp16_storage and fp32 arithmetic, as they run on lavapipe): "blobs" rounds
the input, every layer's output blob, the biases and PReLU slopes to half precision (a convolution and its
fused activation, CelGAN's `NAME` and `NAME.act`, are one ncnn layer, rounded once); "winograd43" also rounds
what ncnn's Vulkan winograd F(4x4, 3x3) path stores between its shaders (transformed kernel, transformed input
tiles, their products summed over channels), the path ncnn takes on lavapipe for 3x3 stride-1 convolutions
with 16 or more input and output channels (winograd23 instead for inputs of at most 12x12, which the test
images never give).
Numpy, PIL and torch (Debian: python3-numpy python3-pil python3-torch)."""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def read_model(path):
    """A CelGAN .safetensors -> (architecture dict, {name: float64 tensor})."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    arch = json.loads(meta["celgan.architecture"])
    if arch.get("family") != "graph":
        raise SystemExit(f"{path}: family {arch.get('family')}, only 'graph' is interpreted")
    body = data[8 + n:]
    tensors = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[v["dtype"]]
        tensors[k] = torch.from_numpy(np.frombuffer(body[a:b], dtype=dt).astype(np.float64).reshape(v["shape"]))
    return arch, tensors


def four(p):
    """padding / crop: int, [h, w] or [top, bottom, left, right] -> (top, bottom, left, right)."""
    if isinstance(p, int):
        return p, p, p, p
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    return tuple(p)


# Winograd F(4x4, 3x3) (Lavin and Gray): input tiles 6x6 with stride 4, V = Bt d Bt', U = G g G', Y = At M At'.
WINO_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
           [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
WINO_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
          [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
WINO_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


def conv3x3_winograd43(a, weight, bias, half):
    """A 3x3 stride-1 convolution of the padded input a (1, C, H, W) as ncnn's Vulkan winograd43 path computes
    it, each stored intermediate (transformed kernel, transformed input, products summed over channels)
    passed through half (): with fp16 storage these are rounded to half precision."""
    bt, g, at = (torch.tensor(m, dtype=a.dtype) for m in (WINO_BT, WINO_G, WINO_AT))
    oh, ow = a.shape[2] - 2, a.shape[3] - 2
    by, bx = -(-oh // 4), -(-ow // 4)
    a = F.pad(a, (0, 4 * bx + 2 - a.shape[3], 0, 4 * by + 2 - a.shape[2]))
    d = a[0].unfold(1, 6, 4).unfold(2, 6, 4)  # (C, by, bx, 6, 6)
    v = half(torch.einsum("ij,cyxjk,lk->cyxil", bt, d, bt))
    u = half(torch.einsum("ij,ocjk,lk->ocil", g, weight, g))
    m = half(torch.einsum("ocil,cyxil->oyxil", u, v))
    y = torch.einsum("ij,oyxjk,lk->oyxil", at, m, at)  # (O, by, bx, 4, 4)
    y = y.permute(0, 1, 3, 2, 4).reshape(1, weight.shape[0], 4 * by, 4 * bx)[:, :, :oh, :ow]
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def run_graph(arch, tensors, x, dtype=torch.float64, fp16_storage=False):
    """x: (1, C, H, W) in the network's range. Returns the output node's value. fp16_storage: False, "blobs"
    (layer outputs and parameters rounded to half) or "winograd43" (also the intermediates of ncnn's winograd
    path for 3x3 stride-1 convolutions with 16 or more input and output channels)."""
    half = (lambda t: t.to(torch.float16).to(dtype)) if fp16_storage else (lambda t: t)
    names = {nd["name"] for nd in arch["nodes"]}
    val = {"image": half(x.to(dtype))}
    res = {"image": 1.0}  # resolution relative to the image, for crops to another node's size

    def w(key, params=False):
        t = tensors[key].to(dtype)
        return half(t) if params else t

    for nd in arch["nodes"]:
        op, ins = nd["op"], [val[i] for i in nd["in"]]
        a, r = ins[0], res[nd["in"][0]]
        if op == "pad":
            t, b, l, rr = four(nd["padding"])
            al = nd.get("align", 1)
            b += (al - a.shape[2] % al) % al
            rr += (al - a.shape[3] % al) % al
            mode = {"zero": "constant", "reflect": "reflect", "replicate": "replicate"}[nd.get("padding_mode", "zero")]
            y = F.pad(a, (l, rr, t, b), mode=mode)
        elif op == "conv2d":
            t, b, l, rr = four(nd.get("padding", 0))
            if nd.get("padding_mode", "zero") == "reflect":
                a, t, b, l, rr = F.pad(a, (l, rr, t, b), mode="reflect"), 0, 0, 0, 0
            a = F.pad(a, (l, rr, t, b))
            s, wt = nd.get("stride", 1), w(nd["weight"])
            bias = w(nd["bias"], True) if "bias" in nd else None
            if (fp16_storage == "winograd43" and wt.shape[2:] == (3, 3) and s == 1 and nd.get("dilation", 1) == 1 and
                    nd.get("groups", 1) == 1 and wt.shape[0] >= 16 and wt.shape[1] >= 16):
                y = conv3x3_winograd43(a, wt, bias, half)
            else:
                y = F.conv2d(a, wt, bias, stride=s, dilation=nd.get("dilation", 1), groups=nd.get("groups", 1))
            r /= s
        elif op == "conv_transpose2d":
            p = nd.get("padding", 0)
            s = nd.get("stride", 1)
            y = F.conv_transpose2d(a, w(nd["weight"]), w(nd["bias"], True) if "bias" in nd else None, stride=s,
                                   padding=p if isinstance(p, int) else tuple(p),
                                   output_padding=tuple(nd.get("output_padding", [0, 0])), groups=nd.get("groups", 1),
                                   dilation=nd.get("dilation", 1))
            r *= s
        elif op == "relu":
            y = F.relu(a)
        elif op == "leaky_relu":
            y = F.leaky_relu(a, nd["slope"])
        elif op == "sigmoid":
            y = torch.sigmoid(a)
        elif op == "tanh":
            y = torch.tanh(a)
        elif op == "prelu":
            y = F.prelu(a, w(nd["weight"], True))
        elif op == "resize":
            if "size_of" in nd:
                size = tuple(val[nd["size_of"]].shape[2:])
                r = res[nd["size_of"]]
            else:
                size = (int(a.shape[2] * nd["scale"]), int(a.shape[3] * nd["scale"]))
                r *= nd["scale"]
            mode = nd.get("mode", "nearest")
            if mode == "nearest":
                y = F.interpolate(a, size=size, mode="nearest")
            elif mode in ("bilinear", "bicubic"):
                y = F.interpolate(a, size=size, mode=mode, align_corners=False)
            elif mode == "bilinear-align-corners":
                y = F.interpolate(a, size=size, mode="bilinear", align_corners=True)
            else:
                raise SystemExit(f"resize mode {mode} is not interpreted")
        elif op == "add":
            y = nd.get("alpha", 1) * a + nd.get("beta", 1) * ins[1]
        elif op == "mul":
            y = a * ins[1]
        elif op == "concat":
            y = torch.cat(ins, 1)
        elif op == "scale_shift":
            y = a * nd.get("scale", 1) + nd.get("shift", 0)
        elif op == "global_avg_pool":
            y = a.mean((2, 3), keepdim=True)
        elif op == "pixel_shuffle":
            y = F.pixel_shuffle(a, nd["factor"])
            r *= nd["factor"]
        elif op == "crop":
            if "size_of" in nd:
                ratio = round(r / res[nd["size_of"]])
                hh, ww = (d * ratio for d in val[nd["size_of"]].shape[2:])
                oy, ox = nd.get("offset", [0, 0])
                y = a[:, :, oy:oy + hh, ox:ox + ww]
            else:
                t, b, l, rr = four(nd["crop"])
                y = a[:, :, t:a.shape[2] - b, l:a.shape[3] - rr]
        else:
            raise SystemExit(f"op {op} is not interpreted")
        val[nd["name"]] = y if nd["name"] + ".act" in names else half(y)
        res[nd["name"]] = r
    return val[arch["output"]]


def load_image(path):
    """PNG -> ((1, 3, H, W) float64 in [0, 1], gray?). 8- or 16-bit."""
    im = Image.open(path)
    gray = im.mode in ("L", "LA", "I;16", "I")
    if im.mode in ("I;16", "I"):
        a = np.asarray(im).astype(np.float64) / 65535.0
        a = np.stack([a] * 3, -1)
    else:
        a = np.asarray(im.convert("RGB")).astype(np.float64) / 255.0
    return torch.from_numpy(a.transpose(2, 0, 1)[None].copy()), gray


def reference(model, image, dtype=torch.float64, fp16_storage=False):
    """The network's output for IMAGE as RGB values in [0, 1], (H*s, W*s, 3), clamped as `celgan apply`
    clamps it before rounding."""
    arch, tensors = model
    x, _ = load_image(image)
    lo, hi = arch.get("input_range", [-1, 1])
    olo, ohi = arch.get("output_range", [-1, 1])
    with torch.no_grad():
        y = run_graph(arch, tensors, x * (hi - lo) + lo, dtype, fp16_storage)
    return ((y.to(torch.float64) - olo) / (ohi - olo)).clamp(0, 1)[0].numpy().transpose(1, 2, 0)


def luma(rgb):
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def load_output(path):
    """A written output -> (values in [0, 1]: (H, W) for a gray file, (H, W, 3) for RGB (alpha dropped),
    levels per unit: 255 or 65535)."""
    im = Image.open(path)
    if im.mode in ("I;16", "I"):
        return np.asarray(im).astype(np.float64) / 65535.0, 65535
    if im.mode in ("L", "LA"):
        return np.asarray(im.convert("L")).astype(np.float64) / 255.0, 255
    if _depth(path) == 16:
        return _read_png16_rgb(path), 65535
    return np.asarray(im.convert("RGB")).astype(np.float64) / 255.0, 255


def distance(got, unit, rgb):
    """|got - reference| in levels of the file, the reference being the luma when the file is gray; values
    the peers wrapped (255 where the reference is at most 3 levels: a negative output, see ncnn_images.py)
    are left out. Returns (differences, count wrapped)."""
    ref = luma(rgb) if got.ndim == 2 else rgb
    if got.shape != ref.shape:
        raise SystemExit(f"sizes differ: {got.shape}, float64 {ref.shape}")
    wrapped = (got == 1) & (ref * 255 <= 3) if unit == 255 else np.zeros(got.shape, bool)
    return (np.abs(got - ref) * unit)[~wrapped], int(wrapped.sum())


def _depth(path):
    """Bit depth from a PNG's IHDR."""
    with open(path, "rb") as f:
        return f.read(25)[24]


def _read_png16_rgb(path):
    """16-bit RGB or RGBA PNG (PIL reads these as 8-bit) -> (H, W, 3) in [0, 1]; numpy and zlib only."""
    import zlib
    data = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 16 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    ch = 3 if ctype == 2 else 4
    bpp, stride = 2 * ch, w * 2 * ch
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        ftype, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        cur = np.zeros(stride, dtype=np.int64)
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype < 4:
                pred = [0, a, b, (a + b) // 2][ftype]
            else:  # Paeth
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            cur[i] = (line[i] + pred) & 255
        out[y], prev = cur, cur
    v = ((out[:, 0::2] << 8) | out[:, 1::2]).reshape(h, w, ch)
    return v[..., :3].astype(np.float64) / 65535.0


def stats(d):
    return f"mean {d.mean():.3f}, p99.9 {np.percentile(d, 99.9):.2f}, max {d.max():.2f}"


def check(model_path, image, ours_path, levels, peer_path=None, factor=1.5):
    """Prints 'result 0|1 NAME' per check (0: passed) with diagnostics; returns 1 when one failed."""
    model = read_model(model_path)
    rgb = reference(model, image)
    got, unit = load_output(ours_path)
    d, _ = distance(got, unit, rgb)
    bound = 0.5 + levels
    print(f"# ours - float64, in levels of the {unit + 1}-level file: {stats(d)}; "
          f"{int((d > bound).sum())} of {d.size} values over {bound}")
    results = [(d.max() <= bound, "ours_is_float64_rounded")]
    if peer_path:
        emulated = reference(model, image, torch.float64, "winograd43")
        de, _ = distance(np.round(emulated * 255) / 255, 255, rgb)
        got, unit = load_output(peer_path)
        dp, wrapped = distance(got, unit, rgb)
        print(f"# peer - float64: {stats(dp)} ({wrapped} wrapped values left out)")
        print(f"# float64 with ncnn's fp16 storage emulated (winograd43), rounded to 8 bits - float64: {stats(de)}")
        limit = factor * np.percentile(de, 99.9)
        print(f"# limit of the peer's 99.9th percentile: {factor} x the emulation's = {limit:.2f}")
        results.append((np.percentile(dp, 99.9) <= limit, "peer_deviation_is_fp16_storage_sized"))
    for good, name in results:
        print(f"result {0 if good else 1} {name}")
    return 0 if all(g for g, _ in results) else 1


def compare(model_path, image, pngs, emulate):
    """One line per PNG and per emulated run: statistics of |value - float64| in levels of 255 (8-bit files
    and runs rounded to 8 bits as `celgan apply` rounds; a 16-bit file also as it is)."""
    model = read_model(model_path)
    rgb = reference(model, image)
    rows = []
    for spec in pngs:
        name, path = spec.split("=", 1)
        got, unit = load_output(path)
        if unit != 255:
            d, _ = distance(got, unit, rgb)
            rows.append((f"{name} (16-bit)", d * 255 / 65535, 0))
            got, unit = np.round(got * 255) / 255, 255
        rows.append((name,) + distance(got, unit, rgb))
    runs = [("float32", torch.float32, False)]
    if emulate:
        runs += [("fp16 blobs", torch.float64, "blobs"), ("fp16 winograd43", torch.float64, "winograd43")]
    for name, dtype, fp16 in runs:
        y = reference(model, image, dtype, fp16)
        rows.append((f"{name} (unrounded)", np.abs(y - rgb).ravel() * 255, 0))
        rows.append((f"{name} (8-bit)",) + distance(np.round(y * 255) / 255, 255, rgb))
    rows.append(("float64 rounded to 8 bits",) + distance(np.round(rgb * 255) / 255, 255, rgb))
    for name, d, wrapped in rows:
        print(f"{name:28s} {stats(d)}" + (f" ({wrapped} wrapped values left out)" if wrapped else ""))
    return 0


def main():
    args = sys.argv[1:]
    if len(args) >= 4 and args[0] == "check":
        levels = float(args[args.index("--levels") + 1]) if "--levels" in args else 0.05
        peer = args[args.index("--peer") + 1] if "--peer" in args else None
        return check(args[1], args[2], args[3], levels, peer)
    if len(args) >= 4 and args[0] == "compare":
        return compare(args[1], args[2], [a for a in args[3:] if "=" in a], "--emulate" in args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
