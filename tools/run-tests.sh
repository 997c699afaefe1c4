#!/bin/bash
# Run all of CelGAN's tests (what CI runs), on a fresh Debian 12 machine or an already set-up one:
#   1. validation: build-ci, meson tests with the Khronos validation layer (+ synchronization validation)
#   2. asan:       build-asan, meson tests under AddressSanitizer (with leak checks) and UBSan
#   3. gimp:       build-trixie inside the Debian 13 root (or natively where GIMP 3 is installed), its tests,
#                  and a headless GIMP 3 smoke check (tools/run-gimp-tests.sh)
#   4. fuzz:       the libFuzzer targets for CELGAN_FUZZ_SECONDS (default 60) each (tools/fuzz.sh)
# Each step runs even if an earlier one failed; a summary follows; the exit status is non-zero on any failure.
# Developers may skip steps with CELGAN_SKIP_VALIDATION=1, CELGAN_SKIP_ASAN=1, CELGAN_SKIP_GIMP=1
# (CELGAN_SKIP_TRIXIE=1 is the same as the last). Nothing is skipped by default.
set -euo pipefail

REPO=$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")
cd "$REPO"
# Use the distribution's tools (those tools/setup.sh installs) before any in the user's PATH: a pyenv or venv
# python3 first in PATH lacks the Debian python3-torch and python3-numpy that the tests use.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/celgan-tests.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT

skip_gimp=${CELGAN_SKIP_GIMP:-${CELGAN_SKIP_TRIXIE:-0}}

native_gimp3 () {
  command -v gimp-console-3.0 >/dev/null && pkg-config --exists gimp-3.0 2>/dev/null
}

# meson test that keeps its output for the summary's test counts.
meson_test () {
  local name=$1
  shift
  meson test "$@" 2>&1 | tee "$LOGS/$name.testlog"
  return "${PIPESTATUS[0]}"
}

# The steps chain with && because they run where `set -e` does not apply (the caller checks their status).
step_validation () {
  tools/meson-setup.sh build-ci -Dbuildtype=debugoptimized -Dop_families=all &&
    ninja -C build-ci &&
    CELGAN_VALIDATION=1 meson_test validation -C build-ci --print-errorlogs
}

step_asan () {
  local lsan_options=
  # Suppressions only for leaks inside the Vulkan loader, lavapipe or LLVM, never the project's (none known yet).
  if [ -f tools/lsan.supp ]; then
    lsan_options="suppressions=$REPO/tools/lsan.supp"
  fi
  tools/meson-setup.sh build-asan -Dbuildtype=debugoptimized -Dop_families=all -Db_sanitize=address,undefined -Db_lundef=false &&
    ninja -C build-asan &&
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LSAN_OPTIONS=$lsan_options \
      meson_test asan -C build-asan --print-errorlogs
}

# libFuzzer targets (the model-file reader) for a bounded time; clang comes from tools/setup.sh.
step_fuzz () {
  tools/fuzz.sh "${CELGAN_FUZZ_SECONDS:-60}" 2>&1 | tee "$LOGS/fuzz.testlog"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then echo "fuzz-result: ok"; else echo "fuzz-result: FAILED"; fi >>"$LOGS/fuzz.testlog"
  return "$rc"
}

step_gimp () {
  if native_gimp3; then
    tools/run-gimp-tests.sh
  else
    tools/trixie-root.sh run tools/run-gimp-tests.sh
  fi 2>&1 | tee "$LOGS/gimp.testlog"
  return "${PIPESTATUS[0]}"
}

# Test counts from meson's closing lines ("Ok: N", "Fail: N", ...) and the GIMP smoke line of a step's log.
count_tests () {
  [ -f "$1" ] || { echo 0 0 0; return; }
  awk '
    /^Ok:/ || /^Expected Fail:/ { p += $NF }
    /^Fail:/ || /^Unexpected Pass:/ || /^Timeout:/ { f += $NF }
    /^Skipped:/ { s += $NF }
    /^gimp-smoke: ok/ { p++ }
    /^gimp-smoke: FAILED/ { f++ }
    /^fuzz-result: ok/ { p++ }
    /^fuzz-result: FAILED/ { f++ }
    END { print p + 0, f + 0, s + 0 }' "$1"
}

SUMMARY=()  # rows "name result seconds"
FAILED=0
PASSED_TESTS=0 FAILED_TESTS=0 SKIPPED_TESTS=0

run_step () {  # run_step NAME SKIP_FLAG
  local name=$1 skip=$2 start rc=0 p f s
  if [ "$skip" = 1 ]; then
    echo "=== $name: SKIPPED (by environment) ==="
    SUMMARY+=("$name SKIPPED 0")
    return
  fi
  echo "=== $name ==="
  start=$SECONDS
  case "$name" in
    validation) step_validation || rc=$? ;;
    asan) step_asan || rc=$? ;;
    gimp) step_gimp || rc=$? ;;
    fuzz) step_fuzz || rc=$? ;;
  esac
  read -r p f s < <(count_tests "$LOGS/$name.testlog")
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("$name ok $((SECONDS - start))")
  else
    SUMMARY+=("$name FAILED($rc) $((SECONDS - start))")
    FAILED=1
    [ "$f" -gt 0 ] || f=1  # failed before or outside its tests (setup, build)
  fi
  PASSED_TESTS=$((PASSED_TESTS + p)) FAILED_TESTS=$((FAILED_TESTS + f)) SKIPPED_TESTS=$((SKIPPED_TESTS + s))
}

start_all=$SECONDS
echo "=== setup ==="
setup_args=()
[ "$skip_gimp" = 1 ] && setup_args+=(--no-root)
tools/setup.sh "${setup_args[@]}"

run_step validation "${CELGAN_SKIP_VALIDATION:-0}"
run_step asan "${CELGAN_SKIP_ASAN:-0}"
run_step gimp "$skip_gimp"
run_step fuzz "${CELGAN_SKIP_FUZZ:-0}"

echo
echo "=== summary ($((SECONDS - start_all)) s) ==="
for row in "${SUMMARY[@]}"; do
  read -r name result secs <<<"$row"
  printf '  %-12s %-12s %5s s\n' "$name" "$result" "$secs"
done
echo "tests: $PASSED_TESTS passed, $FAILED_TESTS failed, $SKIPPED_TESTS skipped"
# What failed, at the end where a truncated CI log still shows it: meson's result lines of failed or timed-out
# tests and the first failing TAP lines with their diagnostics, per step.
for log in "$LOGS"/*.testlog; do
  [ -f "$log" ] || continue
  if grep -qE '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$log" || grep -q '^not ok' "$log"; then
    echo "--- failures in $(basename "$log" .testlog):"
    grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$log" || true
    awk '/^not ok/ { n = 6; shown++ } n > 0 && shown <= 8 { print; n-- }' "$log" | cut -c1-300
  fi
done
exit "$FAILED"
