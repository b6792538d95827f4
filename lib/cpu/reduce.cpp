// Reductions: the output is a stride-0 view of the input's shape, so one strided walk in
// the input's memory order accumulates every reduction (sum, prod, max, min).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/stack_or_heap.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/pairwise.hpp"
#include "cpu/parallel.hpp"
#include "cpu/strided.hpp"
#include "theta/error.hpp"

namespace th::detail::cpu {

namespace {

// x's n >= 1 contiguous values reduced in theta's order (cpu/pairwise.hpp): large arrays
// block by block on the kernel threads, each block's result at its index.
template <class T, class F>
T whole(const T* x, std::int64_t n, F f) {
  if (n <= kPairwiseBlock) return pairwise(x, n, f);
  const std::int64_t blocks = (n + kPairwiseBlock - 1) / kPairwiseBlock;
  StackOrHeap<T, 64> partials(static_cast<std::size_t>(blocks));
  struct Job {
    const T* x;
    std::int64_t n;
    T* partials;
    F f;
  } job{x, n, partials.data(), f};
  parallel_for(blocks, kPairwiseBlock, [&job](std::int64_t lo, std::int64_t hi) {  // one capture: no heap
    for (std::int64_t b = lo; b < hi; ++b)
      job.partials[b] = pairwise(job.x + b * kPairwiseBlock, std::min(kPairwiseBlock, job.n - b * kPairwiseBlock), job.f);
  });
  return combine_blocks(partials.data(), std::size_t(blocks), f);
}

// x contiguous as (N, C, P) and y reducing the N and P axes into C contiguous elements (a
// per-channel sum over the batch and the image: a conv bias's gradient, batch norm's
// statistics): x's axes reduced, kept, reduced, in that order. Gives N, C, P.
bool outer_inner(const Storage& x, const Storage& y, std::int64_t& N, std::int64_t& C, std::int64_t& P) {
  if (!x.contiguous()) return false;
  const std::size_t nd = x.shape.size();
  std::size_t a = 0;
  while (a < nd && y.strides[a] == 0) ++a;
  std::size_t b = a;
  while (b < nd && y.strides[b] != 0) ++b;
  for (std::size_t d = b; d < nd; ++d)
    if (y.strides[d] != 0) return false;
  if (a == b) return false;
  N = C = P = 1;
  std::int64_t want = 1;
  for (std::size_t d = b; d-- > a;) {  // the kept axes contiguous in y
    if (x.shape[d] != 1 && y.strides[d] != want) return false;
    want *= x.shape[d];
  }
  for (std::size_t d = 0; d < a; ++d) N *= x.shape[d];
  for (std::size_t d = a; d < b; ++d) C *= x.shape[d];
  for (std::size_t d = b; d < nd; ++d) P *= x.shape[d];
  return P >= 16;  // (short inner lines: the strided walk below is as good)
}

// x's n >= 1 contiguous values in theta's whole-reduction order, on this thread.
template <class T, class F>
T whole_serial(const T* x, std::int64_t n, F f) {
  if (n <= kPairwiseBlock) return pairwise(x, n, f);
  const std::int64_t blocks = (n + kPairwiseBlock - 1) / kPairwiseBlock;
  StackOrHeap<T, 64> partials(static_cast<std::size_t>(blocks));
  for (std::int64_t b = 0; b < blocks; ++b)
    partials.data()[b] = pairwise(x + b * kPairwiseBlock, std::min(kPairwiseBlock, n - b * kPairwiseBlock), f);
  return combine_blocks(partials.data(), std::size_t(blocks), f);
}

template <class T, class F>
void reduce_loop(const Storage& x, const Storage& y, F f) {
  // The whole of a contiguous x into one element (a loss): in theta's order, then into y's
  // start value (0 or 1, or the first element for max/min).
  if (x.contiguous() && std::all_of(y.strides.begin(), y.strides.end(), [](std::int64_t s) { return s == 0; })) {
    if (x.size() > 0) *y.data<T>() = f(*y.data<T>(), whole(x.data<T>(), x.size(), f));
    return;
  }
  // Per-channel reductions: each output element accumulates its N lines of P values, each
  // line in theta's pairwise order (independent chains: vectorised), the lines in batch
  // order; the channels spread over the kernel threads. The same bits on any number of
  // threads.
  if (std::int64_t N, C, P; outer_inner(x, y, N, C, P)) {
    struct Job {
      const T* x;
      T* y;
      std::int64_t N, C, P;
      F f;
    } job{x.data<T>(), y.data<T>(), N, C, P, f};
    parallel_for(C, N * P, [&job](std::int64_t lo, std::int64_t hi) {  // one capture: no heap
      for (std::int64_t c = lo; c < hi; ++c) {
        T acc = job.y[c];
        for (std::int64_t n = 0; n < job.N; ++n) acc = job.f(acc, whole_serial(job.x + (n * job.C + c) * job.P, job.P, job.f));
        job.y[c] = acc;
      }
    });
    return;
  }
  for_each_strided<2>(x.shape, {&y, &x}, [&f](char** p, const std::int64_t* s, std::int64_t n) {
    if (s[0] == 0) {  // the line reduces into one output element
      T acc = *reinterpret_cast<T*>(p[0]);
      if (s[1] == sizeof(T)) {
        const T* xp = reinterpret_cast<const T*>(p[1]);
        for (std::int64_t i = 0; i < n; ++i) acc = f(acc, xp[i]);
      } else {
        for (std::int64_t i = 0; i < n; ++i) acc = f(acc, *reinterpret_cast<const T*>(p[1] + i * s[1]));
      }
      *reinterpret_cast<T*>(p[0]) = acc;
    } else if (s[0] == sizeof(T) && s[1] == sizeof(T)) {  // a row into a row (a sum over the batch): vectorised
      T* y = reinterpret_cast<T*>(p[0]);
      const T* x = reinterpret_cast<const T*>(p[1]);
      for (std::int64_t i = 0; i < n; ++i) y[i] = f(y[i], x[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i) {
        T* yp = reinterpret_cast<T*>(p[0] + i * s[0]);
        *yp = f(*yp, *reinterpret_cast<const T*>(p[1] + i * s[1]));
      }
    }
  });
}
}  // namespace

void CpuBackend::reduce(ReduceKind k, const Storage& x, const Storage& y) {
  THETA_DISPATCH_NUMERIC(x.dtype, T, {
    switch (k) {
      case ReduceKind::sum: reduce_loop<T>(x, y, [](T a, T b) { return T(a + b); }); break;
      case ReduceKind::prod: reduce_loop<T>(x, y, [](T a, T b) { return T(a * b); }); break;
      case ReduceKind::max: reduce_loop<T>(x, y, [](T a, T b) { return (a >= b || a != a) ? a : b; }); break;
      case ReduceKind::min: reduce_loop<T>(x, y, [](T a, T b) { return (a <= b || a != a) ? a : b; }); break;
    }
  })
}

void CpuBackend::arg_reduce(bool is_max, const Storage& x, const Storage& y) {
  const std::int64_t outer = x.shape[0], n = x.shape[1];
  THETA_DISPATCH_NUMERIC(x.dtype, T, {
    std::int64_t* out = y.data<std::int64_t>();
    const T* base = x.data<T>();
    for (std::int64_t o = 0; o < outer; ++o) {
      const T* row = base + o * x.strides[0];
      std::int64_t best = 0;
      T bv = row[0];
      for (std::int64_t i = 1; i < n && bv == bv; ++i) {  // the first NaN wins, as numpy
        T v = row[i * x.strides[1]];
        if (v != v || (is_max ? v > bv : v < bv)) {
          bv = v;
          best = i;
        }
      }
      out[o] = best;
    }
  })
}

}  // namespace th::detail::cpu
