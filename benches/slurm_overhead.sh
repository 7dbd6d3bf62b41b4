#!/usr/bin/env bash
# pipe's own overhead under Slurm: N trivial instances (`run:` stages writing one
# line) through `pipe run --executor slurm`, against the same N trivial jobs submitted
# straight to Slurm (`sbatch --wrap`, waiting until none is left in squeue) — Slurm's
# own turnaround. Same concurrency (-j N / N jobs at once), fresh cache each round.
# Needs a running Slurm (eval "$(.ci/slurm/start)") and a built pipe.
#   benches/slurm_overhead.sh [N=100] [ROUNDS=3]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
rounds=${2:-3}
pipe=${PIPE:-$repo/target/debug/pipe}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cache" "$work/raw"
cat > "$work/trivial.yaml" <<YAML
name: trivial
stages:
  t:
    run: echo \${matrix.i} > \$PIPE_OUT/x
    matrix: { i: "range($n)" }
    outs: [x]
    resources: { cpus: 1, mem: 100M }
YAML
now() { date +%s.%N; }
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/cache" && mkdir "$work/cache"
  t0=$(now)
  "$pipe" run "$work/trivial.yaml" --executor slurm -j "$n" -q --cache-dir "$work/cache" --report-dir "$work/report" >/dev/null
  t1=$(now)
  rm -rf "$work/raw" && mkdir "$work/raw"
  t2=$(now)
  ids=()
  for i in $(seq 0 $((n - 1))); do
    ids+=("$(sbatch --parsable --cpus-per-task=1 --mem=100M -o /dev/null -e /dev/null --wrap "echo $i > $work/raw/$i")")
  done
  joined=$(IFS=,; echo "${ids[*]}")
  while [ -n "$(squeue -h -t PD,R,CG,CF -j "$joined" -o %i 2>/dev/null)" ]; do sleep 0.2; done
  t3=$(now)
  awk -v r="$r" -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
    p = t1 - t0; s = t3 - t2
    printf "round %d: %d instances: pipe --executor slurm %.2f s, sbatch alone %.2f s, pipe overhead %.1f ms per instance (%.1f %% of Slurm turnaround)\n",
      r, n, p, s, 1000 * (p - s) / n, 100 * (p - s) / s }'
done
