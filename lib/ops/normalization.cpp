// Batch and layer normalization (API.md section 16; batch's is Theano's theano.tensor.nnet.bn): composites of
// reductions and elementwise ops, so they differentiate (twice, too), freeze and fuse through
// their parts; in a frozen function the statistics are computed once (common
// subexpressions) for all five results.
#include <algorithm>
#include <sstream>

#include "ops/op.hpp"
#include "theta/nn.hpp"

namespace th {

namespace {

using detail::Node;
using detail::node_of;

std::string axes_str(const std::vector<std::int64_t>& a) {
  std::ostringstream s;
  s << "(";
  for (std::size_t i = 0; i < a.size(); ++i) s << (i ? ", " : "") << a[i];
  s << (a.size() == 1 ? ",)" : ")");
  return s.str();
}

// The reduced axes: the user's (negative ones counted from the end; each once, in range), or
// Theano's defaults: (0,) for 2-d input ("per-activation"), (0, 2, ...) otherwise ("spatial").
std::vector<std::int64_t> bn_axes(const char* op, const Node& x, const std::vector<int>& user) {
  const auto nd = std::int64_t(x.shape.size());
  if (nd < 2)
    throw ShapeError(std::string(op) + ": x has shape " + shape_str(x.shape) +
                     "; batch normalization needs at least 2 dimensions (batch, features, ...) [" +
                     detail::display_name(x) + "]");
  std::vector<std::int64_t> a;
  if (user.empty()) {
    a.push_back(0);
    for (std::int64_t i = 2; i < nd; ++i) a.push_back(i);
    return a;
  }
  for (int v : user) {
    const std::int64_t k = v < 0 ? v + nd : v;
    if (k < 0 || k >= nd)
      throw ShapeError(std::string(op) + ": axis " + std::to_string(v) + " is out of range for x of shape " +
                       shape_str(x.shape) + " [" + detail::display_name(x) + "]");
    if (std::find(a.begin(), a.end(), k) != a.end())
      throw ShapeError(std::string(op) + ": axis " + std::to_string(v) + " is repeated in the axes");
    a.push_back(k);
  }
  std::sort(a.begin(), a.end());
  return a;
}

// A parameter (gamma, beta, statistics) broadcast against x: of x's shape with the reduced
// axes dropped (e.g. (C,)) or kept as 1 (e.g. (1, C, 1, 1)); returned in the kept form.
// `dropped` tells the caller which form it had (the results mean/invstd take gamma's).
Tensor as_kept(const char* op, const char* what, const Tensor& p, const Node& x, const std::vector<std::int64_t>& axes,
               bool* dropped = nullptr) {
  const Node& n = node_of(p, op);
  const auto nd = std::int64_t(x.shape.size());
  Shape kept(x.shape), drop;
  for (std::int64_t i = 0; i < nd; ++i) {
    const bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (reduced) kept[std::size_t(i)] = 1;
    else drop.push_back(x.shape[std::size_t(i)]);
  }
  auto fits = [](const Shape& have, const Shape& want) {
    if (have.size() != want.size()) return false;
    for (std::size_t i = 0; i < have.size(); ++i)
      if (have[i] >= 0 && want[i] >= 0 && have[i] != want[i]) return false;
    return true;
  };
  if (fits(n.shape, kept)) {
    if (dropped) *dropped = false;
    return p;
  }
  if (fits(n.shape, drop)) {
    if (dropped) *dropped = true;
    Tensor r = p;
    for (std::int64_t a : axes) r = expand_dims(r, a);
    return r;
  }
  throw ShapeError(std::string(op) + ": " + what + " has shape " + shape_str(n.shape) + " but x of shape " +
                   shape_str(x.shape) + " normalized over axes " + axes_str(axes) + " needs " + shape_str(drop) +
                   " or " + shape_str(kept) + " [" + detail::display_name(x) + ", " + detail::display_name(n) + "]");
}

// A result of the kept form as the parameter's form.
Tensor like_param(const Tensor& t, bool dropped, const std::vector<std::int64_t>& axes) {
  return dropped ? squeeze(t, Axes(axes)) : t;
}

void check_float(const char* op, const Node& x) {
  if (!is_floating(x.dtype))
    throw TypeError(std::string(op) + ": x is " + dtype_name(x.dtype) + "; batch normalization takes float32 or float64 [" +
                    detail::display_name(x) + "]");
}

}  // namespace

BatchNormTrain batch_normalization_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, std::vector<int> axes,
                                         double eps, double running_average_factor, const Tensor& running_mean,
                                         const Tensor& running_var) {
  const char* op = "batch_normalization_train";
  const Node& xn = node_of(x, op);
  check_float(op, xn);
  const std::vector<std::int64_t> ax = bn_axes(op, xn, axes);
  if (!(eps > 0)) throw ValueError(std::string(op) + ": eps must be positive, got " + std::to_string(eps));
  if (!(running_average_factor >= 0 && running_average_factor <= 1))
    throw ValueError(std::string(op) + ": running_average_factor must be in [0, 1], got " +
                     std::to_string(running_average_factor));
  if (bool(running_mean) != bool(running_var))
    throw ValueError(std::string(op) + ": give both running_mean and running_var, or neither");
  bool dropped = false;
  const Tensor g = as_kept(op, "gamma", gamma, xn, ax, &dropped);
  const Tensor b = as_kept(op, "beta", beta, xn, ax);
  const Axes red(ax);
  const Tensor mean = th::mean(x, red, true);
  const Tensor centered = x - mean;
  const Tensor var = th::mean(centered * centered, red, true);  // biased, as the normalization uses
  const Tensor invstd = 1.0 / sqrt(var + eps);
  BatchNormTrain r;
  r.out = centered * (invstd * g) + b;
  r.mean = like_param(mean, dropped, ax);
  r.invstd = like_param(invstd, dropped, ax);
  if (running_mean) {
    bool rm_dropped = false, rv_dropped = false;
    const Tensor rm = as_kept(op, "running_mean", running_mean, xn, ax, &rm_dropped);
    const Tensor rv = as_kept(op, "running_var", running_var, xn, ax, &rv_dropped);
    const Tensor m = detail::count(x, red, xn.dtype);  // the reduced elements; the unbiased variance's m / (m - 1)
    const Tensor unbiased = stop_gradient(var * (m / maximum(m - 1.0, 1.0)));
    const double f = running_average_factor;
    r.new_running_mean = like_param(rm * (1.0 - f) + stop_gradient(mean) * f, rm_dropped, ax);
    r.new_running_var = like_param(rv * (1.0 - f) + unbiased * f, rv_dropped, ax);
  }
  return r;
}

Tensor batch_normalization_test(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& var, std::vector<int> axes, double eps) {
  const char* op = "batch_normalization_test";
  const Node& xn = node_of(x, op);
  check_float(op, xn);
  const std::vector<std::int64_t> ax = bn_axes(op, xn, axes);
  if (!(eps > 0)) throw ValueError(std::string(op) + ": eps must be positive, got " + std::to_string(eps));
  const Tensor g = as_kept(op, "gamma", gamma, xn, ax), b = as_kept(op, "beta", beta, xn, ax);
  const Tensor m = as_kept(op, "mean", mean, xn, ax), v = as_kept(op, "var", var, xn, ax);
  // x * scale + shift: per-channel values computed once, one multiply-add per element, and
  // the form a frozen function folds into a preceding convolution (rewrite_conv_fuse.cpp)
  const Tensor scale = g / sqrt(v + eps);
  return x * scale + (b - m * scale);
}

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const char* op = "layer_norm";
  const Node& xn = node_of(x, op);
  const Node& gn = node_of(gamma, op);
  const Node& bn = node_of(beta, op);
  check_float(op, xn);
  if (!(eps > 0)) throw ValueError(std::string(op) + ": eps must be positive, got " + std::to_string(eps));
  const std::size_t k = gn.shape.size(), nd = xn.shape.size();
  auto names = [&] { return " [" + detail::display_name(xn) + ", " + detail::display_name(gn) + ", " + detail::display_name(bn) + "]"; };
  bool fits = k >= 1 && k <= nd && bn.shape == gn.shape;
  for (std::size_t i = 0; fits && i < k; ++i) {
    const std::int64_t have = gn.shape[i], want = xn.shape[nd - k + i];
    fits = have < 0 || want < 0 || have == want;
  }
  if (!fits)
    throw ShapeError(std::string(op) + ": gamma has shape " + shape_str(gn.shape) + " and beta " + shape_str(bn.shape) +
                     "; both must be x's trailing shape (x has shape " + shape_str(xn.shape) + ")" + names());
  std::vector<std::int64_t> ax;
  for (std::size_t i = nd - k; i < nd; ++i) ax.push_back(std::int64_t(i));
  const Axes red(ax);
  const Tensor mean = th::mean(x, red, true);
  const Tensor centered = x - mean;
  const Tensor invstd = 1.0 / sqrt(th::mean(centered * centered, red, true) + eps);
  return centered * invstd * gamma + beta;
}

}  // namespace th
