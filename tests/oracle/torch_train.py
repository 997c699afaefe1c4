#!/usr/bin/env python3
"""PyTorch oracle for `celgan train`: the same GAN training, step by step, in float64 (or float32).

    python3 tests/oracle/torch_train.py path/to/celgan [--steps N] [--crop N] [--fm X] [--dtype float64|float32]
                                                       [--both-dtypes]        (CELGAN_SOURCE_DIR: the source tree)

`celgan train --dump-batches DIR` writes its initial state (generator, discriminator, power-iteration vectors
and the random feature network) and every batch it trains on. This program trains the same networks with
the same batches and hyper-parameters in PyTorch, written from docs/training.md (the style-generator family
from torch_models.py): warm-up on the content loss, then LSGAN with a spectral-norm PatchGAN, content and
Gram style losses, YUV color, total variation and discriminator feature matching, Adam (beta1 0.5) per
network. Each step's losses must match CelGAN's metrics within 1% relative, and the final weights its
checkpoint's. --both-dtypes also trains PyTorch in the other precision and reports how far PyTorch float32
and float64 drift apart on their own (the yardstick for CelGAN's float32 drift).
The options default to the environment: CELGAN_TRAIN_STEPS (100), CELGAN_TRAIN_CROP (32), CELGAN_TRAIN_FM
(100; 0 leaves feature matching out), CELGAN_TRAIN_DTYPE (float64). TAP output.
The networks and losses (gan_losses, Disc, features) are also what bench/torch_train_step.py times.
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
from torch_models import StyleGenerator, read_safetensors  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CFG = {"family": "style-generator", "widths": [8, 16], "stem_kernel": 3, "down_convs": 0, "blocks": 1,
       "block": "residual", "up_widths": [8], "head_kernel": 3, "norm": "instance", "padding_mode": "reflect",
       "align_corners": 0}
W = dict(adv_g=300, adv_d=300, content=1.5, style=2.5, color=10, tv=1, fm=0, warmup_content=1.5,
         d_real=1.2, d_fake=1.2, d_gray=1.2, d_blur=0.8)
LR_G, LR_D, LR_W, B1, B2, EPS = 2e-5, 4e-5, 2e-4, 0.5, 0.999, 1e-8  # the defaults of celgan train
D_WIDTH, D_LAYERS = 8, 2
YUV = [[0.299, 0.587, 0.114], [-0.14714119, -0.28886916, 0.43601035], [0.61497538, -0.51496512, -0.10001026]]


def make_images(folder, seed, count, kind, crop):
    """A few deterministic PNGs with numpy + PIL (both in Debian's python3), each larger than the crop."""
    import numpy as np
    from PIL import Image
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = crop + 16 + 8 * i, crop + 24 + 4 * i
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([0.5 + 0.4 * np.sin(x * (0.1 + 0.05 * c) + y * 0.07 * (i + 1) + c) for c in range(3)], -1)
        if kind == "style":
            img = np.where(((x // 7 + y // 7) % 2)[..., None] == 1, img * 0.3 + 0.6, img * 0.5)
        img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(os.path.join(folder, f"{kind}{i}.png"))


# ---- the networks and losses of docs/training.md ------------------------------------------------------

def features(x, fw):
    """The random feature network: 3x3 convolutions, ReLU between them, each one's output before its ReLU."""
    outs, h = [], x
    for i in range(len(fw)):
        h = F.conv2d(h if i == 0 else F.relu(h), fw[i], stride=1 if i == 0 else 2, padding=1)
        outs.append(h)
    return outs


def gram(x):
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def mse(x, v):
    return ((x - v) ** 2).mean()


class Disc:
    """The spectral-norm PatchGAN; w, b are the parameters, u the power-iteration vectors (from a state dict
    with CelGAN's names d/d.L.weight, d/d.L.bias, d/d.L.u)."""

    def __init__(self, st, prefix="d/d."):
        """prefix: "d/d." for the discriminator on the image, "d/dS." for the one of scale S."""
        n = sum(1 for k in st if k.startswith(prefix) and k.endswith(".weight"))
        self.w = [st[f"{prefix}{l}.weight"].clone() for l in range(n)]
        self.b = [st[f"{prefix}{l}.bias"].reshape(-1).clone() for l in range(n)]
        self.u = [st[f"{prefix}{l}.u"].reshape(-1)[:self.w[l].shape[0]].clone() for l in range(n)]

    def normalized(self):
        """One power iteration per step (u, v constants), as torch.nn.utils.spectral_norm; updates u."""
        out = []
        for l, wl in enumerate(self.w):
            wm = wl.reshape(wl.shape[0], -1)
            with torch.no_grad():
                v = F.normalize(wm.t() @ self.u[l], dim=0, eps=1e-12)
                u = F.normalize(wm @ v, dim=0, eps=1e-12)
                self.u[l] = u
            out.append(wl / torch.dot(u, wm @ v))
        return out

    @staticmethod
    def run(x, ws, bs, feat=None):
        """D(x); feat (a list) receives the hidden layers' outputs after their LeakyReLU."""
        h = x
        for l in range(len(ws)):
            last = l == len(ws) - 1
            h = F.conv2d(h, ws[l], bs[l], stride=1 if last else 2, padding=1)
            if last:
                break
            if l > 0:
                h = F.instance_norm(h, eps=1e-5)
            h = F.leaky_relu(h, 0.2)
            if feat is not None:
                feat.append(h)
        return h


def luma(x):
    """--d-luma: what D sees of an image, its luma (0.299, 0.587, 0.114) in all three channels."""
    y = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return y.expand(-1, 3, -1, -1)


def gan_losses(fake, b, fw, wsn, db, w, d_luma=False):
    """The GAN phase's terms for generated images `fake` of batch b (photo, style, gray, smooth) with D's
    normalized weights wsn and biases db. loss_g sees D through detached weights, loss_d a detached fake, so
    (loss_g + loss_d) has each network's gradient of its own loss. d_luma: D sees the luma of its inputs and
    the gray term is left out."""
    fp, ff = features(b["photo"], fw), features(fake, fw)
    content = sum((a - c).abs().mean() for a, c in zip(fp, ff))
    real_feat, fake_feat = [], []
    see = luma if d_luma else (lambda x: x)
    dl = [mse(Disc.run(see(b["style"]), wsn, db, real_feat), 1), mse(Disc.run(see(fake.detach()), wsn, db), 0),
          None if d_luma else mse(Disc.run(b["gray"], wsn, db), 0), mse(Disc.run(see(b["smooth"]), wsn, db), 0)]
    loss_d = w["adv_d"] * (w["d_real"] * dl[0] + w["d_fake"] * dl[1] + w["d_blur"] * dl[3])
    if not d_luma:
        loss_d = loss_d + w["adv_d"] * w["d_gray"] * dl[2]
    g_adv = mse(Disc.run(see(fake), [x.detach() for x in wsn], [x.detach() for x in db], fake_feat), 1)
    fs = features(b["gray"], fw)
    style = sum((gram(a) - gram(c)).abs().mean() for a, c in zip(ff, fs))
    yuv_m = torch.tensor(YUV, dtype=fake.dtype, device=fake.device) * 0.5
    yuv = lambda x: torch.einsum("oc,nchw->nohw", yuv_m, x)  # noqa: E731
    color = 3 * (yuv(b["photo"]) - yuv(fake)).abs().mean()
    tv = mse(fake[:, :, 1:, :], fake[:, :, :-1, :]) + mse(fake[:, :, :, 1:], fake[:, :, :, :-1])
    loss_g = w["adv_g"] * g_adv + w["content"] * content + w["style"] * style + w["color"] * color + w["tv"] * tv
    out = dict(g_adv=g_adv, content=content, style=style, color=color, tv=tv, d_real=dl[0], d_fake=dl[1],
               d_blur=dl[3], d_total=loss_d)
    if not d_luma:
        out["d_gray"] = dl[2]
    if w["fm"] > 0:
        fm = sum((r.detach().mean(dim=(0, 2, 3)) - f.mean(dim=(0, 2, 3))).abs().mean()
                 for r, f in zip(real_feat, fake_feat))
        loss_g = loss_g + w["fm"] * fm
        out["fm"] = fm
    out["g_total"] = loss_g
    return out


class Adam:
    def __init__(self, params):
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, params, grads, lr, t):
        bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m.mul_(B1).add_((1 - B1) * g)
            v.mul_(B2).add_((1 - B2) * g * g)
            p.sub_(lr / bc1 * m / (v.sqrt() / bc2 ** 0.5 + EPS))


def generator_params(st):
    """The generator's tensors of a CelGAN state: biases and norm parameters are (1, C, 1, 1) there, (C,) here."""
    gp = {}
    for k in [k[2:] for k in st if k.startswith("g/")]:
        t = st["g/" + k]
        gp[k] = t.reshape(-1).clone() if (t.shape[0] == 1 and t.shape[2] == 1 and t.shape[3] == 1
                                           and not k.endswith("conv.weight") and k != "out.weight") else t.clone()
    return gp


def train_torch(st, batches, warmup, dtype, w, d_luma=False):
    """The whole run in PyTorch: per-step losses (floats) and the final parameters (name -> tensor)."""
    st = {k: v.to(dtype) for k, v in st.items()}
    gp = generator_params(st)
    fw = [st[f"feat.{i}.weight"] for i in range(3)]
    d = Disc(st)
    gopt = Adam(list(gp.values()))
    dopt = Adam(d.w + d.b)
    history = []
    for i, batch in enumerate(batches):
        b = {k: v.to(dtype) for k, v in batch.items()}
        for p in list(gp.values()) + d.w + d.b:
            p.requires_grad_(True)
        fake = StyleGenerator(CFG, gp)(b["photo"])
        if i < warmup:
            content = sum((a - c).abs().mean() for a, c in zip(features(b["photo"], fw), features(fake, fw)))
            loss_g = w["warmup_content"] * content
            want = {"content": content, "g_total": loss_g}
            grads = torch.autograd.grad(loss_g, list(gp.values()))
            with torch.no_grad():
                gopt.step(list(gp.values()), grads, LR_W, i + 1)
            if i == warmup - 1:
                gopt = Adam(list(gp.values()))  # the warm-up's optimizer ends with it
        else:
            t = i - warmup + 1
            want = gan_losses(fake, b, fw, d.normalized(), d.b, w, d_luma)
            ggrads = torch.autograd.grad(want["g_total"], list(gp.values()))
            dgrads = torch.autograd.grad(want["d_total"], d.w + d.b)
            with torch.no_grad():
                gopt.step(list(gp.values()), ggrads, LR_G, t)
                dopt.step(d.w + d.b, dgrads, LR_D, t)
        history.append({k: float(v) for k, v in want.items()})
        for p in list(gp.values()) + d.w + d.b:
            p.requires_grad_(False)
    final = {"g/" + k: p for k, p in gp.items()}
    for l in range(len(d.w)):
        final[f"d/d.{l}.weight"], final[f"d/d.{l}.bias"] = d.w[l], d.b[l]
    return history, final


def zero_gradient_params(st, batch, w, d_luma=False):
    """Parameters whose gradient is zero in exact arithmetic (the bias of a norm or a convolution whose output
    reaches the loss only through a norm that removes per-channel constants), found from one float64 GAN step.
    In float32 their gradient is rounding noise, which Adam turns into steps of up to lr, while float64 leaves
    them at their start; they change no output, so final weights are compared without them."""
    st = {k: v.double() for k, v in st.items()}
    gp, d = generator_params(st), Disc(st)
    fw = [st[f"feat.{i}.weight"] for i in range(3)]
    b = {k: v.double() for k, v in batch.items()}
    for p in list(gp.values()) + d.w + d.b:
        p.requires_grad_(True)
    out = gan_losses(StyleGenerator(CFG, gp)(b["photo"]), b, fw, d.normalized(), d.b, w, d_luma)
    params = list(gp.values()) + d.w + d.b
    grads = torch.autograd.grad(out["g_total"] + out["d_total"], params)
    names = ["g/" + k for k in gp] + [f"d/d.{l}.weight" for l in range(len(d.w))] + [f"d/d.{l}.bias" for l in range(len(d.w))]
    top = max(float(g.abs().max()) for g in grads)
    return {n for n, g in zip(names, grads) if float(g.abs().max()) < 1e-9 * top}


def weight_differences(a, b, skip):
    """Worst and median difference between two sets of final weights, relative to each tensor's largest value."""
    worst, name, rel = 0.0, "", []
    for k, p in b.items():
        if k in skip:
            continue
        p, c = p.double(), a[k].double().reshape(p.shape)
        e = float((c - p).abs().max()) / max(float(p.abs().max()), 1e-12)
        rel.append(e)
        if e > worst:
            worst, name = e, k
    rel.sort()
    return worst, name, rel[len(rel) // 2] if rel else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("celgan")
    ap.add_argument("--steps", type=int, default=int(os.environ.get("CELGAN_TRAIN_STEPS", "100")))
    ap.add_argument("--crop", type=int, default=int(os.environ.get("CELGAN_TRAIN_CROP", "32")))
    ap.add_argument("--fm", type=float, default=float(os.environ.get("CELGAN_TRAIN_FM", "100")))
    ap.add_argument("--dtype", choices=("float64", "float32"), default=os.environ.get("CELGAN_TRAIN_DTYPE", "float64"))
    ap.add_argument("--both-dtypes", action="store_true")
    ap.add_argument("--config", help="generator architecture (JSON file or a name in data/configs); default a tiny one")
    ap.add_argument("--d-width", type=int, default=D_WIDTH)
    ap.add_argument("--d-layers", type=int, default=D_LAYERS)
    ap.add_argument("--d-luma", action="store_true", default=os.environ.get("CELGAN_TRAIN_D_LUMA") == "1",
                    help="celgan train --d-luma (D sees the luma only)")
    args = ap.parse_args()
    global CFG
    if args.config:
        path = args.config if os.path.exists(args.config) else os.path.join(
            os.environ.get("CELGAN_SOURCE_DIR", "."), "data", "configs", args.config + ".json")
        with open(path) as f:
            CFG = json.load(f)
    celgan = os.path.abspath(args.celgan)
    steps, crop = args.steps, args.crop
    warmup = max(1, steps // 10)
    w = dict(W, fm=args.fm)
    torch.set_num_threads(2)
    name = f"/train/{steps}_steps_{crop}x{crop}" + (f"_{os.path.basename(args.config).removesuffix('.json')}" if args.config else "")
    name += (f"_fm{args.fm:g}" if args.fm > 0 else "") + ("_d_luma" if args.d_luma else "") + f"/{args.dtype}"
    with tempfile.TemporaryDirectory() as tmp:
        make_images(os.path.join(tmp, "photos"), 1, 3, "photo", crop)
        make_images(os.path.join(tmp, "styles"), 2, 3, "style", crop)
        cfg_path = os.path.join(tmp, "tiny.json")
        with open(cfg_path, "w") as f:
            json.dump(CFG, f)
        dump = os.path.join(tmp, "dump")
        cmd = [celgan, "train", "--photos", os.path.join(tmp, "photos"), "--styles", os.path.join(tmp, "styles"),
               "--out", os.path.join(tmp, "m.safetensors"), "--config", cfg_path, "--steps", str(steps),
               "--warmup", str(warmup), "--crop", str(crop), "--batch", "2", "--d-width", str(args.d_width),
               "--d-layers", str(args.d_layers), "--lr-g", str(LR_G), "--lr-d", str(LR_D), "--lr-warmup", str(LR_W),
               "--weights", ",".join(f"{k}={v:g}" for k, v in w.items()),
               "--sample-every", "0", "--checkpoint-every", "0", "--seed", "7", "--quiet", "--dump-batches", dump] + (["--d-luma"] if args.d_luma else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not tap(r.returncode == 0, "/train/celgan_runs"):
            diag(r.stderr)
            print(f"1..{T._count}")
            return 1
        with open(os.path.join(tmp, "m.safetensors.train", "metrics.jsonl")) as f:
            metrics = [json.loads(line) for line in f]
        st, _ = read_safetensors(os.path.join(dump, "state-000000.safetensors"))
        final, _ = read_safetensors(os.path.join(tmp, "m.safetensors.train", "checkpoint.safetensors"))
        batches = [read_safetensors(os.path.join(dump, f"batch-{i:06d}.safetensors"))[0] for i in range(steps)]
        dtype = torch.float64 if args.dtype == "float64" else torch.float32
        history, want_final = train_torch(st, batches, warmup, dtype, w, args.d_luma)

        worst, bad_steps, per_step = {}, [], []
        for i, (got, want) in enumerate(zip(metrics, history)):
            step_worst = 0.0
            for k, v in want.items():
                rel = abs(got[k] - v) / max(abs(v), 1e-6)
                worst[k] = max(worst.get(k, 0.0), rel)
                step_worst = max(step_worst, rel)
                if os.environ.get("CELGAN_TRAIN_DEBUG"):
                    diag(f"step {i + 1} {k}: {got[k]:.7g} {v:.7g} {rel:.1e}")
                if rel > 0.01:
                    bad_steps.append(f"step {i + 1} {k}: celgan {got[k]:.7g} pytorch {v:.7g} ({rel:.2%})")
            per_step.append(step_worst)
        if not tap(not bad_steps, f"{name}/losses_within_1_percent_at_every_step"):
            diag("\n".join(bad_steps[:20]))
        diag("  worst relative loss difference per term: " + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
        span = max(1, steps // 10)
        diag(f"  worst relative loss difference per {span} steps: " + ", ".join(
            f"{a + 1}-{min(a + span, steps)} {max(per_step[a:a + span]):.1e}" for a in range(0, steps, span)))
        frozen = zero_gradient_params(st, batches[warmup], w, args.d_luma) if steps > warmup else set()
        werr, wname, wmed = weight_differences(final, want_final, frozen)
        # float32 against float64 through a GAN: the runs agree to ~1e-6 for the first ~60 steps, then drift
        # apart slowly (losses stay within 1%); 5% of a tensor's largest value bounds that drift at 100-200 steps.
        tap(werr < 5e-2, f"{name}/final_weights_match")
        diag(f"  final weights: worst difference {werr:.2e} of the tensor's largest value ({wname}), median over "
             f"tensors {wmed:.2e}")
        if frozen:
            diag("  zero-gradient parameters, not compared: " + ", ".join(
                f"{k} (CelGAN moved it by {float((final[k].double() - st[k].double()).abs().max()):.1e})" for k in sorted(frozen)))
        if args.both_dtypes:
            other = torch.float32 if dtype == torch.float64 else torch.float64
            history2, final2 = train_torch(st, batches, warmup, other, w, args.d_luma)
            loss_gap = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-6) for a, b in zip(history2, history) for k in b)
            e, n, m = weight_differences(final2, want_final, frozen)
            e32, n32, m32 = weight_differences(final, final2 if other == torch.float32 else want_final, frozen)
            diag(f"  PyTorch {str(other)[6:]} against PyTorch {args.dtype}: worst relative loss difference {loss_gap:.1e}; "
                 f"final weights worst {e:.2e} ({n}), median {m:.2e}")
            diag(f"  CelGAN against PyTorch float32: final weights worst {e32:.2e} ({n32}), median {m32:.2e}")
    print(f"1..{T._count}")
    return 1 if T._failed else 0


if __name__ == "__main__":
    sys.exit(main())
