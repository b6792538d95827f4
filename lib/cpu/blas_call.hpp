// Direct BLAS calls of the CPU kernels that work in blocks of their own (convolution's
// unfolded patches, attention's tiles): a row-major GEMM on raw pointers on the calling
// thread (float32 on oneDNN's sgemm where cpu/dnnl.hpp's rule takes it), and OpenBLAS held
// to one thread while a kernel runs its blocks on theta's threads.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <mutex>
#include <type_traits>

#include "cpu/dnnl.hpp"

namespace th::detail::cpu {

/// C := alpha op(A) op(B) + beta C, row-major (op: transposed when ta / tb).
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda, const T* B,
          std::int64_t ldb, T beta, T* C, std::int64_t ldc, T alpha = T(1)) {
  const auto at = ta ? CblasTrans : CblasNoTrans, bt = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, double>)
    cblas_dgemm(CblasRowMajor, at, bt, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
  else if (dnnl_gemm_takes(M, N, K))
    dnnl_sgemm_here(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_sgemm(CblasRowMajor, at, bt, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

/// OpenBLAS on one thread while it lives (kernels that run their own blocks on theta's
/// threads). NOTE: the setting is global; a BLAS call that another user thread makes
/// meanwhile runs single-threaded too (slower, not wrong). Regions of several user threads
/// nest: the first in saves the setting, the last out restores it.
struct SerialBlas {
  struct State {
    std::mutex m;
    int depth = 0, saved = 1;
  };
  static State& state() {
    static State s;
    return s;
  }
  SerialBlas() {
    State& s = state();
    const std::lock_guard<std::mutex> lock(s.m);
    if (s.depth++ == 0) {
      s.saved = openblas_get_num_threads();
      if (s.saved != 1) openblas_set_num_threads(1);
    }
  }
  ~SerialBlas() {
    State& s = state();
    const std::lock_guard<std::mutex> lock(s.m);
    if (--s.depth == 0 && s.saved != 1) openblas_set_num_threads(s.saved);
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

}  // namespace th::detail::cpu
