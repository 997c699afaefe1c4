#!/usr/bin/env bash
# The race of issue 8: the peers' own programs (waifu2x-, realesrgan-ncnn-vulkan) and `celgan apply` on the same
# PNGs on the same device in the same run. Whole-process wall time for both (start-up, model loading, PNG I/O and
# pipeline creation included on both sides), and CelGAN's network time alone (`celgan bench`: planning excluded,
# median of 3 runs). Not a test: it prints a table with the ratios.
#
#   bench/peers.sh [SIZES] [MODELS]   defaults: 128,256 and upconv_7,animevideov3-x2 (lavapipe is slow; on a GPU
#                                     use 256,512,1024 and upconv_7,animevideov3-x2,x4plus-anime)
#   CELGAN_BENCH_DEVICE=N             Vulkan device index for both sides (default: each program's automatic choice)
#   CELGAN_BENCH_PYTHON=PATH          a python3 with numpy and PIL (default python3 from /usr/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/bin:$PATH"
sizes=${1:-128,256}
models=${2:-upconv_7,animevideov3-x2}
celgan=${CELGAN:-build/trainer/celgan}
python=${CELGAN_BENCH_PYTHON:-python3}
[ -x "$celgan" ] || { echo "bench: build first (meson setup build && ninja -C build)" >&2; exit 1; }
peers=$(tools/fetch-peers.sh) || { echo "bench: cannot fetch the peers' package" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gpu=()
cgpu=()
[ -n "${CELGAN_BENCH_DEVICE:-}" ] && gpu=(-g "$CELGAN_BENCH_DEVICE") && cgpu=(-g "$CELGAN_BENCH_DEVICE")

now () { date +%s.%N; }

printf "%-22s %6s %12s %12s %8s %12s\n" model size "peer s" "celgan s" ratio "celgan net s"
IFS=, read -ra size_list <<<"$sizes"
IFS=, read -ra model_list <<<"$models"
for model in "${model_list[@]}"; do
  case $model in
    upconv_7)
      src=$peers/waifu2x/models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model.param
      peer=("$peers/waifu2x/waifu2x-ncnn-vulkan" -n 1 -s 2 -m "$peers/waifu2x/models-upconv_7_anime_style_art_rgb") ;;
    animevideov3-x2)
      src=$peers/real-esrgan/models/realesr-animevideov3-x2.param
      peer=("$peers/real-esrgan/realesrgan-ncnn-vulkan" -n realesr-animevideov3-x2 -s 2 -m "$peers/real-esrgan/models") ;;
    x4plus-anime)
      src=$peers/real-esrgan/models/realesrgan-x4plus-anime.param
      peer=("$peers/real-esrgan/realesrgan-ncnn-vulkan" -n realesrgan-x4plus-anime -s 4 -m "$peers/real-esrgan/models") ;;
    *) echo "bench: unknown model '$model' (upconv_7, animevideov3-x2, x4plus-anime)" >&2; exit 2 ;;
  esac
  "$celgan" import ncnn --quiet "$src" -o "$tmp/$model.safetensors"
  for s in "${size_list[@]}"; do
    "$python" tests/oracle/ncnn_images.py make "$tmp" >/dev/null
    "$python" -c "from PIL import Image; Image.open('$tmp/drawing.png').resize(($s, $s), Image.BICUBIC).save('$tmp/in-$s.png')"
    t0=$(now)
    "${peer[@]}" "${gpu[@]}" -i "$tmp/in-$s.png" -o "$tmp/peer-$s.png" >/dev/null 2>&1
    t1=$(now)
    "$celgan" apply --quiet "${cgpu[@]}" -i "$tmp/in-$s.png" -o "$tmp/ours-$s.png" -m "$tmp/$model.safetensors"
    t2=$(now)
    net=$("$celgan" bench -m "$tmp/$model.safetensors" -s "$s" -n 3 "${cgpu[@]}" 2>/dev/null |
          sed -n 's/.*run_ms=\([0-9.]*\).*/\1/p') || true
    # too large for one pass on this device (a tensor past the storage buffer range): the tiled run's time, as
    # `celgan apply` does it
    [ -n "$net" ] || net=$("$celgan" bench -m "$tmp/$model.safetensors" -s 16 -n 1 --tiled "$s" "${cgpu[@]}" |
                           sed -n 's/^tiled .* ms=\([0-9.]*\).*/\1/p')
    awk -v m="$model" -v s="$s" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v n="$net" \
      'BEGIN { p = t1 - t0; c = t2 - t1; printf "%-22s %6d %12.2f %12.2f %8.2f %12.2f\n", m, s, p, c, c / p, n / 1000 }'
  done
done
echo "(ratio: celgan / peer whole-process time; below 1 is faster. $("$celgan" devices 2>/dev/null | sed -n 1p))"
