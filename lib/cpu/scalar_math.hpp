// The scalar formulas of the elementwise ops that are more than an expression (see
// ops/elementwise_list.hpp); the ordinary kernels and the fused ones both use them.
#pragma once
#include <algorithm>
#include <cmath>
#include <type_traits>

namespace th::detail::cpu {

// float32 tanh as a branch-free rational function (a clamp, then x P(x^2) / Q(x^2)), so the
// compiler vectorises the loop: within 3.3e-7 relative of tanh (about 3 ulp; checked on a
// 1e-4 grid over [-20, 20], tests/test_tensor.cpp checks it). float64 keeps libm's tanh.
template <class T>
inline T tanh_scalar(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const float c = 7.90531110763549805f;  // tanh is 1 - 2.6e-7 here: the rational's end
    const float xc = std::min(std::max(x, -c), c), x2 = xc * xc;  // NaN stays NaN
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return xc * p / q;
  } else {
    return std::tanh(x);
  }
}

template <class T>
inline T sigmoid_scalar(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T>
inline T softplus_scalar(T x) {  // log(1 + e^x) without overflow
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
// NOTE: integer arithmetic wraps (two's complement), as numpy; signed overflow is UB in C++.
template <class T>
inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) + std::make_unsigned_t<T>(b));
  else return a + b;
}
template <class T>
inline T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) - std::make_unsigned_t<T>(b));
  else return a - b;
}
template <class T>
inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(a) * std::make_unsigned_t<T>(b));
  else return a * b;
}
template <class T>
inline T pow_scalar(T a, T b) {
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
inline T max_scalar(T a, T b) {  // propagates NaN from either side, as numpy.maximum
  return (a >= b || a != a) ? a : b;
}
template <class T>
inline T min_scalar(T a, T b) {
  return (a <= b || a != a) ? a : b;
}

}  // namespace th::detail::cpu
