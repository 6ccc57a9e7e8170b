#!/usr/bin/env bash
# The README's main job: installs dependencies, builds pimqat and runs the quickstart.
# Output goes to runs/quickstart (re-running resumes / reuses finished work).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
./build/release/pimqat train configs/quickstart-train.yaml --out runs/quickstart-train
