// Symbolic use of the core: ops record on placeholders with unknown dims through the same
// op definitions, th::grad returns symbolic gradients (differentiable again), and one
// frozen function of them matches eager results on two input sizes.
#define BOOST_TEST_MODULE symbolic_core
#include "check.hpp"
#include "core/node.hpp"

using th::Tensor;

BOOST_AUTO_TEST_CASE(seed_regression_graph_is_shape_polymorphic) {
  Tensor X = th::placeholder(th::DType::float64, 2, "x");
  Tensor Y = th::placeholder(th::DType::float64, 1, "y");
  Tensor w = th::variable(th::random::normal({4}, 1), "w");
  Tensor cost = th::mean(th::sqr(th::dot(X, w) - Y));
  BOOST_TEST(cost.is_symbolic());
  BOOST_TEST(cost.ndim() == 0);
  BOOST_CHECK_THROW(cost.item(), th::ValueError);
  BOOST_CHECK_THROW(cost.shape(), th::ValueError);
  Tensor g = th::grad(cost, w);
  BOOST_TEST(g.is_symbolic());
  BOOST_TEST(g.ndim() == 1);
  BOOST_TEST((g.node()->shape == th::Shape{4}));

  auto f = th::function({X, Y}, {cost, g});
  for (std::int64_t rows : {5, 9}) {
    Tensor xv = th::random::normal({rows, 4}, 10 + std::uint64_t(rows));
    Tensor yv = th::random::normal({rows}, 20 + std::uint64_t(rows));
    Tensor eager_cost = th::mean(th::sqr(th::dot(xv, w) - yv));
    Tensor eager_g = th::grad(eager_cost, w);
    th::Result r = f(xv, yv);
    BOOST_TEST(r[0].item() == eager_cost.item(), boost::test_tools::tolerance(1e-12));
    auto a = r[1].to_vector(), b = eager_g.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i], boost::test_tools::tolerance(1e-12));
  }
  // A size that the broadcasting does not allow fails at run time with the user's names.
  try {
    f(th::zeros({5, 3}), th::zeros({5}));
    BOOST_FAIL("expected a ShapeError");
  } catch (const th::ShapeError& e) {
    BOOST_TEST(std::string(e.what()).find("[x, w]") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(symbolic_grad_of_grad_and_shape_ops) {
  Tensor x = th::placeholder(th::DType::float64, 1, "x");
  auto f = [](const Tensor& v) {
    return th::sum(th::pow(v, 3)) + th::sum(th::softmax(th::reshape(v, {1, -1})) * v) +
           th::sum(th::sqr(th::concatenate({th::view(v, th::range(0, 2)), th::take(v, th::tensor({0}, th::DType::int64))})));
  };
  Tensor y = f(x);
  Tensor g = th::grad(y, x);
  Tensor h = th::grad(th::sum(g), x);  // sum of Hessian rows
  auto fh = th::function({x}, h);
  for (std::int64_t n : {3, 6}) {
    Tensor xv = th::random::normal({n}, std::uint64_t(n));
    Tensor xe = th::variable(xv);
    Tensor ye = f(xe);
    Tensor ge = th::grad(ye, xe);
    Tensor he = th::grad(th::sum(ge), xe);
    auto a = fh(xv).to_vector(), b = he.to_vector();
    BOOST_TEST_REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i], boost::test_tools::tolerance(1e-10));
  }
}
