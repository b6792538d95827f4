// softmax and log_softmax as primitives (API.md section 5; issue 28): one kernel pass per line
// (max, sum of exponentials, result), stable for any input, with their own gradient rules
//   softmax:     gx = y * (g - sum(g * y))
//   log_softmax: gx = g - exp(y) * sum(g)
// written in theta's ops, so they differentiate again and fuse. The cross-entropies read
// log_softmax of a softmax's operand (nn.cpp), and a frozen log(softmax(x)) becomes
// log_softmax(x) (rewrite_stability.cpp): no log of an underflowed 0 anywhere.
#include <cmath>
#include <limits>
#include <vector>

#include "core/dispatch.hpp"
#include "cpu/parallel.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

Meta infer_softmax(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (a.axis < 0 || std::size_t(a.axis) >= in[0].shape.size())
    throw_shape(op, "axis " + std::to_string(a.axis) + " is out of range", in);
  if (!is_floating(in[0].dtype)) throw_type(op, "takes float32 or float64", in);
  return {in[0].dtype, in[0].shape};
}

// Lines of n elements `inner` apart; a block of `inner` lines side by side is done together
// (the inner loop contiguous), with the running max and sum per line in `m` and `s`.
template <class T>
void softmax_block(const T* x, T* y, std::int64_t n, std::int64_t inner, bool log, T* m, T* s) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  for (std::int64_t i = 0; i < inner; ++i) m[i] = -inf, s[i] = 0;
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < inner; ++i) {
      const T v = x[j * inner + i];
      m[i] = v > m[i] || std::isnan(v) ? v : m[i];
    }
  for (std::int64_t i = 0; i < inner; ++i)
    if (std::isinf(m[i])) m[i] = 0;  // an all -inf (or +inf) line: x - m stays what it is
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < inner; ++i) {
      const T e = std::exp(x[j * inner + i] - m[i]);
      s[i] += e;
      if (!log) y[j * inner + i] = e;
    }
  if (log) {
    for (std::int64_t i = 0; i < inner; ++i) m[i] += std::log(s[i]);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < inner; ++i) y[j * inner + i] = x[j * inner + i] - m[i];
    return;
  }
  for (std::int64_t i = 0; i < inner; ++i) s[i] = T(1) / s[i];
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < inner; ++i) y[j * inner + i] *= s[i];
}

// Lines o in [lo, hi) of the (outer, n, inner) layout; the per-line max and sum in a per-thread
// scratch that a warm call does not reallocate.
template <class T>
struct Job {
  const T* x;
  T* y;
  std::int64_t n, inner;
  bool log;
  void run(std::int64_t lo, std::int64_t hi) const {
    thread_local std::vector<T> scratch;
    if (scratch.size() < std::size_t(2 * inner)) scratch.resize(std::size_t(2 * inner));
    for (std::int64_t o = lo; o < hi; ++o)
      softmax_block<T>(x + o * n * inner, y + o * n * inner, n, inner, log, scratch.data(), scratch.data() + inner);
  }
};

Tensor composed(bool log, const Tensor& x, std::int64_t axis);

Storage forward_softmax(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const bool log = op.code == 1;
  if (in[0]->device().type != Device::Type::cpu)  // another backend: its own elementwise ops and reductions
    return value_of(composed(log, make_constant(*in[0]), a.axis), op.name);
  Storage converted;  // (a warm call of a contiguous operand copies no shape: no allocation)
  const bool direct = in[0]->contiguous() && in[0]->dtype == out.dtype;
  if (!direct) converted = on_host(*in[0], out.dtype);
  const Storage& x = direct ? *in[0] : converted;
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  const AxisLines L(out.shape, a.axis);
  if (x.size() == 0) return y;
  THETA_DISPATCH_FLOAT(out.dtype, T, {
    // (one reference captured: std::function keeps it without allocating)
    const Job<T> job{x.data<T>(), y.data<T>(), L.n, L.inner, log};
    cpu::parallel_for(L.outer, L.n * L.inner * 16, [&job](std::int64_t lo, std::int64_t hi) { job.run(lo, hi); });
  })
  return y;
}

std::vector<Tensor> vjp_softmax(const Op& op, const VjpCtx& c) {
  const Axes ax(c.attrs.axis);
  if (op.code == 0) return {c.y * (c.g - sum(c.g * c.y, ax, true))};
  return {c.g - exp(c.y) * sum(c.g, ax, true)};
}

const Op op_softmax{"softmax", {1, 1}, 0, &infer_softmax, &forward_softmax, &vjp_softmax};
const Op op_log_softmax{"log_softmax", {1, 1}, 1, &infer_softmax, &forward_softmax, &vjp_softmax};

// The same maths in elementwise ops and reductions (for backends without the kernel).
Tensor composed(bool log, const Tensor& x, std::int64_t axis) {
  const Tensor z = x - stable_shift(x, Axes(axis));
  const Tensor e = exp(z);
  return log ? z - th::log(sum(e, Axes(axis), true)) : e / sum(e, Axes(axis), true);
}

Tensor apply_softmax(const Op& op, const Tensor& x, std::int64_t axis) {
  const Tensor xf = to_float(x, op.name);
  Attrs a;
  a.axis = norm_axis(op, axis, std::int64_t(node_of(xf, op.name).shape.size()), {meta_of(xf)});
  return apply(op, {xf}, std::move(a));
}

}  // namespace

const Op& softmax_op(bool log) { return log ? op_log_softmax : op_softmax; }

Tensor stable_shift(const Tensor& x, const Axes& axis) {
  const Tensor m = stop_gradient(max(x, axis, true));
  return where(abs(m) < std::numeric_limits<double>::infinity(), m, 0.0);
}

}  // namespace th::detail

namespace th {

Tensor softmax(const Tensor& x, std::int64_t axis) { return detail::apply_softmax(detail::op_softmax, x, axis); }
Tensor log_softmax(const Tensor& x, std::int64_t axis) { return detail::apply_softmax(detail::op_log_softmax, x, axis); }

}  // namespace th
