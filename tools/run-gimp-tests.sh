#!/bin/bash
# The GIMP 3 part of the tests, run where GIMP 3 is installed: inside the Debian 13 root
# (tools/trixie-root.sh run tools/run-gimp-tests.sh, as tools/run-tests.sh does) or natively.
#   1. build CelGAN with the GIMP plug-in enabled in build-trixie and run its tests under validation (the
#      suite 'gimp' holds the plug-in's tests: GIMP batch tests, the dialog under Xvfb with screenshots kept
#      in build-trixie/gimp-dialog-test/, the AppStream metainfo);
#   2. install check: `meson install` into a scratch DESTDIR puts the plug-in, its catalogs and the models
#      where GIMP and the plug-in look for them;
#   3. smoke check: headless GIMP starts, runs a Python-Fu batch and quits with status 0.
set -euo pipefail

REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
BUILD=${CELGAN_GIMP_BUILD_DIR:-build-trixie}  # another build dir for local runs
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

echo "--- install check"
# GIMP loads plug-ins/NAME/NAME and, by default, its catalogs from plug-ins/NAME/locale.
plugindir=$(pkg-config --variable=gimplibdir gimp-3.0)/plug-ins/celgan
datadir=$(meson introspect "$BUILD" --buildoptions |
          python3 -c 'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["prefix"] + "/" + o["datadir"])')
missing=()
if DESTDIR="$scratch/install" meson install -C "$BUILD" --no-rebuild --quiet >"$scratch/install.log" 2>&1; then
  for f in "$plugindir/celgan" "$plugindir/locale/zh_CN/LC_MESSAGES/celgan.mo" \
           "$plugindir/locale/ja/LC_MESSAGES/celgan.mo" "$datadir/metainfo/org.celgan.gimp_plugin.metainfo.xml" \
           "$datadir/celgan/models/toon.safetensors"; do
    [ -e "$scratch/install$f" ] || missing+=("$f")
  done
else
  missing+=("(meson install failed)")
  cat "$scratch/install.log"
fi
if [ ${#missing[@]} = 0 ] && [ -x "$scratch/install$plugindir/celgan" ]; then
  echo "gimp-install: ok ($plugindir/celgan with its catalogs)"
else
  echo "gimp-install: FAILED (missing: ${missing[*]})"
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
