// Fused elementwise chains: blocks of kBlock elements; each instruction runs over the block
// with the same scalar formulas as the ordinary kernels (ops/elementwise_list.hpp).
#include "cpu/fused.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/parallel.hpp"
#include "cpu/scalar_math.hpp"
#include "ops/elementwise_list.hpp"

namespace th::detail::cpu {

namespace {

constexpr std::int64_t kBlock = 1024;

// y[i] = f(x[i * sx]) for a block; sx is 0 (broadcast) or 1.
#define THETA_FUSED_UNARY(name, rule, formula, vjp)                                \
  case UnaryKind::name:                                                             \
    for (std::int64_t i = 0; i < n; ++i) {                                          \
      const T x = xp[i * sx];                                                       \
      y[i] = static_cast<T>(formula);                                               \
    }                                                                               \
    break;
template <class T>
void unary_block(UnaryKind k, const T* xp, std::int64_t sx, T* y, std::int64_t n) {
  switch (k) { THETA_UNARY_OPS(THETA_FUSED_UNARY) }
}
#undef THETA_FUSED_UNARY

#define THETA_FUSED_BINARY(name, rule, formula, vjp_a, vjp_b)                      \
  case BinaryKind::name:                                                            \
    for (std::int64_t i = 0; i < n; ++i) {                                          \
      const T a = ap[i * sa], b = bp[i * sb];                                       \
      y[i] = static_cast<T>(formula);                                               \
    }                                                                               \
    break;
template <class T>
void binary_block(BinaryKind k, const T* ap, std::int64_t sa, const T* bp, std::int64_t sb, T* y, std::int64_t n) {
  switch (k) { THETA_BINARY_OPS(THETA_FUSED_BINARY) }
}
#undef THETA_FUSED_BINARY

template <class T>
void run_typed(const std::vector<FusedInstr>& code, const std::vector<const Storage*>& inputs, const Storage& out,
               std::int64_t total) {
  std::vector<const T*> base;
  std::vector<std::int64_t> step;  // 1: full size, 0: broadcast scalar
  for (const Storage* s : inputs) {
    base.push_back(s->data<T>());
    step.push_back(s->size() == 1 ? 0 : 1);
  }
  T* y = out.data<T>();
  const std::int64_t blocks = (total + kBlock - 1) / kBlock;
  parallel_for(blocks, kBlock * std::int64_t(code.size()), [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> temps(code.size() * std::size_t(kBlock));
    for (std::int64_t blk = lo; blk < hi; ++blk) {
      const std::int64_t off = blk * kBlock, n = std::min(kBlock, total - off);
      auto operand = [&](int o, std::int64_t& stride) -> const T* {
        if (o < 0) {
          const std::size_t e = std::size_t(-1 - o);
          stride = step[e];
          return base[e] + off * step[e];
        }
        stride = 1;
        return temps.data() + std::size_t(o) * kBlock;
      };
      for (std::size_t k = 0; k < code.size(); ++k) {
        const FusedInstr& c = code[k];
        T* dst = k + 1 == code.size() ? y + off : temps.data() + k * kBlock;
        std::int64_t sa = 0, sb = 0;
        const T* a = operand(c.a, sa);
        if (c.unary) {
          unary_block<T>(UnaryKind(c.code), a, sa, dst, n);
        } else {
          const T* b = operand(c.b, sb);
          binary_block<T>(BinaryKind(c.code), a, sa, b, sb, dst, n);
        }
      }
    }
  });
}

}  // namespace

bool run_fused(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
               const Storage& out) {
  if (dtype != DType::float32 && dtype != DType::float64) return false;
  const std::int64_t total = out.size();
  for (const Storage* s : inputs)
    if (s->dtype != dtype || !(s->size() == 1 || (s->size() == total && s->shape == out.shape && s->contiguous())))
      return false;
  if (total == 0) return true;
  if (dtype == DType::float32) run_typed<float>(code, inputs, out, total);
  else run_typed<double>(code, inputs, out, total);
  return true;
}

}  // namespace th::detail::cpu
