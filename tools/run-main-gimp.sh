#!/usr/bin/env bash
# The GIMP half of the main job, run where GIMP 3 is (natively, or inside the Debian 13 root by
# tools/run-main.sh): build the plug-in, give a fresh GIMP user folder the plug-in as GIMP installs it, and
# apply the bundled model to the bundled sample through GIMP 3 in batch mode (Python-Fu), writing
# out/chelsea-toon-gimp.png.
set -euo pipefail
REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
BUILD=${CELGAN_GIMP_BUILD_DIR:-build-trixie}
tools/meson-setup.sh "$BUILD" -Dbuildtype=debugoptimized -Dgimp=enabled -Dop_families=all
ninja -C "$BUILD"
plugin=$(readlink -f "$BUILD/gimp-plugin/celgan")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/celgan-main-gimp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gimp/plug-ins/celgan" out
ln -s "$plugin" "$tmp/gimp/plug-ins/celgan/celgan"
[ -d "$BUILD/po" ] && ln -s "$(readlink -f "$BUILD/po")" "$tmp/gimp/plug-ins/celgan/locale"
export GIMP3_DIRECTORY=$tmp/gimp CELGAN_MODEL_PATH=$REPO/data/models
export CELGAN_MAIN_IN=$REPO/data/samples/chelsea.png CELGAN_MAIN_OUT=$REPO/out/chelsea-toon-gimp.png
gimp-console-3.0 -nidfs --batch-interpreter python-fu-eval -b - --quit <<'PY'
import os
from gi.repository import Gio
img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.environ["CELGAN_MAIN_IN"]))
layer = img.get_layers()[0]
proc = Gimp.get_pdb().lookup_procedure("plug-in-celgan")
if proc is None:
    raise Exception("plug-in-celgan is not registered")
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [layer])
cfg.set_property("model", "toon")
res = proc.run(cfg)
if res.index(0) != Gimp.PDBStatusType.SUCCESS:
    raise Exception("plug-in-celgan failed: %s" % res.index(1))
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(os.environ["CELGAN_MAIN_OUT"]), None)
print("run-main-gimp: wrote", os.environ["CELGAN_MAIN_OUT"])
PY
