// Batch normalization (API.md section 16): values against the formula, gradients of every
// differentiable result through the shared checker (spatial and per-activation axes, custom
// axes, parameters with the reduced axes dropped or kept, grad of grad), running statistics
// over several frozen training steps against their formula, inference, and the errors.
#define BOOST_TEST_MODULE normalization
#include <cmath>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;

namespace {

// mean, biased variance over the axes (kept), by loops over a (N, C, H, W) or (N, C) tensor
// reduced over all but axis 1.
struct Stats {
  std::vector<double> mean, var;
};
Stats per_channel(const Tensor& x) {
  const th::Shape s = x.shape();
  const std::int64_t N = s[0], C = s[1], P = s.size() == 4 ? s[2] * s[3] : 1;
  const auto v = x.to_vector<double>();
  Stats st{std::vector<double>(std::size_t(C)), std::vector<double>(std::size_t(C))};
  for (std::int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) sum += v[std::size_t((n * C + c) * P + p)];
    const double m = sum / double(N * P);
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t p = 0; p < P; ++p) sq += std::pow(v[std::size_t((n * C + c) * P + p)] - m, 2);
    st.mean[std::size_t(c)] = m;
    st.var[std::size_t(c)] = sq / double(N * P);
  }
  return st;
}

void close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  BOOST_TEST_REQUIRE(got.size() == want.size(), what);
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(std::fabs(got[i] - want[i]) <= tol * std::max(1.0, std::fabs(want[i])), what << "[" << i << "]: " << got[i]
                                                                                              << " vs " << want[i]);
}

}  // namespace

BOOST_AUTO_TEST_CASE(values_against_the_formula) {
  const Tensor x = check::input({4, 3, 2, 5}, 1, -2, 3), gamma = check::input({3}, 2, 0.5, 2), beta = check::input({3}, 3, -1, 1);
  const th::BatchNormTrain bn = th::batch_normalization_train(x, gamma, beta, {}, 1e-3);
  const Stats st = per_channel(x);
  std::vector<double> invstd(3), out(x.to_vector<double>());
  const auto g = gamma.to_vector<double>(), b = beta.to_vector<double>();
  for (std::size_t c = 0; c < 3; ++c) invstd[c] = 1 / std::sqrt(st.var[c] + 1e-3);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::size_t c = (i / 10) % 3;
    out[i] = (out[i] - st.mean[c]) * invstd[c] * g[c] + b[c];
  }
  BOOST_TEST((bn.mean.shape() == th::Shape{3}));
  close("mean", bn.mean.to_vector<double>(), st.mean);
  close("invstd", bn.invstd.to_vector<double>(), invstd);
  close("out", bn.out.to_vector<double>(), out);
  BOOST_TEST(!bn.new_running_mean);
  // parameters of the kept form give results of that form, and the same values
  const th::BatchNormTrain kept =
      th::batch_normalization_train(x, th::reshape(gamma, {1, 3, 1, 1}), th::reshape(beta, {1, 3, 1, 1}), {}, 1e-3);
  BOOST_TEST((kept.mean.shape() == th::Shape{1, 3, 1, 1}));
  close("kept out", kept.out.to_vector<double>(), out);
  // inference with the batch's own statistics gives the training output
  const Tensor test = th::batch_normalization_test(x, gamma, beta, bn.mean, th::tensor(st.var, {3}), {}, 1e-3);
  close("test", test.to_vector<double>(), out);
  // per-activation (2-d): each column over the batch
  const Tensor x2 = check::input({6, 4}, 4, -1, 1);
  const th::BatchNormTrain pa = th::batch_normalization_train(x2, th::ones({4}), th::zeros({4}));
  close("per-activation mean", pa.mean.to_vector<double>(), per_channel(x2).mean);
  // float32 in, float32 out
  const th::BatchNormTrain f = th::batch_normalization_train(x.astype(th::DType::float32), gamma.astype(th::DType::float32),
                                                             beta.astype(th::DType::float32), {}, 1e-3);
  BOOST_TEST((f.out.dtype() == th::DType::float32 && f.invstd.dtype() == th::DType::float32));
  close("float32 out", f.out.to_vector<double>(), out, 1e-5);
}

BOOST_AUTO_TEST_CASE(gradients_through_the_checker) {
  check::Options o;
  o.grad2 = true;
  // spatial (default axes), every differentiable result, in x, gamma and beta
  check::op("bn spatial out", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2]).out; },
            {{3, 2, 3, 4}, {2}, {2}}, {3, 2, 3, 4}, o);
  check::op("bn spatial mean", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2]).mean; },
            {{3, 2, 3, 4}, {2}, {2}}, {2});
  check::op("bn spatial invstd", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2], {}, 1e-2).invstd; },
            {{3, 2, 3, 4}, {2}, {2}}, {2});
  // per-activation, and parameters with the reduced axes kept
  check::op("bn per-activation", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2]).out; },
            {{5, 3}, {3}, {3}}, {5, 3});
  check::op("bn kept parameters", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2]).out; },
            {{3, 2, 3, 4}, {1, 2, 1, 1}, {1, 2, 1, 1}}, {3, 2, 3, 4});
  // custom axes (layer-norm-like: over the last two) and a negative axis, broadcasting gamma over the batch
  check::op("bn axes (1, -1)", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2], {1, -1}).out; },
            {{3, 4, 5}, {3, 1, 1}, {3, 1, 1}}, {3, 4, 5});
  // reduced axes around a kept one (no (outer, C, inner) layout: the step's other path)
  check::op("bn axes (0, 2)", [](const X& v) { return th::batch_normalization_train(v[0], v[1], v[2], {0, 2}).out; },
            {{3, 4, 5}, {4}, {4}}, {3, 4, 5}, o);
  // several results of the one step used together: their gradients meet in one backward rule
  check::op("bn out, mean and invstd together", [](const X& v) {
    const th::BatchNormTrain bn = th::batch_normalization_train(v[0], v[1], v[2], {}, 1e-2);
    return th::sum(bn.out, {0, 2, 3}) * bn.mean + th::sqr(bn.invstd);
  }, {{3, 2, 3, 4}, {2}, {2}}, {2}, o);
  // float32 runs the vectorised statistics and gradient passes (planes of 35: blocks of 8 and
  // a tail): within float32 rounding of the float64 results, value and all three gradients
  {
    const Tensor x64 = check::input({4, 3, 5, 7}, 21, -2, 3), g64 = check::input({3}, 22, 0.5, 2), b64 = check::input({3}, 23, -1, 1);
    const Tensor r64 = check::input({4, 3, 5, 7}, 24, -1, 1);
    std::vector<std::vector<double>> got;
    for (th::DType dt : {th::DType::float64, th::DType::float32}) {
      const Tensor x = th::variable(x64.astype(dt)), g = th::variable(g64.astype(dt)), b = th::variable(b64.astype(dt));
      const th::BatchNormTrain bn = th::batch_normalization_train(x, g, b);
      const auto gr = th::grad(th::sum(bn.out * r64.astype(dt)), {x, g, b});
      std::vector<double> all = bn.out.to_vector<double>();
      for (const Tensor& t : gr)
        for (double v : t.to_vector<double>()) all.push_back(v);
      got.push_back(all);
    }
    close("float32 value and gradients", got[1], got[0], 2e-5);
  }
  // inference: differentiable in x, gamma, beta, mean and var
  check::Options pos;
  pos.lo = 0.5;
  pos.hi = 2;
  check::op("bn test", [](const X& v) { return th::batch_normalization_test(v[0], v[1], v[2], v[3], v[4]); },
            {{3, 2, 3, 4}, {2}, {2}, {2}, {2}}, {3, 2, 3, 4}, pos);
}

// The training step is one step of a frozen program with several outputs, whichever of its
// results the function reads (it was a composite whose statistics CSE had to share).
BOOST_AUTO_TEST_CASE(one_step_for_every_result) {
  const Tensor x = th::ftensor4("x");
  const th::Shared g = th::shared(th::ones({3}, th::DType::float32), "g"), b = th::shared(th::zeros({3}, th::DType::float32), "b");
  const th::Shared rm = th::shared(th::zeros({3}, th::DType::float32), "rm"), rv = th::shared(th::ones({3}, th::DType::float32), "rv");
  const th::BatchNormTrain bn = th::batch_normalization_train(x, g, b, {}, 1e-5, 0.1, rm, rv);
  const Tensor cost = th::sum(th::sqr(bn.out)) + th::sum(bn.mean) + th::sum(bn.invstd);
  const th::Function f = th::function({x}, {cost, th::grad(cost, g), th::grad(cost, x)},
                                      {{rm, bn.new_running_mean}, {rv, bn.new_running_var}});
  const std::string text = th::debugprint(f);
  BOOST_TEST(check::count(text, "= batch_normalization_train(") == 1u, text);
  const Tensor X = th::random::uniform({4, 3, 5, 5}, -1, 3, 2, th::DType::float32);
  const th::Result r = f(X);
  const Stats st = per_channel(X);
  std::vector<double> want(3);
  for (std::size_t c = 0; c < 3; ++c) want[c] = 0.1 * st.mean[c];
  close("running mean after one call", rm.get_value().to_vector<double>(), want, 1e-6);
  BOOST_TEST(std::isfinite(r[0].item<double>()));
}

// The running statistics through a frozen training function's updates, over several steps:
// rm <- (1 - f) rm + f mean, rv <- (1 - f) rv + f unbiased var (m / (m - 1) of the biased).
BOOST_AUTO_TEST_CASE(running_statistics_over_frozen_steps) {
  const double f = 0.3;
  th::Shared rm = th::shared(th::zeros({3}), "rm"), rv = th::shared(th::ones({3}), "rv");
  th::Shared gamma = th::shared(th::ones({3}), "gamma"), beta = th::shared(th::zeros({3}), "beta");
  const Tensor x = th::dtensor4("x");
  const th::BatchNormTrain bn = th::batch_normalization_train(x, gamma, beta, {}, 1e-4, f, rm, rv);
  const Tensor cost = th::sum(th::sqr(bn.out - 0.5));
  auto updates = th::optim::sgd(cost, {gamma, beta}, 0.01);
  updates.push_back({rm, bn.new_running_mean});
  updates.push_back({rv, bn.new_running_var});
  const th::Function train = th::function({x}, cost, updates);
  std::vector<double> want_m(3, 0.0), want_v(3, 1.0);
  for (int step = 0; step < 4; ++step) {
    const Tensor X = check::input({4, 3, 2, 2}, 10 + std::uint64_t(step), -1 + step, 2 + step);
    train(X);
    const Stats st = per_channel(X);
    for (std::size_t c = 0; c < 3; ++c) {
      want_m[c] = (1 - f) * want_m[c] + f * st.mean[c];
      want_v[c] = (1 - f) * want_v[c] + f * st.var[c] * 16.0 / 15.0;
    }
    close("running mean after step " + std::to_string(step), rm.get_value().to_vector<double>(), want_m);
    close("running var after step " + std::to_string(step), rv.get_value().to_vector<double>(), want_v);
  }
  // no gradient flows through the new running statistics
  const Tensor xv = th::variable(check::input({4, 3, 2, 2}, 20, -1, 1));
  const th::BatchNormTrain e = th::batch_normalization_train(xv, th::ones({3}), th::zeros({3}), {}, 1e-4, f, th::zeros({3}),
                                                             th::ones({3}));
  BOOST_TEST(th::sum(th::abs(th::grad(th::sum(e.new_running_mean) + th::sum(e.new_running_var), xv))).item<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(errors_name_the_operation_shapes_and_names) {
  const Tensor x = th::variable(th::zeros({8, 4, 6, 6}), "x");
  const Tensor g5 = th::variable(th::ones({5}), "gamma");
  const std::string m = check::message_of<th::ShapeError>([&] { th::batch_normalization_train(x, g5, th::zeros({4})); });
  BOOST_TEST(check::has(m, "batch_normalization_train: gamma has shape (5,)"), m);
  BOOST_TEST(check::has(m, "needs (4,) or (1, 4, 1, 1)"), m);
  BOOST_TEST(check::has(m, "[x, gamma]"), m);
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] {
                          th::batch_normalization_test(x, th::ones({4}), th::zeros({4}), th::zeros({4}), th::ones({3}));
                        }),
                        "batch_normalization_test: var has shape (3,)"));
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { th::batch_normalization_train(x, th::ones({4}), th::zeros({4}), {4}); }),
                        "axis 4 is out of range"));
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] {
                          th::batch_normalization_train(th::zeros({2, 3}, th::DType::int64), th::ones({3}), th::zeros({3}));
                        }),
                        "takes float32 or float64"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] {
                          th::batch_normalization_train(x, th::ones({4}), th::zeros({4}), {}, 1e-4, 0.1, th::zeros({4}));
                        }),
                        "give both running_mean and running_var"));
  // symbolic: the channel count is checked where known
  const Tensor p = th::dtensor4("images");
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { th::batch_normalization_train(p, th::ones({3, 3}), th::zeros({3})); }),
                        "gamma has shape (3, 3)"));
}

// Layer normalization (API.md section 16): values against PyTorch's F.layer_norm (float64),
// gradients in x, gamma and beta through the checker (one and two normalized axes, twice),
// and the errors.
BOOST_AUTO_TEST_CASE(layer_norm_values_gradients_errors) {
  const Tensor x = th::tensor({{1.0, 2.0, 4.0}, {-1.0, 0.0, 3.0}});
  const Tensor y = th::layer_norm(x, th::tensor({1.0, 2.0, 0.5}), th::tensor({0.0, 1.0, -1.0}));
  close("layer_norm", y.to_vector<double>(),
        {-1.069041531450298, 0.46547923427485083, -0.3318490428435641, -0.9805789785364645, 0.2155368171708284,
         -0.313594715024475}, 1e-12);
  check::op("layer_norm (last axis)", [](const X& v) { return th::layer_norm(v[0], v[1], v[2]); }, {{3, 4}, {4}, {4}},
            {3, 4}, [] {
              check::Options o;
              o.grad2 = true;
              o.grow = [](std::size_t i, const th::Shape& s) {  // gamma and beta keep x's trailing size
                return i == 0 ? th::Shape{s[0] + 1, s[1]} : s;
              };
              return o;
            }());
  check::op("layer_norm (two axes)", [](const X& v) { return th::layer_norm(v[0], v[1], v[2], 1e-3); },
            {{2, 3, 4}, {3, 4}, {3, 4}}, {2, 3, 4}, [] {
              check::Options o;
              o.grow = [](std::size_t i, const th::Shape& s) { return i == 0 ? th::Shape{s[0] + 1, s[1], s[2]} : s; };
              return o;
            }());
  const Tensor g = th::ones({4}).set_name("gamma"), h = th::zeros({2, 3}).set_name("h");
  std::string m = check::message_of<th::ShapeError>([&] { th::layer_norm(h, g, th::zeros({4})); });
  BOOST_TEST(check::has(m, "layer_norm: gamma has shape (4,) and beta (4,); both must be x's trailing shape (x has shape (2, 3))"), m);
  BOOST_TEST(check::has(m, "h, gamma"), m);
  m = check::message_of<th::ValueError>([&] { th::layer_norm(x, th::ones({3}), th::zeros({3}), 0); });
  BOOST_TEST(check::has(m, "layer_norm: eps must be positive"), m);
}
