#!/usr/bin/env bash
# Submits a pimqat sweep to Slurm with slurm/sweep.sbatch (docs/cluster.md).
#
# usage: slurm/submit.sh SWEEP.yaml --out RUN_DIR [--nodes N] [--ranks-per-node R] [--threads T]
#                        [--time HH:MM:SS] [--partition P] [--account A] [--mail ADDRESS]
#                        [--pimqat PATH] [--dry-run] [-- extra pimqat sweep options]
# Defaults: 1 node, 4 ranks per node, 4 threads per rank, 4 hours, `pimqat` from PATH.
# The job requeues itself until the sweep is finished; `pimqat status RUN_DIR` shows its progress.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '4,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

sweep="" out="" nodes=1 ranks=4 threads=4 time_limit=04:00:00 partition="" account="" mail=""
pimqat=${PIMQAT:-$(command -v pimqat || true)}
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --ranks-per-node) ranks=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --time) time_limit=$2; shift 2 ;;
    --partition) partition=$2; shift 2 ;;
    --account) account=$2; shift 2 ;;
    --mail) mail=$2; shift 2 ;;
    --pimqat) pimqat=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "submit.sh: unknown option $1" >&2; usage ;;
    *) [[ -z $sweep ]] || { echo "submit.sh: one sweep file only" >&2; usage; }; sweep=$1; shift ;;
  esac
done
[[ -n $sweep && -n $out ]] || usage
[[ -f $sweep ]] || { echo "submit.sh: no sweep file $sweep" >&2; exit 2; }
[[ -n $pimqat ]] || { echo "submit.sh: pimqat not found in PATH; pass --pimqat PATH" >&2; exit 2; }
if (( nodes * ranks < 2 )); then
  echo "submit.sh: $nodes node(s) x $ranks rank(s) leaves no worker (rank 0 only coordinates); use >= 2 ranks" >&2
  exit 2
fi

# Check the sweep before queueing (errors are reported at once, with line and column).
if [[ -x $pimqat ]]; then "$pimqat" plan "$sweep" --out "$out"; fi

# Absolute paths: the job may start in another directory.
sweep=$(cd "$(dirname "$sweep")" && pwd)/$(basename "$sweep")
mkdir -p "$out"
out=$(cd "$out" && pwd)
pimqat=$(cd "$(dirname "$pimqat")" && pwd)/$(basename "$pimqat")

args=(--job-name "pimqat-$(basename "${sweep%.*}")" --nodes "$nodes" --ntasks-per-node "$ranks"
      --cpus-per-task "$threads" --time "$time_limit" --output "$out/logs/slurm-%j.out"
      --export "ALL,PIMQAT=$pimqat")
[[ -n $partition ]] && args+=(--partition "$partition")
[[ -n $account ]] && args+=(--account "$account")
[[ -n $mail ]] && args+=(--mail-type END,FAIL --mail-user "$mail")
mkdir -p "$out/logs"

cmd=(sbatch "${args[@]}" "$here/sweep.sbatch" "$sweep" "$out" "${extra[@]}")
if (( dry_run )); then
  printf '%q ' "${cmd[@]}"; echo
else
  "${cmd[@]}"
  echo "progress: $pimqat status $out"
fi
