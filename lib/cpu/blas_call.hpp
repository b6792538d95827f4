// Direct BLAS calls of the CPU kernels that work in blocks of their own (convolution's
// unfolded patches, attention's tiles): a row-major GEMM on raw pointers on the calling
// thread (float32 on oneDNN's sgemm where cpu/dnnl.hpp's rule takes it; OpenBLAS runs on one
// thread always, cpu/parallel.hpp).
#pragma once
#include <cblas.h>

#include <cstdint>
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

}  // namespace th::detail::cpu
