// Matrix products on theta's threads: GEMM through OpenBLAS (held to one thread, cpu/parallel.hpp)
// or float32 through oneDNN (cpu/dnnl.hpp's rule), or GEMV when one side is a vector. Transposed operands are
// passed as flags (no copy); only layouts BLAS cannot express are copied.
#include <cblas.h>

#include <cstring>

#include "cpu/blas_call.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/dnnl.hpp"
#include "cpu/gemv_small.hpp"
#include "cpu/parallel.hpp"
#include "cpu/strided.hpp"
#include "theta/error.hpp"

namespace th::detail::cpu {

namespace {

struct MatLayout {
  bool ok = false;
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  std::int64_t ld = 0;
};

// How BLAS sees a rows x cols matrix with element strides (sr, sc), if it can.
MatLayout layout(std::int64_t rows, std::int64_t cols, std::int64_t sr, std::int64_t sc) {
  if ((sc == 1 || cols == 1) && (rows == 1 || sr >= std::max<std::int64_t>(cols, 1)))
    return {true, CblasNoTrans, rows == 1 ? std::max<std::int64_t>(cols, 1) : sr};
  if ((sr == 1 || rows == 1) && (cols == 1 || sc >= std::max<std::int64_t>(rows, 1)))
    return {true, CblasTrans, cols == 1 ? std::max<std::int64_t>(rows, 1) : sc};
  return {};
}

// A row-major copy of a rows x cols strided matrix, for layouts BLAS cannot take.
template <class T>
const T* pack(std::int64_t rows, std::int64_t cols, const T* src, std::int64_t sr, std::int64_t sc,
              std::vector<T>& buf, MatLayout& l) {
  buf.resize(std::size_t(rows * cols));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) buf[std::size_t(i * cols + j)] = src[i * sr + j * sc];
  l = {true, CblasNoTrans, std::max<std::int64_t>(cols, 1)};
  return buf.data();
}

// y(M) = op(A) b: A of M x K as `la` lays it out, b of K at stride incb (non-zero). Past the
// small kernels, OpenBLAS (held to one thread) on chunks of y of a multiple of 16 rows, one
// per kernel thread.
template <class T>
void gemv(std::int64_t M, std::int64_t K, const T* a, const MatLayout& la, const T* b, std::int64_t incb, T* y) {
  if (incb == 1 && (la.trans == CblasNoTrans ? gemv_small<T>(false, M, K, a, la.ld, b, y)
                                             : gemv_small<T>(true, K, M, a, la.ld, b, y)))
    return;
  const bool tr = la.trans != CblasNoTrans;
  // rows i0..i1 of A (columns of the stored K x M matrix when transposed); memory-bound:
  // one element-operation per element of A
  parallel_chunks(M, 16, M * K, [&](std::int64_t i0, std::int64_t i1) {
    const int m = int(i1 - i0), k = int(K), ld = int(la.ld), inc = int(incb);
    const T* ap = tr ? a + i0 : a + i0 * la.ld;
    const auto op = tr ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, double>) cblas_dgemv(CblasRowMajor, op, tr ? k : m, tr ? m : k, 1.0, ap, ld, b, inc, 0.0, y + i0, 1);
    else cblas_sgemv(CblasRowMajor, op, tr ? k : m, tr ? m : k, 1.0f, ap, ld, b, inc, 0.0f, y + i0, 1);
  });
}

// y (M x N, row-major) = op(A) op(B) on theta's pool: y's rows (its columns, when it has
// more) cut into one chunk of a multiple of 16 per kernel thread, each a GEMM on its thread
// (blas_call.hpp's gemm: OpenBLAS, held to one thread, in float64; oneDNN in float32 where
// its rule takes the product). The chunks depend on the shape and the thread count only, so
// the bits are the same whether the pool was free or the chunks ran one after another.
template <class T>
void gemm_chunks(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* a, std::int64_t lda,
                 const T* b, std::int64_t ldb, T* y) {
  const bool by_rows = M >= N;
  // cost in vectorised element-operations (~4 multiply-adds each)
  parallel_chunks(by_rows ? M : N, 16, M * N * K / 4, [&](std::int64_t i0, std::int64_t i1) {
    if (by_rows) gemm<T>(ta, tb, i1 - i0, N, K, a + (ta ? i0 : i0 * lda), lda, b, ldb, T(0), y + i0 * N, N);
    else gemm<T>(ta, tb, M, i1 - i0, K, a, lda, b + (tb ? i0 * ldb : i0), ldb, T(0), y + i0, N);
  });
}

template <class T>
void gemm_one(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, std::int64_t sa0, std::int64_t sa1,
              const T* b, std::int64_t sb0, std::int64_t sb1, T* y) {
  if constexpr (std::is_floating_point_v<T>) {
    MatLayout la = layout(M, K, sa0, sa1), lb = layout(K, N, sb0, sb1);
    std::vector<T> ca, cb;  // contiguous copies for layouts BLAS cannot take (e.g. broadcast)
    if (!la.ok) a = pack(M, K, a, sa0, sa1, ca, la);
    if (!lb.ok) b = pack(K, N, b, sb0, sb1, cb, lb);
    if (N == 1) {  // y(M) = op(A) b, b a strided vector
      std::int64_t incb = lb.ok && !cb.empty() ? 1 : sb0;
      if (incb == 0 || K == 1) incb = 1;
      return gemv(M, K, a, la, b, incb, y);
    }
    if (M == 1 && (!ca.empty() || sa1 == 1 || K == 1) &&  // y(N) = op(B)^T a, a a contiguous row
        (lb.trans == CblasNoTrans ? gemv_small<T>(true, K, N, b, lb.ld, a, y) : gemv_small<T>(false, N, K, b, lb.ld, a, y)))
      return;
    gemm_chunks<T>(la.trans == CblasTrans, lb.trans == CblasTrans, M, N, K, a, la.ld, b, lb.ld, y);
  } else {
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j) {
        T acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc = T(acc + a[i * sa0 + k * sa1] * b[k * sb0 + j * sb1]);
        y[i * N + j] = acc;
      }
  }
}

}  // namespace

bool matvec_small(DType dtype, std::int64_t M, std::int64_t K, std::int64_t sa0, std::int64_t sa1, std::int64_t sx,
                  SmallGemv& g) {
  if ((dtype != DType::float64 && dtype != DType::float32) || M == 0 || K == 0) return false;
  const MatLayout la = layout(M, K, sa0, sa1);
  if (!la.ok || (sx == 0 && K != 1) || (K != 1 && sx != 1)) return false;
  g = la.trans == CblasNoTrans ? SmallGemv{false, M, K, la.ld} : SmallGemv{true, K, M, la.ld};
  return gemv_small_applies(g.rows, g.cols);
}

bool matvec(DType dtype, std::int64_t M, std::int64_t K, const void* a, std::int64_t sa0, std::int64_t sa1,
            const void* x, std::int64_t sx, void* y) {
  if ((dtype != DType::float64 && dtype != DType::float32) || M == 0 || K == 0) return false;
  if (SmallGemv g; matvec_small(dtype, M, K, sa0, sa1, sx, g)) {
    if (dtype == DType::float64)
      gemv_small(g.trans, g.rows, g.cols, static_cast<const double*>(a), g.lda, static_cast<const double*>(x),
                 static_cast<double*>(y));
    else
      gemv_small(g.trans, g.rows, g.cols, static_cast<const float*>(a), g.lda, static_cast<const float*>(x),
                 static_cast<float*>(y));
    return true;
  }
  const MatLayout la = layout(M, K, sa0, sa1);
  if (!la.ok || (sx == 0 && K != 1)) return false;
  const std::int64_t inc = K == 1 ? 1 : sx;
  if (dtype == DType::float64) gemv(M, K, static_cast<const double*>(a), la, static_cast<const double*>(x), inc, static_cast<double*>(y));
  else gemv(M, K, static_cast<const float*>(a), la, static_cast<const float*>(x), inc, static_cast<float*>(y));
  return true;
}

void CpuBackend::gemm(const Storage& a, const Storage& b, const Storage& y) {
  const std::size_t nd = y.shape.size();
  const std::int64_t M = y.shape[nd - 2], N = y.shape[nd - 1], K = a.shape[nd - 1];
  if (M == 0 || N == 0) return;
  if (K == 0) {
    fill(y, 0.0);
    return;
  }
  // Batch offsets: odometer over the leading (broadcast) dims.
  const std::size_t nb = nd - 2;
  const std::int64_t batches = shape_size(Shape(y.shape.begin(), y.shape.begin() + std::ptrdiff_t(nb)));
  // b the same matrix for every batch and a's batches stacked at its row stride (x (T, B, K)
  // @ W): one GEMM of batches * M rows.
  bool fold = nb > 0 && batches > 1;
  for (std::size_t d = 0; fold && d < nb; ++d) fold = b.strides[d] == 0;
  for (std::size_t d = nb, extent = std::size_t(M); fold && d-- > 0;) {
    const std::int64_t inner = d + 1 == nb ? a.strides[nd - 2] : a.strides[d + 1];
    fold = a.strides[d] == inner * std::int64_t(extent);
    extent = std::size_t(y.shape[d]);
  }
  if (fold) {
    THETA_DISPATCH_NUMERIC(y.dtype, T, {
      gemm_one<T>(batches * M, N, K, a.data<T>(), a.strides[nd - 2], a.strides[nd - 1], b.data<T>(), b.strides[nd - 2],
                  b.strides[nd - 1], y.data<T>());
    })
    return;
  }
  std::vector<std::int64_t> idx(nb, 0);
  std::int64_t oa = 0, ob = 0;
  THETA_DISPATCH_NUMERIC(y.dtype, T, {
    for (std::int64_t bi = 0; bi < batches; ++bi) {
      gemm_one<T>(M, N, K, a.data<T>() + oa, a.strides[nd - 2], a.strides[nd - 1], b.data<T>() + ob,
                  b.strides[nd - 2], b.strides[nd - 1], y.data<T>() + bi * M * N);
      for (std::size_t d = nb; d-- > 0;) {
        oa += a.strides[d];
        ob += b.strides[d];
        if (++idx[d] < y.shape[d]) break;
        oa -= a.strides[d] * y.shape[d];
        ob -= b.strides[d] * y.shape[d];
        idx[d] = 0;
      }
    }
  })
}

}  // namespace th::detail::cpu
