#!/usr/bin/env bash
# The GPU benchmark: the teacher's training step (batch 64) and a teacher epoch at
# DEAP size (32 subjects × 40 trials × 15 windows = 19,200 windows) in dfdx on CUDA
# (this repository built with `--features cuda`) and in PyTorch CUDA
# (stages/benches/torch_step.py, same network), then dfdx's time / PyTorch's.
# Goal: ≤ 1.5.
#
#   stages/benches/gpu.sh            # from anywhere; WINDOWS=… STEPS=… to change sizes
#
# Needs: an NVIDIA GPU and driver (nvidia-smi), nvcc and the CUDA libraries cudarc
# links (libcuda, libnvrtc, libcublas, libcublasLt, libcurand) — a CUDA 12 or 13
# toolkit, or CUDA_ROOT pointing at one — and python3 with a CUDA build of torch.
# Everything it prints is also written to target/gpu-bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
WINDOWS=${WINDOWS:-19200}
STEPS=${STEPS:-20}
OUT=target/gpu-bench
mkdir -p "$OUT"

command -v nvidia-smi >/dev/null || { echo "gpu.sh: no nvidia-smi: this machine has no NVIDIA driver" >&2; exit 2; }
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv | tee "$OUT/gpu.txt"
if ! command -v nvcc >/dev/null; then
  for root in "${CUDA_ROOT:-}" /usr/local/cuda target/cuda-toolkit/nvidia/cu13; do
    if [ -n "$root" ] && [ -x "$root/bin/nvcc" ]; then
      export CUDA_ROOT="$(cd "$root" && pwd)" PATH="$root/bin:$PATH"
      break
    fi
  done
fi
command -v nvcc >/dev/null || { echo "gpu.sh: no nvcc (install a CUDA toolkit or set CUDA_ROOT)" >&2; exit 2; }
if [ -n "${CUDA_ROOT:-}" ]; then
  export LIBRARY_PATH="$CUDA_ROOT/lib64:$CUDA_ROOT/lib:${LIBRARY_PATH:-}"
  export LD_LIBRARY_PATH="$CUDA_ROOT/lib64:$CUDA_ROOT/lib:${LD_LIBRARY_PATH:-}"
fi

cargo build --workspace --benches --features cuda
BIN=$(ls -t target/debug/deps/train_step-* | grep -v '\.d$' | head -n 1)
BENCH_DEVICE=cuda BENCH_NETS=teacher BENCH_WHAT=train BENCH_STEPS=$STEPS \
  BENCH_EPOCH_WINDOWS=$WINDOWS "$BIN" | tee "$OUT/dfdx.txt"
python3 stages/benches/torch_step.py --device cuda --steps "$STEPS" \
  --epoch-windows "$WINDOWS" | tee "$OUT/torch.txt"

step() { sed -n 's/^teacher train step: median \([0-9.]*\) ms.*/\1/p' "$1"; }
epoch() { sed -n 's/^teacher epoch .*: \([0-9.]*\) s .*/\1/p' "$1"; }
awk -v a="$(step "$OUT/dfdx.txt")" -v b="$(step "$OUT/torch.txt")" \
    -v c="$(epoch "$OUT/dfdx.txt")" -v d="$(epoch "$OUT/torch.txt")" 'BEGIN {
  printf "teacher train step (batch 64): dfdx %.2f ms, PyTorch %.2f ms, ratio %.2f\n", a, b, a / b
  printf "teacher epoch (%s windows): dfdx %.2f s, PyTorch %.2f s, ratio %.2f\n", "'"$WINDOWS"'", c, d, c / d
}' | tee "$OUT/ratio.txt"
