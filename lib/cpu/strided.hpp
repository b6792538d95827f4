// The CPU's one iteration engine: walks an N-d index space over several strided operands,
// merging dimensions that are contiguous in all of them, and hands the innermost run to a
// typed loop. Broadcasting is stride 0; reductions are an output with stride 0.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/dispatch.hpp"
#include "core/stack_or_heap.hpp"
#include "core/storage.hpp"
#include "cpu/parallel.hpp"

namespace th::detail::cpu {

namespace strided {
// Up to this many (merged) dimensions the walk keeps its tables on the stack: an eager op
// on small tensors would otherwise spend more on allocating them than on its arithmetic.
constexpr std::size_t kInline = 16;

// Walks dims[0] in [lo, hi) and every inner dim of the nd dims, calling inner on each
// innermost line.
template <std::size_t N, class F>
void walk(const std::int64_t* dims, const std::array<std::int64_t, N>* st, std::size_t nd, std::array<char*, N> p,
          std::int64_t lo, std::int64_t hi, F& inner) {
  for (std::size_t k = 0; k < N; ++k) p[k] += st[0][k] * lo;
  if (nd == 1) {
    inner(p.data(), st[0].data(), hi - lo);
    return;
  }
  const std::int64_t n = dims[nd - 1];
  StackOrHeap<std::int64_t, kInline> odometer(nd);
  std::int64_t* idx = odometer.data();
  std::fill(idx, idx + nd, 0);
  idx[0] = lo;
  for (;;) {
    inner(p.data(), st[nd - 1].data(), n);
    // odometer over the outer dims
    std::size_t d = nd - 1;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++idx[d] < (d == 0 ? hi : dims[d])) {
        for (std::size_t k = 0; k < N; ++k) p[k] += st[d][k];
        break;
      }
      if (d == 0) return;
      for (std::size_t k = 0; k < N; ++k) p[k] -= st[d][k] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace strided

/// inner(char* ptrs[N], const int64_t byte_strides[N], int64_t n) runs one innermost line.
/// With cost_per_item > 0 (elementwise kernels: operand 0 is an output written once per
/// index) large walks are split over the kernel threads along the outermost dimension.
template <std::size_t N, class F>
void for_each_strided(const Shape& shape, const std::array<const Storage*, N>& ops, F&& inner,
                      std::int64_t cost_per_item = 0) {
  for (auto d : shape)
    if (d == 0) return;
  // Collect non-trivial dims with byte strides, then merge contiguous neighbours (on the
  // stack up to kInline dims).
  using Strides = std::array<std::int64_t, N>;
  StackOrHeap<std::int64_t, strided::kInline> dims_of(shape.size());
  StackOrHeap<Strides, strided::kInline> strides_of(shape.size());
  std::int64_t* dims = dims_of.data();
  Strides* st = strides_of.data();
  std::size_t nd = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    Strides s{};
    for (std::size_t k = 0; k < N; ++k) s[k] = ops[k]->strides[i] * std::int64_t(dtype_size(ops[k]->dtype));
    if (nd > 0) {
      bool merge = true;
      for (std::size_t k = 0; k < N; ++k) merge = merge && st[nd - 1][k] == s[k] * shape[i];
      if (merge) {
        dims[nd - 1] *= shape[i];
        st[nd - 1] = s;
        continue;
      }
    }
    dims[nd] = shape[i];
    st[nd] = s;
    ++nd;
  }
  std::array<char*, N> base{};
  for (std::size_t k = 0; k < N; ++k) base[k] = ops[k]->bytes();
  if (nd == 0) {
    std::array<std::int64_t, N> zero{};
    inner(base.data(), zero.data(), std::int64_t(1));
    return;
  }
  std::int64_t total = 1;
  for (std::size_t i = 0; i < nd; ++i) total *= dims[i];
  if (cost_per_item > 0 && st[0][0] != 0 && total * cost_per_item >= kParallelGrain) {
    const std::int64_t per_outer = total / dims[0];
    parallel_for(dims[0], per_outer * cost_per_item, [&](std::int64_t lo, std::int64_t hi) {
      if (lo < hi) strided::walk<N>(dims, st, nd, base, lo, hi, inner);
    });
    return;
  }
  strided::walk<N>(dims, st, nd, base, 0, dims[0], inner);
}

}  // namespace th::detail::cpu
