#!/usr/bin/env bash
# The GIMP 3 plug-in in headless GIMP (gimp-console-3.0, Python-Fu batch), TAP output:
# registration; output equal to `celgan apply` on the same image and model (within 1/255) for RGB, RGBA,
# gray, strength + keep-colors, a selection and a reference-guided model; pixels outside the selection and
# alpha unchanged; a small tile size gives the untiled result; a corrupt or missing model, an unknown
# device and two drawables are errors that leave the image as it was; the catalogs are complete.
#   tests/gimp/run-batch-tests.sh PLUGIN HELPER [CELGAN]
# PLUGIN: the built plug-in; HELPER: celgan-gimp-helper (test models, PNG comparisons, and the reference
# outputs when CELGAN lacks `apply`); CELGAN: the celgan command.
set -u
plugin=$(readlink -f "$1")
helper=$(readlink -f "$2")
celgan=${3:+$(readlink -f "$3")}
here=$(cd "$(dirname "$0")" && pwd)
src=${CELGAN_SOURCE_DIR:-$here/../..}
build=${CELGAN_BUILD_DIR:-$(dirname "$(dirname "$plugin")")}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/celgan-gimp-batch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
work=$tmp/work
n=0
failed=0

ok () {  # ok STATUS NAME [DIAGNOSTIC]
  n=$((n + 1))
  if [ "$1" = 0 ]; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2"
    failed=$((failed + 1))
    [ -z "${3:-}" ] || echo "# $3"
  fi
}

# close A B LIMIT NAME [compare options]: the largest difference of A and B is at most LIMIT/255.
close () {
  local a=$1 b=$2 limit=$3 name=$4 d
  shift 4
  if d=$("$helper" compare "$work/$a" "$work/$b" "$@" 2>&1) &&
     awk -v d="$d" -v l="$limit" 'BEGIN { exit !(d + 0 <= l + 0) }'; then
    ok 0 "$name"
    echo "# $a vs $b: $d/255"
  else
    ok 1 "$name" "$a vs $b: $d (limit $limit/255)"
  fi
}

# The reference result: `celgan apply` when this build has it, else the helper (the same library calls).
# reference_apply IN OUT MODEL [TILE STRENGTH KEEP_COLORS REFERENCE]
have_cli_apply=0
if [ -n "$celgan" ] && "$celgan" apply --help >/dev/null 2>&1; then
  have_cli_apply=1
fi
reference_apply () {
  local in=$work/$1 out=$work/$2 model=$work/models/$3.safetensors tile=${4:-0} strength=${5:-1} keep=${6:-0}
  local ref=${7:-}
  if [ "$have_cli_apply" = 1 ]; then
    local args=(apply --quiet -i "$in" -o "$out" -m "$model" -t "$tile" -s "$strength")
    [ "$keep" = 1 ] && args+=(-k)
    [ -n "$ref" ] && args+=(-r "$work/$ref")
    "$celgan" "${args[@]}"
  else
    "$helper" apply "$model" "$in" "$out" "$tile" "$strength" "$keep" ${ref:+"$work/$ref"}
  fi
}

setup () {
  mkdir -p "$work/models" "$tmp/gimp/plug-ins/celgan" || return 1
  # A fresh GIMP user folder holding the plug-in as GIMP installs it: plug-ins/celgan/celgan and its
  # catalogs in plug-ins/celgan/locale.
  ln -s "$plugin" "$tmp/gimp/plug-ins/celgan/celgan" || return 1
  if [ -d "$build/po" ]; then
    ln -s "$build/po" "$tmp/gimp/plug-ins/celgan/locale" || return 1
  fi
  "$helper" model "$work/models/fast.safetensors" "$src/data/configs/fast.json" 7 "Fast (test)" \
    "Random weights of data/configs/fast.json, for tests" &&
    "$helper" model "$work/models/reference-test.safetensors" "$src/tests/gimp/reference-model.json" 3 \
      "Reference (test)" "A tiny reference-guided graph with random weights" &&
    "$helper" model "$work/models/upscale-test.safetensors" "$src/tests/gimp/upscale-model.json" 5 \
      "Upscale (test)" "A tiny 2x upscaling graph with random weights" &&
    head -c 4000 "$work/models/fast.safetensors" >"$work/corrupt.safetensors" &&
    # Test images: a 200x150 photo crop (RGB), the same with an alpha gradient, in gray, and a style image.
    convert "$src/data/samples/chelsea.png" -crop 200x150+150+60 +repage -strip PNG24:"$work/rgb.png" &&
    convert "$work/rgb.png" \( -size 200x150 gradient:white-gray30 \) -alpha off -compose CopyOpacity \
      -composite -strip PNG32:"$work/rgba.png" &&
    convert "$work/rgb.png" -colorspace Gray -strip -define png:color-type=0 -depth 8 "$work/gray.png" &&
    convert "$src/data/samples/coffee.png" -resize 120x80 -strip PNG24:"$work/style.png" &&
    convert "$work/rgb.png" -crop 100x80+40+30 +repage -strip PNG24:"$work/rgb-crop.png"
}

echo "TAP version 13"
if ! setup >"$tmp/setup.log" 2>&1; then
  echo "Bail out! cannot set up the test folder"
  sed 's/^/# /' "$tmp/setup.log"
  exit 1
fi
echo "# reference outputs from $([ "$have_cli_apply" = 1 ] && echo "celgan apply" || echo "celgan-gimp-helper")"

# The GIMP side: one GIMP run for every check (its first start registers all plug-ins).
start=$SECONDS
GIMP3_DIRECTORY=$tmp/gimp CELGAN_MODEL_PATH=$work/models CELGAN_TEST_DIR=$work \
  timeout 600 gimp-console-3.0 -nidfs --batch-interpreter python-fu-eval \
    -b "exec(open('$here/batch-tests.py').read())" --quit >"$tmp/gimp.out" 2>"$tmp/gimp.err"
rc=$?
echo "# GIMP ran for $((SECONDS - start)) s, exit status $rc"
grep '^# ' "$tmp/gimp.out"
while read -r line; do
  case "$line" in
    "check: ok "*) ok 0 "${line#check: ok }" ;;
    "check: not ok "*)
      rest=${line#check: not ok }
      ok 1 "${rest%% # *}" "$([[ $rest == *" # "* ]] && echo "${rest#* # }")" ;;
  esac
done < <(grep '^check: ' "$tmp/gimp.out")
ok "$rc" "/gimp/batch_exit_status" "gimp-console-3.0 exited with $rc"
if [ "$rc" != 0 ] || grep -q '^check: not ok' "$tmp/gimp.out"; then
  sed 's/^/# gimp: /' "$tmp/gimp.out" | grep -v '^# gimp: check: ok' | tail -40
  sed 's/^/# gimp stderr: /' "$tmp/gimp.err" | tail -40
fi

# The library side, and the comparisons.
if reference_apply rgb.png ref-rgb.png fast &&
   reference_apply rgb.png ref-strength.png fast 0 0.5 1 &&
   reference_apply rgba.png ref-rgba.png fast &&
   reference_apply gray.png ref-gray.png fast &&
   reference_apply rgb-crop.png ref-crop.png fast &&
   reference_apply rgb.png ref-reference.png reference-test 0 1 0 style.png &&
   reference_apply rgb.png ref-upscale.png upscale-test >"$tmp/ref.log" 2>&1; then
  ok 0 "/gimp/reference_outputs"
else
  ok 1 "/gimp/reference_outputs" "$(tr '\n' ' ' <"$tmp/ref.log")"
fi
close gimp-rgb.png ref-rgb.png 1 "/gimp/compare/rgb_equals_celgan_apply"
close gimp-strength.png ref-strength.png 1 "/gimp/compare/strength_keep_colors_equals_celgan_apply"
close gimp-rgba.png ref-rgba.png 1 "/gimp/compare/rgba_equals_celgan_apply"
close gimp-rgba.png rgba.png 0 "/gimp/compare/alpha_is_preserved" --alpha
close gimp-gray.png ref-gray.png 1 "/gimp/compare/gray_equals_celgan_apply"
close gimp-selection.png rgb.png 0 "/gimp/compare/outside_the_selection_is_unchanged" --rect 40 30 100 80 --outside
if convert "$work/gimp-selection.png" -crop 100x80+40+30 +repage -strip PNG24:"$work/gimp-selection-crop.png"; then
  close gimp-selection-crop.png ref-crop.png 1 "/gimp/compare/selection_equals_celgan_apply_on_the_crop"
else
  ok 1 "/gimp/compare/selection_equals_celgan_apply_on_the_crop" "cannot crop"
fi
close gimp-tiled.png gimp-rgb.png 1 "/gimp/compare/tile_64_equals_untiled"
close gimp-model-file.png gimp-rgb.png 0 "/gimp/compare/model_file_equals_installed_model"
close gimp-corrupt.png rgb.png 0 "/gimp/compare/corrupt_model_leaves_the_image_unchanged"
close gimp-errors.png rgb.png 0 "/gimp/compare/errors_leave_the_image_unchanged"
close gimp-reference.png ref-reference.png 1 "/gimp/compare/reference_guided_equals_celgan_apply"
close gimp-reference-layer.png gimp-reference.png 0 "/gimp/compare/reference_layer_equals_reference_file"
close gimp-reference-ignored.png gimp-rgb.png 0 "/gimp/compare/style_models_ignore_the_reference"
close gimp-upscale.png ref-upscale.png 1 "/gimp/compare/upscale_equals_celgan_apply"
close gimp-upscale-selection.png gimp-upscale.png 0 "/gimp/compare/upscale_ignores_selection_and_strength"

# Translations: every catalog compiles and translates every message.
for po in "$src"/po/*.po; do
  lang=$(basename "$po" .po)
  stats=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$po" 2>&1)
  if [ $? = 0 ] && ! grep -Eq 'fuzzy|untranslated' <<<"$stats"; then
    ok 0 "/gimp/po/$lang/complete"
  else
    ok 1 "/gimp/po/$lang/complete" "$stats"
  fi
done

echo "1..$n"
[ "$failed" = 0 ]
