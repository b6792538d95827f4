// Elementwise kernels, generated from ops/elementwise_list.hpp: one typed loop per op.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/cpu_backend.hpp"
#include "core/scalar_math.hpp"
#include "cpu/strided.hpp"
#include "theta/error.hpp"

namespace th::detail::cpu {

namespace {

// Relative cost of one element, for the decision to use several threads.
constexpr std::int64_t cost_of(UnaryKind k) {
  return k == UnaryKind::neg || k == UnaryKind::abs || k == UnaryKind::sign ? 1 : 16;
}
constexpr std::int64_t cost_of(BinaryKind k) { return k == BinaryKind::pow ? 16 : 1; }

template <class T, class F>
void unary_loop(const Storage& x, const Storage& y, F f, std::int64_t cost) {
  for_each_strided<2>(y.shape, {&y, &x}, [&f](char** p, const std::int64_t* s, std::int64_t n) {
    T* yp = reinterpret_cast<T*>(p[0]);
    const T* xp = reinterpret_cast<const T*>(p[1]);
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
      for (std::int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
    } else {
      for (std::int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(p[0] + i * s[0]) = f(*reinterpret_cast<const T*>(p[1] + i * s[1]));
    }
  }, cost);
}

template <class T, class O, class F>
void binary_loop(const Storage& a, const Storage& b, const Storage& y, F f, std::int64_t cost) {
  for_each_strided<3>(y.shape, {&y, &a, &b}, [&f](char** p, const std::int64_t* s, std::int64_t n) {
    O* yp = reinterpret_cast<O*>(p[0]);
    const T* ap = reinterpret_cast<const T*>(p[1]);
    const T* bp = reinterpret_cast<const T*>(p[2]);
    if (s[0] == sizeof(O) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
      for (std::int64_t i = 0; i < n; ++i) yp[i] = static_cast<O>(f(ap[i], bp[i]));
    } else if (s[0] == sizeof(O) && s[1] == sizeof(T) && s[2] == 0) {
      const T bv = *bp;
      for (std::int64_t i = 0; i < n; ++i) yp[i] = static_cast<O>(f(ap[i], bv));
    } else if (s[0] == sizeof(O) && s[1] == 0 && s[2] == sizeof(T)) {
      const T av = *ap;
      for (std::int64_t i = 0; i < n; ++i) yp[i] = static_cast<O>(f(av, bp[i]));
    } else {
      for (std::int64_t i = 0; i < n; ++i)
        *reinterpret_cast<O*>(p[0] + i * s[0]) = static_cast<O>(
            f(*reinterpret_cast<const T*>(p[1] + i * s[1]), *reinterpret_cast<const T*>(p[2] + i * s[2])));
    }
  }, cost);
}

constexpr bool keep_is_compare = false, to_float_is_compare = false, arith_is_compare = false,
               divide_is_compare = false, compare_is_compare = true;

}  // namespace

#define THETA_UNARY_CASE(name, rule, formula, vjp) \
  case UnaryKind::name:                                                                            \
    unary_loop<T>(x, y, [](T x) { return static_cast<T>(formula); }, cost_of(UnaryKind::name));    \
    break;
template <class T>
void unary_typed(UnaryKind k, const Storage& x, const Storage& y) {
  switch (k) { THETA_UNARY_OPS(THETA_UNARY_CASE) }
}
#undef THETA_UNARY_CASE

#define THETA_BINARY_CASE(name, rule, formula, vjp_a, vjp_b)                                          \
  case BinaryKind::name:                                                                              \
    if constexpr (rule##_is_compare)                                                                  \
      binary_loop<T, bool>(a, b, y, [](T a, T b) { return formula; }, cost_of(BinaryKind::name));      \
    else                                                                                              \
      binary_loop<T, T>(a, b, y, [](T a, T b) { return static_cast<T>(formula); }, cost_of(BinaryKind::name)); \
    break;
template <class T>
void binary_typed(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) {
  switch (k) { THETA_BINARY_OPS(THETA_BINARY_CASE) }
}
#undef THETA_BINARY_CASE

void CpuBackend::unary(UnaryKind k, const Storage& x, const Storage& y) {
  THETA_DISPATCH_NUMERIC(y.dtype, T, unary_typed<T>(k, x, y))
}

void CpuBackend::binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) {
  THETA_DISPATCH_NUMERIC(a.dtype, T, binary_typed<T>(k, a, b, y))
}

}  // namespace th::detail::cpu
