#!/usr/bin/env bash
# Issue 4's closing numbers in one run: images/s of ResNet-20 (batch 128, 1x28x28, 2 threads) for
# FP32 training, digital W4A4 QAT training, PIM-QAT training (TR = 4 and 7) and Monte Carlo
# evaluation on a non-ideal die (gain/offset spreads of the paper's chip, thermal noise 1 LSB,
# IR = 7) next to FP32 inference, with the ratios, for bit-serial (N = 144), differential (N = 144)
# and native (N = 9); then the kernel micro-benchmarks per instruction-set path and the cost of thermal noise.
# usage: bench/pim_speed.sh [BUILD_DIR] [extra pim_speed options, e.g. --rounds 7 --profile]
#   BUILD_DIR defaults to build/release (configure with -DPIMQAT_BUILD_BENCH=ON and build the
#   targets pim_speed, pim_kernels and noise_floor). PIMQAT_KERNEL=avx512|avx2|portable forces a kernel path.
set -euo pipefail

build=${1:-build/release}
shift || true
for exe in pim_speed pim_kernels; do
  if [[ ! -x "$build/bench/$exe" ]]; then
    echo "no $build/bench/$exe: cmake -B $build -DPIMQAT_BUILD_BENCH=ON && cmake --build $build --target pim_speed pim_kernels" >&2
    exit 2
  fi
done
echo "# $(date -u +%FT%TZ) $(uname -n), $(getconf _NPROCESSORS_ONLN) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/pim_speed" --threads 2 "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/pim_kernels" --repeat 3
# Thermal noise per conversion (docs/pim.md): Philox words alone, the old Box-Muller normal, the quantile noise.
if [[ -x "$build/bench/noise_floor" ]]; then "$build/bench/noise_floor"; fi
