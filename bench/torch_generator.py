#!/usr/bin/env python3
"""Times a style-generator configuration in PyTorch (float32, inference, no autograd) at square sizes:
the layer norm written as one var_mean reduction (tuned) and as GroupNorm(1, C) (as the AnimeGANv2 port
ships it). Prints 'torch size=S norm=var_mean|groupnorm ms=M' lines (median of RUNS runs after a warm-up).

    bench/torch_generator.py CONFIG.json SIZES(256,512) RUNS [cpu|cuda]
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch  # noqa: E402

from torch_models import StyleGenerator  # noqa: E402


def main():
    cfg_path, sizes, runs = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
    dev = sys.argv[4] if len(sys.argv) > 4 else "cpu"
    tensors_path = os.environ.get("CELGAN_BENCH_TENSORS")
    with open(cfg_path) as f:
        cfg = json.load(f)
    # shapes of every tensor from the model file CelGAN made for the same configuration
    from torch_models import read_safetensors
    w, _ = read_safetensors(tensors_path)
    w = {k: v.to(dev) for k, v in w.items()}
    torch.set_grad_enabled(False)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads", flush=True)
    for norm in ("var_mean", "groupnorm"):
        g = StyleGenerator(cfg, w)
        g.var_mean_norm = norm == "var_mean"
        for s in sizes:
            x = torch.rand((1, 3, s, s), device=dev) * 2 - 1
            g(x)  # warm-up
            times = []
            for _ in range(runs):
                if dev == "cuda":
                    torch.cuda.synchronize()
                a = time.perf_counter()
                g(x)
                if dev == "cuda":
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - a) * 1e3)
            print(f"torch size={s} norm={norm} ms={statistics.median(times):.2f}", flush=True)


if __name__ == "__main__":
    main()
