#!/usr/bin/env python3
"""PyTorch oracle for `celgan train --reference-guided`: the same GAN training, step by step, in float64.

    python3 tests/oracle/torch_refgan.py path/to/celgan [--steps N] [--crop N] [--dtype float64|float32]
                                                        (CELGAN_SOURCE_DIR: the source tree)

`celgan train --dump-batches DIR` writes its initial state (generator, both discriminators, power-iteration
vectors, the random feature network) and every batch. This program trains the same networks on the same batches
in PyTorch, written from docs/training.md and docs/model-format.md (the reference-gan family is ReferenceGAN in
torch_models.py): a warm-up on content and self-reconstruction, then LSGAN with spectral-norm PatchGANs on the
crop and on its bilinear half, content loss on the random features, style reconstruction (the output's style
code against the reference's, the latter a constant), self-reconstruction G(r, r) = r, cycle G(G(x, r), x) = x,
discriminator feature matching, Adam (beta1 0.5) per network. Every loss term of every step must match CelGAN's
metrics within 1% relative, and the final weights its checkpoint's.
The options default to the environment: CELGAN_TRAIN_STEPS (40), CELGAN_TRAIN_CROP (32), CELGAN_TRAIN_DTYPE
(float64). TAP output.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ops as T  # noqa: E402  (skips the whole program when torch is missing)
from torch_ops import tap, diag  # noqa: E402
from torch_models import ReferenceGAN, read_safetensors  # noqa: E402
from torch_train import Adam, Disc, features, generator_params, make_images, mse, weight_differences  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CFG = {"family": "reference-gan", "widths": [8, 16], "style_widths": [8, 16], "style_dim": 8, "blocks": 1,
       "stem_kernel": 3, "head_kernel": 3, "padding_mode": "reflect", "align_corners": 0}
# the reference-guided defaults of celgan train (docs/training.md)
W = dict(adv_g=1, adv_d=1, content=1, fm=1, style_rec=1, self_rec=10, cycle=5, warmup_content=1, d_real=1, d_fake=1)
LR_G, LR_D, LR_W = 2e-5, 4e-5, 2e-4
D_WIDTH, D_LAYERS, D_SCALES = 8, 2, 2
L1 = lambda a, b: (a - b).abs().mean()  # noqa: E731


def at_scale(x, k):
    """x at discriminator scale k: halved k times with bilinear resizing (align_corners False)."""
    if k == 0:
        return x
    s = x.shape[-1] >> k
    return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)


def step_losses(gp, ds, fw, b, w, gan):
    """The terms of one step. ds: (normalized weights, biases) per discriminator scale (gan only). loss_g sees
    the discriminators through detached weights, loss_d a detached output."""
    g = ReferenceGAN(CFG, gp)
    photo, ref = b["photo"], b["style"]
    code_ref = g.style_code(ref)
    fake = g(photo, ref, code=code_ref)
    content = sum(L1(a, c) for a, c in zip(features(photo, fw), features(fake, fw)))
    self_rec = L1(g(ref, ref), ref)
    if not gan:
        return dict(content=content, self_rec=self_rec, g_total=w["warmup_content"] * content + w["self_rec"] * self_rec)
    d_real = d_fake = g_adv = fm = 0
    for k, (wsn, db) in enumerate(ds):
        real_feat, fake_feat = [], []
        d_real = d_real + mse(Disc.run(at_scale(ref, k), wsn, db, real_feat), 1)
        d_fake = d_fake + mse(Disc.run(at_scale(fake.detach(), k), wsn, db), 0)
        g_adv = g_adv + mse(Disc.run(at_scale(fake, k), [x.detach() for x in wsn], [x.detach() for x in db], fake_feat), 1)
        fm = fm + sum(L1(r.detach().mean(dim=(0, 2, 3)), f.mean(dim=(0, 2, 3))) for r, f in zip(real_feat, fake_feat))
    style_rec = L1(g.style_code(fake), code_ref.detach())
    cycle = L1(g(fake, photo), photo)
    loss_g = (w["adv_g"] * g_adv + w["content"] * content + w["style_rec"] * style_rec + w["self_rec"] * self_rec
              + w["cycle"] * cycle + w["fm"] * fm)
    loss_d = w["adv_d"] * (w["d_real"] * d_real + w["d_fake"] * d_fake)
    return dict(g_adv=g_adv, content=content, fm=fm, style_rec=style_rec, self_rec=self_rec, cycle=cycle, g_total=loss_g,
                d_real=d_real, d_fake=d_fake, d_total=loss_d)


def discriminators(st):
    return [Disc(st, "d/d." if k == 0 else f"d/d{k}.") for k in range(D_SCALES)]


def d_params(ds):
    return [p for d in ds for p in d.w + d.b]


def d_names(ds):
    names = []
    for k, d in enumerate(ds):
        pre = "d/d." if k == 0 else f"d/d{k}."
        names += [f"{pre}{l}.weight" for l in range(len(d.w))] + [f"{pre}{l}.bias" for l in range(len(d.b))]
    return names


def train_torch(st, batches, warmup, dtype, w):
    """The whole run in PyTorch: per-step losses (floats) and the final parameters (name -> tensor)."""
    st = {k: v.to(dtype) for k, v in st.items()}
    gp = generator_params(st)
    fw = [st[f"feat.{i}.weight"] for i in range(3)]
    ds = discriminators(st)
    gopt, dopt = Adam(list(gp.values())), Adam(d_params(ds))
    history = []
    for i, batch in enumerate(batches):
        b = {k: v.to(dtype) for k, v in batch.items()}
        params = list(gp.values()) + d_params(ds)
        for p in params:
            p.requires_grad_(True)
        gan = i >= warmup
        want = step_losses(gp, [(d.normalized(), d.b) for d in ds] if gan else [], fw, b, w, gan)
        if not gan:
            grads = torch.autograd.grad(want["g_total"], list(gp.values()))
            with torch.no_grad():
                gopt.step(list(gp.values()), grads, LR_W, i + 1)
            if i == warmup - 1:
                gopt = Adam(list(gp.values()))  # the warm-up's optimizer ends with it
        else:
            t = i - warmup + 1
            ggrads = torch.autograd.grad(want["g_total"], list(gp.values()))
            dgrads = torch.autograd.grad(want["d_total"], d_params(ds))
            with torch.no_grad():
                gopt.step(list(gp.values()), ggrads, LR_G, t)
                dopt.step(d_params(ds), dgrads, LR_D, t)
        history.append({k: float(v) for k, v in want.items()})
        for p in params:
            p.requires_grad_(False)
    final = {"g/" + k: p for k, p in gp.items()}
    final.update(dict(zip(d_names(ds), d_params(ds))))
    return history, final


def zero_gradient_params(st, batch, w):
    """Parameters whose gradient is zero in exact arithmetic (a bias right before an instance norm), found from
    one float64 GAN step: float32 turns their rounding noise into Adam steps of up to lr, float64 leaves them."""
    st = {k: v.double() for k, v in st.items()}
    gp, ds = generator_params(st), discriminators(st)
    fw = [st[f"feat.{i}.weight"] for i in range(3)]
    b = {k: v.double() for k, v in batch.items()}
    params = list(gp.values()) + d_params(ds)
    for p in params:
        p.requires_grad_(True)
    out = step_losses(gp, [(d.normalized(), d.b) for d in ds], fw, b, w, True)
    grads = torch.autograd.grad(out["g_total"] + out["d_total"], params)
    names = ["g/" + k for k in gp] + d_names(ds)
    top = max(float(g.abs().max()) for g in grads)
    return {n for n, g in zip(names, grads) if float(g.abs().max()) < 1e-9 * top}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("celgan")
    ap.add_argument("--steps", type=int, default=int(os.environ.get("CELGAN_TRAIN_STEPS", "40")))
    ap.add_argument("--crop", type=int, default=int(os.environ.get("CELGAN_TRAIN_CROP", "32")))
    ap.add_argument("--dtype", choices=("float64", "float32"), default=os.environ.get("CELGAN_TRAIN_DTYPE", "float64"))
    args = ap.parse_args()
    celgan = os.path.abspath(args.celgan)
    steps, crop = args.steps, args.crop
    warmup = max(1, steps // 10)
    torch.set_num_threads(2)
    name = f"/train_reference/{steps}_steps_{crop}x{crop}/{args.dtype}"
    with tempfile.TemporaryDirectory() as tmp:
        make_images(os.path.join(tmp, "photos"), 1, 3, "photo", crop)
        make_images(os.path.join(tmp, "styles"), 2, 3, "style", crop)
        cfg_path = os.path.join(tmp, "tiny.json")
        with open(cfg_path, "w") as f:
            json.dump(CFG, f)
        dump = os.path.join(tmp, "dump")
        cmd = [celgan, "train", "--reference-guided", "--photos", os.path.join(tmp, "photos"), "--styles",
               os.path.join(tmp, "styles"), "--out", os.path.join(tmp, "m.safetensors"), "--config", cfg_path, "--steps",
               str(steps), "--warmup", str(warmup), "--crop", str(crop), "--batch", "2", "--d-width", str(D_WIDTH),
               "--d-layers", str(D_LAYERS), "--d-scales", str(D_SCALES), "--lr-g", str(LR_G), "--lr-d", str(LR_D),
               "--lr-warmup", str(LR_W), "--weights", ",".join(f"{k}={v:g}" for k, v in W.items()),
               "--sample-every", "0", "--checkpoint-every", "0", "--seed", "7", "--quiet", "--dump-batches", dump]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not tap(r.returncode == 0, "/train_reference/celgan_runs"):
            diag(r.stderr)
            print(f"1..{T._count}")
            return 1
        with open(os.path.join(tmp, "m.safetensors.train", "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f]
        st, _ = read_safetensors(os.path.join(dump, "state-000000.safetensors"))
        final, _ = read_safetensors(os.path.join(tmp, "m.safetensors.train", "checkpoint.safetensors"))
        batches = [read_safetensors(os.path.join(dump, f"batch-{i:06d}.safetensors"))[0] for i in range(steps)]
        dtype = torch.float64 if args.dtype == "float64" else torch.float32
        history, want_final = train_torch(st, batches, warmup, dtype, W)

        worst, bad, missing = {}, [], set()
        for i, (got, want) in enumerate(zip(metrics, history)):
            for k, v in want.items():
                if k not in got:
                    missing.add(k)
                    continue
                rel = abs(got[k] - v) / max(abs(v), 1e-6)
                worst[k] = max(worst.get(k, 0.0), rel)
                if os.environ.get("CELGAN_TRAIN_DEBUG"):
                    diag(f"step {i + 1} {k}: {got[k]:.7g} {v:.7g} {rel:.1e}")
                if rel > 0.01:
                    bad.append(f"step {i + 1} {k}: celgan {got[k]:.7g} pytorch {v:.7g} ({rel:.2%})")
        if not tap(not missing and len(metrics) == steps, f"{name}/metrics_have_every_term_at_every_step"):
            diag(f"  missing: {sorted(missing)}; {len(metrics)} lines for {steps} steps")
        # one test per term, so a failure names the loss that is computed differently
        for k in ("content", "self_rec", "g_adv", "fm", "style_rec", "cycle", "g_total", "d_real", "d_fake", "d_total"):
            mine = [x for x in bad if f" {k}: " in x]
            if not tap(k in worst and not mine, f"{name}/{k}_within_1_percent_at_every_step"):
                diag("\n".join(mine[:10]))
        diag("  worst relative loss difference per term: " + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
        frozen = zero_gradient_params(st, batches[warmup], W) if steps > warmup else set()
        werr, wname, wmed = weight_differences(final, want_final, frozen)
        tap(werr < 5e-2, f"{name}/final_weights_match")
        diag(f"  final weights: worst difference {werr:.2e} of the tensor's largest value ({wname}), median over "
             f"tensors {wmed:.2e}")
        if frozen:
            diag("  zero-gradient parameters, not compared: " + ", ".join(sorted(frozen)))
    print(f"1..{T._count}")
    return 1 if T._failed else 0


if __name__ == "__main__":
    sys.exit(main())
