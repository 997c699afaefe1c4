#!/usr/bin/env bash
# Data-parallel training on this machine (docs/scaling.md): the gradient volume each step all-reduces for each model
# configuration, and the step time of 1 process beside 2 MPI ranks. Not a test: it prints tables.
#
#   bench/mpi_scaling.sh [CROP] [BATCH] [STEPS]    defaults 64, 2, 8 (the `fast` configuration; per-rank batch)
#   CELGAN=PATH, MPIRUN=PATH                        the binaries (default build/trainer/celgan, mpirun)
#   CELGAN_BENCH_CONFIGS="fast animeganv2"          configurations for the volume table
#   CELGAN_BENCH_MPI_ARGS="--bind-to none"          extra mpirun arguments (a CPU Vulkan driver wants every core)
#
# Weak scaling: each rank keeps BATCH images per step, so 2 ranks do twice the work of 1 process with BATCH per step;
# efficiency = (1-process step time) / (2-rank step time). Also shown: 1 process with the same global batch (2 BATCH),
# the strong-scaling comparison. On a CPU Vulkan device (lavapipe) one process already uses every core, so 2 ranks on
# the same cores cannot be faster: the figures then measure the overhead, not a speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/bin:$PATH"
crop=${1:-64}
batch=${2:-2}
steps=${3:-8}
celgan=${CELGAN:-build/trainer/celgan}
mpirun=${MPIRUN:-mpirun}
[ -x "$celgan" ] || { echo "bench: build first (meson setup build && ninja -C build)" >&2; exit 1; }
command -v "$mpirun" >/dev/null || { echo "bench: no mpirun (install openmpi-bin, build with MPI)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 SOURCE_DATE_EPOCH=1700000000
read -r -a mpi_args <<<"${CELGAN_BENCH_MPI_ARGS:---bind-to none}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/photos" "$tmp/styles"
cp data/samples/*.png "$tmp/photos/"
cp data/samples/*.png "$tmp/styles/"
train=(train --photos "$tmp/photos" --styles "$tmp/styles" --warmup 0 --sample-every 0 --checkpoint-every 0 --log-every 1)

# ---- gradient volume per configuration: a 1-step 2-rank run reports it; the model it writes gives MACs --------
echo "== gradients all-reduced per step (generator + default discriminator: --d-width 32 --d-layers 3) ==" >&2
printf '%-12s %12s %12s %10s %16s\n' config G-params "grad MB" buckets "G GMAC/img@256"
for cfg in ${CELGAN_BENCH_CONFIGS:-fast animeganv2}; do
  "$mpirun" -n 2 --oversubscribe "${mpi_args[@]}" "$celgan" "${train[@]}" --config "$cfg" --crop 32 --batch 1 --steps 1 \
    --out "$tmp/$cfg.safetensors" >"$tmp/$cfg.log" 2>&1 || { cat "$tmp/$cfg.log" >&2; exit 1; }
  mb=$(sed -n 's/.*over 2 ranks: \([0-9.]*\) MB of gradients per step in \([0-9]*\) buckets.*/\1 \2/p' "$tmp/$cfg.log")
  params=$("$celgan" bench -m "$tmp/$cfg.safetensors" -s 256 -n 1 | tee "$tmp/$cfg.bench" | sed -n 's/.*(\([0-9]*\) parameters).*/\1/p')
  gmac=$(sed -n 's/.*gmac=\([0-9.]*\).*/\1/p' "$tmp/$cfg.bench")
  printf '%-12s %12s %12s %10s %16s\n' "$cfg" "$params" ${mb:-? ?} "$gmac"
done

# ---- the all-reduce alone, at those sizes (bench/allreduce_bw.c, when mpicc is there) ------------------------------
if command -v mpicc >/dev/null; then
  echo "== MPI_Allreduce of the gradient sizes, 2 ranks ==" >&2
  mpicc -O2 bench/allreduce_bw.c -o "$tmp/allreduce_bw"
  "$mpirun" -n 2 --oversubscribe "${mpi_args[@]}" "$tmp/allreduce_bw" 4096 2096260 9241000
fi

# ---- step time: 1 process vs 2 ranks -----------------------------------------------------------------------------
# seconds per step from metrics.jsonl, leaving out the first 2 steps (pipeline creation, caches)
step_time () {
  awk -F'"seconds":' -v skip=2 '{ split($2, a, "}"); t[NR] = a[1] } END { printf "%.3f", (t[NR] - t[skip]) / (NR - skip) }' "$1"
}
run1 () { # name, batch
  "$celgan" "${train[@]}" --crop "$crop" --batch "$2" --steps "$steps" --quiet --out "$tmp/$1.safetensors"
  step_time "$tmp/$1.safetensors.train/metrics.jsonl"
}
echo "== step time, config fast, crop $crop, $steps steps (first 2 left out), $(nproc) cores ==" >&2
device=$("$celgan" devices 2>/dev/null | sed -n '1,3p' | tr '\n' ' ')
t1=$(run1 one "$batch")
t1b=$(run1 oneb $((2 * batch)))
"$mpirun" -n 2 --oversubscribe "${mpi_args[@]}" "$celgan" "${train[@]}" --crop "$crop" --batch "$batch" --steps "$steps" \
  --out "$tmp/two.safetensors" >"$tmp/two.log" 2>&1 || { cat "$tmp/two.log" >&2; exit 1; }
t2=$(step_time "$tmp/two.safetensors.train/metrics.jsonl")
split=$(sed -n 's/.*mean step \([0-9.]*\) s in the graph, \([0-9.]*\) s waiting.*, \([0-9.]*\) s exchanging.*/\1 s in the graph, \2 s waiting for the slowest rank, \3 s exchanging/p' "$tmp/two.log")
echo "device: $device"
printf '%-34s %10s %12s\n' run "s/step" "images/s"
awk -v b="$batch" -v t1="$t1" -v t1b="$t1b" -v t2="$t2" 'BEGIN {
  printf "%-34s %10.3f %12.2f\n", "1 process, batch " b, t1, b / t1
  printf "%-34s %10.3f %12.2f\n", "1 process, batch " 2 * b, t1b, 2 * b / t1b
  printf "%-34s %10.3f %12.2f\n", "2 ranks, batch " b " each", t2, 2 * b / t2
  printf "weak-scaling efficiency (1 process batch %d / 2 ranks): %.0f%%\n", b, 100 * t1 / t2
  printf "speed-up over 1 process with the same global batch: %.2fx\n", t1b / t2 }'
echo "2-rank step (rank 0, mean over the run): $split (download, all-reduce, Adam, upload)"
