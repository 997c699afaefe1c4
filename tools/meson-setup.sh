#!/bin/bash
# meson setup DIR [OPTIONS...] that reuses an existing build dir (--reconfigure) and starts afresh when that
# fails (say, a dir made by another meson version) or when DIR is not a complete build dir.
set -euo pipefail
dir=$1
shift
if [ -f "$dir/meson-private/coredata.dat" ]; then
  meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
else
  rm -rf "$dir"
  meson setup "$dir" "$@"
fi
