#!/bin/bash
# Install what CelGAN needs to build and test, then make sure the Debian 13 root for the GIMP 3 plug-in exists.
#
#   tools/setup.sh [--no-root]
#
# On Debian 12 as root it installs the missing packages with apt-get (apt-get update only when something is
# missing). Elsewhere (not root, another release, another distribution) it installs nothing and says what is
# missing. It is idempotent: when everything is there it only checks, in about a second.
#
# The GIMP plug-in needs GIMP 3, which Debian 12 lacks: it is built and tested in a Debian 13 root made by
# tools/trixie-root.sh. A machine with GIMP 3 installed natively (Debian 13, Arch, ...) needs no root.
# --no-root skips the root.
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")

# Debian 12 package names.
PACKAGES=(
  gcc clang libclang-rt-14-dev meson ninja-build pkg-config glslang-tools
  libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  libglib2.0-dev libjson-glib-dev libpng-dev libjpeg62-turbo-dev libcairo2-dev fonts-dejavu-core
  python3-torch python3-numpy python3-pil mmdebstrap npm libgomp1
  libopenmpi-dev openmpi-bin
)

with_root=1
for arg in "$@"; do
  case "$arg" in
    --no-root) with_root=0 ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "setup: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say () { echo "setup: $*" >&2; }

is_root () { [ "$(id -u)" -eq 0 ]; }

is_debian12 () {
  grep -qx 'ID=debian' /etc/os-release 2>/dev/null &&
    grep -qx 'VERSION_ID="12"' /etc/os-release
}

# Packages from PACKAGES that dpkg does not list as installed.
missing_packages () {
  local status p
  status=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  for p in "${PACKAGES[@]}"; do
    # npm also comes with other Node.js builds (NodeSource's nodejs bundles it and conflicts with Debian's npm)
    [ "$p" = npm ] && command -v npm >/dev/null && continue
    grep -qE "^ii +$p\$" <<<"$status" || echo "$p"
  done
}

# What is missing, checked by capability rather than package name (for other releases and distributions).
missing_capabilities () {
  local c m
  for c in cc meson ninja pkg-config glslangValidator python3; do
    command -v "$c" >/dev/null || echo "command $c"
  done
  if command -v pkg-config >/dev/null; then
    for m in vulkan glib-2.0 gio-2.0 json-glib-1.0 libpng libjpeg cairo; do
      pkg-config --exists "$m" || echo "pkg-config module $m"
    done
  fi
  compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null ||
    echo "lavapipe Vulkan driver (mesa)"
  compgen -G '/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json' >/dev/null ||
    echo "Khronos Vulkan validation layer"
  python3 -c 'import torch, numpy' 2>/dev/null || echo "python3 modules torch and numpy"
}

has_native_gimp3 () {
  command -v gimp-console-3.0 >/dev/null && pkg-config --exists gimp-3.0 2>/dev/null
}

status=0

if is_debian12; then
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#PACKAGES[@]} Debian packages are installed"
  elif is_root; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    mapfile -t missing < <(missing_packages)
    if [ ${#missing[@]} -gt 0 ]; then
      say "still missing after apt-get install: ${missing[*]}"
      exit 1
    fi
  else
    say "missing packages (run as root, or: sudo apt-get install ${missing[*]})"
    status=1
  fi
else
  say "not Debian 12: installing nothing, only checking"
  mapfile -t missing < <(missing_capabilities)
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing:"
    printf '  %s\n' "${missing[@]}" >&2
    status=1
  fi
fi

if [ "$with_root" -eq 1 ]; then
  if has_native_gimp3; then
    say "GIMP 3 is installed natively; no Debian 13 root needed"
  elif is_root && command -v mmdebstrap >/dev/null; then
    "$HERE/trixie-root.sh" ensure
  else
    say "the GIMP 3 tests need a Debian 13 root: run as root with mmdebstrap installed (or install GIMP 3)"
    status=1
  fi
fi

exit "$status"
