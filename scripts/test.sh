#!/usr/bin/env bash
# The whole test suite (README's test command; .ci/run calls exactly this):
#   1. Release build, every ctest program (unit tests, property-based graphs, thread tests,
#      fuzz-corpus replays, samples);
#   2. the same suite built by clang with AddressSanitizer + UndefinedBehaviorSanitizer
#      (LeakSanitizer included: the samples run under it) and libFuzzer's coverage hooks;
#   3. the thread tests under ThreadSanitizer (gcc);
#   4. bounded libFuzzer runs, from stage 2's build, of the .npy/.npz/idx readers, of
#      function-call argument checking, of loading saved functions and of the ONNX importer,
#      starting from tests/fuzz/corpus.
# Stage 2 builds with clang (stage 1 with gcc, so both compilers see every file) and with
# the fuzzers' coverage instrumentation, so that stage 4 needs no library build of its own.
# THETA_QUICK=1 stops after stage 1. THETA_FUZZ_SECONDS (default 20) bounds each fuzzer;
# THETA_PROPERTY_GRAPHS / THETA_PROPERTY_SEED override the property-test budget and seed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs="$(nproc)"
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE BOOST_TEST_COLOR_OUTPUT=no
stage() { echo; echo "== $* ($(date +%T))"; }
# Sanitizer and fuzz builds: -O1 with line tables only (compiles in half the time of -O2 -g;
# stack traces keep their files and lines).
san_type=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
          "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

stage "1/4 Release build and suite"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
(cd build && THETA_PROPERTY_GRAPHS="${THETA_PROPERTY_GRAPHS:-100000}" ctest --output-on-failure -j"$jobs")
[ "${THETA_QUICK:-0}" = 1 ] && exit 0

stage "2/4 AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), clang: build and suite"
CC=clang CXX=clang++ cmake -S . -B build-asan "${san_type[@]}" -DTHETA_SANITIZE=address,undefined,fuzzer-no-link \
  -DTHETA_FUZZ=ON -DTHETA_CUDA=OFF -DTHETA_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs"
# THETA_CPU_CACHE_MB=0: no block reuse, so ASan sees every use after free. The *_native reruns
# (stage 1's: the checker and property graphs through compiled chains) are left out here:
# the compiled code is not instrumented; test_native runs the native blocks and whole
# programs' calls under ASan. The samples run shorter here (samples/CMakeLists.txt). (The
# fuzz corpus replays of stage 1 are stage 4's fuzzers here: each runs its corpus first.)
(cd build-asan && THETA_CPU_CACHE_MB=0 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  THETA_PROPERTY_GRAPHS="${THETA_PROPERTY_GRAPHS:-10000}" THETA_PROPERTY_SEED="${THETA_PROPERTY_SEED:-1000001}" \
  ctest --output-on-failure -j"$jobs" -E '^test_(grad_ops|property)_native$')

stage "3/4 ThreadSanitizer: thread tests"
cmake -S . -B build-tsan "${san_type[@]}" -DTHETA_SANITIZE=thread -DTHETA_CUDA=OFF \
  -DTHETA_BUILD_SAMPLES=OFF -DTHETA_BUILD_BENCH=OFF
cmake --build build-tsan -j"$jobs" --target test_threads
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R '^test_threads$')

stage "4/4 libFuzzer: bounded runs from tests/fuzz/corpus (stage 2's build)"
for f in npy npz call idx function onnx; do
  work="build-asan/corpus-$f"  # the run's own copy: the checked-in corpus stays as it is
  rm -rf "$work" && mkdir -p "$work" && cp tests/fuzz/corpus/"$f"/* "$work"/
  rc=0
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "build-asan/tests/fuzz/fuzz_$f" "$work" \
    -max_total_time="${THETA_FUZZ_SECONDS:-20}" -max_len="$([ $f = function ] || [ $f = onnx ] && echo 16384 || echo 4096)" \
    -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix=build-asan/ -print_final_stats=1 > "build-asan/fuzz_$f.log" 2>&1 || rc=$?
  grep -E "^stat::number_of_executed_runs|^Done" "build-asan/fuzz_$f.log" | sed "s/^/fuzz_$f: /" || true
  if [ "$rc" -ne 0 ]; then tail -50 "build-asan/fuzz_$f.log"; echo "fuzz_$f failed; crashing input in build-asan/"; exit 1; fi
done
stage "all stages passed"
