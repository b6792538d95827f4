// Optimizers (API.md section 11): each rule, frozen into a training function, follows its
// torch.optim formula written out by hand over several steps; learning rates as tensors
// (schedules), named state, gradients given instead of a cost, clip_grad_norm, errors.
#define BOOST_TEST_MODULE optim
#include <cmath>
#include <functional>

#include "check.hpp"

using th::Tensor;

namespace {

// cost = sum(a * (w - c)^2): gradient 2 a (w - c)
const std::vector<double> kA{1.0, 3.0, 0.5}, kC{0.5, -1.0, 2.0}, kW0{2.0, 1.0, -1.0};

std::vector<double> grad_at(const std::vector<double>& w) {
  std::vector<double> g(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) g[i] = 2 * kA[i] * (w[i] - kC[i]);
  return g;
}

using Rule = std::function<th::Updates(const Tensor& cost, const std::vector<th::Shared>& params)>;
// One step of the hand-written formula on w (state in `s`, zero-initialised, and the step t).
using Formula = std::function<void(std::vector<double>& w, const std::vector<double>& g, std::vector<std::vector<double>>& s, int t)>;

void follows(const std::string& name, const Rule& rule, const Formula& formula, int steps = 6) {
  BOOST_TEST_CONTEXT(name) {
    th::Shared w = th::shared(th::tensor(kW0, {3}), "w");
    const Tensor a = th::tensor(kA, {3}), c = th::tensor(kC, {3});
    const Tensor cost = th::sum(a * th::sqr(w - c));
    const th::Function train = th::function({}, {cost}, rule(cost, {w}));
    std::vector<double> ref = kW0;
    std::vector<std::vector<double>> state(3, std::vector<double>(3, 0.0));
    for (int t = 1; t <= steps; ++t) {
      train.call({});
      formula(ref, grad_at(ref), state, t);
      const auto got = w.get_value().to_vector<double>();
      for (std::size_t i = 0; i < 3; ++i)
        BOOST_TEST(got[i] == ref[i], "step " << t << " w[" << i << "]: " << got[i] << " vs formula " << ref[i]
                                              << boost::test_tools::tolerance(1e-13));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_rule_follows_its_formula) {
  follows(
      "sgd", [](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::sgd(c, p, 0.1); },
      [](auto& w, const auto& g, auto&, int) {
        for (std::size_t i = 0; i < 3; ++i) w[i] -= 0.1 * g[i];
      });
  for (bool nesterov : {false, true})
    follows(
        nesterov ? "nesterov" : "momentum",
        [nesterov](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::momentum(c, p, 0.05, 0.9, nesterov); },
        [nesterov](auto& w, const auto& g, auto& s, int) {
          for (std::size_t i = 0; i < 3; ++i) {
            s[0][i] = 0.9 * s[0][i] + g[i];
            w[i] -= 0.05 * (nesterov ? g[i] + 0.9 * s[0][i] : s[0][i]);
          }
        });
  follows(
      "adagrad", [](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::adagrad(c, p, 0.3); },
      [](auto& w, const auto& g, auto& s, int) {
        for (std::size_t i = 0; i < 3; ++i) {
          s[0][i] += g[i] * g[i];
          w[i] -= 0.3 * g[i] / (std::sqrt(s[0][i]) + 1e-10);
        }
      });
  follows(
      "rmsprop", [](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::rmsprop(c, p, 0.01, 0.9); },
      [](auto& w, const auto& g, auto& s, int) {
        for (std::size_t i = 0; i < 3; ++i) {
          s[0][i] = 0.9 * s[0][i] + 0.1 * g[i] * g[i];
          w[i] -= 0.01 * g[i] / (std::sqrt(s[0][i]) + 1e-8);
        }
      });
  auto adam_formula = [](double wd) {
    return [wd](auto& w, const auto& g, auto& s, int t) {
      const double lr = 0.1, b1 = 0.9, b2 = 0.99, eps = 1e-8;
      for (std::size_t i = 0; i < 3; ++i) {
        w[i] *= 1 - lr * wd;
        s[0][i] = b1 * s[0][i] + (1 - b1) * g[i];
        s[1][i] = b2 * s[1][i] + (1 - b2) * g[i] * g[i];
        const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
        w[i] -= lr / bc1 * s[0][i] / (std::sqrt(s[1][i]) / std::sqrt(bc2) + eps);
      }
    };
  };
  follows(
      "adam", [](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::adam(c, p, 0.1, 0.9, 0.99); },
      adam_formula(0));
  follows(
      "adamw", [](const Tensor& c, const std::vector<th::Shared>& p) { return th::optim::adamw(c, p, 0.1, 0.9, 0.99, 1e-8, 0.05); },
      adam_formula(0.05));
}

BOOST_AUTO_TEST_CASE(state_is_named_after_the_parameter) {
  th::Shared w = th::shared(th::tensor({1.0, 2.0}), "w"), b = th::shared(th::tensor(0.5), "b");
  const Tensor cost = th::sum(th::sqr(w)) + th::sqr(b);
  const th::Updates u = th::optim::adam(cost, {w, b});
  std::vector<std::string> names;
  for (const auto& [s, v] : u) names.push_back(s.name());
  BOOST_TEST(names == (std::vector<std::string>{"w", "w.m", "w.v", "w.step", "b", "b.m", "b.v", "b.step"}),
             boost::test_tools::per_element());
  const th::Function f = th::function({}, {cost}, u);
  f.call({});
  f.call({});
  BOOST_TEST(u[3].first.get_value().item<double>() == 2.0);  // w.step
  // torch's first Adam step moves each parameter by lr (sign of its gradient)
  th::Shared p = th::shared(th::tensor({3.0, -2.0}), "p");
  th::function({}, std::vector<Tensor>{}, th::optim::adam(th::sum(th::sqr(p)), {p}, 0.01)).call({});
  const auto pv = p.get_value().to_vector<double>();
  BOOST_TEST(pv[0] == 2.99, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(pv[1] == -1.99, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(learning_rate_schedule_and_float32) {
  th::Shared lr = th::shared(th::tensor(0.5), "lr");
  th::Shared w = th::shared(th::tensor({1.0f, 2.0f}, th::DType::float32), "w");
  const Tensor cost = th::sum(th::sqr(w));
  const th::Function step = th::function({}, {cost}, th::optim::sgd(cost, {w}, lr));
  step.call({});  // w - 0.5 * 2w = 0
  BOOST_TEST((w.get_value().dtype() == th::DType::float32));
  BOOST_TEST(th::sum(th::abs(w.get_value())).item<double>() == 0.0);
  w.set_value(th::tensor({1.0f, 2.0f}, th::DType::float32));
  lr.set_value(th::tensor(0.25));
  step.call({});  // w - 0.25 * 2w = w / 2
  BOOST_TEST(w.get_value().to_vector<double>() == (std::vector<double>{0.5, 1.0}), boost::test_tools::per_element());
  // float32 parameters stay float32 through adam's float64 step count
  th::Shared v = th::shared(th::tensor({1.0f}, th::DType::float32), "v");
  th::function({}, std::vector<Tensor>{}, th::optim::adam(th::sum(th::sqr(v)), {v}, lr)).call({});
  BOOST_TEST((v.get_value().dtype() == th::DType::float32));
}

BOOST_AUTO_TEST_CASE(gradients_in_place_of_a_cost_and_clipping) {
  th::Shared w = th::shared(th::tensor({3.0, 4.0}), "w");
  const Tensor cost = th::sum(th::sqr(w)) / 2.0;  // gradient w: norm 5
  const auto clipped = th::optim::clip_grad_norm(th::grad(cost, std::vector<Tensor>{w}), 1.0);
  const auto cv = clipped[0].to_vector<double>();
  BOOST_TEST(cv[0] == 0.6, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(cv[1] == 0.8, boost::test_tools::tolerance(1e-6));
  const auto same = th::optim::clip_grad_norm(th::grad(cost, std::vector<Tensor>{w}), 10.0)[0].to_vector<double>();
  BOOST_TEST(same == (std::vector<double>{3.0, 4.0}), boost::test_tools::per_element());
  th::function({}, std::vector<Tensor>{}, th::optim::sgd(clipped, {w}, 1.0)).call({});
  const auto wv = w.get_value().to_vector<double>();
  BOOST_TEST(wv[0] == 2.4, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(wv[1] == 3.2, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(errors) {
  th::Shared w = th::shared(th::tensor({1.0}), "w");
  const Tensor cost = th::sum(w);
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::optim::sgd(cost, {w}, -1.0); }), "optim::sgd: the learning rate"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::optim::adam(cost, {w}, 0.1, 1.0); }), "optim::adam: betas"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::optim::sgd(std::vector<Tensor>{}, {w}, 0.1); }),
                        "0 gradients for 1 parameters"));
  th::Shared i = th::shared(th::tensor(std::vector<std::int64_t>{1}, {1}), "steps");
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] { th::optim::sgd(std::vector<Tensor>{th::tensor({1.0})}, {i}, 0.1); }),
                        "'steps' is int64"));
}
