#!/usr/bin/env bash
# Training speed: images/s of `celgan train` (one GAN step: generator, spectral-norm PatchGAN on four batches,
# feature network, every loss, one backward, two Adam updates) beside the same step in PyTorch
# (bench/torch_train_step.py), on the same machine in the same run, for the default (unet) and the
# AnimeGANv2-shaped configuration. Not a test: it prints a table and the ratios.
#
#   bench/train.sh [CROP] [BATCH] [STEPS]     defaults: 256, 2 and 3 (timed steps after one untimed step;
#                                             lavapipe is slow: the AnimeGANv2 shape takes about 40 s a step)
#   CELGAN_BENCH_CONFIGS=unet,animeganv2      the configurations (fast too)
#   CELGAN_BENCH_DEVICE=NAME                  Vulkan device (default automatic); CELGAN_BENCH_TORCH=cuda on CUDA
#   CELGAN_BENCH_PYTHON=PATH                  the python3 that has torch (default python3 from /usr/bin)
# CelGAN's figure is the median of its metrics.jsonl step times (planning and pipeline creation excluded; data
# decoding runs on worker threads beside the steps); PyTorch's the median step time on random batches.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/bin:$PATH"
crop=${1:-256}
batch=${2:-2}
steps=${3:-3}
celgan=${CELGAN:-build/trainer/celgan}
[ -x "$celgan" ] || { echo "bench: build first (meson setup build && ninja -C build)" >&2; exit 1; }
python=${CELGAN_BENCH_PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dev_args=()
[ -n "${CELGAN_BENCH_DEVICE:-}" ] && dev_args=(-g "$CELGAN_BENCH_DEVICE")

# eight photos and eight style images a little larger than the crop (numpy + PIL)
"$python" - "$tmp" "$crop" <<'PY'
import os, sys
import numpy as np
from PIL import Image
tmp, crop = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
for kind in ("photos", "styles"):
    os.makedirs(os.path.join(tmp, kind))
    for i in range(8):
        h, w = crop + 32 + 4 * i, crop + 48
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([0.5 + 0.4 * np.sin(x * (0.02 + 0.01 * c) + y * 0.015 * (i + 1) + c) for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(os.path.join(tmp, kind, f"{i}.png"))
PY

printf '%s\n' "config crop batch celgan_ms celgan_img_s torch_ms torch_img_s" > "$tmp/table"
for name in $(echo "${CELGAN_BENCH_CONFIGS:-unet,animeganv2}" | tr ',' ' '); do
  cfg=data/configs/$name.json
  echo "== $name: CelGAN ==" >&2
  "$celgan" train --photos "$tmp/photos" --styles "$tmp/styles" --out "$tmp/$name.safetensors" --config "$name" \
    --steps $((steps + 1)) --warmup 0 --crop "$crop" --batch "$batch" --checkpoint-every 0 --sample-every 0 \
    --log-every 1 "${dev_args[@]}" 2>&1 | tee "$tmp/$name.log" >&2
  grep -m1 "device\|Using" "$tmp/$name.log" >/dev/null 2>&1 || true
  # the step times (seconds field differences include the metrics write; images_per_s is batch / step time)
  c_ms=$(tail -n "$steps" "$tmp/$name.safetensors.train/metrics.jsonl" | sed 's/.*"images_per_s":\([0-9.e+-]*\).*/\1/' |
         awk -v b="$batch" '{ print 1000 * b / $1 }' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  echo "== $name: PyTorch ==" >&2
  t_line=$(CELGAN_BENCH_TENSORS=$tmp/$name.safetensors "$python" bench/torch_train_step.py "$cfg" "$name" "$crop" "$batch" \
           "$steps" "${CELGAN_BENCH_TORCH:-cpu}" | tee -a "$tmp/torch.txt" | grep '^torch config=' || true)
  [ -n "$t_line" ] || echo "bench: the PyTorch run failed (is python3-torch installed?)" >&2
  t_ms=$(echo "$t_line" | sed -n 's/.* ms=\([0-9.]*\).*/\1/p')
  echo "$name $crop $batch $c_ms ${t_ms:-0}" | awk '{ printf "%s %s %s %.0f %.3f %.0f %.3f\n", $1, $2, $3, $4, 1000 * $3 / $4, $5, ($5 ? 1000 * $3 / $5 : 0) }' >> "$tmp/table"
done

echo
echo "Training step (GAN phase), $("$celgan" devices 2>/dev/null | head -1 | sed 's/^ *//'), $(grep -m1 '^torch ' "$tmp/torch.txt" 2>/dev/null)"
printf '%-12s %5s %6s %12s %14s %12s %14s %8s\n' config crop batch "celgan ms" "celgan img/s" "torch ms" "torch img/s" "ratio"
tail -n +2 "$tmp/table" | while read -r name c b cms cips tms tips; do
  printf '%-12s %5s %6s %12s %14s %12s %14s %8s\n' "$name" "$c" "$b" "$cms" "$cips" "$tms" "$tips" \
    "$(awk -v c="$cips" -v t="$tips" 'BEGIN { if (t > 0) printf "%.2fx", c / t; else print "-" }')"
done
echo "(ratio: CelGAN images/s over PyTorch's; > 1: CelGAN faster)"
