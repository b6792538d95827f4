// The activations of API.md section 16, composed of elementwise primitives (erf and expm1 are
// primitives of core/elementwise_list.hpp), so each fuses into its neighbours' pass in a frozen
// function as section 3's do, differentiates (twice, too) and runs on every backend.
#include <cmath>

#include "ops/op.hpp"

namespace th {

namespace {
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
}  // namespace

// expm1 of min(x, 0): the branch where() does not take never overflows, so its (zero)
// gradient is not 0 * inf.
Tensor elu(const Tensor& x, double alpha) {
  const Tensor xf = detail::to_float(x, "elu");
  return where(xf > 0.0, xf, expm1(minimum(xf, 0.0)) * alpha);
}
Tensor selu(const Tensor& x) { return elu(x, kSeluAlpha) * kSeluScale; }
Tensor leaky_relu(const Tensor& x, double slope) {
  const Tensor xf = detail::to_float(x, "leaky_relu");
  return where(xf > 0.0, xf, xf * slope);
}
Tensor silu(const Tensor& x) {
  const Tensor xf = detail::to_float(x, "silu");
  return xf * sigmoid(xf);
}
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  const Tensor xf = detail::to_float(x, "gelu");
  if (!tanh_approximation) return xf * (1.0 + erf(xf * M_SQRT1_2)) * 0.5;
  const double k = std::sqrt(2.0 / M_PI);
  return xf * (1.0 + tanh((xf + xf * xf * xf * 0.044715) * k)) * 0.5;
}
Tensor softsign(const Tensor& x) {
  const Tensor xf = detail::to_float(x, "softsign");
  return xf / (abs(xf) + 1.0);
}
Tensor hard_sigmoid(const Tensor& x) { return clip(detail::to_float(x, "hard_sigmoid") / 6.0 + 0.5, 0.0, 1.0); }

}  // namespace th
