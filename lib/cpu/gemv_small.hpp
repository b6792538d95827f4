// Small matrix-vector products without BLAS's per-call overhead (cpu/gemv_small.cpp);
// cpu/blas.cpp tries them before OpenBLAS's GEMV.
#pragma once
#include <cstdint>

namespace th::detail::cpu {

/// Matrices up to this many elements (64 KiB of float64) are small.
constexpr std::int64_t kSmallElements = 8192;

/// gemv_small's arguments (after the pointers' types): y = a b, or a^T b with trans.
struct SmallGemv {
  bool trans = false;
  std::int64_t rows = 0, cols = 0, lda = 0;
};

/// Whether gemv_small runs for a rows x cols matrix here (small enough, and the CPU has
/// AVX2 and FMA).
bool gemv_small_applies(std::int64_t rows, std::int64_t cols);

/// With a (rows x cols, unit column stride, row stride lda) and b contiguous: y = a b
/// (y of rows) or, with trans, y = a^T b (y of cols). False, computing nothing, when the
/// matrix is not small or the CPU lacks AVX2 and FMA (the caller then uses BLAS).
template <class T>
bool gemv_small(bool trans, std::int64_t rows, std::int64_t cols, const T* a, std::int64_t lda, const T* b, T* y);

}  // namespace th::detail::cpu
