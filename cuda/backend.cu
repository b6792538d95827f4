// The CUDA backend: the same entry points as the CPU's (core/backend.hpp) on device memory.
// Elementwise work (copies with conversion, fill, unary, binary, where) is Thrust's
// for_each_n over a strided index space; reductions are CUB's DeviceReduce for whole
// dense tensors and one block per output element otherwise; dot/matmul is cuBLAS (GEMV for
// a vector right operand, strided batched GEMM otherwise). Everything is queued on the
// device's theta stream (cuda/runtime.hpp): no call here waits for the GPU.
// NOTE: no xtensor here (it costs seconds of nvcc time per file).
#include <cublas_v2.h>
#include <cub/device/device_reduce.cuh>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include <array>
#include <limits>
#include <mutex>
#include <type_traits>

#include "core/dispatch.hpp"
#include "core/scalar_math.hpp"
#include "cuda/runtime.hpp"
#include "theta/error.hpp"

namespace th::detail::cuda {

namespace {

// ---- strided index spaces -------------------------------------------------------------------
constexpr int kMaxDims = 10;

// N operands over one shape; after merging dims that are contiguous in every operand, the
// flat index i maps to each operand's element offset.
template <int N>
struct Walk {
  int nd = 0;
  std::int64_t shape[kMaxDims];
  std::int64_t stride[N][kMaxDims];  // in elements
  __device__ void offsets(std::int64_t i, std::int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const std::int64_t q = d ? i / shape[d] : 0, r = d ? i - q * shape[d] : i;
      for (int k = 0; k < N; ++k) off[k] += r * stride[k][d];
      i = q;
    }
  }
};

template <int N>
Walk<N> make_walk(const Shape& shape, const std::array<const Shape*, N>& strides, std::int64_t& n) {
  Walk<N> w;
  n = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    n *= shape[d];
    if (shape[d] == 1) continue;
    bool merge = w.nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = w.stride[k][w.nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      w.shape[w.nd - 1] *= shape[d];
      for (int k = 0; k < N; ++k) w.stride[k][w.nd - 1] = (*strides[k])[d];
      continue;
    }
    if (w.nd == kMaxDims)
      throw DeviceError("CUDA backend: more than " + std::to_string(kMaxDims) +
                        " non-mergeable dimensions in shape " + shape_str(shape));
    w.shape[w.nd] = shape[d];
    for (int k = 0; k < N; ++k) w.stride[k][w.nd] = (*strides[k])[d];
    ++w.nd;
  }
  return w;
}

template <int N>
Walk<N> make_walk(const Shape& shape, const std::array<const Storage*, N>& ops, std::int64_t& n) {
  std::array<const Shape*, N> st;
  for (int k = 0; k < N; ++k) st[k] = &ops[k]->strides;
  return make_walk<N>(shape, st, n);
}

int dev(const Storage& s) { return s.device().index; }
auto policy(int device) { return thrust::cuda::par_nosync.on(stream(device)); }

template <class F>
void for_each_index(int device, std::int64_t n, const F& f, const char* what) {
  if (n == 0) return;
  DeviceGuard g(device);
  thrust::for_each_n(policy(device), thrust::counting_iterator<std::int64_t>(0), n, f);
  THETA_CUDA_LAUNCHED(what);
}

// One element converted as the CPU does (cpu/backend.cpp): floats to integers truncate,
// saturate and send NaN to 0.
template <class D, class S>
__device__ D convert(S v) {
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D> && !std::is_same_v<D, bool>) {
    if (v != v) return D(0);
    constexpr S hi = -S(std::numeric_limits<D>::min());
    if (v >= hi) return std::numeric_limits<D>::max();
    if (v < -hi) return std::numeric_limits<D>::min();
  }
  return static_cast<D>(v);
}

// ---- elementwise functors ---------------------------------------------------------------------
template <class D, class S>
struct CopyFn {
  Walk<2> w;
  D* y;
  const S* x;
  __device__ void operator()(std::int64_t i) const {
    std::int64_t o[2];
    w.offsets(i, o);
    y[o[0]] = convert<D>(x[o[1]]);
  }
};

template <class T>
struct FillFn {
  Walk<1> w;
  T* y;
  T v;
  __device__ void operator()(std::int64_t i) const {
    std::int64_t o[1];
    w.offsets(i, o);
    y[o[0]] = v;
  }
};

template <class T>
struct WhereFn {
  Walk<4> w;
  T* y;
  const bool* c;
  const T *a, *b;
  __device__ void operator()(std::int64_t i) const {
    std::int64_t o[4];
    w.offsets(i, o);
    y[o[0]] = c[o[1]] ? a[o[2]] : b[o[3]];
  }
};

constexpr bool keep_floats_only = false, to_float_floats_only = true;
constexpr bool arith_is_compare = false,
               divide_is_compare = false, compare_is_compare = true;

#define THETA_UNARY_FUNCTOR(name, rule, formula, vjp)                      \
  struct U_##name {                                                        \
    static constexpr bool floats_only = rule##_floats_only;                \
    template <class T>                                                     \
    __device__ T operator()(T x) const { return static_cast<T>(formula); } \
  };
THETA_UNARY_OPS(THETA_UNARY_FUNCTOR)
#undef THETA_UNARY_FUNCTOR

#define THETA_BINARY_FUNCTOR(name, rule, formula, vjp_a, vjp_b)  \
  struct B_##name {                                              \
    static constexpr bool compare = rule##_is_compare;           \
    template <class T>                                           \
    __device__ auto operator()(T a, T b) const {                 \
      if constexpr (compare) return bool(formula);               \
      else return static_cast<T>(formula);                       \
    }                                                            \
  };
THETA_BINARY_OPS(THETA_BINARY_FUNCTOR)
#undef THETA_BINARY_FUNCTOR

template <class T, class F>
struct UnaryFn {
  Walk<2> w;
  T* y;
  const T* x;
  __device__ void operator()(std::int64_t i) const {
    std::int64_t o[2];
    w.offsets(i, o);
    y[o[0]] = F{}(x[o[1]]);
  }
};

template <class T, class O, class F>
struct BinaryFn {
  Walk<3> w;
  O* y;
  const T *a, *b;
  __device__ void operator()(std::int64_t i) const {
    std::int64_t o[3];
    w.offsets(i, o);
    y[o[0]] = F{}(a[o[1]], b[o[2]]);
  }
};

template <class T, class F>
void run_unary(const Storage& x, const Storage& y) {
  if constexpr (F::floats_only && !std::is_floating_point_v<T>) {
    throw TypeError("internal: a float-only CUDA kernel was asked for an integer dtype");
  } else {
    std::int64_t n;
    UnaryFn<T, F> f{make_walk<2>(y.shape, {&y, &x}, n), y.data<T>(), x.data<T>()};
    for_each_index(dev(y), n, f, "unary kernel");
  }
}

template <class T, class F>
void run_binary(const Storage& a, const Storage& b, const Storage& y) {
  using O = std::conditional_t<F::compare, bool, T>;
  std::int64_t n;
  BinaryFn<T, O, F> f{make_walk<3>(y.shape, {&y, &a, &b}, n), y.data<O>(), a.data<T>(), b.data<T>()};
  for_each_index(dev(y), n, f, "binary kernel");
}

// ---- reductions ------------------------------------------------------------------------------
template <class T>
struct Combine {
  ReduceKind k;
  __host__ __device__ T operator()(T a, T b) const {
    switch (k) {
      case ReduceKind::sum: return T(a + b);
      case ReduceKind::prod: return T(a * b);
      case ReduceKind::max: return max_scalar(a, b);
      default: return min_scalar(a, b);
    }
  }
};

template <class T>
T identity(ReduceKind k) {
  switch (k) {
    case ReduceKind::sum: return T(0);
    case ReduceKind::prod: return T(1);
    case ReduceKind::max:
      return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    default: return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  }
}

constexpr int kBlock = 256;

// One block per output element: threads stride over the reduced elements, then a tree in
// shared memory; thread 0 folds the result into the pre-filled output.
template <class T>
__global__ void reduce_blocks(Walk<2> kept, Walk<1> red, std::int64_t n_out, std::int64_t n_red, const T* x, T* y,
                              Combine<T> f) {
  __shared__ T acc[kBlock];
  __shared__ bool has[kBlock];
  for (std::int64_t j = blockIdx.x; j < n_out; j += gridDim.x) {
    std::int64_t ko[2];
    kept.offsets(j, ko);
    T a{};
    bool h = false;
    for (std::int64_t r = threadIdx.x; r < n_red; r += blockDim.x) {
      std::int64_t ro[1];
      red.offsets(r, ro);
      const T v = x[ko[1] + ro[0]];
      a = h ? f(a, v) : v;
      h = true;
    }
    acc[threadIdx.x] = a;
    has[threadIdx.x] = h;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s && has[threadIdx.x + s]) {
        acc[threadIdx.x] = has[threadIdx.x] ? f(acc[threadIdx.x], acc[threadIdx.x + s]) : acc[threadIdx.x + s];
        has[threadIdx.x] = true;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0 && has[0]) y[ko[0]] = f(y[ko[0]], acc[0]);
    __syncthreads();
  }
}

template <class T>
__global__ void fold_into(T* y, const T* r, Combine<T> f) {
  *y = f(*y, *r);
}

template <class T>
void reduce_typed(ReduceKind k, const Storage& x, const Storage& y) {
  const int d = dev(x);
  DeviceGuard g(d);
  cudaStream_t st = stream(d);
  Combine<T> f{k};
  Shape kept_shape, red_shape, kx, ky, rx;
  for (std::size_t i = 0; i < x.shape.size(); ++i) {
    if (y.strides[i] == 0 && x.shape[i] > 1) {
      red_shape.push_back(x.shape[i]);
      rx.push_back(x.strides[i]);
    } else {
      kept_shape.push_back(x.shape[i]);
      kx.push_back(x.strides[i]);
      ky.push_back(y.strides[i]);
    }
  }
  std::int64_t n_out, n_red;
  Walk<2> kept = make_walk<2>(kept_shape, {&ky, &kx}, n_out);
  Walk<1> red = make_walk<1>(red_shape, {&rx}, n_red);
  if (n_out == 0 || n_red == 0) return;
  if (n_out == 1 && red.nd <= 1 && (red.nd == 0 || red.stride[0][0] == 1)) {
    // A whole dense tensor into one value: CUB's device-wide reduction, result folded on
    // the device (no host round trip).
    Storage tmp = alloc_storage(y.dtype, {}, y.device());
    std::size_t bytes = 0;
    const T* in = x.data<T>();
    THETA_CUDA_CHECK(cub::DeviceReduce::Reduce(nullptr, bytes, in, tmp.data<T>(), n_red, f, identity<T>(k), st));
    std::shared_ptr<Buffer> work = alloc(std::max<std::size_t>(bytes, 1), d);
    THETA_CUDA_CHECK(cub::DeviceReduce::Reduce(work->data, bytes, in, tmp.data<T>(), n_red, f, identity<T>(k), st));
    fold_into<T><<<1, 1, 0, st>>>(y.data<T>(), tmp.data<T>(), f);
    THETA_CUDA_LAUNCHED("reduce fold kernel");
    return;
  }
  int threads = 32;
  while (threads < kBlock && threads < n_red) threads *= 2;
  const unsigned blocks = unsigned(std::min<std::int64_t>(n_out, 1 << 20));
  reduce_blocks<T><<<blocks, threads, 0, st>>>(kept, red, n_out, n_red, x.data<T>(), y.data<T>(), f);
  THETA_CUDA_LAUNCHED("reduce kernel");
}

// arg max/min of each row: the first NaN wins, then the first extreme value (as numpy).
template <class T>
__global__ void arg_rows(const T* x, std::int64_t rows, std::int64_t n, std::int64_t s0, std::int64_t s1,
                         bool is_max, std::int64_t* y) {
  __shared__ T bv[kBlock];
  __shared__ std::int64_t bi[kBlock];
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T best{};
    std::int64_t at = -1;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const T v = x[r * s0 + i * s1];
      const bool nan_best = at >= 0 && best != best;
      if (at < 0 || (!nan_best && (v != v || (is_max ? v > best : v < best)))) {
        best = v;
        at = i;
      }
    }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = at;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) {
        const T v = bv[threadIdx.x + s];
        const std::int64_t i = bi[threadIdx.x + s], a = bi[threadIdx.x];
        const T b = bv[threadIdx.x];
        bool take = false;
        if (i >= 0) {
          if (a < 0) take = true;
          else if ((v != v) != (b != b)) take = v != v;
          else if (v != v) take = i < a;
          else take = (is_max ? v > b : v < b) || (v == b && i < a);
        }
        if (take) {
          bv[threadIdx.x] = v;
          bi[threadIdx.x] = i;
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) y[r] = bi[0] < 0 ? 0 : bi[0];
    __syncthreads();
  }
}

// ---- indexing --------------------------------------------------------------------------------
template <class T>
struct GatherFn {
  const T* x;
  const std::int64_t* idx;
  T* y;
  std::int64_t m, n, inner;
  __device__ void operator()(std::int64_t e) const {
    const std::int64_t i = e % inner, j = (e / inner) % m, o = e / (inner * m);
    y[e] = x[(o * n + idx[j]) * inner + i];
  }
};

template <class T>
__device__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, std::int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));  // wraps as the CPU's
  else
    atomicAdd(p, v);
}

template <class T>
struct ScatterFn {
  const T* g;
  const std::int64_t* idx;
  T* y;
  std::int64_t m, n, inner;
  __device__ void operator()(std::int64_t e) const {
    const std::int64_t i = e % inner, j = (e / inner) % m, o = e / (inner * m);
    atomic_add(&y[(o * n + idx[j]) * inner + i], g[e]);
  }
};

// ---- convolution layout (core/backend.hpp: im2col, col2im) -------------------------------------
template <class T>
struct Im2colFn {
  const T* x;
  T* col;
  ConvGeom g;
  std::int64_t group;
  __device__ void operator()(std::int64_t e) const {  // e: one element of col (K x N*P)
    const std::int64_t P = g.OH * g.OW, NP = g.N * P, Cg = g.C / g.G;
    const std::int64_t r = e / NP, q = e % NP, n = q / P, p = q % P, oh = p / g.OW, ow = p % g.OW;
    const std::int64_t c = r / (g.KH * g.KW), ri = (r / g.KW) % g.KH, rj = r % g.KW;
    const std::int64_t i = g.flip ? g.KH - 1 - ri : ri, j = g.flip ? g.KW - 1 - rj : rj;
    const std::int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
    col[e] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[((n * g.C + group * Cg + c) * g.H + ih) * g.W + iw] : T(0);
  }
};

template <class T>
struct Col2imFn {  // one thread per input element, gathering its taps: no atomics
  const T* col;
  T* x;
  ConvGeom g;
  std::int64_t group;
  __device__ void operator()(std::int64_t e) const {  // e: one element of group `group` of x
    const std::int64_t Cg = g.C / g.G, P = g.OH * g.OW, NP = g.N * P;
    const std::int64_t w = e % g.W, h = (e / g.W) % g.H, c = (e / (g.W * g.H)) % Cg, n = e / (g.W * g.H * Cg);
    T s = T(0);
    for (std::int64_t i = 0; i < g.KH; ++i) {
      const std::int64_t th = h + g.ph - i * g.dh;
      if (th < 0 || th % g.sh != 0 || th / g.sh >= g.OH) continue;
      for (std::int64_t j = 0; j < g.KW; ++j) {
        const std::int64_t tw = w + g.pw - j * g.dw;
        if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.OW) continue;
        const std::int64_t ri = g.flip ? g.KH - 1 - i : i, rj = g.flip ? g.KW - 1 - j : j;
        s += col[((c * g.KH + ri) * g.KW + rj) * NP + n * P + (th / g.sh) * g.OW + tw / g.sw];
      }
    }
    x[((n * g.C + group * Cg + c) * g.H + h) * g.W + w] += s;
  }
};

// ---- GEMM ------------------------------------------------------------------------------------
void cublas_check(cublasStatus_t s, const char* call) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw DeviceError(std::string("cuBLAS: ") + call + " failed: " + cublasGetStatusName(s) + ": " +
                      cublasGetStatusString(s));
}
#define THETA_CUBLAS_CHECK(call) cublas_check((call), #call)

cublasHandle_t handle(int device) {
  return per_device_handle<cublasHandle_t>(device, [](cublasHandle_t& h, cudaStream_t st) {
    THETA_CUBLAS_CHECK(cublasCreate(&h));
    THETA_CUBLAS_CHECK(cublasSetStream(h, st));
  });
}

// A matrix operand as cuBLAS sees it (column-major): a row-major M x K matrix with row
// stride ld is the column-major K x M matrix "N" with leading dimension ld.
struct Mat {
  bool ok;
  cublasOperation_t op;  // for the column-major product C^T = B^T A^T
  std::int64_t ld;
};
Mat mat_of(std::int64_t rows, std::int64_t cols, std::int64_t s0, std::int64_t s1) {
  if ((s1 == 1 || cols == 1) && s0 >= std::max<std::int64_t>(cols, 1)) return {true, CUBLAS_OP_N, s0};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<std::int64_t>(rows, 1)) return {true, CUBLAS_OP_T, s1};
  return {false, CUBLAS_OP_N, 0};
}

// The batch dims of an operand as one stride (0 when broadcast), if they collapse to one.
bool batch_stride(const Storage& s, const Shape& batch, std::int64_t& stride) {
  Shape st(s.strides.begin(), s.strides.begin() + std::ptrdiff_t(batch.size()));
  std::int64_t n;
  Walk<1> w = make_walk<1>(batch, {&st}, n);
  if (w.nd > 1) return false;
  stride = w.nd == 0 ? 0 : w.stride[0][0];
  return true;
}

template <class T>
__global__ void int_gemm(const T* a, const T* b, T* y, std::int64_t batches, std::int64_t M, std::int64_t N,
                         std::int64_t K, std::int64_t sab, std::int64_t sa0, std::int64_t sa1, std::int64_t sbb,
                         std::int64_t sb0, std::int64_t sb1) {
  for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < batches * M * N;
       e += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t j = e % N, i = (e / N) % M, bt = e / (M * N);
    T acc = 0;
    for (std::int64_t k = 0; k < K; ++k) acc = wrap_add(acc, wrap_mul(a[bt * sab + i * sa0 + k * sa1], b[bt * sbb + k * sb0 + j * sb1]));
    y[e] = acc;
  }
}

}  // namespace

struct CudaBackend final : Backend {
  int device;
  explicit CudaBackend(int d) : device(d) {}

  std::shared_ptr<Buffer> alloc(std::size_t bytes) override { return cuda::alloc(bytes, device); }

  void copy(const Storage& src, const Storage& dst) override {
    if (src.device() != dst.device()) {  // across devices: dense transfer, then convert here
      Storage moved = transfer(src, dst.device());
      backend_for(dst.device()).copy(moved, dst);
      return;
    }
    std::int64_t n;
    Walk<2> w = make_walk<2>(dst.shape, {&dst, &src}, n);
    THETA_DISPATCH_ALL(src.dtype, S, THETA_DISPATCH_ALL(dst.dtype, D, {
      for_each_index(dev(dst), n, CopyFn<D, S>{w, dst.data<D>(), src.data<S>()}, "copy kernel");
    }))
  }

  void fill(const Storage& dst, double value) override {
    std::int64_t n;
    Walk<1> w = make_walk<1>(dst.shape, {&dst}, n);
    THETA_DISPATCH_ALL(dst.dtype, T, for_each_index(dev(dst), n, FillFn<T>{w, dst.data<T>(), static_cast<T>(value)}, "fill kernel"))
  }

  void unary(UnaryKind k, const Storage& x, const Storage& y) override {
#define THETA_UNARY_CASE(name, ...) \
  case UnaryKind::name: run_unary<T, U_##name>(x, y); break;
    THETA_DISPATCH_NUMERIC(y.dtype, T, switch (k) { THETA_UNARY_OPS(THETA_UNARY_CASE) })
#undef THETA_UNARY_CASE
  }

  void binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) override {
#define THETA_BINARY_CASE(name, ...) \
  case BinaryKind::name: run_binary<T, B_##name>(a, b, y); break;
    THETA_DISPATCH_NUMERIC(a.dtype, T, switch (k) { THETA_BINARY_OPS(THETA_BINARY_CASE) })
#undef THETA_BINARY_CASE
  }

  void where(const Storage& c, const Storage& a, const Storage& b, const Storage& y) override {
    std::int64_t n;
    Walk<4> w = make_walk<4>(y.shape, {&y, &c, &a, &b}, n);
    THETA_DISPATCH_ALL(y.dtype, T, {
      for_each_index(dev(y), n, WhereFn<T>{w, y.data<T>(), c.data<bool>(), a.data<T>(), b.data<T>()}, "where kernel");
    })
  }

  void reduce(ReduceKind k, const Storage& x, const Storage& y) override {
    THETA_DISPATCH_NUMERIC(x.dtype, T, reduce_typed<T>(k, x, y))
  }

  void arg_reduce(bool is_max, const Storage& x, const Storage& y) override {
    const std::int64_t rows = x.shape[0], n = x.shape[1];
    if (rows == 0) return;
    DeviceGuard g(device);
    int threads = 32;
    while (threads < kBlock && threads < n) threads *= 2;
    THETA_DISPATCH_NUMERIC(x.dtype, T, {
      arg_rows<T><<<unsigned(std::min<std::int64_t>(rows, 1 << 20)), threads, 0, stream(device)>>>(
          x.data<T>(), rows, n, x.strides[0], x.strides[1], is_max, y.data<std::int64_t>());
    })
    THETA_CUDA_LAUNCHED("arg_reduce kernel");
  }

  void gemm(const Storage& a0, const Storage& b0, const Storage& y) override {
    const std::size_t nd = y.shape.size();
    const std::int64_t M = y.shape[nd - 2], N = y.shape[nd - 1], K = a0.shape[nd - 1];
    if (M == 0 || N == 0) return;
    if (K == 0) return fill(y, 0.0);
    const Shape batch(y.shape.begin(), y.shape.end() - 2);
    const std::int64_t batches = shape_size(batch);
    Storage a = a0, b = b0;
    std::int64_t sab = 0, sbb = 0;
    // Operands cuBLAS cannot take (batch dims that do not collapse, two non-unit strides)
    // are made dense with their broadcast batch shape first.
    Shape ab = batch, bb = batch;
    ab.insert(ab.end(), {M, K});
    bb.insert(bb.end(), {K, N});
    Mat ma = mat_of(M, K, a.strides[nd - 2], a.strides[nd - 1]);
    if (!ma.ok || !batch_stride(a, batch, sab)) {
      a = contiguous_as(a, a.dtype);
      a.shape = ab;
      ma = mat_of(M, K, K, 1);
      sab = M * K;
    }
    Mat mb = mat_of(K, N, b.strides[nd - 2], b.strides[nd - 1]);
    if (!mb.ok || !batch_stride(b, batch, sbb)) {
      b = contiguous_as(b, b.dtype);
      mb = mat_of(K, N, N, 1);
      sbb = K * N;
    }
    DeviceGuard g(device);
    if (!is_floating(y.dtype)) {
      THETA_DISPATCH_NUMERIC(y.dtype, T, {
        const std::int64_t total = batches * M * N;
        int_gemm<T><<<unsigned(std::min<std::int64_t>((total + 255) / 256, 1 << 20)), 256, 0, stream(device)>>>(
            a.data<T>(), b.data<T>(), y.data<T>(), batches, M, N, K, sab, a.strides[nd - 2], a.strides[nd - 1], sbb,
            b.strides[nd - 2], b.strides[nd - 1]);
      })
      THETA_CUDA_LAUNCHED("integer gemm kernel");
      return;
    }
    cublasHandle_t h = handle(device);
    const int m = int(M), n = int(N), k = int(K);
    auto ld = [](std::int64_t v) { return int(std::max<std::int64_t>(v, 1)); };
    if (y.dtype == DType::float64) {
      const double one = 1, zero = 0;
      THETA_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
      THETA_CUBLAS_CHECK(cublasDgemmStridedBatched(h, mb.op, ma.op, n, m, k, &one, b.data<double>(), ld(mb.ld), sbb,
                                                   a.data<double>(), ld(ma.ld), sab, &zero, y.data<double>(), n,
                                                   M * N, int(batches)));
    } else {
      const float one = 1, zero = 0;
      THETA_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
      THETA_CUBLAS_CHECK(cublasSgemmStridedBatched(h, mb.op, ma.op, n, m, k, &one, b.data<float>(), ld(mb.ld), sbb,
                                                   a.data<float>(), ld(ma.ld), sab, &zero, y.data<float>(), n,
                                                   M * N, int(batches)));
    }
  }

  void gather(const Storage& x, const Storage& idx, std::int64_t axis, const Storage& y) override {
    Storage xc = contiguous_as(x, x.dtype), ic = transfer(idx, y.device());
    const AxisSplit s = split_at(xc.shape, axis);
    const std::int64_t m = ic.size();
    THETA_DISPATCH_ALL(x.dtype, T, {
      for_each_index(device, y.size(), GatherFn<T>{xc.data<T>(), ic.data<std::int64_t>(), y.data<T>(), m, s.n, s.inner},
                     "gather kernel");
    })
  }

  void scatter_add(const Storage& g, const Storage& idx, std::int64_t axis, const Storage& y) override {
    Storage gc = contiguous_as(g, y.dtype), ic = transfer(idx, y.device());
    const AxisSplit s = split_at(y.shape, axis);
    const std::int64_t m = ic.size();
    THETA_DISPATCH_NUMERIC(y.dtype, T, {
      for_each_index(device, gc.size(), ScatterFn<T>{gc.data<T>(), ic.data<std::int64_t>(), y.data<T>(), m, s.n, s.inner},
                     "scatter_add kernel");
    })
  }

  void im2col(const Storage& x, const ConvGeom& g, std::int64_t group, const Storage& col) override {
    if (x.dtype == DType::float32)
      for_each_index(device, col.size(), Im2colFn<float>{x.data<float>(), col.data<float>(), g, group}, "im2col kernel");
    else
      for_each_index(device, col.size(), Im2colFn<double>{x.data<double>(), col.data<double>(), g, group}, "im2col kernel");
  }

  bool factor(Factor k, const Storage& a, const Storage& b, std::vector<int>& info) override {
    return cuda::factor(device, k, a, b, info);
  }

  void col2im(const Storage& col, const ConvGeom& g, std::int64_t group, const Storage& x) override {
    const std::int64_t n = g.N * (g.C / g.G) * g.H * g.W;
    if (x.dtype == DType::float32)
      for_each_index(device, n, Col2imFn<float>{col.data<float>(), x.data<float>(), g, group}, "col2im kernel");
    else
      for_each_index(device, n, Col2imFn<double>{col.data<double>(), x.data<double>(), g, group}, "col2im kernel");
  }
};

Backend& backend(int device) {
  static CudaBackend* backends[64] = {};
  static std::mutex mu;
  stream(device);  // validates the index: DeviceError when there is no such GPU
  std::lock_guard<std::mutex> lock(mu);
  if (!backends[device]) backends[device] = new CudaBackend(device);  // NOTE: lives until exit
  return *backends[device];
}

}  // namespace th::detail::cuda
