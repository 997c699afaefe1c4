#!/bin/bash
# The GIMP 3 part of the tests, run where GIMP 3 is installed: inside the Debian 13 root
# (tools/trixie-root.sh run tools/run-gimp-tests.sh, as tools/run-tests.sh does) or natively.
#   1. build CelGAN with the GIMP plug-in enabled in build-trixie and run its tests under validation;
#   2. smoke check: headless GIMP starts, runs a Python-Fu batch and quits with status 0.
set -euo pipefail

REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
BUILD=build-trixie
status=0

# A fresh GIMP user folder (GIMP3_DIRECTORY) for this run; GIMP writes its pluginrc there on first start.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/celgan-gimp.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

echo "--- build and test in $BUILD"
if tools/meson-setup.sh "$BUILD" -Dbuildtype=debugoptimized -Dgimp=enabled &&
  ninja -C "$BUILD" &&
  CELGAN_VALIDATION=1 meson test -C "$BUILD" --print-errorlogs; then
  :
else
  status=1
fi

echo "--- GIMP smoke check"
# With --quit the exit status is the batch's result (0 ok, 64 Python exception, 70 execution error).
rc=0
out=$(GIMP3_DIRECTORY="$scratch/gimp" timeout 300 gimp-console-3.0 -nidfs \
        --batch-interpreter python-fu-eval -b 'print("gimp-version", Gimp.version())' --quit \
        2>"$scratch/gimp.log") || rc=$?
version=$(sed -n 's/^gimp-version //p' <<<"$out")
if [ "$rc" -eq 0 ] && [ -n "$version" ]; then
  echo "gimp-smoke: ok (GIMP $version, Python-Fu batch)"
else
  echo "gimp-smoke: FAILED (exit status $rc)"
  printf '%s\n' "$out"
  cat "$scratch/gimp.log"
  status=1
fi
exit "$status"
