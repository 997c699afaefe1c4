#!/bin/bash
# CelGAN's main job on a fresh Debian 12 machine: install what is needed, build, list the Vulkan devices,
# stylize the bundled sample photo with the bundled model into out/chelsea-toon.png with `celgan apply`, and
# apply the same model through GIMP 3 in batch mode into out/chelsea-toon-gimp.png (inside the Debian 13 root
# that tools/setup.sh makes, or natively where GIMP 3 is installed).
set -euo pipefail

REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
# Use the distribution's tools (those tools/setup.sh installs) before any in the user's PATH: a pyenv or venv
# python3 first in PATH lacks the Debian python3-torch and python3-numpy that the tests use.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

tools/setup.sh

tools/meson-setup.sh build -Dop_families=all
ninja -C build

CELGAN=build/trainer/celgan
if [ ! -x "$CELGAN" ]; then
  echo "run-main: $CELGAN was not built (the celgan command does not exist yet in this tree)" >&2
  exit 1
fi
"$CELGAN" devices
mkdir -p out
"$CELGAN" info data/models/toon.safetensors
"$CELGAN" apply -i data/samples/chelsea.png -o out/chelsea-toon.png -m data/models/toon.safetensors
echo "run-main: wrote $REPO/out/chelsea-toon.png"

if command -v gimp-console-3.0 >/dev/null && pkg-config --exists gimp-3.0 2>/dev/null; then
  tools/run-main-gimp.sh
else
  tools/trixie-root.sh run tools/run-main-gimp.sh
fi
