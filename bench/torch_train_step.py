#!/usr/bin/env python3
"""Times one GAN training step of `celgan train` in PyTorch (float32): the style-generator configuration, the
spectral-norm PatchGAN, the random feature network and every loss of docs/training.md (LSGAN, content, Gram
style, YUV colour, total variation), one backward of L_G + L_D and an Adam step of each network. The networks
and losses are the training oracle's (tests/oracle/torch_train.py); the layer norm is the tuned var_mean form.
Prints 'torch config=NAME crop=S batch=B ms=M images_per_s=X' (median of STEPS steps after one warm-up step).

    bench/torch_train_step.py CONFIG.json NAME CROP BATCH STEPS [cpu|cuda]
    CELGAN_BENCH_TENSORS=model.safetensors   the generator's tensors (CelGAN's initial weights for CONFIG)
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import torch  # noqa: E402

from torch_models import StyleGenerator, read_safetensors  # noqa: E402
import torch_train as O  # noqa: E402


def main():
    cfg_path, name, crop, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    dev = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    with open(cfg_path) as f:
        cfg = json.load(f)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(1)
    w, _ = read_safetensors(os.environ["CELGAN_BENCH_TENSORS"])
    st = {"g/" + k: (v.reshape(1, -1, 1, 1) if v.dim() == 1 else v).to(dev) for k, v in w.items()}
    d_width, d_layers = 32, 3  # celgan train's defaults
    for l in range(d_layers + 1):
        ic = 3 if l == 0 else d_width << (l - 1)
        oc = 1 if l == d_layers else d_width << l
        k = 3 if l == d_layers else 4
        st[f"d/d.{l}.weight"] = (torch.rand(oc, ic, k, k, device=dev) * 2 - 1) / (ic * k * k) ** 0.5
        st[f"d/d.{l}.bias"] = torch.zeros(1, oc, 1, 1, device=dev)
        st[f"d/d.{l}.u"] = torch.nn.functional.normalize(torch.randn(oc, device=dev), dim=0)
    fw = [torch.randn(oc, ic, 3, 3, device=dev) * (2 / (ic * 9)) ** 0.5 for ic, oc in ((3, 16), (16, 32), (32, 64))]
    gp = O.generator_params(st)
    d = O.Disc(st)
    params_g, params_d = list(gp.values()), d.w + d.b
    for p in params_g + params_d:
        p.requires_grad_(True)
    opt_g = torch.optim.Adam(params_g, lr=2e-5, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(params_d, lr=4e-5, betas=(0.5, 0.999))
    gen = StyleGenerator(cfg, gp)
    gen.var_mean_norm = True
    batches = [{k: torch.rand(batch, 3, crop, crop, device=dev) * 2 - 1 for k in ("photo", "style", "gray", "smooth")}
               for _ in range(2)]
    times = []
    for i in range(steps + 1):
        b = batches[i % 2]
        if dev == "cuda":
            torch.cuda.synchronize()
        a = time.perf_counter()
        opt_g.zero_grad(set_to_none=True)
        opt_d.zero_grad(set_to_none=True)
        out = O.gan_losses(gen(b["photo"]), b, fw, d.normalized(), d.b, O.W)
        (out["g_total"] + out["d_total"]).backward()
        opt_g.step()
        opt_d.step()
        if dev == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - a)
    ms = statistics.median(times) * 1e3
    print(f"torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads", flush=True)
    print(f"torch config={name} crop={crop} batch={batch} ms={ms:.1f} images_per_s={batch / ms * 1e3:.4g}", flush=True)


if __name__ == "__main__":
    main()
