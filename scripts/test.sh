#!/usr/bin/env bash
# The test command of the README and of CI (.ci/run): installs its dependencies, then
#   1. builds the release preset and runs every test (ctest);
#   2. builds the asan preset (AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test
#      under it (scripts/test-asan.sh);
#   3. builds the fuzz preset and runs every libFuzzer target for PIMQAT_FUZZ_SECONDS (default 20)
#      from the committed seed corpus (scripts/fuzz.sh).
# A failure in 1 stops at once; 2 and 3 both run, and the exit status is non-zero if either failed.
# The times of each part are printed at the end (docs/reliability.md has the measured figures).
#
# usage: scripts/test.sh [ctest arguments...]   (the ctest arguments apply to parts 1 and 2)
# environment:
#   PIMQAT_TEST_QUICK=1     part 1 only (the quick local check; parts 2 and 3 add about half an hour
#                           on two cores)
#   PIMQAT_FUZZ_SECONDS=N   seconds per fuzz target in part 3 (default 20)
#   PIMQAT_JOBS=N           build jobs of parts 2 and 3 (default: the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${PIMQAT_TEST_QUICK:-0}"
start=$(date +%s)
bash scripts/install-deps.sh
if [ "$quick" != 1 ]; then bash scripts/install-fuzz-deps.sh; fi
cmake --preset release
cmake --build --preset release -j "$(nproc)"
(cd build/release && ctest --output-on-failure --timeout 600 -j 1 "$@")
release_end=$(date +%s)
if [ "$quick" = 1 ]; then
  echo "test.sh: release build and tests $((release_end - start)) s (PIMQAT_TEST_QUICK=1: sanitizers and fuzzing skipped)"
  exit 0
fi

export PIMQAT_JOBS="${PIMQAT_JOBS:-$(nproc)}"
asan_status=0
bash scripts/test-asan.sh "$@" || asan_status=$?
asan_end=$(date +%s)
fuzz_status=0
bash scripts/fuzz.sh "${PIMQAT_FUZZ_SECONDS:-20}" || fuzz_status=$?
end=$(date +%s)
echo "test.sh: release build and tests $((release_end - start)) s; asan build and tests $((asan_end - release_end)) s" \
     "(exit $asan_status); fuzz build and runs $((end - asan_end)) s (exit $fuzz_status); total $((end - start)) s"
[ "$asan_status" = 0 ] && [ "$fuzz_status" = 0 ]
