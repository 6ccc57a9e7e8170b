#!/usr/bin/env bash
# pimqat vs PyTorch (Debian's python3-torch, oneDNN inside): the identical ResNet-20 training step,
# batch 128, on THREADS threads (default 2), for 1x28x28 and 3x32x32 inputs, FP32 and W4A4 digital
# QAT. Both run in this script, one after the other, alternating, ROUNDS times (default 3); the
# best images/s of each is reported with the ratio pimqat / PyTorch.
# Usage: bench/train_step_vs_torch.sh [BUILD_DIR] (default build/release; needs bench/ built)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
steps="${STEPS:-10}"
python=/usr/bin/python3
if ! $python -c "import torch" 2>/dev/null; then
  echo "python3-torch is not installed: apt-get install python3-torch" >&2
  exit 2
fi
export OMP_NUM_THREADS="$threads"
printf "%-12s %-6s %12s %12s %8s\n" input model "pimqat img/s" "torch img/s" ratio
for cfg in "1 28 0 0 FP32" "1 28 4 4 W4A4" "3 32 0 0 FP32" "3 32 4 4 W4A4"; do
  set -- $cfg
  best_p=0; best_t=0
  for _ in $(seq "$rounds"); do
    p=$("$build/bench/train_step" "$1" "$2" "$3" "$4" "$threads" "$steps" 3 | awk '{print $2}')
    t=$($python bench/torch_train_step.py --channels "$1" --size "$2" --weight-bits "$3" --act-bits "$4" \
        --threads "$threads" --steps "$steps" --warmup 3 | awk '{print $2}')
    best_p=$(awk -v a="$best_p" -v b="$p" 'BEGIN{print (b>a)?b:a}')
    best_t=$(awk -v a="$best_t" -v b="$t" 'BEGIN{print (b>a)?b:a}')
  done
  printf "%-12s %-6s %12.1f %12.1f %7.2fx\n" "$1x$2x$2" "$5" "$best_p" "$best_t" "$(awk -v a="$best_p" -v b="$best_t" 'BEGIN{print a/b}')"
done
