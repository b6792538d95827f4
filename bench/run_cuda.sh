#!/usr/bin/env bash
# The GPU benchmarks in one run: theta (build/bench/bench_cuda) and PyTorch CUDA
# (bench/peers_cuda.py), interleaved per workload, then the ratio table of issue 5's targets.
#   bash bench/run_cuda.sh [W1 W2 W3]   (THETA_BENCH_ROUNDS=3 for rounds; PYTHON=python3 to
#   pick the interpreter that has torch with CUDA; build dir: THETA_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${THETA_BENCH_ROUNDS:-1}"
build="${THETA_BUILD_DIR:-build}"
python="${PYTHON:-python3}"
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(W1 W2 W3)
log="$(mktemp)"
for ((r = 1; r <= rounds; ++r)); do
  for w in "${workloads[@]}"; do
    "$build/bench/bench_cuda" "$w"
    "$python" bench/peers_cuda.py "$w"
  done
done | tee "$log"
"$python" bench/report.py --gpu < "$log"
