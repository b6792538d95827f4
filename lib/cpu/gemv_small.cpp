// Matrix-vector products too small for BLAS's call overhead to pay (a 125x4 GEMV costs
// OpenBLAS ~0.15 us of argument checks, a y = 0 pass and dispatch for ~0.02 us of work):
// AVX2+FMA kernels picked at run time, four values per vector, used below kSmallElements.
#include "cpu/gemv_small.hpp"

#include <cstddef>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define THETA_HAS_GEMV_SMALL 1
#endif

namespace th::detail::cpu {

#if defined(THETA_HAS_GEMV_SMALL)
namespace {

#define THETA_AVX2 __attribute__((target("avx2,fma")))

THETA_AVX2 inline double fma1(double a, double b, double c) { return __builtin_fma(a, b, c); }
THETA_AVX2 inline float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

// Four lanes of T: __m256d for double, __m128 for float (one FMA per four products both).
template <class T>
struct Lanes;
template <>
struct Lanes<double> {
  using V = __m256d;
  THETA_AVX2 static V zero() { return _mm256_setzero_pd(); }
  THETA_AVX2 static V load(const double* p) { return _mm256_loadu_pd(p); }
  THETA_AVX2 static V splat(double v) { return _mm256_set1_pd(v); }
  THETA_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  THETA_AVX2 static V add(V a, V b) { return _mm256_add_pd(a, b); }
  THETA_AVX2 static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  // (sum of a, sum of b, sum of c, sum of d)
  THETA_AVX2 static V sums(V a, V b, V c, V d) {
    const V ab = _mm256_hadd_pd(a, b), cd = _mm256_hadd_pd(c, d);
    return _mm256_add_pd(_mm256_permute2f128_pd(ab, cd, 0x20), _mm256_permute2f128_pd(ab, cd, 0x31));
  }
};
template <>
struct Lanes<float> {
  using V = __m128;
  THETA_AVX2 static V zero() { return _mm_setzero_ps(); }
  THETA_AVX2 static V load(const float* p) { return _mm_loadu_ps(p); }
  THETA_AVX2 static V splat(float v) { return _mm_set1_ps(v); }
  THETA_AVX2 static V fma(V a, V b, V c) { return _mm_fmadd_ps(a, b, c); }
  THETA_AVX2 static V add(V a, V b) { return _mm_add_ps(a, b); }
  THETA_AVX2 static void store(float* p, V v) { _mm_storeu_ps(p, v); }
  THETA_AVX2 static V sums(V a, V b, V c, V d) { return _mm_hadd_ps(_mm_hadd_ps(a, b), _mm_hadd_ps(c, d)); }
};

// (cpu/gemv_reference.hpp writes what these compute one value at a time.)
// y[i] = a[i, :] . b: four rows at a time, four products per FMA along the row; the row's
// last k % 4 products added one by one.
template <class T>
THETA_AVX2 void rows_kernel(std::int64_t m, std::int64_t k, const T* a, std::int64_t lda, const T* b, T* y) {
  using L = Lanes<T>;
  const std::int64_t k4 = k - k % 4;
  std::int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const T* r0 = a + i * lda;
    const T *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    auto c0 = L::zero(), c1 = L::zero(), c2 = L::zero(), c3 = L::zero();
    for (std::int64_t j = 0; j < k4; j += 4) {
      const auto v = L::load(b + j);
      c0 = L::fma(L::load(r0 + j), v, c0);
      c1 = L::fma(L::load(r1 + j), v, c1);
      c2 = L::fma(L::load(r2 + j), v, c2);
      c3 = L::fma(L::load(r3 + j), v, c3);
    }
    T s[4];
    L::store(s, L::sums(c0, c1, c2, c3));
    for (std::int64_t j = k4; j < k; ++j) {
      s[0] = fma1(r0[j], b[j], s[0]);
      s[1] = fma1(r1[j], b[j], s[1]);
      s[2] = fma1(r2[j], b[j], s[2]);
      s[3] = fma1(r3[j], b[j], s[3]);
    }
    for (int r = 0; r < 4; ++r) y[i + r] = s[r];
  }
  for (; i < m; ++i) {
    const T* r0 = a + i * lda;
    auto c0 = L::zero(), z = L::zero();
    for (std::int64_t j = 0; j < k4; j += 4) c0 = L::fma(L::load(r0 + j), L::load(b + j), c0);
    T s[4];
    L::store(s, L::sums(c0, z, z, z));
    for (std::int64_t j = k4; j < k; ++j) s[0] = fma1(r0[j], b[j], s[0]);
    y[i] = s[0];
  }
}

// y[j] = sum over i of b[i] * a[i, j]: four columns at a time, the rows taken four at a
// time into four independent sums (one FMA chain would wait on each result).
template <class T>
THETA_AVX2 void cols_kernel(std::int64_t k, std::int64_t n, const T* a, std::int64_t lda, const T* b, T* y) {
  using L = Lanes<T>;
  const std::int64_t k4 = k - k % 4;
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    auto c0 = L::zero(), c1 = L::zero(), c2 = L::zero(), c3 = L::zero();
    const T* col = a + j;
    for (std::int64_t i = 0; i < k4; i += 4) {
      c0 = L::fma(L::splat(b[i]), L::load(col + i * lda), c0);
      c1 = L::fma(L::splat(b[i + 1]), L::load(col + (i + 1) * lda), c1);
      c2 = L::fma(L::splat(b[i + 2]), L::load(col + (i + 2) * lda), c2);
      c3 = L::fma(L::splat(b[i + 3]), L::load(col + (i + 3) * lda), c3);
    }
    for (std::int64_t i = k4; i < k; ++i) c0 = L::fma(L::splat(b[i]), L::load(col + i * lda), c0);
    L::store(y + j, L::add(L::add(c0, c1), L::add(c2, c3)));
  }
  for (; j < n; ++j) {
    T s[4] = {0, 0, 0, 0};
    for (std::int64_t i = 0; i < k4; i += 4)
      for (int u = 0; u < 4; ++u) s[u] = fma1(b[i + u], a[(i + u) * lda + j], s[u]);
    for (std::int64_t i = k4; i < k; ++i) s[0] = fma1(b[i], a[i * lda + j], s[0]);
    y[j] = (s[0] + s[1]) + (s[2] + s[3]);
  }
}

bool have_avx2_fma() {
  static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  return yes;
}

}  // namespace

bool gemv_small_applies(std::int64_t rows, std::int64_t cols) { return rows * cols <= kSmallElements && have_avx2_fma(); }

template <class T>
bool gemv_small(bool trans, std::int64_t rows, std::int64_t cols, const T* a, std::int64_t lda, const T* b, T* y) {
  if (!gemv_small_applies(rows, cols)) return false;
  if (trans) cols_kernel<T>(rows, cols, a, lda, b, y);
  else rows_kernel<T>(rows, cols, a, lda, b, y);
  return true;
}
#else
bool gemv_small_applies(std::int64_t, std::int64_t) { return false; }

template <class T>
bool gemv_small(bool, std::int64_t, std::int64_t, const T*, std::int64_t, const T*, T*) {
  return false;
}
#endif

template bool gemv_small<float>(bool, std::int64_t, std::int64_t, const float*, std::int64_t, const float*, float*);
template bool gemv_small<double>(bool, std::int64_t, std::int64_t, const double*, std::int64_t, const double*, double*);

}  // namespace th::detail::cpu
