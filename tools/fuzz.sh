#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time.
#   tools/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# Targets: tests/fuzz/fuzz_*.c. Each links the core's file readers only (no Vulkan needed).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; skipping the fuzz targets" >&2
  exit 0
fi
out=build-fuzz
mkdir -p "$out"
readers="core/json.c core/safetensors.c"  # every target links these; a target's own extra sources: tests/fuzz/NAME.sources
status=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  extra=""
  [ -f "tests/fuzz/$name.sources" ] && extra=$(cat "tests/fuzz/$name.sources")
  clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Icore $readers $extra "$src" -o "$out/$name"
  corpus="$out/corpus-$name"
  mkdir -p "$corpus"
  [ -d "tests/fuzz/seeds-$name" ] && cp -n tests/fuzz/seeds-"$name"/* "$corpus"/ 2>/dev/null || true
  # seeds made at run time (binary files are generated, not committed): tests/fuzz/seeds-NAME.py FOLDER
  if [ -f "tests/fuzz/seeds-$name.py" ] && ! /usr/bin/python3 "tests/fuzz/seeds-$name.py" "$corpus" 2>"$out/$name.seeds.log"; then
    echo "fuzz: $name: no generated seeds ($(tail -1 "$out/$name.seeds.log")); starting from the others"
  fi
  echo "fuzz: $name for ${secs}s"
  if ! "$out/$name" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "$corpus" \
      > "$out/$name.log" 2>&1; then
    echo "fuzz: $name FAILED (see $out/$name.log)"; tail -40 "$out/$name.log"; status=1
  else
    grep -E "stat::number_of_executed_units|Done" "$out/$name.log" | tail -2
  fi
done
exit $status
