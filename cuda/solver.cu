// Backend::factor on a GPU: th::linalg's cholesky, solve, inv and slogdet by cuSOLVER's
// dense LAPACK (potrf, getrf, getrs), one matrix of the batch after another, queued on
// theta's stream. cuSOLVER is column-major: a row-major matrix is read as its transpose,
// which the calls below account for (see each case). The other linalg ops (eigh, qr, svd,
// solve_triangular) run on the host.
#include <cusolverDn.h>

#include <cmath>
#include <mutex>
#include <string>

#include "core/dispatch.hpp"
#include "cuda/runtime.hpp"
#include "theta/error.hpp"

namespace th::detail::cuda {

namespace {

void check_solver(cusolverStatus_t s, const char* call) {
  if (s != CUSOLVER_STATUS_SUCCESS)
    throw DeviceError(std::string("cuSOLVER: ") + call + " failed (status " + std::to_string(int(s)) + ")");
}
#define THETA_CUSOLVER_CHECK(call) check_solver((call), #call)

cusolverDnHandle_t solver(int device) {
  return per_device_handle<cusolverDnHandle_t>(device, [](cusolverDnHandle_t& h, cudaStream_t st) {
    THETA_CUSOLVER_CHECK(cusolverDnCreate(&h));
    THETA_CUSOLVER_CHECK(cusolverDnSetStream(h, st));
  });
}

template <class T>
struct Dn;
template <>
struct Dn<float> {
  static cusolverStatus_t potrf_size(cusolverDnHandle_t h, int n, float* a, int* lw) {
    return cusolverDnSpotrf_bufferSize(h, CUBLAS_FILL_MODE_UPPER, n, a, n, lw);
  }
  static cusolverStatus_t potrf(cusolverDnHandle_t h, int n, float* a, float* w, int lw, int* info) {
    return cusolverDnSpotrf(h, CUBLAS_FILL_MODE_UPPER, n, a, n, w, lw, info);
  }
  static cusolverStatus_t getrf_size(cusolverDnHandle_t h, int n, float* a, int* lw) {
    return cusolverDnSgetrf_bufferSize(h, n, n, a, n, lw);
  }
  static cusolverStatus_t getrf(cusolverDnHandle_t h, int n, float* a, float* w, int* piv, int* info) {
    return cusolverDnSgetrf(h, n, n, a, n, w, piv, info);
  }
  static cusolverStatus_t getrs(cusolverDnHandle_t h, cublasOperation_t op, int n, int k, const float* a, const int* piv,
                                float* b, int* info) {
    return cusolverDnSgetrs(h, op, n, k, a, n, piv, b, n, info);
  }
};
template <>
struct Dn<double> {
  static cusolverStatus_t potrf_size(cusolverDnHandle_t h, int n, double* a, int* lw) {
    return cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_UPPER, n, a, n, lw);
  }
  static cusolverStatus_t potrf(cusolverDnHandle_t h, int n, double* a, double* w, int lw, int* info) {
    return cusolverDnDpotrf(h, CUBLAS_FILL_MODE_UPPER, n, a, n, w, lw, info);
  }
  static cusolverStatus_t getrf_size(cusolverDnHandle_t h, int n, double* a, int* lw) {
    return cusolverDnDgetrf_bufferSize(h, n, n, a, n, lw);
  }
  static cusolverStatus_t getrf(cusolverDnHandle_t h, int n, double* a, double* w, int* piv, int* info) {
    return cusolverDnDgetrf(h, n, n, a, n, w, piv, info);
  }
  static cusolverStatus_t getrs(cusolverDnHandle_t h, cublasOperation_t op, int n, int k, const double* a,
                                const int* piv, double* b, int* info) {
    return cusolverDnDgetrs(h, op, n, k, a, n, piv, b, n, info);
  }
};

unsigned blocks(std::int64_t n) { return unsigned(std::max<std::int64_t>(1, std::min<std::int64_t>((n + 255) / 256, 1 << 20))); }

// the upper triangle (row-major) of each matrix := 0
template <class T>
__global__ void zero_upper(T* a, std::int64_t n, std::int64_t total) {
  for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < total; e += std::int64_t(gridDim.x) * blockDim.x)
    if (e % n > (e / n) % n) a[e] = T(0);
}

// each matrix := the identity
template <class T>
__global__ void identity(T* a, std::int64_t n, std::int64_t total) {
  for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < total; e += std::int64_t(gridDim.x) * blockDim.x)
    a[e] = e % n == (e / n) % n ? T(1) : T(0);
}

// (sign, log|det|) of each matrix from its LU factors (the diagonal is the same read either
// way) and its row swaps (1-based pivots)
template <class T>
__global__ void lu_slogdet(const T* lu, const int* piv, T* out, std::int64_t n, std::int64_t batch) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < batch; i += std::int64_t(gridDim.x) * blockDim.x) {
    double sign = 1, logabs = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      const double d = double(lu[i * n * n + j * n + j]);
      if (d == 0) {
        sign = 0, logabs = -INFINITY;
        break;
      }
      if (d < 0) sign = -sign;
      if (piv[i * n + j] != j + 1) sign = -sign;
      logabs += log(fabs(d));
    }
    out[2 * i] = T(sign);
    out[2 * i + 1] = T(logabs);
  }
}

std::shared_ptr<Buffer> scratch(std::size_t bytes, int device) { return alloc(std::max<std::size_t>(bytes, 1), device); }

}  // namespace

bool factor(int device, Factor k, const Storage& a, const Storage& b, std::vector<int>& info) {
  if (a.dtype != DType::float32 && a.dtype != DType::float64) return false;
  const std::int64_t n = a.shape.back();
  if (n == 0 || n > (1 << 30)) return false;  // (the host handles empty matrices)
  const std::int64_t batch = a.size() / (n * n);
  DeviceGuard guard(device);
  const cusolverDnHandle_t h = solver(device);
  const cudaStream_t st = stream(device);
  const int ni = int(n);
  auto dev_info = scratch(sizeof(int) * std::size_t(batch), device);
  int* inf = static_cast<int*>(dev_info->data);
  THETA_DISPATCH_FLOAT(a.dtype, T, {
    T* A = a.data<T>();
    int lw = 0;
    if (k == Factor::cholesky) {
      // the column-major reading of row-major A is A^T = A: potrf's upper factor U (A = U^T U)
      // read row-major is L = U^T; the rest of the buffer (row-major upper) is zeroed
      THETA_CUSOLVER_CHECK(Dn<T>::potrf_size(h, ni, A, &lw));
      auto work = scratch(sizeof(T) * std::size_t(lw), device);
      for (std::int64_t i = 0; i < batch; ++i)
        THETA_CUSOLVER_CHECK(Dn<T>::potrf(h, ni, A + i * n * n, static_cast<T*>(work->data), lw, inf + i));
      zero_upper<T><<<blocks(a.size()), 256, 0, st>>>(A, n, a.size());
      THETA_CUDA_LAUNCHED("cholesky's triangle kernel");
    } else {
      // getrf factors M = A^T (the column-major reading)
      THETA_CUSOLVER_CHECK(Dn<T>::getrf_size(h, ni, A, &lw));
      auto work = scratch(sizeof(T) * std::size_t(lw), device);
      auto pivots = scratch(sizeof(int) * std::size_t(batch * n), device);
      int* piv = static_cast<int*>(pivots->data);
      for (std::int64_t i = 0; i < batch; ++i)
        THETA_CUSOLVER_CHECK(Dn<T>::getrf(h, ni, A + i * n * n, static_cast<T*>(work->data), piv + i * n, inf + i));
      if (k == Factor::slogdet) {
        lu_slogdet<T><<<blocks(batch), 256, 0, st>>>(A, piv, b.data<T>(), n, batch);
        THETA_CUDA_LAUNCHED("slogdet's kernel");
      } else if (k == Factor::inverse) {
        // M X = I gives X = A^-T column-major, which read row-major is A^-1
        identity<T><<<blocks(b.size()), 256, 0, st>>>(b.data<T>(), n, b.size());
        THETA_CUDA_LAUNCHED("inverse's identity kernel");
        auto ignored = scratch(sizeof(int), device);
        for (std::int64_t i = 0; i < batch; ++i)
          THETA_CUSOLVER_CHECK(Dn<T>::getrs(h, CUBLAS_OP_N, ni, ni, A + i * n * n, piv + i * n, b.data<T>() + i * n * n,
                                            static_cast<int*>(ignored->data)));
      } else {
        // M^T X = A X = B with B column-major: a row-major (n x k) batch is transposed into
        // one first (and the solution back), unless k = 1 (a column reads the same either way)
        const std::int64_t rhs = b.size() / (batch * n);
        Storage bt = b;
        if (rhs > 1) {
          Storage view = b;  // B^T: (batch, k, n) over b's elements
          view.shape = {batch, rhs, n};
          view.strides = {n * rhs, 1, rhs};
          view.offset = b.offset;
          bt = alloc_storage(b.dtype, {batch, rhs, n}, b.device());
          backend_for(b.device()).copy(view, bt);
        }
        auto ignored = scratch(sizeof(int), device);
        for (std::int64_t i = 0; i < batch; ++i)
          THETA_CUSOLVER_CHECK(Dn<T>::getrs(h, CUBLAS_OP_T, ni, int(rhs), A + i * n * n, piv + i * n,
                                            bt.data<T>() + i * n * rhs, static_cast<int*>(ignored->data)));
        if (rhs > 1) {
          Storage back = bt;  // X (batch, n, k) over the column-major solutions
          back.shape = {batch, n, rhs};
          back.strides = {n * rhs, 1, n};
          Storage dst = b;
          dst.shape = {batch, n, rhs};
          dst.strides = {n * rhs, rhs, 1};
          backend_for(b.device()).copy(back, dst);
        }
      }
    }
  })
  info.assign(std::size_t(batch), 0);
  THETA_CUDA_CHECK(cudaMemcpyAsync(info.data(), inf, sizeof(int) * std::size_t(batch), cudaMemcpyDeviceToHost, st));
  THETA_CUDA_CHECK(cudaStreamSynchronize(st));
  return true;
}

}  // namespace th::detail::cuda
