#!/usr/bin/env bash
# The plug-in's dialog in GIMP 3 under Xvfb, TAP output. GIMP opens a photo (320x320, or
# $CELGAN_DIALOG_TEST_SIZE) and runs the plug-in
# interactively; this script then
#   - waits for the preview, takes a screenshot and checks that the preview area is not blank, differs
#     from the input, and equals the full apply (`celgan apply`) on the same area: the preview is exact;
#   - toggles Keep colors (Alt+K) twice and changes the model (Alt+M, Down), timing each preview refresh;
#   - presses OK (Alt+O), checks the result equals `celgan apply` with the model chosen, presses Ctrl+Z once
#     and lets GIMP check that the original came back exactly.
# Screenshots and the timings are kept in $CELGAN_BUILD_DIR/gimp-dialog-test/. For the timings of a 512x512
# view: CELGAN_DIALOG_TEST_SIZE=512 CELGAN_DIALOG_TEST_PREVIEW=512.
# CELGAN_DIALOG_TEST_SCALED=1: the same with a model that scales the image by 2 (tests/gimp/upscale-model.json,
# the only model listed): the preview must show the scaled result at 100 %, the window of `celgan apply`'s
# output centred on the centre of the visible part of the drawable (the view's centre times 2); OK must give
# the image scaled by 2 with `celgan apply`'s output on the layer, and one undo the original. No Keep-colors or
# model-change steps (they are insensitive, and there is one model). Screenshots in gimp-dialog-test-scaled/.
#   tests/gimp/run-dialog-test.sh PLUGIN HELPER CELGAN XTEST_INPUT
set -u
if [ "${1:-}" != --inside ]; then
  # Start an X server for the test and come back inside it.
  exec xvfb-run -a -s "-screen 0 1280x1024x24" bash "$0" --inside "$@"
fi
shift
plugin=$(readlink -f "$1")
helper=$(readlink -f "$2")
celgan=$(readlink -f "$3")
xtest=$(readlink -f "$4")
here=$(cd "$(dirname "$0")" && pwd)
src=${CELGAN_SOURCE_DIR:-$here/../..}
build=${CELGAN_BUILD_DIR:-$(dirname "$(dirname "$plugin")")}
scaled=${CELGAN_DIALOG_TEST_SCALED:-}
art=$build/gimp-dialog-test${scaled:+-scaled}
t=/gimp/dialog${scaled:+/scaled}  # the test names' prefix
tmp=$(mktemp -d "${TMPDIR:-/tmp}/celgan-gimp-dialog.XXXXXX")
gimp_pid=
cleanup () {
  [ -n "$gimp_pid" ] && kill "$gimp_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
work=$tmp/work
log=$tmp/gimp.err
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

finish () {
  if [ "$failed" != 0 ]; then
    sed 's/^/# gimp: /' "$tmp/gimp.out" 2>/dev/null | tail -20
    grep -v 'gimp_flush\|^$' "$log" 2>/dev/null | sed 's/^/# gimp stderr: /' | tail -30
  fi
  echo "1..$n"
  [ "$failed" = 0 ]
  exit
}

# wait_for COUNT SECONDS: until the log holds COUNT preview refresh lines.
wait_for () {
  local i count
  for ((i = 0; i < $2 * 5; i++)); do
    count=$(grep -c 'celgan-timing: preview refresh' "$log" 2>/dev/null)
    [ "${count:-0}" -ge "$1" ] && return 0
    sleep 0.2
  done
  return 1
}

# difference A B [options]: the helper's largest difference in 1/255 steps.
difference () { "$helper" compare "$@" 2>&1; }
at_most () { awk -v d="$1" -v l="$2" 'BEGIN { exit !(d + 0 <= l + 0) }'; }

# The reference result: `celgan apply` when this build has it, else the helper (the same library calls).
reference_apply () {  # reference_apply MODEL OUT
  if "$celgan" apply --help >/dev/null 2>&1; then
    "$celgan" apply --quiet -i "$work/photo.png" -o "$work/$2" -m "$work/models/$1.safetensors"
  else
    "$helper" apply "$work/models/$1.safetensors" "$work/photo.png" "$work/$2"
  fi
}

size=${CELGAN_DIALOG_TEST_SIZE:-320}
echo "TAP version 13"
mkdir -p "$work/models" "$tmp/gimp/plug-ins/celgan" "$art"
rm -f "$art"/*
ln -s "$plugin" "$tmp/gimp/plug-ins/celgan/celgan"
[ -d "$build/po" ] && ln -s "$build/po" "$tmp/gimp/plug-ins/celgan/locale"
printf '(show-welcome-dialog no)\n(check-updates no)\n' >"$tmp/gimp/gimprc"
# A larger preview for the timings ($CELGAN_DIALOG_TEST_PREVIEW pixels; GIMP's default is 200), through the
# user style sheet GTK reads last.
mkdir -p "$tmp/config/gtk-3.0"
if [ -n "${CELGAN_DIALOG_TEST_PREVIEW:-}" ]; then
  printf '* { -GimpPreview-size: %d; }\n' "$CELGAN_DIALOG_TEST_PREVIEW" >"$tmp/config/gtk-3.0/gtk.css"
fi
make_models () {
  if [ -n "$scaled" ]; then
    "$helper" model "$work/models/upscale-test.safetensors" "$src/tests/gimp/upscale-model.json" 5 "Upscale (test)" \
      "Random weights of tests/gimp/upscale-model.json (2x), for tests" &&
      reference_apply upscale-test ref-a.png && cp "$work/ref-a.png" "$work/ref-b.png"
  else
    "$helper" model "$work/models/fast.safetensors" "$src/data/configs/fast.json" 7 "Fast (test)" \
      "Random weights of data/configs/fast.json, for tests" &&
      "$helper" model "$work/models/fast-b.safetensors" "$src/data/configs/fast.json" 9 "Fast B (test)" \
        "Other random weights, for the model-change timing" &&
      reference_apply fast ref-a.png && reference_apply fast-b ref-b.png
  fi
}
if ! { convert "$src/data/samples/coffee.png" -resize "${size}x${size}^" -gravity center -extent "${size}x${size}" -strip \
         PNG24:"$work/photo.png" && make_models; } >"$tmp/setup.log" 2>&1; then
  echo "Bail out! cannot set up the test"
  sed 's/^/# /' "$tmp/setup.log"
  exit 1
fi

start=$SECONDS
XDG_CONFIG_HOME=$tmp/config GIMP3_DIRECTORY=$tmp/gimp CELGAN_MODEL_PATH=$work/models CELGAN_TEST_DIR=$work CELGAN_TIMING=1 \
  $(command -v dbus-run-session >/dev/null && echo dbus-run-session --) gimp-3.0 -nsdf --batch-interpreter python-fu-eval \
    -b "exec(open('$here/dialog-test.py').read())" --quit >"$tmp/gimp.out" 2>"$log" &
gimp_pid=$!

# 1. The dialog opens with its preview drawn.
if ! wait_for 1 300; then
  import -window root "$art/dialog-timeout.png" 2>/dev/null
  ok 1 "$t/preview_drawn" "no preview after $((SECONDS - start)) s"
  finish
fi
ok 0 "$t/preview_drawn"
echo "# dialog and first preview after $((SECONDS - start)) s (GIMP start included)"
line=$(grep 'celgan-timing: preview refresh' "$log" | tail -n1)
read -r pw ph px py sx sy < <(sed -E 's/.* ([0-9]+)x([0-9]+) at \(([0-9-]+),([0-9-]+)\).* at \(([0-9-]+),([0-9-]+)\)/\1 \2 \3 \4 \5 \6/' <<<"$line")
echo "# preview: ${pw}x${ph} of the drawable at ($px,$py), on screen at ($sx,$sy)"
sleep 1.5
import -window root "$art/dialog.png"
convert "$art/dialog.png" -crop "${pw}x${ph}+${sx}+${sy}" +repage -strip PNG24:"$art/preview.png"
convert "$work/photo.png" -crop "${pw}x${ph}+${px}+${py}" +repage -strip PNG24:"$work/input-area.png"
# What the preview shows of the result: the same area, or for a scale model (2x) the result's window of the
# preview's size centred on the view's centre times 2, kept inside the result.
rx=$px ry=$py
if [ -n "$scaled" ]; then
  clamp () { local v=$1 hi=$2; [ "$v" -gt "$hi" ] && v=$hi; [ "$v" -lt 0 ] && v=0; echo "$v"; }
  rx=$(clamp $(((px + pw / 2) * 2 - pw / 2)) $((size * 2 - pw)))
  ry=$(clamp $(((py + ph / 2) * 2 - ph / 2)) $((size * 2 - ph)))
  echo "# scaled: the preview should show the ${pw}x${ph} of the 2x result at ($rx,$ry)"
fi
convert "$work/ref-a.png" -crop "${pw}x${ph}+${rx}+${ry}" +repage -strip PNG24:"$work/ref-a-area.png"
cp "$work/ref-a-area.png" "$art/apply-same-area.png"
sd=$(convert "$art/preview.png" -colorspace Gray -format '%[fx:standard_deviation*255]' info: 2>&1)
if awk -v s="$sd" 'BEGIN { exit !(s + 0 > 4) }'; then
  ok 0 "$t/preview_is_not_blank"
else
  ok 1 "$t/preview_is_not_blank" "standard deviation $sd/255"
fi
d_in=$(difference "$art/preview.png" "$work/input-area.png")
if ! at_most "$d_in" 8; then
  ok 0 "$t/preview_differs_from_the_input"
else
  ok 1 "$t/preview_differs_from_the_input" "largest difference $d_in/255"
fi
d_ref=$(difference "$art/preview.png" "$work/ref-a-area.png")
if at_most "$d_ref" 2; then
  ok 0 "$t/preview_equals_the_full_apply"
else
  ok 1 "$t/preview_equals_the_full_apply" "largest difference $d_ref/255"
fi
echo "# preview vs input: $d_in/255, preview vs celgan apply on the same area: $d_ref/255"

if [ -n "$scaled" ]; then
  # the zoom, not a shifted window: the 1:1 window of the result at the view's position is something else
  convert "$work/ref-a.png" -crop "${pw}x${ph}+${px}+${py}" +repage -strip PNG24:"$work/ref-a-unzoomed.png"
  d_un=$(difference "$art/preview.png" "$work/ref-a-unzoomed.png")
  ! at_most "$d_un" 8
  ok $? "$t/preview_is_the_result_at_100_percent_of_the_view_centre" \
    "the preview equals the result's window at the view's own position (largest difference $d_un/255)"
fi

# 2. Post-op changes (Keep colors on, off) and a model change, timed by the plug-in.
# No window manager runs under Xvfb: the keyboard goes to the window under the pointer.
cx=$((sx + pw / 2)) cy=$((sy + ph / 2))
if [ -z "$scaled" ]; then
  "$xtest" "move:$cx,$cy" pointer-focus "key:alt+k"
  wait_for 2 60 && ok 0 "/gimp/dialog/keep_colors_refreshes_the_preview" ||
    ok 1 "/gimp/dialog/keep_colors_refreshes_the_preview" "no refresh after Alt+K"
  sleep 0.5
  import -window root "$art/dialog-keep-colors.png"
  "$xtest" "key:alt+k"
  wait_for 3 60
  "$xtest" "key:alt+m" "key:Down"
  wait_for 4 300 && ok 0 "/gimp/dialog/model_change_refreshes_the_preview" ||
    ok 1 "/gimp/dialog/model_change_refreshes_the_preview" "no refresh after Alt+M, Down"
  sleep 1
  import -window root "$art/dialog-model-b.png"
fi
grep 'celgan-timing' "$log" | sed 's/^/# /' | tee "$art/timings.txt"

# 3. OK applies what the preview showed (a scale model: the image scaled); one undo restores the original.
"$xtest" "move:$cx,$cy" pointer-focus "key:alt+o"
for ((i = 0; i < 600; i++)); do [ -e "$work/applied" ] && break; sleep 0.2; done
if [ -e "$work/applied" ]; then
  d_b=$(difference "$work/gimp-dialog-applied.png" "$work/ref-b.png")
  at_most "$d_b" 1 && ok 0 "$t/apply_equals_celgan_apply_with_the_chosen_model" ||
    ok 1 "$t/apply_equals_celgan_apply_with_the_chosen_model" "largest difference $d_b/255"
  sleep 1
  import -window root "$art/after-apply.png"
  # Ctrl+Z with the pointer over the image window's canvas
  "$xtest" "move:470,300" "key:ctrl+z"
  sleep 1
  import -window root "$art/after-undo.png"
else
  ok 1 "$t/apply_equals_celgan_apply_with_the_chosen_model" "OK did not apply"
fi
for ((i = 0; i < 450; i++)); do [ -e "$work/done" ] && break; sleep 0.2; done
while read -r line; do
  case "$line" in
    "check: ok "*) ok 0 "${line#check: ok }" ;;
    "check: not ok "*)
      rest=${line#check: not ok }
      ok 1 "${rest%% # *}" "$([[ $rest == *" # "* ]] && echo "${rest#* # }")" ;;
  esac
done < <(grep '^check: ' "$tmp/gimp.out")
[ -e "$work/done" ] || ok 1 "/gimp/dialog/script_finished"
finish
