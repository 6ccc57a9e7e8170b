#!/usr/bin/env bash
# The README's main job: installs dependencies, builds pimqat, runs the quickstart sweep
# (sweeps/quickstart.yaml: a small real PIM-QAT sweep on Fashion-MNIST) and its analysis.
# Output: runs/quickstart (results.h5, analysis/report.md, analysis/plots/*.png). Re-running the
# same command resumes an interrupted sweep and reuses every finished task.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# Threads that wait sleep instead of spinning: on a machine shared with other work this is 1.5-5x
# faster (bench/omp_wait_policy.sh, docs/training.md); set OMP_WAIT_POLICY yourself to override.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
./build/release/pimqat sweep sweeps/quickstart.yaml --out runs/quickstart
./build/release/pimqat analyze runs/quickstart
