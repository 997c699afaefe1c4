#!/bin/bash
# Manage a Debian 13 (trixie) root in which the GIMP 3 plug-in is built and tested on Debian 12 hosts
# (Debian 12 has no GIMP 3). The root lives in a cache outside the repository so it survives between runs.
#
#   tools/trixie-root.sh ensure        create the root (or add missing packages to it)
#   tools/trixie-root.sh run CMD...    run CMD as root inside it, in the current directory
#   tools/trixie-root.sh check         print the GIMP version inside
#
# Environment: CELGAN_TRIXIE_ROOT (default /var/cache/celgan/trixie-root), CELGAN_DEBIAN_MIRROR (default: the
# Debian mirror this host's apt uses). Needs root (mmdebstrap --mode=root, mount, chroot, unshare).
#
# `run` mounts proc, dev, sys, a fresh /tmp, the repository and ../shared (read-only) in a private mount
# namespace of its own: concurrent or nested runs never see each other's mounts, the host never sees any, and
# the kernel drops them all when the run ends, even if it is killed. The trap unmounts them explicitly as well.
# A shared lock on ROOT.lock is held while a run is inside; `ensure` takes it exclusively, so the root is never
# replaced or changed under a running command.
set -euo pipefail

ROOT=${CELGAN_TRIXIE_ROOT:-/var/cache/celgan/trixie-root}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
SHARED=$(readlink -f "$REPO/../shared" 2>/dev/null || true)
[ -d "$SHARED" ] || SHARED=

# What the plug-in needs to build, run and be tested headless (GIMP3.md).
PACKAGES=(
  build-essential meson ninja-build pkg-config glslang-tools
  libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers
  libglib2.0-dev libjson-glib-dev libpng-dev libjpeg62-turbo-dev libcairo2-dev fonts-dejavu-core
  libgimp-3.0-dev gimp gir1.2-gimp-3.0 python3-gi
  gettext appstream xvfb xauth imagemagick
)

die () { echo "trixie-root: $*" >&2; exit 1; }
say () { echo "trixie-root: $*" >&2; }

need_root () {
  [ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, mount and chroot need it)"
}

# The Debian archive URL this host's apt uses (main archive, not security), else deb.debian.org.
debian_mirror () {
  if [ -n "${CELGAN_DEBIAN_MIRROR:-}" ]; then
    echo "$CELGAN_DEBIAN_MIRROR"
    return
  fi
  local url
  url=$(grep -hv '^[[:space:]]*#' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^[:space:]]+' | grep -E '/debian/?$' | head -n1 || true)
  url=${url%/}
  echo "${url:-http://deb.debian.org/debian}"
}

# Packages from PACKAGES that are not fully installed in the root at $1 (no chroot needed).
missing_in () {
  local status
  status=$(dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${db:Status-Abbrev} ${Package}\n' \
             "${PACKAGES[@]}" 2>/dev/null || true)
  local p
  for p in "${PACKAGES[@]}"; do
    grep -qE "^ii +$p\$" <<<"$status" || echo "$p"
  done
}

# Remove a folder that may still hold mounts left by a killed mmdebstrap: unmount first, never cross into them.
safe_rm () {
  local m
  findmnt -rn -o TARGET | grep -F "$1/" | sort -r | while read -r m; do
    umount -R -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$1"
}

lock () {  # lock MODE: -s (run) or -x (ensure), on fd 9
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"
  flock "$1" 9
}

# Build a fresh root into a temporary folder beside ROOT and rename it into place only when complete.
build_root () {
  local mirror tmp old
  mirror=$(debian_mirror)
  command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (tools/setup.sh installs it)"
  local stale
  for stale in "$ROOT".tmp.* "$ROOT".old.*; do  # leftovers of interrupted builds (we hold the lock)
    [ -e "$stale" ] && safe_rm "$stale"
  done
  tmp=$(mktemp -d "$ROOT.tmp.XXXXXX")
  chmod 755 "$tmp"  # apt's _apt user must reach the lists inside
  say "building Debian trixie root from $mirror into $tmp (takes several minutes)"
  local include
  include=$(IFS=,; echo "${PACKAGES[*]}")
  # In a private mount namespace: mmdebstrap's own mounts in the new root vanish even if it is killed.
  unshare --mount --propagation private -- \
    mmdebstrap --mode=root --variant=apt --include="$include" \
      --aptopt='Acquire::Retries "3"' \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      trixie "$tmp" "deb $mirror trixie main"
  [ -z "$(missing_in "$tmp")" ] || die "packages missing after mmdebstrap: $(missing_in "$tmp" | xargs)"
  if [ -e "$ROOT" ]; then
    old=$(mktemp -d "$ROOT.old.XXXXXX")
    mv -T "$ROOT" "$old/root"
    mv -T "$tmp" "$ROOT"
    safe_rm "$old"
  else
    mv -T "$tmp" "$ROOT"
  fi
  say "root ready at $ROOT"
}

cmd_ensure () {
  need_root
  # Complete already: nothing to do, and no need to wait for runs in progress.
  if [ -d "$ROOT" ] && [ -z "$(missing_in "$ROOT")" ]; then
    return 0
  fi
  lock -x
  if [ -d "$ROOT" ]; then
    local missing
    mapfile -t missing < <(missing_in "$ROOT")
    [ ${#missing[@]} -gt 0 ] || return 0
    # A package list that grew (or an interrupted install): add what is missing, rebuild if that fails.
    say "adding to the existing root: ${missing[*]}"
    local rc=0
    DEBIAN_FRONTEND=noninteractive enter sh -c \
      'dpkg --configure -a && apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' \
      sh "${missing[@]}" || rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$(missing_in "$ROOT")" ]; then
      return 0
    fi
    say "could not repair the root; rebuilding it"
  fi
  build_root
}

cmd_run () {
  need_root
  [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
  lock -s
  [ -d "$ROOT" ] || die "no root at $ROOT; run '$0 ensure' (or tools/setup.sh) first"
  # exec: a signal sent to this process reaches the trap in `inside` (same process after the exec).
  exec unshare --mount --propagation private -- "$SELF" __inside "$(pwd -P)" "$@"
}

# Run CMD inside the root, in a new private mount namespace (the lock, if any, is inherited on fd 9).
enter () {
  unshare --mount --propagation private -- "$SELF" __inside "$(pwd -P)" "$@"
}

# Mounts made by `inside`, unmounted in reverse order by unmount_all.
MOUNTED=()

unmount_all () {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTED[i]}" 2>/dev/null || umount -R -l "${MOUNTED[i]}" 2>/dev/null || true
  done
  MOUNTED=()
}

bind_into_root () {  # bind_into_root SRC [ro]: mount SRC at the same path inside the root
  local dst="$ROOT$1"
  mkdir -p "$dst"
  mount --rbind "$1" "$dst"
  MOUNTED+=("$dst")
  if [ "${2:-}" = ro ]; then
    mount -o remount,bind,ro "$dst"
  fi
}

# Runs in the private namespace: mount, chroot CMD, unmount (also on error and signals).
inside () {
  local cwd=$1
  shift
  trap unmount_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  mount -t proc proc "$ROOT/proc";  MOUNTED+=("$ROOT/proc")
  bind_into_root /dev
  bind_into_root /sys
  mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp";  MOUNTED+=("$ROOT/tmp")
  if [ -f /etc/resolv.conf ]; then  # name resolution for apt inside
    [ -e "$ROOT/etc/resolv.conf" ] || : >"$ROOT/etc/resolv.conf"
    mount --bind /etc/resolv.conf "$ROOT/etc/resolv.conf";  MOUNTED+=("$ROOT/etc/resolv.conf")
  fi
  bind_into_root "$REPO"
  if [ -n "$SHARED" ]; then
    bind_into_root "$SHARED" ro
  fi
  install -d -m 700 "$ROOT/tmp/xdg-runtime"

  # Run in the current directory when it is visible inside (the repository), else in /.
  case "$cwd/" in
    "$REPO"/* | "${SHARED:-/nonexistent}"/*) ;;
    *) cwd=/ ;;
  esac
  local envs=(HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" XDG_RUNTIME_DIR=/tmp/xdg-runtime
              PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  local v
  for v in $(compgen -e); do  # pass the project's and the test runners' settings through
    case "$v" in
      CI | CELGAN_* | MESON_* | ASAN_OPTIONS | UBSAN_OPTIONS | LSAN_OPTIONS | VK_* | DEBIAN_FRONTEND)
        envs+=("$v=${!v}") ;;
    esac
  done

  # In the background so that a signal reaches the trap at once; keep our stdin for CMD.
  local rc=0
  exec 3<&0
  chroot "$ROOT" /usr/bin/env -i -C "$cwd" "${envs[@]}" "$@" <&3 3<&- 9>&- &
  local child=$!
  trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT
  trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
  trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 129' HUP
  wait "$child" || rc=$?
  exit "$rc"
}

cmd_check () {
  cmd_run gimp-console-3.0 --version
}

case "${1:-}" in
  ensure) shift; cmd_ensure "$@" ;;
  run) shift; cmd_run "$@" ;;
  check) shift; cmd_check ;;
  __inside) shift; inside "$@" ;;
  *) echo "usage: $0 ensure | run CMD [ARGS...] | check" >&2; exit 2 ;;
esac
