#!/usr/bin/python3
"""Helpers of tests/test_ncnn_peers.sh (numpy + PIL, Debian's python3-numpy and python3-pil).

  ncnn_images.py make DIR            writes the test images: a 72x56 drawing with noise, an odd 71x53 one and a
                                     45x38 one with alpha and a 37x29 gray one
  ncnn_images.py compare PEER OURS   compares two 8-bit images of the same size (RGB, or RGBA when both have alpha);
                                     prints one line and exits 1
                                     when the mean absolute difference is over 0.5 levels or the 99.9th
                                     percentile over 3 levels (the tolerance of issue 8)
  ncnn_images.py equal A B           exits 1 unless the two images are identical

The peers turn output values below -0.5/255 into 255: their post-processing converts a negative float to
uint before clamping (undefined in GLSL; lavapipe saturates). Where the peer has 255 and we have at most 3
(we clamp to 0), the pixel is counted apart as 'wrapped' and left out of the statistics. Gray inputs: the
peers write RGB, we write the luma; the peer's luma is compared."""
import sys

import numpy as np
from PIL import Image, ImageDraw


def make(folder):
    rng = np.random.default_rng(7)
    for w, h, name in [(72, 56, "drawing.png"), (71, 53, "odd.png"), (45, 38, "alpha.png"), (37, 29, "gray.png")]:
        im = Image.new("RGB", (w, h), (240, 230, 220))
        d = ImageDraw.Draw(im)
        for _ in range(12):
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            box = [x0, y0, x0 + rng.integers(5, 30), y0 + rng.integers(5, 30)]
            d.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)), outline=(20, 20, 20))
        for _ in range(6):
            d.line([tuple(rng.integers(0, w, 2)), tuple(rng.integers(0, h, 2))], fill=(0, 0, 0), width=1)
        a = np.clip(np.asarray(im).astype(np.float32) + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
        if name == "alpha.png":  # a radial fade, a checker of opaque cells and a transparent hole
            y, x = np.mgrid[0:h, 0:w]
            alpha = (np.clip(np.hypot(x - w / 2, y - h / 2) / (w / 2), 0, 1) * 255).astype(np.uint8)
            alpha[(x // 7 + y // 5) % 3 == 0] = 255
            alpha[10:20, 10:30] = 0
            Image.fromarray(np.dstack([a, alpha]), "RGBA").save(f"{folder}/{name}")
        elif name == "gray.png":
            Image.fromarray(a).convert("L").save(f"{folder}/{name}")
        else:
            Image.fromarray(a).save(f"{folder}/{name}")


def load(path, keep_alpha=False):
    im = Image.open(path)
    mode = "RGBA" if keep_alpha and im.mode in ("RGBA", "LA") else "RGB"
    return np.asarray(im.convert(mode)).astype(np.float64)


def compare_gray(peer_path, ours_path):
    """A gray input: the peers write RGB (the network's three channels), we write its luma (BT.601)."""
    peer = np.asarray(Image.open(peer_path).convert("RGB")).astype(np.float64)
    ours = np.asarray(Image.open(ours_path).convert("L")).astype(np.float64)
    if peer.shape[:2] != ours.shape:
        print(f"sizes differ: peer {peer.shape}, ours {ours.shape}")
        return 1
    luma = 0.299 * peer[..., 0] + 0.587 * peer[..., 1] + 0.114 * peer[..., 2]
    # a channel at 255 in a pixel we find darker than 200 is a wrapped negative (a gray pixel's channels agree)
    wrapped = (peer == 255).any(axis=2) & (ours <= 200)
    d = np.abs(luma - ours)[~wrapped]
    mean, p999, worst = d.mean(), np.percentile(d, 99.9), d.max()
    print(f"gray: luma mean {mean:.3f}/255, p99.9 {p999:.2f}/255, max {worst:.1f}/255, "
          f"pixels wrapped by the peer {wrapped.sum()} of {ours.size}")
    return 0 if mean <= 0.5 and p999 <= 3 else 1


def compare(peer_path, ours_path):
    if Image.open(ours_path).mode in ("L", "LA"):
        return compare_gray(peer_path, ours_path)
    peer, ours = load(peer_path, True), load(ours_path, True)
    if peer.shape != ours.shape:
        print(f"sizes differ: peer {peer.shape}, ours {ours.shape}")
        return 1
    wrapped = (peer == 255) & (ours <= 3)
    d = np.abs(peer - ours)[~wrapped]
    mean, p999, worst = d.mean(), np.percentile(d, 99.9), d.max()
    print(f"mean {mean:.3f}/255, p99.9 {p999:.2f}/255, max {worst:.0f}/255, "
          f"wrapped by the peer {wrapped.sum()} of {peer.size} values")
    return 0 if mean <= 0.5 and p999 <= 3 else 1


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    if sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    if sys.argv[1] == "equal":
        a, b = load(sys.argv[2]), load(sys.argv[3])
        same = a.shape == b.shape and (a == b).all()
        print("identical" if same else f"differ (max {np.abs(a - b).max() if a.shape == b.shape else 'size'})")
        return 0 if same else 1
    if sys.argv[1] == "close":  # close A B: at most 1 level apart, in at most 1 % of the values
        a, b = load(sys.argv[2]), load(sys.argv[3])
        if a.shape != b.shape:
            print("differ (size)")
            return 1
        d = np.abs(a.astype(np.int32) - b.astype(np.int32))
        frac = float((d > 0).mean())
        print(f"max {d.max()}, {100 * frac:.3f} % of values differ")
        return 0 if d.max() <= 1 and frac <= 0.01 else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
