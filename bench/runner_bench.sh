#!/usr/bin/env bash
# Runner benchmarks (issue 5's closing numbers):
#   - coordinator dispatch throughput on zero-length synthetic tasks, 2 and 4 ranks (1 and 3
#     workers), with the journal fdatasync'ed per batch as in real runs, and without sync;
#   - journal replay time for 10^6 records.
# usage: bench/runner_bench.sh [BUILD_DIR] [TASKS] [RECORDS]
#   BUILD_DIR defaults to build/release (configure with -DPIMQAT_BUILD_BENCH=ON and build the
#   target runner_bench). WORK_DIR (env) holds the run directories (default: a temporary directory).
set -euo pipefail

build=${1:-build/release}
tasks=${2:-20000}
records=${3:-1000000}
bench="$build/bench/runner_bench"
if [[ ! -x "$bench" ]]; then
  echo "no $bench: cmake -B $build -DPIMQAT_BUILD_BENCH=ON && cmake --build $build --target runner_bench" >&2
  exit 2
fi
work=${WORK_DIR:-$(mktemp -d)}
mkdir -p "$work"
trap '[[ -z "${WORK_DIR:-}" ]] && rm -rf "$work"' EXIT

# Allow mpirun as root (containers) and more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1

echo "# $(date -u +%FT%TZ) $(uname -n), $(getconf _NPROCESSORS_ONLN) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(mpirun --version | head -1)"
echo "# journal and run directories in $work ($(df -T "$work" | awk 'NR==2 {print $2 " on " $1}'))"
for sync in "" "--no-sync"; do
  for ranks in 2 4; do
    rm -rf "$work/dispatch"
    mpirun -np "$ranks" "$bench" dispatch "$tasks" "$work/dispatch" $sync
  done
done
"$bench" replay "$records" "$work/replay"
