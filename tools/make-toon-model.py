#!/usr/bin/env python3
"""Writes data/models/toon.safetensors: CelGAN's hand-designed (not trained) cel-shading model.

It is a fixed-weight network in CelGAN's generic graph form, so it runs through exactly the same core as a
trained GAN generator: a Gaussian blur, a soft per-channel posterization (a sum of steep tanh steps, the
flat colour areas of cel animation) and ink lines where the Sobel gradient of the blurred luma is strong.
It exists so that CelGAN ships a working model before the trainer produces the real bundled style.

    python3 tools/make-toon-model.py [OUT]     (needs numpy)
"""
import json
import math
import struct
import sys

import numpy as np

LEVELS = 5          # colour steps per channel
SHARPNESS = 14.0    # slope of each tanh step
INK_GAIN = 16.0     # how fast a line darkens with the gradient
INK_THRESHOLD = 0.3
LUMA = (0.299, 0.587, 0.114)


def gaussian(k, sigma):
    r = np.arange(k) - (k - 1) / 2
    g = np.exp(-r * r / (2 * sigma * sigma))
    g = np.outer(g, g)
    return g / g.sum()


def tensors():
    t = {}
    t["blur.weight"] = np.stack([gaussian(5, 1.4)[None]] * 3).astype(np.float32)          # (3,1,5,5)
    thresholds = [(-1 + 2 * (k + 0.5) / LEVELS) for k in range(LEVELS)]
    t["steps.weight"] = np.full((3 * LEVELS, 1, 1, 1), SHARPNESS, np.float32)
    t["steps.bias"] = np.array([-SHARPNESS * th for _ in range(3) for th in thresholds], np.float32)
    t["levels.weight"] = np.full((3, LEVELS, 1, 1), 1.0 / LEVELS, np.float32)
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 4
    sy = sx.T.copy()
    sob = np.zeros((4, 3, 3, 3), np.float32)
    for c in range(3):
        sob[0, c] = LUMA[c] * sx
        sob[1, c] = -LUMA[c] * sx
        sob[2, c] = LUMA[c] * sy
        sob[3, c] = -LUMA[c] * sy
    t["sobel.weight"] = sob
    t["ink.weight"] = np.full((1, 4, 1, 1), INK_GAIN, np.float32)
    t["ink.bias"] = np.array([-INK_GAIN * INK_THRESHOLD], np.float32)
    return t


def architecture(t):
    return {
        "family": "graph", "inputs": ["image"], "in_channels": 3, "out_channels": 3,
        "input_range": [-1, 1], "output_range": [-1, 1],
        "tensors": {k: list(v.shape) for k, v in t.items()},
        "nodes": [
            {"name": "blur", "op": "conv2d", "in": ["image"], "weight": "blur.weight", "padding": 2,
             "padding_mode": "reflect", "groups": 3},
            {"name": "steps", "op": "conv2d", "in": ["blur"], "weight": "steps.weight", "bias": "steps.bias",
             "groups": 3},
            {"name": "steps_t", "op": "tanh", "in": ["steps"]},
            {"name": "flat", "op": "conv2d", "in": ["steps_t"], "weight": "levels.weight", "groups": 3},
            {"name": "grad", "op": "conv2d", "in": ["blur"], "weight": "sobel.weight", "padding": 1,
             "padding_mode": "reflect"},
            {"name": "grad_abs", "op": "relu", "in": ["grad"]},
            {"name": "edge", "op": "conv2d", "in": ["grad_abs"], "weight": "ink.weight", "bias": "ink.bias"},
            {"name": "ink", "op": "sigmoid", "in": ["edge"]},
            {"name": "paper", "op": "scale_shift", "in": ["ink"], "scale": -1, "shift": 1},
            {"name": "inked", "op": "mul", "in": ["flat", "paper"]},
            {"name": "out", "op": "add", "in": ["inked", "ink"], "alpha": 1, "beta": -1},
        ],
        "output": "out",
    }


def save(path, t, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for k, v in t.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/models/toon.safetensors"
    t = tensors()
    meta = {
        "celgan.format": "1",
        "celgan.architecture": json.dumps(architecture(t), separators=(",", ":")),
        "celgan.name": "Toon (hand-designed)",
        "celgan.description": "Flat colour steps and ink lines from fixed, hand-set weights: a cel-shading filter, "
                              "not a trained GAN. Fast on any device.",
        "celgan.license": "GPL-3.0-or-later (part of CelGAN; weights set by tools/make-toon-model.py)",
        "celgan.training": json.dumps({"trained": False, "made_by": "tools/make-toon-model.py"}),
    }
    save(out, t, meta)


if __name__ == "__main__":
    main()
