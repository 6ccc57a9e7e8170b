#!/usr/bin/env bash
# Installs dependencies and builds the `pimqat` program (build/release/pimqat).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target pimqat
