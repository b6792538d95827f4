// Elementwise kernels, generated from core/elementwise_list.hpp: one typed loop per op.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/cpu_backend.hpp"
#include "cpu/multiversion.hpp"
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

// One innermost line of y = f(x): a plain loop per layout, so that the compiler vectorises
// the contiguous one.
template <class T, class F>
__attribute__((always_inline)) inline void unary_row(F f, char** p, const std::int64_t* s, std::int64_t n) {
  T* yp = reinterpret_cast<T*>(p[0]);
  const T* xp = reinterpret_cast<const T*>(p[1]);
  if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
    for (std::int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      *reinterpret_cast<T*>(p[0] + i * s[0]) = f(*reinterpret_cast<const T*>(p[1] + i * s[1]));
  }
}

// One innermost line of y = f(a, b), b or a possibly one broadcast element (stride 0).
template <class T, class O, class F>
__attribute__((always_inline)) inline void binary_row(F f, char** p, const std::int64_t* s, std::int64_t n) {
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
}

[[maybe_unused]] constexpr bool keep_is_compare = false, to_float_is_compare = false, arith_is_compare = false,
               divide_is_compare = false, compare_is_compare = true;

#define THETA_UNARY_CASE(name, rule, formula, vjp) \
  case UnaryKind::name:                             \
    unary_row<T>([](T x) { return static_cast<T>(formula); }, p, s, n); \
    break;
template <class T>
__attribute__((always_inline)) inline void unary_kind_row(UnaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  switch (k) { THETA_UNARY_OPS(THETA_UNARY_CASE) }
}
#undef THETA_UNARY_CASE

#define THETA_BINARY_CASE(name, rule, formula, vjp_a, vjp_b)                         \
  case BinaryKind::name:                                                             \
    if constexpr (rule##_is_compare)                                                 \
      binary_row<T, bool>([](T a, T b) { return formula; }, p, s, n);                \
    else                                                                             \
      binary_row<T, T>([](T a, T b) { return static_cast<T>(formula); }, p, s, n);   \
    break;
template <class T>
__attribute__((always_inline)) inline void binary_kind_row(BinaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  switch (k) { THETA_BINARY_OPS(THETA_BINARY_CASE) }
}
#undef THETA_BINARY_CASE

// The floating-point lines built per CPU level (cpu/multiversion.hpp), as the fused blocks
// are: the same formulas, contracted the same way, so fused and eager results agree.
THETA_MULTIVERSION void unary_row_f32(UnaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  unary_kind_row<float>(k, p, s, n);
}
THETA_MULTIVERSION void unary_row_f64(UnaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  unary_kind_row<double>(k, p, s, n);
}
THETA_MULTIVERSION void binary_row_f32(BinaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  binary_kind_row<float>(k, p, s, n);
}
THETA_MULTIVERSION void binary_row_f64(BinaryKind k, char** p, const std::int64_t* s, std::int64_t n) {
  binary_kind_row<double>(k, p, s, n);
}

template <class T>
void unary_typed(UnaryKind k, const Storage& x, const Storage& y) {
  for_each_strided<2>(y.shape, {&y, &x}, [k](char** p, const std::int64_t* s, std::int64_t n) {
    if constexpr (std::is_same_v<T, float>) unary_row_f32(k, p, s, n);
    else if constexpr (std::is_same_v<T, double>) unary_row_f64(k, p, s, n);
    else unary_kind_row<T>(k, p, s, n);
  }, cost_of(k));
}

template <class T>
void binary_typed(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) {
  for_each_strided<3>(y.shape, {&y, &a, &b}, [k](char** p, const std::int64_t* s, std::int64_t n) {
    if constexpr (std::is_same_v<T, float>) binary_row_f32(k, p, s, n);
    else if constexpr (std::is_same_v<T, double>) binary_row_f64(k, p, s, n);
    else binary_kind_row<T>(k, p, s, n);
  }, cost_of(k));
}

}  // namespace

void CpuBackend::unary(UnaryKind k, const Storage& x, const Storage& y) {
  THETA_DISPATCH_NUMERIC(y.dtype, T, unary_typed<T>(k, x, y))
}

void CpuBackend::binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) {
  THETA_DISPATCH_NUMERIC(a.dtype, T, binary_typed<T>(k, a, b, y))
}

}  // namespace th::detail::cpu
