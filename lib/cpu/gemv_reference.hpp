// What the small matrix-vector kernels (cpu/gemv_small.cpp) compute, one result at a time:
// the same products, fused multiply-adds and sums in the same order, so the same bits
// (tests/test_native.cpp compares them). The native tier's whole programs
// (freeze/whole.cpp) compile this text, embedded in the library, with the sizes fixed: the
// compiler vectorises it its own way without changing the arithmetic (-ffp-contract=off,
// no -ffast-math). Self-contained: it includes nothing of theta's.
#pragma once
#include <cmath>
#include <cstdint>

namespace th::detail::cpu::gemv_reference {

/// y[i] = a[i, :] . b (a: rows x cols at row stride lda): four running sums, of the
/// columns j % 4 == 0, 1, 2, 3 below the last multiple of 4, added pairwise, then the last
/// cols % 4 products one by one (rows_kernel's four lanes and tail).
template <class T, std::int64_t kRows, std::int64_t kCols, std::int64_t kLda>
inline void rows(const T* __restrict a, const T* __restrict b, T* __restrict y) {
  constexpr std::int64_t k4 = kCols - kCols % 4;
  for (std::int64_t i = 0; i < kRows; ++i) {
    const T* r = a + i * kLda;
    T c0 = T(0), c1 = T(0), c2 = T(0), c3 = T(0);
    for (std::int64_t j = 0; j < k4; j += 4) {
      c0 = std::fma(r[j], b[j], c0);
      c1 = std::fma(r[j + 1], b[j + 1], c1);
      c2 = std::fma(r[j + 2], b[j + 2], c2);
      c3 = std::fma(r[j + 3], b[j + 3], c3);
    }
    T s = (c0 + c1) + (c2 + c3);
    for (std::int64_t j = k4; j < kCols; ++j) s = std::fma(r[j], b[j], s);
    y[i] = s;
  }
}

/// y[j] = sum over i of b[i] a[i, j] (a: rows x cols at row stride lda): four running
/// sums, of the rows i % 4 == 0, 1, 2, 3 below the last multiple of 4 (the last rows % 4
/// into the first), added pairwise (cols_kernel's four accumulators).
template <class T, std::int64_t kRows, std::int64_t kCols, std::int64_t kLda>
inline void cols(const T* __restrict a, const T* __restrict b, T* __restrict y) {
  constexpr std::int64_t k4 = kRows - kRows % 4;
  for (std::int64_t j = 0; j < kCols; ++j) {
    T c0 = T(0), c1 = T(0), c2 = T(0), c3 = T(0);
    for (std::int64_t i = 0; i < k4; i += 4) {
      c0 = std::fma(b[i], a[i * kLda + j], c0);
      c1 = std::fma(b[i + 1], a[(i + 1) * kLda + j], c1);
      c2 = std::fma(b[i + 2], a[(i + 2) * kLda + j], c2);
      c3 = std::fma(b[i + 3], a[(i + 3) * kLda + j], c3);
    }
    for (std::int64_t i = k4; i < kRows; ++i) c0 = std::fma(b[i], a[i * kLda + j], c0);
    y[j] = (c0 + c1) + (c2 + c3);
  }
}

}  // namespace th::detail::cpu::gemv_reference
