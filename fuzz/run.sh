#!/usr/bin/env bash
# Runs libFuzzer targets of a fuzz build for a bounded time each, from their committed seed corpus.
#
# usage: fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [--seeds] [TARGET...]
#   -t SECONDS   time per target (default 20)
#   -b DIR       the fuzz build (default build/fuzz, the `fuzz` preset's directory)
#   --seeds      regenerate fuzz/corpus/ with BUILD_DIR/fuzz/fuzz_seeds first
#   TARGET       config sweep expanded heartbeat idx cifar curves_csv curves_h5 checkpoint results journal
#                journal_record (default: all)
#
# New inputs go to BUILD_DIR/fuzz/work/TARGET (the committed corpus is only read); a crash is saved
# as BUILD_DIR/fuzz/artifacts/TARGET/crash-* (reproduce: BUILD_DIR/fuzz/fuzz_TARGET FILE). The
# summary (executions and corpus size per target) is printed and written to
# BUILD_DIR/fuzz/summary.txt. Exit status: 0 when no target found anything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
build=build/fuzz
seeds=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) seconds="$2"; shift 2 ;;
    -b) build="$2"; shift 2 ;;
    --seeds) seeds=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(config sweep expanded heartbeat idx cifar curves_csv curves_h5 checkpoint results journal journal_record)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

bin="$build/fuzz"
if [ "$seeds" = 1 ]; then
  rm -rf fuzz/corpus
  "$bin/fuzz_seeds" "$PWD" fuzz/corpus
fi

# Inputs past these sizes only slow a short run down: YAML and text formats stay small.
max_len() {
  case "$1" in
    config|sweep|expanded|heartbeat|curves_csv|journal_record) echo 4096 ;;
    idx) echo 8192 ;;
    *) echo 0 ;;  # libFuzzer's default: the largest seed
  esac
}

export OMP_NUM_THREADS=1
# Scratch files of the path-taking readers: in memory when possible (much faster than a disk).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
summary="$build/fuzz/summary.txt"
mkdir -p "$build/fuzz"
printf "%-15s %8s %12s %10s %8s  %s\n" target seconds executions exec/s corpus result | tee "$summary"
status=0
for t in "${targets[@]}"; do
  exe="$bin/fuzz_$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz/run.sh: $exe is missing: build the fuzz preset first (scripts/fuzz.sh)" >&2
    exit 2
  fi
  work="$build/fuzz/work/$t" artifacts="$build/fuzz/artifacts/$t/" log="$build/fuzz/$t.log"
  mkdir -p "$work" "$artifacts"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts")
  len=$(max_len "$t")
  [ "$len" != 0 ] && args+=(-max_len="$len")
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  result=ok
  if ! "$exe" "${args[@]}" "$work" "fuzz/corpus/$t" > "$log" 2>&1; then
    result="FOUND: see $log and $artifacts"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "$work" "fuzz/corpus/$t" -type f | wc -l)
  rate=$(( ${runs:-0} / (seconds > 0 ? seconds : 1) ))
  printf "%-15s %8s %12s %10s %8s  %s\n" "$t" "$seconds" "${runs:-?}" "$rate" "$corpus" "$result" | tee -a "$summary"
  if [ "$result" != ok ]; then grep -m1 -A12 "FINDING\|ERROR: \|runtime error\|deadly signal" "$log" >&2 || tail -20 "$log" >&2; fi
done
echo "fuzz/run.sh: summary in $summary"
exit $status
