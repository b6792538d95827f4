#!/usr/bin/env bash
# th::dist::allreduce's latency and bandwidth on this machine's loopback, 2 ranks (and 3,
# oversubscribed on 2 cores). Build first: cmake --build build. docs/distributed.md has the
# numbers and the cost model they feed.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 THETA_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for n in 2 3; do
  mpirun --allow-run-as-root --oversubscribe --mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none \
    -np "$n" build/bench/bench_dist
done
