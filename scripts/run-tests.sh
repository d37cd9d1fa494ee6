#!/usr/bin/env bash
# Installs what is missing, then runs every check ferry has: format check, warning-free
# Release build, unit tests, unit tests under ASan+UBSan, integration tests against the
# real ferryd, and a short libFuzzer run per decoder. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
JOBS="${JOBS:-2}"

step() { printf '\n=== %s (at %ss) ===\n' "$*" "$SECONDS"; }

step "dependencies"
bash scripts/install-deps.sh

step "clang-format check"
mapfile -t sources < <(git ls-files 'src/*.cc' 'src/*.h' 'test/*.cc' 'test/*.h' 'bench/*.cc' 2>/dev/null || true)
if [ ${#sources[@]} -eq 0 ]; then
  mapfile -t sources < <(find src test bench -name '*.cc' -o -name '*.h' 2>/dev/null)
fi
clang-format --dry-run --Werror "${sources[@]}"

step "Release build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFERRY_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"

step "unit tests"
(cd build && ctest --output-on-failure)

step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=ON -DFERRY_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS" --target ferry_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build-asan/ferry_tests

step "integration tests (real ferryd on loopback)"
FERRYD="$PWD/build/ferryd" /usr/bin/python3 -m pytest -q -p no:cacheprovider test/integration

step "fuzzing (${FUZZ_SECONDS}s per target)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$JOBS" --target fuzz_targets
for target in build-fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus="test/fuzz/corpus/${name#fuzz_}"
  [ -d "$corpus" ] || { echo "missing seed corpus $corpus for $name"; exit 1; }
  work=$(mktemp -d)
  echo "--- $name (seed corpus: $corpus)"
  "$target" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
    "$work" "$corpus" 2>&1 | tail -n 12
  rm -rf "$work"
done

step "all checks passed"
