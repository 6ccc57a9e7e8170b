#!/usr/bin/env bash
# Builds the `fuzz` preset (clang, libFuzzer, AddressSanitizer + UndefinedBehaviorSanitizer) and
# runs every fuzz target for SECONDS (default 20) from its committed seed corpus (fuzz/run.sh).
# Exit status: 0 when no target found anything; 1 when one did (the input is saved under
# BUILD/fuzz/artifacts/); 2 when the build failed.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# environment: PIMQAT_FUZZ_BUILD_DIR (default build/fuzz), PIMQAT_JOBS (build jobs, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
[ $# -gt 0 ] && shift
build="${PIMQAT_FUZZ_BUILD_DIR:-build/fuzz}"
bash scripts/install-fuzz-deps.sh
cmake --preset fuzz -B "$build" > /dev/null || exit 2
cmake --build "$build" --target fuzz_all -j "${PIMQAT_JOBS:-2}" || exit 2
exec bash fuzz/run.sh -t "$seconds" -b "$build" "$@"
