// The scalar formulas of the elementwise ops that are more than an expression (see
// core/elementwise_list.hpp); the CPU kernels (plain and fused) and the CUDA kernels
// (cuda/backend.cu, compiled by nvcc) all use them, so every backend computes the same.
// NVRTC compiles this same text into every fused kernel (cuda/fused.cpp), with its own
// minimal std:: (no system headers there).
#pragma once
#ifndef __CUDACC_RTC__
#include <cmath>
#include <type_traits>
#endif

#ifdef __CUDACC__
#define THETA_HD __host__ __device__
#else
#define THETA_HD
#endif

namespace th::detail {

// a * b + c rounded once. The formulas below spell out every fused multiply-add they use, and
// everything (the eager kernels, the fused interpreter, the native tier's generated code) is
// compiled with -ffp-contract=off, so that no compiler or CPU level chooses them: the same
// formula gives the same bits in every form on every x86-64 CPU (where the CPU has no FMA
// unit, the C library's fmaf computes it exactly, more slowly).
template <class T>
THETA_HD inline T fmadd(T a, T b, T c) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
  if constexpr (std::is_same_v<T, float>) return fmaf(a, b, c);
  else return fma(a, b, c);
#else
  if constexpr (std::is_same_v<T, float>) return __builtin_fmaf(a, b, c);
  else return __builtin_fma(a, b, c);
#endif
}

// float32 tanh as a branch-free rational function (a clamp, then x P(x^2) / Q(x^2)), so the
// compiler vectorises the loop: within 3.3e-7 relative of tanh (about 3 ulp; checked on a
// 1e-4 grid over [-20, 20], tests/test_tensor.cpp checks it). float64 keeps libm's tanh.
// float32 erf as a branch-free rational function (a clamp to [-4, 4], where erf is 1 in
// float32, then x P(x^2) / Q(x^2)), so the compiler vectorises it (gelu's pass): within
// 3.8e-7 of erf (about 3 ulp; checked on a 7e-4 grid over [-6, 6]; tests/test_grad_ops.cpp
// checks it). float64 keeps libm's erf.
template <class T>
THETA_HD inline T erf_scalar(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const float lo = x < -4.0f ? -4.0f : x;  // NaN stays NaN
    const float xc = lo > 4.0f ? 4.0f : lo, x2 = xc * xc;
    float p = -2.72614225801306e-10f;
    p = fmadd(p, x2, 2.77068142495902e-08f);
    p = fmadd(p, x2, -2.10102402082508e-06f);
    p = fmadd(p, x2, -5.69250639462346e-05f);
    p = fmadd(p, x2, -7.34990630326855e-04f);
    p = fmadd(p, x2, -2.95459980854025e-03f);
    p = fmadd(p, x2, -1.60960333262415e-02f);
    float q = -1.45660718464996e-05f;
    q = fmadd(q, x2, -2.13374055278905e-04f);
    q = fmadd(q, x2, -1.68282697438203e-03f);
    q = fmadd(q, x2, -7.37332916720468e-03f);
    q = fmadd(q, x2, -1.42647390514189e-02f);
    return xc * p / q;
  } else {
    return std::erf(x);
  }
}

template <class T>
THETA_HD inline T tanh_scalar(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const float c = 7.90531110763549805f;  // tanh is 1 - 2.6e-7 here: the rational's end
    const float lo = x < -c ? -c : x;  // NaN stays NaN (the comparisons are false)
    const float xc = lo > c ? c : lo, x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = fmadd(p, x2, 2.00018790482477e-13f);
    p = fmadd(p, x2, -8.60467152213735e-11f);
    p = fmadd(p, x2, 5.12229709037114e-08f);
    p = fmadd(p, x2, 1.48572235717979e-05f);
    p = fmadd(p, x2, 6.37261928875436e-04f);
    p = fmadd(p, x2, 4.89352455891786e-03f);
    float q = 1.19825839466702e-06f;
    q = fmadd(q, x2, 1.18534705686654e-04f);
    q = fmadd(q, x2, 2.26843463243900e-03f);
    q = fmadd(q, x2, 4.89352518554385e-03f);
    return xc * p / q;
  } else {
    return std::tanh(x);
  }
}

// float32 e^x without a libm call, so that loops over it vectorise (Cephes' expf): x = n ln2
// + r with |r| <= ln2/2 (n rounded by the 1.5 * 2^23 trick, ln2 split in two for an exact
// reduction), e^r by a degree-7 polynomial, times 2^n built in the exponent bits (in two
// halves, so subnormal results and overflow to inf come out right). Within 2 ulp of expf
// (tests/test_tensor.cpp checks it). GPUs keep their own expf.
THETA_HD inline float exp_f32(float x) {
#ifdef __CUDA_ARCH__
  return expf(x);
#else
  const bool nan = x != x;
  float xc = x < -104.0f ? -104.0f : x;  // e^-104 rounds to 0 in float32
  xc = xc > 89.0f ? 89.0f : xc;          // e^89 overflows to inf
  xc = nan ? 0.0f : xc;                  // (no float-to-int conversion of NaN)
  const float magic = 12582912.0f;       // 1.5 * 2^23: adding it rounds to an integer
  const float t = fmadd(xc, 1.44269504088896341f, magic);
  const float n = t - magic;
  float r = fmadd(-n, 0.693359375f, xc);
  r = fmadd(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmadd(p, r, 1.3981999507e-3f);
  p = fmadd(p, r, 8.3334519073e-3f);
  p = fmadd(p, r, 4.1665795894e-2f);
  p = fmadd(p, r, 1.6666665459e-1f);
  p = fmadd(p, r, 5.0000001201e-1f);
  p = fmadd(p * r, r, r) + 1.0f;
  const int ni = static_cast<int>(n), n1 = ni / 2, n2 = ni - n1;
  const int b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
  float s1, s2;
  __builtin_memcpy(&s1, &b1, 4);
  __builtin_memcpy(&s2, &b2, 4);
  const float y = p * s1 * s2;
  return nan ? x : y;
#endif
}

template <class T>
THETA_HD inline T sigmoid_scalar(T x) {
  if constexpr (std::is_same_v<T, float>) {  // branch-free, so the loop vectorises
    const float e = exp_f32(x < 0 ? x : -x), r = 1.0f / (1.0f + e);  // e = e^-|x|
    return x >= 0 ? r : e * r;
  } else {
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
  }
}
template <class T>
THETA_HD inline T relu_scalar(T x) {  // max(x, 0), NaN kept (as numpy.maximum)
  return x > T(0) ? x : (x != x ? x : T(0));
}
template <class T>
THETA_HD inline T softplus_scalar(T x) {  // log(1 + e^x) without overflow
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
// NOTE: integer arithmetic wraps (two's complement), as numpy; signed overflow is UB in C++.
template <class T>
THETA_HD inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) + std::make_unsigned_t<T>(b));
  else return a + b;
}
template <class T>
THETA_HD inline T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) - std::make_unsigned_t<T>(b));
  else return a - b;
}
template <class T>
THETA_HD inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) * std::make_unsigned_t<T>(b));
  else return a * b;
}
template <class T>
THETA_HD inline T pow_scalar(T a, T b) {
  if constexpr (std::is_integral_v<T>) {  // exact integer power; negative exponents give 0 (|a| != 1)
    if (b < 0) return a == 1 ? T(1) : a == -1 ? (b % 2 ? T(-1) : T(1)) : T(0);
    T r = 1, base = a;
    for (auto e = b; e > 0; e >>= 1) {
      if (e & 1) r = wrap_mul(r, base);
      base = wrap_mul(base, base);
    }
    return r;
  } else {
    return std::pow(a, b);
  }
}
template <class T>
THETA_HD inline T max_scalar(T a, T b) {  // propagates NaN from either side, as numpy.maximum
  return (a >= b || a != a) ? a : b;
}
template <class T>
THETA_HD inline T min_scalar(T a, T b) {
  return (a <= b || a != a) ? a : b;
}

}  // namespace th::detail
