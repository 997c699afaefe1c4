#!/usr/bin/env python3
"""Compares the tensors of two safetensors files (F32) within a tolerance: |a - b| <= atol + rtol * |b| for every
element, with the same names and shapes. Two metrics.jsonl files (celgan train) are compared the same way, every
number of every line but the timings. Prints the worst; exit 0 when within tolerance, 1 otherwise. No numpy: the
test needs only python3.

  compare_safetensors.py A B [--rtol 1e-3] [--atol 1e-5] [--prefix g/]
"""
import argparse
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, not F32")
        a, b = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack(f"<{(b - a) // 4}f", data[a:b]))
    return out


def load_metrics(path):
    out = {}
    with open(path) as f:
        for i, line in enumerate(f):
            for k, v in json.loads(line).items():
                if isinstance(v, (int, float)) and k not in ("images_per_s", "seconds"):
                    out.setdefault(k, ([], []))[1].append(v)
    return {k: ([len(v[1])], tuple(v[1])) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--prefix", default="", help="compare only tensors whose names start with this")
    o = ap.parse_args()
    read = load_metrics if o.a.endswith(".jsonl") else load
    a, b = read(o.a), read(o.b)
    names = sorted(n for n in a if n.startswith(o.prefix))
    if names != sorted(n for n in b if n.startswith(o.prefix)) or not names:
        print(f"different tensor names: {sorted(set(a) ^ set(b))[:5]}")
        return 1
    worst, worst_name, bad = 0.0, "", 0
    for n in names:
        if a[n][0] != b[n][0]:
            print(f"{n}: shapes {a[n][0]} and {b[n][0]}")
            return 1
        for x, y in zip(a[n][1], b[n][1]):
            excess = abs(x - y) / (o.atol + o.rtol * abs(y))
            if excess > worst:
                worst, worst_name = excess, n
            bad += excess > 1
    print(f"{len(names)} tensors; worst {worst_name}: {worst:.3g} of the tolerance; {bad} elements outside it")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
