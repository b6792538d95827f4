// Batch and layer normalization (API.md section 16; batch's is Theano's theano.tensor.nnet.bn).
// batch_normalization_train is one step with several outputs (the normalized x, the batch mean,
// invstd and biased variance; the running statistics are composed from them): two kernel
// passes for the statistics per channel and one for the output. Its gradient is one step too
// (batch_normalization_train_grad: two passes), whose own gradient is written in theta's ops
// (so it differentiates twice and more). batch_normalization_test and layer_norm are composites.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/dispatch.hpp"
#include "cpu/multiversion.hpp"
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

// A plane's sum, and sum of squared deviations from mu, in double; float32 planes in vectors
// of double lanes (8 partial sums), built per CPU level: the statistics pass at memory speed.
typedef float F4 __attribute__((vector_size(16)));
typedef double D4 __attribute__((vector_size(32)));
THETA_MULTIVERSION double plane_sum(const float* p, std::int64_t n, double mu, bool squares) {
  D4 a0 = {0, 0, 0, 0}, a1 = a0;
  const D4 m = {mu, mu, mu, mu};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F4 f0, f1;
    std::memcpy(&f0, p + i, sizeof f0), std::memcpy(&f1, p + i + 4, sizeof f1);
    D4 d0 = __builtin_convertvector(f0, D4) - m, d1 = __builtin_convertvector(f1, D4) - m;
    if (squares) d0 *= d0, d1 *= d1;
    a0 += d0, a1 += d1;
  }
  const D4 a = a0 + a1;
  double r = (a[0] + a[1]) + (a[2] + a[3]);
  for (; i < n; ++i) {
    const double d = double(p[i]) - mu;
    r += squares ? d * d : d;
  }
  return r;
}
THETA_MULTIVERSION void plane_affine(const float* __restrict p, float* __restrict q, std::int64_t n, float scale, float shift) {
  for (std::int64_t i = 0; i < n; ++i) q[i] = p[i] * scale + shift;
}
double plane_sum(const double* p, std::int64_t n, double mu, bool squares) {
  double r = 0;
  for (std::int64_t i = 0; i < n; ++i) r += squares ? (p[i] - mu) * (p[i] - mu) : p[i] - mu;
  return r;
}
void plane_affine(const double* p, double* q, std::int64_t n, double scale, double shift) {
  for (std::int64_t i = 0; i < n; ++i) q[i] = p[i] * scale + shift;
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
      for (std::int64_t o = 0; o < outer; ++o) sum += plane_sum(x + (o * C + c) * inner, inner, 0.0, false);
      const double mu = sum / m;
      double sq = 0;
      for (std::int64_t o = 0; o < outer; ++o) sq += plane_sum(x + (o * C + c) * inner, inner, mu, true);
      const double v = sq / m, is = 1.0 / std::sqrt(v + eps);
      mean[c] = T(mu), invstd[c] = T(is), var[c] = T(v);
      const T scale = T(is * double(g[c])), shift = T(double(b[c]) - mu * is * double(g[c]));
      for (std::int64_t o = 0; o < outer; ++o) plane_affine(x + (o * C + c) * inner, y + (o * C + c) * inner, inner, scale, shift);
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

// ---- its gradient as one op: bn_grad(x, gamma, mean, invstd, gout) -> (gx, ggamma, gbeta) ------
// With xhat = (x - mean) invstd, gh = gout gamma, m the reduced count (per channel):
//   gx = invstd (gh - mean(gh) - xhat mean(gh xhat)),  ggamma = sum(gout xhat),  gbeta = sum(gout)
// mean and invstd taken as given (the forward op's VJP adds their own paths). On the CPU, two
// passes per channel: the sums, then gx as one multiply-add of gout and x.
std::vector<detail::Meta> bn_grad_parts(const detail::Op& op, const std::vector<detail::Meta>& in, const detail::Attrs& a) {
  const std::vector<detail::Meta> f = bn_parts(op, {in[0], in[1], in[1]}, a);
  for (std::size_t i = 2; i < 4; ++i)
    if (in[i].shape.size() != in[0].shape.size()) detail::throw_shape(op, "mean and invstd must have x's rank (kept form)", in);
  if (in[4].shape.size() != in[0].shape.size()) detail::throw_shape(op, "the output gradient must have x's rank", in);
  return {f[0], f[1], f[1]};
}

// sum(g) and sum(g (x - mu)) over a float32 plane, in double lanes.
THETA_MULTIVERSION void plane_grad_sums(const float* g, const float* x, std::int64_t n, double mu, double& sg, double& sgx) {
  D4 a0 = {0, 0, 0, 0}, a1 = a0, b0 = a0, b1 = a0;
  const D4 m = {mu, mu, mu, mu};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F4 g0, g1, x0, x1;
    std::memcpy(&g0, g + i, sizeof g0), std::memcpy(&g1, g + i + 4, sizeof g1);
    std::memcpy(&x0, x + i, sizeof x0), std::memcpy(&x1, x + i + 4, sizeof x1);
    const D4 dg0 = __builtin_convertvector(g0, D4), dg1 = __builtin_convertvector(g1, D4);
    a0 += dg0, a1 += dg1;
    b0 += dg0 * (__builtin_convertvector(x0, D4) - m), b1 += dg1 * (__builtin_convertvector(x1, D4) - m);
  }
  const D4 a = a0 + a1, b = b0 + b1;
  sg += (a[0] + a[1]) + (a[2] + a[3]);
  sgx += (b[0] + b[1]) + (b[2] + b[3]);
  for (; i < n; ++i) sg += double(g[i]), sgx += double(g[i]) * (double(x[i]) - mu);
}
THETA_MULTIVERSION void plane_grad_out(const float* __restrict g, const float* __restrict x, float* __restrict gx, std::int64_t n,
                                       float a, float b, float c) {
  for (std::int64_t i = 0; i < n; ++i) gx[i] = a * g[i] + b * x[i] + c;
}
void plane_grad_sums(const double* g, const double* x, std::int64_t n, double mu, double& sg, double& sgx) {
  for (std::int64_t i = 0; i < n; ++i) sg += g[i], sgx += g[i] * (x[i] - mu);
}
void plane_grad_out(const double* g, const double* x, double* gx, std::int64_t n, double a, double b, double c) {
  for (std::int64_t i = 0; i < n; ++i) gx[i] = a * g[i] + b * x[i] + c;
}

template <class T>
struct BnGradJob {
  const T *x, *gamma, *mean, *invstd, *g;
  T *gx, *ggamma, *gbeta;
  std::int64_t outer, C, inner;
  void run(std::int64_t lo, std::int64_t hi) const {  // channels [lo, hi)
    const double m = double(outer * inner);
    for (std::int64_t c = lo; c < hi; ++c) {
      const double mu = double(mean[c]), s = double(invstd[c]), ga = double(gamma[c]);
      double sg = 0, sgx = 0;
      for (std::int64_t o = 0; o < outer; ++o) plane_grad_sums(g + (o * C + c) * inner, x + (o * C + c) * inner, inner, mu, sg, sgx);
      ggamma[c] = T(s * sgx), gbeta[c] = T(sg);
      // gx = ga s g - ga s sg / m - (x - mu) ga s^3 sgx / m
      const double a = ga * s, b = -ga * s * s * s * sgx / m, k = -ga * s * sg / m - b * mu;
      for (std::int64_t o = 0; o < outer; ++o)
        plane_grad_out(g + (o * C + c) * inner, x + (o * C + c) * inner, gx + (o * C + c) * inner, inner, T(a), T(b), T(k));
    }
  }
};

void bn_grad_composed(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd, const Tensor& gout,
                      const Axes& red, Tensor* gx, Tensor* ggamma, Tensor* gbeta) {
  const Tensor xhat = (x - mean) * invstd;
  const Tensor gh = gout * gamma;
  *gx = invstd * (gh - th::mean(gh, red, true) - xhat * th::mean(gh * xhat, red, true));
  *ggamma = sum(gout * xhat, red, true);
  *gbeta = sum(gout, red, true);
}

detail::Storage forward_bn_grad(const detail::Op& op, const std::vector<const detail::Storage*>& in, const detail::Attrs& a,
                                const detail::Meta&) {
  std::vector<detail::Meta> metas;
  for (const detail::Storage* s : in) metas.push_back(detail::meta_of(*s));
  const std::vector<detail::Meta> outs = bn_grad_parts(op, metas, a);
  const DType dt = outs[0].dtype;
  std::int64_t outer, C, inner;
  bool host = channel_layout(in[0]->shape, a.axes, outer, C, inner);
  for (const detail::Storage* s : in) host = host && s->device().type == Device::Type::cpu;
  for (std::size_t i = 1; host && i < 4; ++i) host = in[i]->size() == C;
  host = host && detail::same_dims(in[4]->shape, in[0]->shape);
  if (!host) {  // another backend or layout (or operands that broadcast): the same maths in its ops
    Tensor gx, gg, gb;
    std::vector<Tensor> t;
    for (const detail::Storage* s : in) t.push_back(detail::make_constant(*s));
    bn_grad_composed(t[0], t[1], t[2], t[3], t[4], Axes(a.axes), &gx, &gg, &gb);
    return detail::make_tuple({detail::value_of(broadcast_to(gx, outs[0].shape), op.name), detail::value_of(gg, op.name),
                               detail::value_of(gb, op.name)});
  }
  std::vector<detail::Storage> h;
  for (const detail::Storage* s : in) h.push_back(detail::on_host(*s, dt));
  std::vector<detail::Storage> ys;
  for (const detail::Meta& m : outs) ys.push_back(detail::alloc_storage(dt, m.shape, th::cpu()));
  THETA_DISPATCH_FLOAT(dt, T, {
    const BnGradJob<T> job{h[0].data<T>(), h[1].data<T>(), h[2].data<T>(), h[3].data<T>(), h[4].data<T>(),
                           ys[0].data<T>(), ys[1].data<T>(), ys[2].data<T>(), outer, C, inner};
    detail::cpu::parallel_for(C, outer * inner * 4, [&job](std::int64_t lo, std::int64_t hi) { job.run(lo, hi); });
  })
  return detail::make_tuple(std::move(ys));
}

// Its own gradient (grad of grad), with A, B, Cb the gradients of gx, ggamma, gbeta and
// k = mean(gh xhat), a2 = mean(A xhat), P(v) = v - mean(v) - xhat mean(v xhat):
//   ggout = gamma invstd P(A) + B xhat + Cb        ggamma' = sum(invstd P(A) gout)
//   gxhat = -invstd (k A + a2 gh) + B gout         gx' = gxhat invstd
//   gmean' = -invstd sum(gxhat)                    ginvstd' = sum(gxhat (x - mean)) + sum(A gx / invstd)
std::vector<Tensor> vjp_bn_grad(const detail::Op&, const detail::VjpCtx& c) {
  const Tensor &x = c.x[0], &gamma = c.x[1], &mean = c.x[2], &invstd = c.x[3], &gout = c.x[4];
  const Axes red(c.attrs.axes);
  const Tensor &A = detail::part_grad(c, 0), &B = detail::part_grad(c, 1), &Cb = detail::part_grad(c, 2);
  const Tensor centered = x - mean, xhat = centered * invstd, gh = gout * gamma;
  Tensor ggout, ggamma, gxhat, ginv;
  auto add = [](Tensor& to, const Tensor& t) { to = to ? to + t : t; };
  if (A) {
    const Tensor pa = A - th::mean(A, red, true) - xhat * th::mean(A * xhat, red, true);
    const Tensor k = th::mean(gh * xhat, red, true), a2 = th::mean(A * xhat, red, true);
    add(ggout, gamma * invstd * pa);
    add(ggamma, sum(invstd * pa * gout, red, true));
    add(gxhat, -(invstd * (k * A + a2 * gh)));
    add(ginv, sum(A * (gh - th::mean(gh, red, true) - xhat * k), red, true));
  }
  if (B) {
    add(ggout, B * xhat);
    add(gxhat, B * gout);
  }
  if (Cb) add(ggout, detail::broadcast_like(Cb, x));
  Tensor gx, gmean;
  if (gxhat) {
    gx = gxhat * invstd;
    gmean = -(invstd * sum(gxhat, red, true));
    add(ginv, sum(gxhat * centered, red, true));
  }
  return {gx, ggamma, gmean, ginv, ggout};
}

const detail::Op op_bn_grad{"batch_normalization_train_grad", {5, 5}, 0, &detail::infer_tuple, &forward_bn_grad,
                            &vjp_bn_grad, 0, false, nullptr, &bn_grad_parts};

// The forward op's gradient: the gradient op above for gout; mean, invstd and var's own
// gradients (where they are used) as ops: d mean/dx = 1/m, d invstd/dx = -invstd^3 (x - mean)/m,
// d var/dx = 2 (x - mean)/m.
std::vector<Tensor> vjp_bn(const detail::Op& op, const detail::VjpCtx& c) {
  const std::vector<Tensor> y = detail::outputs_of(op, c);
  const Tensor &x = c.x[0], &gamma = c.x[1];
  const Tensor &mean = y[1], &invstd = y[2];
  const Axes red(c.attrs.axes);
  const DType dt = detail::node_of(x, op.name).dtype;
  const Tensor m = detail::count(x, red, dt);
  const Tensor &gout = detail::part_grad(c, 0), &gmean = detail::part_grad(c, 1), &ginv = detail::part_grad(c, 2),
               &gvar = detail::part_grad(c, 3);
  Tensor gx, ggamma, gbeta;
  if (gout) {
    detail::Attrs a;
    a.axes = c.attrs.axes;
    const std::vector<Tensor> g = detail::apply_parts(op_bn_grad, {x, gamma, mean, invstd, gout}, std::move(a));
    gx = g[0], ggamma = g[1], gbeta = g[2];
  }
  auto add = [&](const Tensor& t) { gx = gx ? gx + t : t; };
  if (gmean) add(detail::broadcast_like(gmean / m, x));
  if (ginv) add((x - mean) * (-(ginv * invstd * invstd * invstd) / m));
  if (gvar) add((x - mean) * (gvar * 2.0 / m));
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
