// The CPU kernels' thread pool: parallel_for splits [0, n) into one contiguous chunk per
// thread. Between regions a worker polls for the next one for at most 100 us (a training
// step's kernels come microseconds apart; waking a sleeping thread costs 10-70 us), then
// sleeps on a condition variable: an idle pool burns nothing, and never spins against
// oneDNN's or OpenBLAS's threads (both run inside this pool's chunks, on one thread each). Threads: THETA_NUM_THREADS, else OMP_NUM_THREADS, else the
// machine's cores. A region started while another runs (another user thread) runs serially.
// The one thread budget: OpenBLAS is held to one thread while theta is loaded (its products
// run in chunks on this pool, cpu/blas.cpp), oneDNN's OpenMP to one thread in each of this
// pool's threads (cpu/dnnl.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>

namespace th::detail::cpu {

/// Work (elements times cost per element) below which a kernel stays on one thread: waking
/// a sleeping thread costs ~10 us (more on a VM), in which one core runs ~2^18 vectorised
/// element-operations.
constexpr std::int64_t kParallelGrain = 1 << 18;

/// Threads the kernels use (1 = serial).
int num_threads();

/// Runs f(lo, hi) over a partition of [0, n), on up to num_threads() threads; serial when
/// n * cost_per_item is below kParallelGrain.
void parallel_for(std::int64_t n, std::int64_t cost_per_item, const std::function<void(std::int64_t, std::int64_t)>& f);

/// Runs f(i0, i1) over [0, extent) cut into one chunk per kernel thread (fewer when short),
/// each `unit` long or a multiple of it (the last one ragged): the chunks depend on the extent
/// and the thread count only, so a caller's bits do not depend on whether the pool was free.
/// `cost`: the whole range's work, in parallel_for's units. (For kernels that call a
/// one-thread library routine per chunk: OpenBLAS's products and solves.)
template <class F>
void parallel_chunks(std::int64_t extent, std::int64_t unit, std::int64_t cost, const F& f) {
  const std::int64_t count = std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads(), extent / unit));
  const std::int64_t step = ((extent + count - 1) / count + unit - 1) / unit * unit;
  const auto part = [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t c = lo; c < hi; ++c) {
      const std::int64_t i0 = c * step, i1 = std::min(extent, i0 + step);
      if (i0 < i1) f(i0, i1);
    }
  };
  // (the closure holds one pointer: std::function keeps it without allocating)
  parallel_for(count, cost / count, [p = &part](std::int64_t lo, std::int64_t hi) { (*p)(lo, hi); });
}

}  // namespace th::detail::cpu
