#!/usr/bin/env bash
# Runs every benchmark in one run, peers interleaved per workload, and prints the ratio table.
#   bash bench/run.sh [W1 W2 W3 W4 W5 F1 W6 W7 W7L W7B W8 W9 W10 S1 A1_512 A1_2048 A1_4096 O1 O2]   (build first: cmake --build build; THETA_BENCH_ROUNDS=3 for rounds)
# Threads, the same for everyone: THETA_BENCH_THREADS (default: all cores) for OpenBLAS,
# OpenMP, torch.set_num_threads; OMP_WAIT_POLICY=PASSIVE; every process is pinned to
# cores 0..N-1 with taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THETA_BENCH_THREADS:-$(nproc)}"
rounds="${THETA_BENCH_ROUNDS:-1}"
# theta's native tier compiles each fused chain on its first call (in the warm-up), so the
# timed calls run compiled code; THETA_FLAGS=native=off measures the interpreter.
export THETA_FLAGS="${THETA_FLAGS:-native=sync}"
export THETA_BENCH_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" \
  MKL_NUM_THREADS="$threads" OMP_WAIT_POLICY=PASSIVE
pin=(taskset -c "0-$((threads - 1))")
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(W1 W2 W3 W4 W5 F1 W6 W7 W7L W7B W8 W9 W10 S1 A1_512 A1_2048 A1_4096 O1 O2)
log="$(mktemp)"
for ((r = 1; r <= rounds; ++r)); do
  for w in "${workloads[@]}"; do
    "${pin[@]}" build/bench/bench_theta "$w"
    [ "$w" = F1 ] || [ "$w" = S1 ] && continue  # theta only (S1 measures its peer itself)
    case "$w" in  # the workloads with one peer
      W6 | W7 | W7L | W7B | W8 | W10 | A1_* | O1 | O2) [ -x build/bench/bench_libtorch ] && "${pin[@]}" build/bench/bench_libtorch "$w"; continue ;;
      W9) "${pin[@]}" /usr/bin/python3 bench/peers.py W9; continue ;;
    esac
    "${pin[@]}" build/bench/bench_baseline "$w"
    if [ -x build/bench/bench_libtorch ]; then "${pin[@]}" build/bench/bench_libtorch "$w"; fi
    "${pin[@]}" /usr/bin/python3 bench/peers.py "$w"
  done
done | tee "$log"
/usr/bin/python3 bench/report.py < "$log"
