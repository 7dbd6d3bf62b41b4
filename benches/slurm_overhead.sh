#!/usr/bin/env bash
# pipe's own overhead under Slurm: N trivial instances (`run:` stages writing one
# line) through `pipe run --executor slurm -j N` with a fresh cache, against the same
# N trivial jobs submitted straight to Slurm (`sbatch --wrap`, then waiting until
# none is left in squeue) — Slurm's own turnaround for the same work.
# Needs a running Slurm (eval "$(.ci/slurm/start)") and a built pipe ($PIPE).
#   benches/slurm_overhead.sh pipe [N=100]    # one round through pipe
#   benches/slurm_overhead.sh raw  [N=100]    # one round of plain sbatch
# Paired, alternating, medians (the README's numbers):
#   farm-bench -n 7 --timeout 900 --vs 'benches/slurm_overhead.sh raw 100' -- benches/slurm_overhead.sh pipe 100
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?pipe or raw}
n=${2:-100}
pipe=${PIPE:-$repo/target/debug/pipe}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case $mode in
  pipe)
    mkdir -p "$work/cache"
    cat > "$work/trivial.yaml" <<YAML
name: trivial
stages:
  t:
    run: echo \${matrix.i} > \$PIPE_OUT/x
    matrix: { i: "range($n)" }
    outs: [x]
    resources: { cpus: 1, mem: 100M }
YAML
    "$pipe" run "$work/trivial.yaml" --executor slurm -j "$n" -q \
      --cache-dir "$work/cache" --report-dir "$work/report" >/dev/null
    ;;
  raw)
    ids=()
    for i in $(seq 0 $((n - 1))); do
      ids+=("$(sbatch --parsable --cpus-per-task=1 --mem=100M -o /dev/null -e /dev/null --wrap "echo $i > $work/$i")")
    done
    joined=$(IFS=,; echo "${ids[*]}")
    while [ -n "$(squeue -h -t PD,R,CG,CF -j "$joined" -o %i 2>/dev/null)" ]; do sleep 0.2; done
    [ "$(ls "$work" | wc -l)" -eq "$n" ] || { echo "not every job wrote its file" >&2; exit 1; }
    ;;
  *) echo "usage: $0 pipe|raw [N]" >&2; exit 2 ;;
esac
