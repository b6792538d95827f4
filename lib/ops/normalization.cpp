// Batch and layer normalization (API.md section 16; batch's is Theano's theano.tensor.nnet.bn).
// batch_normalization_train is one step with several outputs (the normalized x, the batch mean,
// invstd and biased variance; the running statistics are composed from them): one kernel
// pass for the statistics per channel and one for the output, and a backward rule in theta's
// ops (so it differentiates twice). batch_normalization_test and layer_norm are composites.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/dispatch.hpp"
#include "cpu/parallel.hpp"
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

// ---- the training step as one op: bn(x, gamma, beta) -> (out, mean, invstd, var) ------------------
// gamma and beta in the kept form (x's shape, the reduced axes 1); attrs.axes the reduced axes
// (sorted), attrs.scale eps. mean, invstd and the biased var have the kept shape.
std::vector<detail::Meta> bn_parts(const detail::Op& op, const std::vector<detail::Meta>& in, const detail::Attrs& a) {
  Shape kept = in[0].shape;
  for (std::int64_t ax : a.axes) {
    if (ax < 0 || std::size_t(ax) >= kept.size()) detail::throw_shape(op, "an axis is out of range", in);
    kept[std::size_t(ax)] = 1;
  }
  for (std::size_t i = 1; i < in.size(); ++i)
    if (in[i].shape.size() != kept.size()) detail::throw_shape(op, "gamma and beta must have x's rank (kept form)", in);
  const DType d = in[0].dtype;
  return {{d, in[0].shape}, {d, kept}, {d, kept}, {d, kept}};
}

// x's layout as (outer, C, inner) with C the kept axes, when they are one contiguous run.
bool channel_layout(const Shape& s, const std::vector<std::int64_t>& axes, std::int64_t& outer, std::int64_t& C,
                    std::int64_t& inner) {
  std::int64_t first = -1, last = -1;
  for (std::int64_t i = 0; i < std::int64_t(s.size()); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) {
      if (first < 0) first = i;
      else if (last != i - 1) return false;
      last = i;
    }
  outer = C = inner = 1;
  for (std::int64_t i = 0; i < std::int64_t(s.size()); ++i)
    (first < 0 || i < first ? outer : i <= last ? C : inner) *= s[std::size_t(i)];
  if (first < 0) C = 1;
  return true;
}

template <class T>
struct BnJob {
  const T *x, *g, *b;
  T *y, *mean, *invstd, *var;
  std::int64_t outer, C, inner;
  double eps;
  void run(std::int64_t lo, std::int64_t hi) const {  // channels [lo, hi)
    const double m = double(outer * inner);
    for (std::int64_t c = lo; c < hi; ++c) {
      double sum = 0;
      for (std::int64_t o = 0; o < outer; ++o) {
        const T* p = x + (o * C + c) * inner;
        for (std::int64_t i = 0; i < inner; ++i) sum += double(p[i]);
      }
      const double mu = sum / m;
      double sq = 0;
      for (std::int64_t o = 0; o < outer; ++o) {
        const T* p = x + (o * C + c) * inner;
        for (std::int64_t i = 0; i < inner; ++i) sq += (double(p[i]) - mu) * (double(p[i]) - mu);
      }
      const double v = sq / m, is = 1.0 / std::sqrt(v + eps);
      mean[c] = T(mu), invstd[c] = T(is), var[c] = T(v);
      const T scale = T(is * double(g[c])), shift = T(double(b[c]) - mu * is * double(g[c]));
      for (std::int64_t o = 0; o < outer; ++o) {
        const T* p = x + (o * C + c) * inner;
        T* q = y + (o * C + c) * inner;
        for (std::int64_t i = 0; i < inner; ++i) q[i] = p[i] * scale + shift;
      }
    }
  }
};

Tensor bn_composed(const Tensor& x, const Tensor& g, const Tensor& b, const Axes& red, double eps, Tensor* mean,
                   Tensor* invstd, Tensor* var);

detail::Storage forward_bn(const detail::Op& op, const std::vector<const detail::Storage*>& in, const detail::Attrs& a,
                   const detail::Meta&) {
  const std::vector<detail::Meta> outs =
      bn_parts(op, {detail::meta_of(*in[0]), detail::meta_of(*in[1]), detail::meta_of(*in[2])}, a);
  const DType dt = outs[0].dtype;
  std::int64_t outer, C, inner;
  if (in[0]->device().type != Device::Type::cpu || !channel_layout(in[0]->shape, a.axes, outer, C, inner)) {
    // another backend, or kept axes that are not one run: the same maths in its ops
    Tensor mean, invstd, var;
    const Tensor out = bn_composed(detail::make_constant(*in[0]), detail::make_constant(*in[1]),
                                   detail::make_constant(*in[2]), Axes(a.axes), a.scale, &mean, &invstd, &var);
    return detail::make_tuple({detail::value_of(out, op.name), detail::value_of(mean, op.name),
                               detail::value_of(invstd, op.name), detail::value_of(var, op.name)});
  }
  const detail::Storage x = detail::on_host(*in[0], dt), g = detail::on_host(*in[1], dt), b = detail::on_host(*in[2], dt);
  std::vector<detail::Storage> ys;
  for (const detail::Meta& m : outs) ys.push_back(detail::alloc_storage(dt, m.shape, th::cpu()));
  THETA_DISPATCH_FLOAT(dt, T, {
    const BnJob<T> job{x.data<T>(), g.data<T>(), b.data<T>(), ys[0].data<T>(), ys[1].data<T>(), ys[2].data<T>(),
                       ys[3].data<T>(), outer, C, inner, a.scale};
    detail::cpu::parallel_for(C, outer * inner * 4, [&job](std::int64_t lo, std::int64_t hi) { job.run(lo, hi); });
  })
  return detail::make_tuple(std::move(ys));
}

// out = xhat g + b, xhat = (x - mean) invstd, m the reduced count:
//   gx = invstd g (gout - mean(gout) - xhat mean(gout xhat)) + gmean / m
//        - ginvstd invstd^3 (x - mean) / m + gvar 2 (x - mean) / m
//   ggamma = sum(gout xhat), gbeta = sum(gout)   (over the reduced axes, kept)
std::vector<Tensor> vjp_bn(const detail::Op& op, const detail::VjpCtx& c) {
  const std::vector<Tensor> y = detail::outputs_of(op, c);
  const Tensor &x = c.x[0], &gamma = c.x[1];
  const Tensor &mean = y[1], &invstd = y[2];
  const Axes red(c.attrs.axes);
  const DType dt = detail::node_of(x, op.name).dtype;
  const Tensor m = detail::count(x, red, dt);
  const Tensor centered = x - mean;
  const Tensor &gout = detail::part_grad(c, 0), &gmean = detail::part_grad(c, 1), &ginv = detail::part_grad(c, 2),
               &gvar = detail::part_grad(c, 3);
  Tensor gx, ggamma, gbeta;
  if (gout) {
    const Tensor xhat = centered * invstd;
    const Tensor gh = gout * gamma;
    gx = invstd * (gh - th::mean(gh, red, true) - xhat * th::mean(gh * xhat, red, true));
    ggamma = sum(gout * xhat, red, true);
    gbeta = sum(gout, red, true);
  }
  auto add = [&](const Tensor& t) { gx = gx ? gx + t : t; };
  if (gmean) add(detail::broadcast_like(gmean / m, x));
  if (ginv) add(centered * (-(ginv * invstd * invstd * invstd) / m));
  if (gvar) add(centered * (gvar * 2.0 / m));
  return {gx, ggamma, gbeta};
}

const detail::Op op_bn{"batch_normalization_train", {3, 3}, 0, &detail::infer_tuple, &forward_bn, &vjp_bn, 0, false,
                       nullptr, &bn_parts};

// The training step's maths in theta's ops (for other backends and other layouts; layer_norm's,
// over the trailing axes).
Tensor bn_composed(const Tensor& x, const Tensor& g, const Tensor& b, const Axes& red, double eps, Tensor* mean,
                   Tensor* invstd, Tensor* var) {
  *mean = th::mean(x, red, true);
  const Tensor centered = x - *mean;
  *var = th::mean(centered * centered, red, true);
  *invstd = 1.0 / sqrt(*var + eps);
  return centered * (*invstd * g) + b;
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
  detail::Attrs a;
  a.axes = ax;
  a.scale = eps;
  const std::vector<Tensor> parts = detail::apply_parts(op_bn, {x, g, b}, std::move(a));
  const Tensor &mean = parts[1], &invstd = parts[2], &var = parts[3];  // var: biased, as the normalization uses
  BatchNormTrain r;
  r.out = parts[0];
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
  Tensor mean, invstd, var;  // batch normalization's maths over the trailing axes
  return bn_composed(x, gamma, beta, Axes(ax), eps, &mean, &invstd, &var);
}

}  // namespace th
