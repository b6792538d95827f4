// Property-based graph testing: random expression graphs over the operations of API.md
// section 3 (random shapes with broadcasting, random axes and keepdims, mixed dtypes),
// each checked for
//   - eager == frozen (values, dtypes, shapes), on the inputs and on every gradient;
//   - gradients of a random projection == central differences (float64);
//   - grad of grad == central differences of the gradient, on every fourth graph;
//   - no crash and no exception other than a th::Error while generating.
// Seeded and reproducible: THETA_PROPERTY_SEED (default 1) and THETA_PROPERTY_GRAPHS
// (default 400, about a second in Release); a failure prints the seed, the recipe and
// th::debugprint of the graph.
#define BOOST_TEST_MODULE property
#include <cstdlib>
#include <functional>
#include <random>

#include "check.hpp"

using th::Tensor;
using Rng = std::mt19937_64;

namespace {

struct Step {
  std::string text;                                       // how the step reads, for failure reports
  std::vector<std::size_t> args;                          // indices of earlier values
  std::function<Tensor(const std::vector<Tensor>&)> fn;  // the operation on those values
  bool smooth = true;                                     // false: kinks (abs, max, where...)
};

struct Graph {
  std::vector<th::Shape> shapes;  // inputs
  std::vector<th::DType> dtypes;
  std::vector<Step> steps;
  bool smooth = true;

  Tensor run(const std::vector<Tensor>& inputs) const {
    std::vector<Tensor> v = inputs;
    for (const Step& s : steps) {
      std::vector<Tensor> a;
      for (std::size_t i : s.args) a.push_back(v[i]);
      v.push_back(s.fn(a));
    }
    return v.back();
  }
  std::string text() const {
    std::ostringstream os;
    for (std::size_t i = 0; i < shapes.size(); ++i)
      os << "  v" << i << " = input " << th::dtype_name(dtypes[i]) << th::shape_str(shapes[i]) << "\n";
    for (std::size_t k = 0; k < steps.size(); ++k) {
      os << "  v" << shapes.size() + k << " = " << steps[k].text << "(";
      for (std::size_t j = 0; j < steps[k].args.size(); ++j) os << (j ? ", " : "") << "v" << steps[k].args[j];
      os << ")\n";
    }
    return os.str();
  }
};

std::int64_t pick(Rng& rng, std::int64_t lo, std::int64_t hi) {  // inclusive
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}
bool coin(Rng& rng, double p = 0.5) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

th::Axes random_axes(Rng& rng, std::size_t nd) {
  if (nd == 0 || coin(rng, 0.3)) return {};
  std::vector<std::int64_t> ax;
  for (std::size_t i = 0; i < nd; ++i)
    if (coin(rng)) ax.push_back(coin(rng) ? std::int64_t(i) : std::int64_t(i) - std::int64_t(nd));
  if (ax.empty()) ax.push_back(pick(rng, 0, std::int64_t(nd) - 1));
  return th::Axes(ax);
}

std::string axes_text(const th::Axes& a) {
  if (a.all) return "all";
  std::string r = "{";
  for (std::size_t i = 0; i < a.axes.size(); ++i) r += (i ? "," : "") + std::to_string(a.axes[i]);
  return r + "}";
}

using Maker = std::function<Step(Rng&, const std::vector<th::Shape>&)>;

Step un(std::string text, std::function<Tensor(const Tensor&)> f, bool smooth = true) {
  return {std::move(text), {}, [f](const std::vector<Tensor>& a) { return f(a[0]); }, smooth};
}
Step bin(std::string text, std::function<Tensor(const Tensor&, const Tensor&)> f, bool smooth = true) {
  return {std::move(text), {}, [f](const std::vector<Tensor>& a) { return f(a[0], a[1]); }, smooth};
}

// The operation pool: {arity, maker}. Domain-restricted ops are applied to values kept in
// their domain by a smooth wrapper (log(x^2 + 0.5)), so every graph is differentiable
// almost everywhere.
std::vector<std::pair<int, Maker>> pool() {
  std::vector<std::pair<int, Maker>> p;
  auto u = [&](std::string t, std::function<Tensor(const Tensor&)> f, bool smooth = true) {
    p.push_back({1, [=](Rng&, const std::vector<th::Shape>&) { return un(t, f, smooth); }});
  };
  auto b = [&](std::string t, std::function<Tensor(const Tensor&, const Tensor&)> f, bool smooth = true) {
    p.push_back({2, [=](Rng&, const std::vector<th::Shape>&) { return bin(t, f, smooth); }});
  };
  // elementwise
  u("neg", [](const Tensor& x) { return -x; });
  u("sqr", [](const Tensor& x) { return th::sqr(x); });
  u("sqrt(x^2+0.25)", [](const Tensor& x) { return th::sqrt(th::sqr(x) + 0.25); });
  u("exp(tanh)", [](const Tensor& x) { return th::exp(th::tanh(x)); });
  u("log(x^2+0.5)", [](const Tensor& x) { return th::log(th::sqr(x) + 0.5); });
  u("log1p(x^2)", [](const Tensor& x) { return th::log1p(th::sqr(x)); });
  u("abs", [](const Tensor& x) { return th::abs(x); }, false);
  u("sin", [](const Tensor& x) { return th::sin(x); });
  u("cos", [](const Tensor& x) { return th::cos(x); });
  u("tanh", [](const Tensor& x) { return th::tanh(x); });
  u("sigmoid", [](const Tensor& x) { return th::sigmoid(x); });
  u("relu", [](const Tensor& x) { return th::relu(x); }, false);
  u("softplus", [](const Tensor& x) { return th::softplus(x); });
  u("sign*x", [](const Tensor& x) { return th::sign(x) * x; }, false);
  u("clip", [](const Tensor& x) { return th::clip(x, -0.5, 0.7); }, false);
  // value x, gradient 1: only right if stop_gradient passes values and blocks gradients
  u("sg(x)+(x-sg(x))", [](const Tensor& x) { return th::stop_gradient(x) + (x - th::stop_gradient(x)); });
  u("0.5*x-1", [](const Tensor& x) { return 0.5 * x - 1.0; });
  u("2/(1+x^2)", [](const Tensor& x) { return 2.0 / (1.0 + th::sqr(x)); });
  u("pow(x^2+0.5,1.5)", [](const Tensor& x) { return th::pow(th::sqr(x) + 0.5, 1.5); });
  b("add", [](const Tensor& x, const Tensor& y) { return x + y; });
  b("sub", [](const Tensor& x, const Tensor& y) { return x - y; });
  b("mul", [](const Tensor& x, const Tensor& y) { return x * y; });
  b("div(x,1+y^2)", [](const Tensor& x, const Tensor& y) { return x / (1.0 + th::sqr(y)); });
  b("pow(x^2+0.5,tanh y)", [](const Tensor& x, const Tensor& y) { return th::pow(th::sqr(x) + 0.5, th::tanh(y)); });
  b("maximum", [](const Tensor& x, const Tensor& y) { return th::maximum(x, y); }, false);
  b("minimum", [](const Tensor& x, const Tensor& y) { return th::minimum(x, y); }, false);
  b("where(x>y,x,y*y)", [](const Tensor& x, const Tensor& y) { return th::where(x > y, x, y * y); }, false);
  // reductions with random axes and keepdims
  auto red = [&](std::string t, std::function<Tensor(const Tensor&, th::Axes, bool)> f, bool smooth = true) {
    p.push_back({1, [=](Rng& rng, const std::vector<th::Shape>& s) {
                   th::Axes ax = random_axes(rng, s[0].size());
                   bool keep = coin(rng);
                   return un(t + "[" + axes_text(ax) + (keep ? ",keepdims" : "") + "]",
                             [=](const Tensor& x) { return f(x, ax, keep); }, smooth);
                 }});
  };
  red("sum", [](const Tensor& x, th::Axes a, bool k) { return th::sum(x, a, k); });
  red("mean", [](const Tensor& x, th::Axes a, bool k) { return th::mean(x, a, k); });
  red("max", [](const Tensor& x, th::Axes a, bool k) { return th::max(x, a, k); }, false);
  red("min", [](const Tensor& x, th::Axes a, bool k) { return th::min(x, a, k); }, false);
  red("prod", [](const Tensor& x, th::Axes a, bool k) { return th::prod(x, a, k); });
  red("logsumexp", [](const Tensor& x, th::Axes a, bool k) { return th::logsumexp(x, a, k); });
  auto along = [&](std::string t, std::function<Tensor(const Tensor&, std::int64_t)> f) {
    p.push_back({1, [=](Rng& rng, const std::vector<th::Shape>& s) {
                   std::int64_t nd = std::int64_t(s[0].size()), ax = nd ? pick(rng, -nd, nd - 1) : -1;
                   return un(t + "[axis " + std::to_string(ax) + "]", [=](const Tensor& x) { return f(x, ax); });
                 }});
  };
  along("softmax", [](const Tensor& x, std::int64_t a) { return th::softmax(x, a); });
  along("log_softmax", [](const Tensor& x, std::int64_t a) { return th::log_softmax(x, a); });
  // linear algebra
  b("dot", [](const Tensor& x, const Tensor& y) { return th::dot(x, y); });
  b("matmul", [](const Tensor& x, const Tensor& y) { return th::matmul(x, y); });
  b("dot(x,transpose y)", [](const Tensor& x, const Tensor& y) { return th::dot(x, th::transpose(y)); });
  b("outer", [](const Tensor& x, const Tensor& y) { return th::outer(x, y); });
  // shape
  u("transpose", [](const Tensor& x) { return th::transpose(x); });
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::vector<std::int64_t> perm(s[0].size());
                 for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = std::int64_t(i);
                 std::shuffle(perm.begin(), perm.end(), rng);
                 std::string t = "transpose{";
                 for (auto q : perm) t += std::to_string(q) + ",";
                 return un(t + "}", [=](const Tensor& x) { return th::transpose(x, perm); });
               }});
  u("flatten", [](const Tensor& x) { return th::flatten(x); });
  p.push_back({1, [](Rng&, const std::vector<th::Shape>& s) {
                 th::Shape r(s[0].rbegin(), s[0].rend());
                 return un("reshape" + th::shape_str(r), [=](const Tensor& x) { return th::reshape(x, r); });
               }});
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::int64_t nd = std::int64_t(s[0].size()), ax = pick(rng, -nd - 1, nd);
                 return un("expand_dims[" + std::to_string(ax) + "]",
                           [=](const Tensor& x) { return th::expand_dims(x, ax); });
               }});
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::vector<std::int64_t> ones;
                 for (std::size_t i = 0; i < s[0].size(); ++i)
                   if (s[0][i] == 1) ones.push_back(std::int64_t(i));
                 std::int64_t ax = ones.empty() ? 0 : ones[std::size_t(pick(rng, 0, std::int64_t(ones.size()) - 1))];
                 return un("squeeze[" + std::to_string(ax) + "]", [=](const Tensor& x) { return th::squeeze(x, ax); });
               }});
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 th::Shape to = s[0];
                 for (auto& d : to)
                   if (d == 1 && coin(rng)) d = 3;
                 to.insert(to.begin(), 2);
                 return un("broadcast_to" + th::shape_str(to), [=](const Tensor& x) { return th::broadcast_to(x, to); });
               }});
  p.push_back({2, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::int64_t nd = std::int64_t(s[0].size()), ax = nd ? pick(rng, -nd, nd - 1) : 0;
                 return bin("concatenate[" + std::to_string(ax) + "]",
                            [=](const Tensor& x, const Tensor& y) { return th::concatenate({x, y}, ax); });
               }});
  p.push_back({2, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::int64_t nd = std::int64_t(s[0].size()), ax = pick(rng, -nd - 1, nd);
                 return bin("stack[" + std::to_string(ax) + "]",
                            [=](const Tensor& x, const Tensor& y) { return th::stack({x, y}, ax); });
               }});
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::int64_t nd = std::int64_t(s[0].size()), ax = nd ? pick(rng, -nd, nd - 1) : 0;
                 std::int64_t n = nd ? s[0][std::size_t(ax < 0 ? ax + nd : ax)] : 1;
                 std::vector<std::int64_t> idx;
                 for (std::int64_t k = pick(rng, 1, 5); k > 0; --k) idx.push_back(pick(rng, -n, n - 1));  // repeats too
                 Tensor it = th::tensor(idx, {std::int64_t(idx.size())});
                 return un("take[axis " + std::to_string(ax) + "]", [=](const Tensor& x) { return th::take(x, it, ax); });
               }});
  p.push_back({1, [](Rng& rng, const std::vector<th::Shape>& s) {
                 std::vector<th::Index> ix;
                 std::string t = "view[";
                 for (std::size_t i = 0; i < s[0].size(); ++i) {
                   std::int64_t n = s[0][i];
                   if (coin(rng, 0.25)) {
                     std::int64_t k = pick(rng, -n, n - 1);
                     ix.push_back(th::Index(k));
                     t += std::to_string(k) + ",";
                   } else {
                     std::int64_t a = pick(rng, 0, n - 1), step = coin(rng, 0.3) ? -1 : pick(rng, 1, 2);
                     ix.push_back(step > 0 ? th::range(a, std::nullopt, step) : th::range(std::nullopt, a, -1));
                     t += step > 0 ? std::to_string(a) + "::" + std::to_string(step) + "," : "::-1 to " + std::to_string(a) + ",";
                   }
                 }
                 return un(t + "]", [=](const Tensor& x) { return th::view(x, ix); });
               }});
  return p;
}

const std::vector<std::pair<int, Maker>>& ops() {
  static const auto p = pool();
  return p;
}

// Input shapes that broadcast together: a base shape, others drop leading dims or use 1s.
std::vector<th::Shape> input_shapes(Rng& rng, std::size_t n) {
  th::Shape base(std::size_t(pick(rng, 0, 3)));
  for (auto& d : base) d = pick(rng, 1, 4);
  std::vector<th::Shape> r{base};
  while (r.size() < n) {
    th::Shape s(base.begin() + pick(rng, 0, std::int64_t(base.size())), base.end());
    for (auto& d : s)
      if (coin(rng, 0.3)) d = 1;
    r.push_back(s);
  }
  std::shuffle(r.begin(), r.end(), rng);
  return r;
}

Tensor input_value(const th::Shape& s, th::DType dt, std::uint64_t seed) {
  Tensor x = th::random::uniform(s, -1.5, 1.5, seed, th::DType::float64);
  if (dt == th::DType::float64) return x;
  if (th::is_floating(dt)) return th::cast(x, dt);
  return th::cast(x * 3.0, dt);  // small integers (truncated), or booleans
}

bool finite_and_tame(const Tensor& t) {
  if (!th::is_floating(t.dtype())) return true;
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v) || std::fabs(v) > 1e4) return false;
  return true;
}

// A random graph whose eager evaluation on its inputs succeeds. A th::Error while trying a
// step only rejects that step (the combination was invalid); anything else fails the test.
Graph generate(std::uint64_t seed, bool mixed_dtypes, std::vector<Tensor>& inputs) {
  Rng rng(seed);
  Graph g;
  std::size_t n_in = std::size_t(pick(rng, 1, 3));
  g.shapes = input_shapes(rng, n_in);
  const th::DType kinds[] = {th::DType::float64, th::DType::float32, th::DType::int32, th::DType::int64,
                             th::DType::boolean};
  for (std::size_t i = 0; i < n_in; ++i)
    g.dtypes.push_back(mixed_dtypes && i > 0 ? kinds[pick(rng, 0, 4)] : th::DType::float64);
  inputs.clear();
  for (std::size_t i = 0; i < n_in; ++i) inputs.push_back(input_value(g.shapes[i], g.dtypes[i], seed * 31 + i));
  std::vector<Tensor> vals = inputs;
  const std::size_t n_steps = std::size_t(pick(rng, 1, 7));
  for (int tries = 0; g.steps.size() < n_steps && tries < 200; ++tries) {
    const auto& [arity, make] = ops()[std::size_t(pick(rng, 0, std::int64_t(ops().size()) - 1))];
    std::vector<std::size_t> args;
    for (int k = 0; k < arity; ++k)  // favour recent values so graphs grow deep, not only wide
      args.push_back(coin(rng, 0.6) ? vals.size() - 1 : std::size_t(pick(rng, 0, std::int64_t(vals.size()) - 1)));
    std::vector<th::Shape> shapes;
    std::vector<Tensor> a;
    for (std::size_t i : args) shapes.push_back(vals[i].shape()), a.push_back(vals[i]);
    Step s = make(rng, shapes);
    s.args = args;
    Tensor out;
    try {
      out = s.fn(a);
    } catch (const th::Error&) {
      continue;  // not a valid combination of shapes/dtypes: try another step
    }
    if (!finite_and_tame(out) || out.size() > 4096) continue;
    g.smooth = g.smooth && s.smooth;
    g.steps.push_back(std::move(s));
    vals.push_back(out);
  }
  return g;
}

double rel_err(double a, double b) { return std::fabs(a - b) / std::max(1.0, std::fabs(b)); }

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

struct Tally {
  int graphs = 0, grad_checked = 0, grad2_checked = 0, kinks_skipped = 0;
};

void check_graph(std::uint64_t seed, const Graph& g, std::vector<Tensor> xs, Tally& tally) {
  // Symbolic twin, for the frozen function and for the failure report.
  std::vector<Tensor> ph;
  for (std::size_t i = 0; i < xs.size(); ++i)
    ph.push_back(th::placeholder(g.dtypes[i], std::int64_t(g.shapes[i].size()), "v" + std::to_string(i)));
  Tensor ysym = g.run(ph);
  BOOST_TEST_CONTEXT("seed " << seed << " (rerun: THETA_PROPERTY_SEED=" << seed << " THETA_PROPERTY_GRAPHS=1)\n"
                              << g.text() << th::debugprint(ysym)) {
    std::vector<Tensor> vars;
    std::vector<bool> diff;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      diff.push_back(g.dtypes[i] == th::DType::float64);
      vars.push_back(diff.back() ? th::variable(xs[i]) : xs[i]);
    }
    Tensor y = g.run(vars);
    const bool float_out = th::is_floating(y.dtype());
    Tensor r = float_out ? th::cast(check::input(y.shape(), seed + 7, -1, 1), y.dtype()) : Tensor();
    std::vector<Tensor> outs{ysym};
    std::vector<Tensor> eager_grads;
    if (float_out && y.dtype() == th::DType::float64) {
      Tensor rph = th::placeholder(th::DType::float64, std::int64_t(y.ndim()), "r");
      Tensor cost_sym = th::sum(ysym * rph), cost = th::sum(y * r);
      for (std::size_t i = 0; i < xs.size(); ++i)
        if (diff[i]) outs.push_back(th::grad(cost_sym, ph[i])), eager_grads.push_back(th::grad(cost, vars[i]));
      ph.push_back(rph);
      xs.push_back(r);
    }
    th::Function f = th::function(ph, outs);
    // Called first on other values of the same shapes and then twice on xs, each result let
    // go of but the last: the checked call takes the warm path (the last call's metas, the
    // frame's buffers and result tensors reused) over buffers that held other values.
    {
      std::vector<Tensor> other = xs;
      for (Tensor& t : other)
        if (th::is_floating(t.dtype())) t = t * 0.5 + 0.25;
      f.call(other);
    }
    f.call(xs);
    th::Result got = f.call(xs);
    if (th::config().native == th::NativeMode::sync) check::native_matches_interpreter("native", ph, outs, xs);
    BOOST_TEST_REQUIRE(got[0].dtype() == y.dtype());
    check::expect_close("frozen value", got[0], y);
    for (std::size_t k = 0; k < eager_grads.size(); ++k) check::expect_close("frozen gradient", got[k + 1], eager_grads[k]);
    if (eager_grads.empty()) return;
    xs.pop_back();
    // Gradients against central differences; at a kink (the differences disagree with
    // themselves across step sizes) the point is skipped and counted.
    auto L = [&](const std::vector<Tensor>& v) { return th::sum(g.run(v) * r).item<double>(); };
    std::size_t k = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (!diff[i]) continue;
      std::vector<double> gv = check::vals(eager_grads[k++]), xv = check::vals(xs[i]);
      for (std::size_t j = 0; j < xv.size(); ++j) {
        auto fd = [&](double h) {
          auto at = [&](double d) {
            std::vector<double> p = xv;
            p[j] += d;
            std::vector<Tensor> q = xs;
            q[i] = th::tensor(p, xs[i].shape());
            return L(q);
          };
          return (at(h) - at(-h)) / (2 * h);
        };
        const double d1 = fd(1e-6);
        if (rel_err(gv[j], d1) < 1e-5) continue;
        const double d2 = fd(1e-7), d3 = fd(1e-5);
        if (rel_err(d2, d3) > 1e-4 && !g.smooth) {
          ++tally.kinks_skipped;
          continue;
        }
        BOOST_TEST(rel_err(gv[j], d1) < 1e-5, "d/dv" << i << "[" << j << "]: analytic " << gv[j] << " vs numeric "
                                                     << d1 << " (h=1e-7: " << d2 << ", h=1e-5: " << d3 << ")");
      }
    }
    ++tally.grad_checked;
    if (seed % 4 != 1 || !g.smooth) return;
    // Grad of grad: H(x) = sum(grad(L, x0) * r2); its gradient is a Hessian-vector product.
    std::size_t first = std::size_t(std::find(diff.begin(), diff.end(), true) - diff.begin());
    Tensor r2 = check::input(xs[first].shape(), seed + 11, -1, 1);
    check::Fn H = [&](const check::Inputs& v) {
      check::Inputs w = v;
      for (std::size_t i = 0; i < w.size(); ++i)
        if (diff[i] && !w[i].is_recorded()) w[i] = th::variable(w[i]);
      Tensor c = th::sum(g.run(w) * r);
      return th::sum(th::grad(c, w[first]) * r2);
    };
    std::vector<bool> only(xs.size(), false);
    only[first] = true;
    check::compare_with_fd("grad of grad", H, xs, only, 1e-5, 1e-4);
    ++tally.grad2_checked;
  }
}

void check_seed(std::uint64_t seed, Tally& tally) {
  std::vector<Tensor> xs;
  Graph g = generate(seed, seed % 5 == 0, xs);
  if (g.steps.empty()) return;
  ++tally.graphs;
  try {
    check_graph(seed, g, xs, tally);
  } catch (const std::exception& e) {
    BOOST_ERROR("seed " << seed << ": unexpected exception: " << e.what() << "\n" << g.text()
                        << "(rerun: THETA_PROPERTY_SEED=" << seed << " THETA_PROPERTY_GRAPHS=1)");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_graphs) {
  const std::uint64_t seed0 = std::stoull(env_or("THETA_PROPERTY_SEED", "1"));
  const int count = std::stoi(env_or("THETA_PROPERTY_GRAPHS", "400"));
  Tally tally;
  for (int i = 0; i < count; ++i) {
    try {
      check_seed(seed0 + std::uint64_t(i), tally);
    } catch (const std::exception& e) {
      BOOST_ERROR("seed " << seed0 + std::uint64_t(i) << ": unexpected exception: " << e.what());
    }
  }
  BOOST_TEST_MESSAGE("property: " << tally.graphs << " graphs, " << tally.grad_checked << " gradient checks, "
                                  << tally.grad2_checked << " grad-of-grad checks, " << tally.kinks_skipped
                                  << " points at kinks skipped");
  BOOST_TEST(tally.graphs >= count * 9 / 10);  // the generator must not collapse to empty graphs
  BOOST_TEST(tally.grad_checked >= count / 3);
}
