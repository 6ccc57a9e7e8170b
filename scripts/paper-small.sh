#!/usr/bin/env bash
# Runs the small-budget paper sweeps (sweeps/paper/small/, the runs behind docs/results.md) one
# after the other into runs/paper-small/NAME, then analyzes each. Resumable: run it again after an
# interruption and finished tasks are kept. Usage: scripts/paper-small.sh [NAME...]
#   NAME: figA4-bitserial figA6-bn-calibration fig5-best-tr figA5-rescaling figA5-rescaling-warmup fig4-schemes fig4-schemes-warmup fig5-best-tr-low-noise depth
#   (default: all, in that order). Under mpirun: PIMQAT_LAUNCH="mpirun -np 3" scripts/paper-small.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# Threads that wait sleep instead of spinning: on a machine shared with other work this is 1.5-5x
# faster (bench/omp_wait_policy.sh, docs/training.md); set OMP_WAIT_POLICY yourself to override.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(figA4-bitserial figA6-bn-calibration fig5-best-tr figA5-rescaling figA5-rescaling-warmup fig4-schemes fig4-schemes-warmup fig5-best-tr-low-noise depth)
mkdir -p runs/paper-small
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  ${PIMQAT_LAUNCH:-} ./build/release/pimqat sweep "sweeps/paper/small/$name.yaml" --out "runs/paper-small/$name"
  ./build/release/pimqat analyze "runs/paper-small/$name"
done
