#!/usr/bin/env bash
# The native tier's cost to short programs (issue 29): W3 (10^7 float32 chain, forward and
# forward + gradient) and W4's float32 GEMMs in successive fresh processes, starting from an
# empty compile cache under the default native=async, beside the interpreter alone
# (native=off, the floor) and the warm cache (every kernel compiled).
#   bash bench/run_cold.sh            (build first; THETA_BENCH_COLD_RUNS=3 cold processes)
# Each process is pinned as bench/run.sh pins it; the compilers it starts run at SCHED_IDLE
# and may go on after it ends: the next process adopts what they finished.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THETA_BENCH_THREADS:-$(nproc)}"
runs="${THETA_BENCH_COLD_RUNS:-3}"
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" OMP_WAIT_POLICY=PASSIVE
pin=(taskset -c "0-$((threads - 1))")
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
export THETA_CACHE_DIR="$cache"
log="$(mktemp)"
run() {  # label, THETA_FLAGS
  THETA_FLAGS="$2" "${pin[@]}" build/bench/bench_theta W3 W4 | sed -n "s/^RESULT \([^ ]*\) \([^ ]*\) /\1:\2 $1 /p" | tee -a "$log"
}
for i in 1 2 3; do run "off" "native=off"; done
for ((i = 1; i <= runs; ++i)); do run "async-cold-$i" "native=async"; done
# the warm cache: wait for what the cold runs left compiling, then every kernel compiled
while pgrep -f "theta-native.*$cache" > /dev/null; do sleep 1; done
run "warm" "native=sync"
for i in 1 2; do run "warm-async" "native=async"; done
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $threads threads"
/usr/bin/python3 - "$log" "$runs" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    w, label, us = line.split()
    rows[w][label].append(float(us) / 1000)
cols = ["off"] + ["async-cold-%d" % i for i in range(1, int(sys.argv[2]) + 1)] + ["warm", "warm-async"]
print("| workload (ms) | " + " | ".join(cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for w in sorted(rows):
    print("| %s | " % w + " | ".join("%.2f" % statistics.median(rows[w][c]) if rows[w][c] else "-" for c in cols) + " |")
PY
