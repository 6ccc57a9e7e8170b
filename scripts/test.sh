#!/usr/bin/env bash
# The test command of the README: installs dependencies, builds the release preset, runs every test.
# Usage: scripts/test.sh [ctest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
cd build/release
ctest --output-on-failure --timeout 600 -j 1 "$@"
