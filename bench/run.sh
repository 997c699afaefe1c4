#!/usr/bin/env bash
# Speed of the AnimeGANv2-shaped generator: CelGAN (through `celgan bench`, planning excluded, median of runs)
# beside PyTorch on the same machine in the same run, plus a tiled 8192x8192 run with its peak device memory.
# Not a test: it prints a table and the ratios.
#
#   bench/run.sh [SIZES] [RUNS]          defaults: 256,512 and 3 (lavapipe is slow; on a GPU use 256,512,1024,2048)
#   CELGAN_BENCH_DEVICE=NAME             Vulkan device (default automatic); CELGAN_BENCH_TORCH=cuda on a CUDA machine
#   CELGAN_BENCH_PYTHON=PATH             the python3 that has torch (default python3 from /usr/bin)
#   CELGAN_BENCH_TILED=SIZE              the tiled run's size (default 8192; 0 skips it)
#   CELGAN_BENCH_TILED_MODEL=PATH        the model of the tiled run (default data/models/toon.safetensors on a CPU
#                                        device, where the AnimeGANv2 shape at 8192x8192 would take hours)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/bin:$PATH"
sizes=${1:-256,512}
runs=${2:-3}
celgan=${CELGAN:-build/trainer/celgan}
[ -x "$celgan" ] || { echo "bench: build first (meson setup build && ninja -C build)" >&2; exit 1; }
cfg=data/configs/animeganv2.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dev_args=()
[ -n "${CELGAN_BENCH_DEVICE:-}" ] && dev_args=(-g "$CELGAN_BENCH_DEVICE")

# one model file with random weights, shared by both sides
python3 - "$cfg" "$tmp/g.safetensors" <<'PY'
import ctypes, sys, glob
import os
lib = ctypes.CDLL(os.environ.get("CELGAN_LIB") or sorted(glob.glob("build/core/libcelgan.so*"))[0])
err = ctypes.create_string_buffer(512)
arch = open(sys.argv[1]).read().encode()
st = lib.cel_model_create_file(sys.argv[2].encode(), arch, ctypes.c_uint64(1), None, ctypes.c_size_t(0), err, ctypes.c_size_t(512))
sys.exit(st)
PY

echo "== CelGAN ==" >&2
"$celgan" bench -m "$tmp/g.safetensors" -s "$sizes" -n "$runs" "${dev_args[@]}" | tee "$tmp/celgan.txt" >&2
echo "== PyTorch ==" >&2
CELGAN_BENCH_TENSORS=$tmp/g.safetensors "${CELGAN_BENCH_PYTHON:-python3}" bench/torch_generator.py "$cfg" "$sizes" "$runs" "${CELGAN_BENCH_TORCH:-cpu}" \
  | tee "$tmp/torch.txt" >&2 || echo "bench: PyTorch run failed (is python3-torch installed?)" >&2

tiled=${CELGAN_BENCH_TILED:-8192}
if [ "$tiled" -gt 0 ]; then
  model=${CELGAN_BENCH_TILED_MODEL:-}
  if [ -z "$model" ]; then
    if grep -q "llvmpipe\|SwiftShader" "$tmp/celgan.txt"; then model=data/models/toon.safetensors; else model=$tmp/g.safetensors; fi
  fi
  echo "== tiled ${tiled}x${tiled} with $model ==" >&2
  "$celgan" bench -m "$model" -s 256 -n 1 --tiled "$tiled" -t "${CELGAN_BENCH_TILE:-1024}" "${dev_args[@]}" \
    | tee "$tmp/tiled.txt" >&2 || true
fi

echo
echo "AnimeGANv2-shaped generator, $(grep '^device:' "$tmp/celgan.txt" | cut -d' ' -f2-), $(head -1 "$tmp/torch.txt" 2>/dev/null)"
printf '%-7s %12s %10s %16s %18s %10s %12s\n' size "celgan ms" "TFLOP/s" "torch var_mean" "torch GroupNorm" "vs tuned" "vs GroupNorm"
while read -r _ size plan run gmac; do
  s=${size#size=}; ms=${run#run_ms=}; g=${gmac#gmac=}
  tv=$(grep "size=$s norm=var_mean" "$tmp/torch.txt" 2>/dev/null | sed 's/.*ms=//')
  tg=$(grep "size=$s norm=groupnorm" "$tmp/torch.txt" 2>/dev/null | sed 's/.*ms=//')
  awk -v s="$s" -v ms="$ms" -v g="$g" -v tv="${tv:-0}" -v tg="${tg:-0}" 'BEGIN {
    tf = 2 * g / ms;  # GFLOP per ms = TFLOP/s
    printf "%-7s %12.1f %10.4f %16s %18s %10s %12s\n", s, ms, tf, (tv ? sprintf("%.1f", tv) : "-"),
      (tg ? sprintf("%.1f", tg) : "-"), (tv ? sprintf("%.2fx", tv / ms) : "-"), (tg ? sprintf("%.2fx", tg / ms) : "-") }'
done < <(grep '^bench ' "$tmp/celgan.txt")
echo "(ratios > 1: CelGAN faster; TFLOP/s counts 2 FLOP per multiply-add of the convolutions)"
[ -s "$tmp/tiled.txt" ] && grep '^tiled' "$tmp/tiled.txt" | sed 's/^/tiled run: /' || true
