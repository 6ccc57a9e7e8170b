#!/usr/bin/env bash
# How libgomp's waiting policy affects a ResNet-20 training step (bench/train_step, batch 128,
# 1x28x28, FP32, 2 threads), alone and sharing the cores with a second copy of itself: the
# default (spin, then sleep), OMP_WAIT_POLICY=PASSIVE (sleep at once) and ACTIVE (spin). Rounds
# alternate the policies; best and median images/s are printed with the ratio to the default.
# This is the measurement behind the policy pimqat picks when none is set (docs/training.md).
# Usage: bench/omp_wait_policy.sh [BUILD_DIR] (default build/release; needs bench/ built)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
rounds="${ROUNDS:-3}"
steps="${STEPS:-8}"
exe="$build/bench/train_step"
[[ -x $exe ]] || { echo "no $exe (build the bench/ targets)" >&2; exit 2; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() {  # POLICY COPIES -> images/s of the first copy (the others run the same step alongside)
  local policy=$1 copies=$2 i out
  local -a pids=()
  for ((i = 1; i < copies; i++)); do
    env ${policy:+OMP_WAIT_POLICY=$policy} "$exe" 1 28 0 0 2 $((steps * 2)) 1 >/dev/null &
    pids+=($!)
  done
  out=$(env ${policy:+OMP_WAIT_POLICY=$policy} "$exe" 1 28 0 0 2 "$steps" 2 | awk '{print $2}')
  for i in "${pids[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
  echo "$out"
}
printf "%-10s %-8s %10s %10s %8s\n" setting policy best median ratio
for copies in 1 2; do
  declare -A all=()
  for _ in $(seq "$rounds"); do
    for policy in default PASSIVE ACTIVE; do
      p=$policy; [[ $p == default ]] && p=""
      all[$policy]+="$(run "$p" "$copies") "
    done
  done
  base=""
  for policy in default PASSIVE ACTIVE; do
    read -r best median < <(tr ' ' '\n' <<<"${all[$policy]}" | grep . | sort -g | awk '{v[NR]=$1} END{print v[NR], v[int((NR+1)/2)]}')
    [[ -n $base ]] || base=$median
    printf "%-10s %-8s %10.1f %10.1f %7.2fx\n" "$([[ $copies == 1 ]] && echo alone || echo "shared x$copies")" "$policy" "$best" "$median" \
      "$(awk -v a="$median" -v b="$base" 'BEGIN{print a/b}')"
  done
  unset all
done
