#!/bin/bash
# CelGAN's main job on a fresh Debian 12 machine: install what is needed, build, and run the `celgan` command.
# For now that is the core's self-check (list the Vulkan devices, run the self-test); later it will stylize
# the bundled sample image.
set -euo pipefail

REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
# Use the distribution's tools (those tools/setup.sh installs) before any in the user's PATH: a pyenv or venv
# python3 first in PATH lacks the Debian python3-torch and python3-numpy that the tests use.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# The main job needs no GIMP, so no Debian 13 root.
tools/setup.sh --no-root

tools/meson-setup.sh build
ninja -C build

CELGAN=build/trainer/celgan
if [ ! -x "$CELGAN" ]; then
  echo "run-main: $CELGAN was not built (the celgan command does not exist yet in this tree)" >&2
  exit 1
fi
"$CELGAN" devices
"$CELGAN" selftest
