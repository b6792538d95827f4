// The tape: recording rules, th::grad for lists, zeros for unrelated wrt, jacobian,
// hessian, vjp, stop_gradient, grad of grad, and constant memory for eager loops.
#define BOOST_TEST_MODULE autodiff
#include "check.hpp"
#include "core/node.hpp"

using th::Tensor;
using check::vals;


BOOST_AUTO_TEST_CASE(seed_derivatives) {
  Tensor s = th::variable(th::tensor(2.0));
  BOOST_TEST(th::grad(th::pow(s, 2) + 3 * s + 4, s).item() == 7.0);
  Tensor p = th::variable(th::tensor(2.0)), q = th::variable(th::tensor(3.0));
  Tensor z = th::pow(p, 3) + th::pow(q, 2) + p * q;
  auto g = th::grad(z, {p, q});
  BOOST_TEST(g.size() == 2u);
  BOOST_TEST(g[0].item() == 15.0);
  BOOST_TEST(g[1].item() == 8.0);
  Tensor x = th::variable(th::tensor({-2, 3}));
  BOOST_TEST(vals(th::grad(th::sum(x.dot(x)), x)) == (std::vector<double>{-4, 6}));
}

BOOST_AUTO_TEST_CASE(recording_rules) {
  Tensor c = th::tensor({1, 2});
  BOOST_TEST(!(c * 2.0).is_recorded());  // plain tensors do not record
  Tensor v = th::variable(c);
  BOOST_TEST((v * 2.0).is_recorded());
  Tensor r = th::tensor({3, 4});
  r.requires_grad();
  BOOST_TEST(r.is_recorded());
  BOOST_TEST(vals(th::grad(th::sum(r * r), r)) == (std::vector<double>{6, 8}));
  // A wrt the cost does not depend on gets zeros of its shape.
  Tensor u = th::variable(th::ones({2, 2}));
  Tensor zero = th::grad(th::sum(v), u);
  BOOST_TEST(vals(zero) == std::vector<double>(4, 0.0));
  BOOST_TEST((zero.shape() == th::Shape{2, 2}));
  // stop_gradient blocks the path.
  BOOST_TEST(vals(th::grad(th::sum(th::stop_gradient(v) * v), v)) == (std::vector<double>{1, 2}));
  // Integer paths carry no gradient; argmax/comparisons are not differentiable.
  BOOST_TEST(vals(th::grad(th::sum(th::cast(v, th::DType::int64) * v), v)) == (std::vector<double>{1, 2}));
  // Gradients of float32 variables are float32.
  Tensor f = th::variable(th::tensor({1, 2}, th::DType::float32));
  BOOST_TEST(th::grad(th::sum(f * 2.0), f).dtype() == th::DType::float32);
}

BOOST_AUTO_TEST_CASE(cast_passes_gradients_between_float_types) {
  // Not in the finite-difference checker: a float32 round trip is coarser than its step.
  Tensor x = th::variable(th::tensor({1, 2}));
  Tensor y = th::sum(th::cast(x, th::DType::float32) * 3.0);
  BOOST_TEST(y.dtype() == th::DType::float32);
  Tensor g = th::grad(y, x);
  BOOST_TEST(g.dtype() == th::DType::float64);
  BOOST_TEST(vals(g) == (std::vector<double>{3, 3}));
  BOOST_TEST(vals(th::grad(th::sum(x.astype(th::DType::float32) * x), x)) == (std::vector<double>{2, 4}));
  BOOST_TEST(x.to(th::cpu()).node() == x.node());
}

BOOST_AUTO_TEST_CASE(prod_gradient_with_zeros) {
  Tensor x = th::variable(th::tensor({{2, 0, 3}, {0, 0, 5}, {1, 2, 4}}));
  Tensor g = th::grad(th::sum(th::prod(x, 1)), x);
  BOOST_TEST(vals(g) == (std::vector<double>{0, 6, 0, 0, 0, 0, 8, 4, 2}));
}

BOOST_AUTO_TEST_CASE(max_gradient_splits_ties) {
  Tensor x = th::variable(th::tensor({1, 3, 3}));
  BOOST_TEST(vals(th::grad(th::max(x), x)) == (std::vector<double>{0, 0.5, 0.5}));
}

BOOST_AUTO_TEST_CASE(jacobian_hessian_vjp) {
  Tensor x = th::variable(th::tensor({1, 2, 3}));
  Tensor y = x * x;  // J = diag(2x)
  BOOST_TEST(vals(th::jacobian(y, x)) == (std::vector<double>{2, 0, 0, 0, 4, 0, 0, 0, 6}));
  Tensor m = th::variable(th::tensor({{1, 2}, {3, 4}}));
  BOOST_TEST((th::jacobian(m * 2.0, m).shape() == th::Shape{2, 2, 2, 2}));
  Tensor cost = th::sum(th::pow(x, 3));  // H = diag(6x)
  BOOST_TEST(vals(th::hessian(cost, x)) == (std::vector<double>{6, 0, 0, 0, 12, 0, 0, 0, 18}));
  BOOST_TEST(vals(th::vjp(y, x, th::tensor({1, 0, 1}))) == (std::vector<double>{2, 0, 6}));
  // Third derivative through repeated grad.
  Tensor s = th::variable(th::tensor(2.0));
  Tensor d1 = th::grad(th::pow(s, 4), s);
  Tensor d2 = th::grad(d1, s);
  Tensor d3 = th::grad(d2, s);
  BOOST_TEST(d1.item() == 32.0);
  BOOST_TEST(d2.item() == 48.0);
  BOOST_TEST(d3.item() == 48.0);
}

BOOST_AUTO_TEST_CASE(tape_memory_is_released) {
  auto step_of = [](const Tensor& x, const Tensor& y, const Tensor& w) {
    Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
    return th::variable(w - 0.1 * th::grad(cost, w), "w");
  };
  // One step first: the per-thread cache of C++ numbers' constant nodes (weak_scalar) is
  // filled once and is not tape memory.
  step_of(th::ones({2, 4}), th::ones({2}), th::variable(th::ones({4})));
  const std::int64_t before = th::detail::live_nodes();
  {
    Tensor w = th::variable(th::random::normal({4}, 1), "w");
    Tensor x = th::random::normal({16, 4}, 2);
    Tensor y = th::random::normal({16}, 3);
    for (int step = 0; step < 200; ++step) {
      w = step_of(x, y, w);
      // Only a bounded number of nodes is alive whatever the step.
      BOOST_TEST_REQUIRE(th::detail::live_nodes() - before < 64);
    }
    BOOST_TEST(th::mean(th::sqr(th::dot(x, w) - y)).item() < 2.0);
  }
  BOOST_TEST(th::detail::live_nodes() == before);
}

BOOST_AUTO_TEST_CASE(deep_chain_releases_without_stack_overflow) {
  const std::int64_t before = th::detail::live_nodes();
  {
    Tensor x = th::variable(th::tensor(1.0));
    Tensor y = x;
    for (int i = 0; i < 200000; ++i) y = y + 1.0;
    BOOST_TEST(y.item() == 200001.0);
    BOOST_TEST(th::grad(y, x).item() == 1.0);
  }
  BOOST_TEST(th::detail::live_nodes() == before);
}
