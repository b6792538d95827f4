// The CPU kernels' thread pool: parallel_for splits [0, n) into one contiguous chunk per
// thread. Workers sleep on a condition variable between regions (passive: they never spin
// against OpenBLAS's threads). Threads: THETA_NUM_THREADS, else OMP_NUM_THREADS, else the
// machine's cores. A region started while another runs (another user thread) runs serially.
#pragma once
#include <cstdint>
#include <functional>

namespace th::detail::cpu {

/// Elements below which a kernel stays on one thread (thread wake-up costs ~10 us).
constexpr std::int64_t kParallelGrain = 1 << 16;

/// Threads the kernels use (1 = serial).
int num_threads();

/// Runs f(lo, hi) over a partition of [0, n), on up to num_threads() threads; serial when
/// n * cost_per_item is below kParallelGrain.
void parallel_for(std::int64_t n, std::int64_t cost_per_item, const std::function<void(std::int64_t, std::int64_t)>& f);

}  // namespace th::detail::cpu
