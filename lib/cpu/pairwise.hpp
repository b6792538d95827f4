// theta's order for reducing a whole contiguous array to one value (sum, prod, max, min):
// blocks of kPairwiseBlock elements, each reduced in numpy's pairwise order, and the
// blocks' results reduced the same way. Fixed by the array's length alone, so the eager
// reduction (cpu/reduce.cpp) and a reduction folded into a fused chain (cpu/fused.cpp,
// which produces the values block by block) give the same bits, with any number of
// threads.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace th::detail::cpu {

constexpr std::int64_t kPairwiseBlock = 1024;

/// f over n >= 1 contiguous values in numpy's pairwise order: eight running results side
/// by side over blocks of up to 128, combined in a tree, halves above that. Independent
/// chains instead of one: faster (no wait on each add) and, for sums, rounding error that
/// grows with log n instead of n. Written without recursion so that it inlines into its
/// caller: the fused kernels' CPU-specific builds then read the values just computed with
/// the vector width that wrote them (a narrower load of a wider store waits for it).
template <class T, class F>
__attribute__((always_inline)) inline T pairwise_leaf(const T* x, std::int64_t n, F f) {
  if (n < 8) {
    T r = x[0];
    for (std::int64_t i = 1; i < n; ++i) r = f(r, x[i]);
    return r;
  }
  T r[8];
  for (int j = 0; j < 8; ++j) r[j] = x[j];
  std::int64_t i = 8;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) r[j] = f(r[j], x[i + j]);
  T res = f(f(f(r[0], r[1]), f(r[2], r[3])), f(f(r[4], r[5]), f(r[6], r[7])));
  for (; i < n; ++i) res = f(res, x[i]);
  return res;
}

template <class T, class F>
__attribute__((always_inline)) inline T pairwise(const T* x, std::int64_t n, F f) {
  if (n <= 128) return pairwise_leaf(x, n, f);
  // the tree walked with an explicit stack: each range splits at half its length rounded
  // down to a multiple of 8 (left first), down to ranges of at most 128
  constexpr int kDepth = 64;
  const T* at[kDepth];
  std::int64_t len[kDepth];
  int stage[kDepth];  // 0: left half next, 1: right half next, 2: both done
  T left[kDepth];
  int top = 0;
  at[0] = x, len[0] = n, stage[0] = 0;
  T val{};
  for (;;) {
    const std::int64_t m = len[top], half = m / 2 / 8 * 8;
    if (m <= 128) {
      val = pairwise_leaf(at[top], m, f);
    } else if (stage[top] == 0) {
      stage[top] = 1;
      at[top + 1] = at[top], len[top + 1] = half, stage[top + 1] = 0;
      ++top;
      continue;
    } else if (stage[top] == 1) {
      stage[top] = 2;
      left[top] = val;
      at[top + 1] = at[top] + half, len[top + 1] = m - half, stage[top + 1] = 0;
      ++top;
      continue;
    } else {
      val = f(left[top], val);
    }
    if (top == 0) return val;
    --top;  // val goes to the range above
  }
}

/// The blocks' results of n > kPairwiseBlock values combined: the last step of theta's order
/// (`partials` holds one result per block, in order; it is overwritten).
template <class T, class F>
T combine_blocks(T* partials, std::size_t n, F f) {
  while (n > 1) {
    const std::size_t m = (n + kPairwiseBlock - 1) / kPairwiseBlock;
    for (std::size_t b = 0; b < m; ++b) {
      const std::size_t lo = b * kPairwiseBlock;
      partials[b] = pairwise(partials + lo, std::int64_t(std::min<std::size_t>(kPairwiseBlock, n - lo)), f);
    }
    n = m;
  }
  return partials[0];
}

}  // namespace th::detail::cpu
