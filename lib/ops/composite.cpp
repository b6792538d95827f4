// Composite operations: built from primitives, so they carry no VJP of their own and
// differentiate (and later fuse) through their parts.
#include <limits>

#include "ops/op.hpp"

namespace th {

Tensor sqr(const Tensor& x) { return x * x; }  // y = x^2

Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi) { return minimum(maximum(x, lo), hi); }
Tensor clip(const Tensor& x, double lo, double hi) { return minimum(maximum(x, lo), hi); }

// y = sum(x) / n, in floatX for integer input
Tensor mean(const Tensor& x, Axes axis, bool keepdims) {
  DType d = detail::node_of(x, "mean").dtype;
  DType f = is_floating(d) ? d : floatX();
  Tensor s = sum(x, axis, keepdims);
  return (is_floating(d) ? s : cast(s, f)) / detail::count(x, axis, f);
}

// y = m + log(sum(exp(x - m))), m = max(x)
Tensor logsumexp(const Tensor& x, Axes axis, bool keepdims) {
  Tensor xf = detail::to_float(x, "float");
  Tensor m = detail::stable_shift(xf, axis);
  Tensor r = log(sum(exp(xf - m), axis, true)) + m;
  if (keepdims) return r;
  return axis.all ? reshape(r, {}) : squeeze(r, axis);
}

}  // namespace th
