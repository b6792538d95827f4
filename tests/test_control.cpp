// th::ifelse (API.md section 12): eager choice, laziness in frozen functions (the branch not
// taken would throw), gradients through both branches with the shared checker, training a
// shared variable through a branch, and errors.
#define BOOST_TEST_MODULE control
#include "check.hpp"

using th::Tensor;
using X = check::Inputs;

BOOST_AUTO_TEST_CASE(eager_picks_now) {
  const Tensor a = th::variable(th::tensor({1, 2})), b = th::tensor({5, 6});
  const Tensor y = th::ifelse(th::sum(a) > 0.0, a * 3.0, b);
  BOOST_TEST(check::vals(y) == (std::vector<double>{3, 6}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(th::grad(th::sum(y), a)) == (std::vector<double>{3, 3}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(th::ifelse(th::tensor(0.0) > 1.0, a, b)) == (std::vector<double>{5, 6}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(only_the_branch_taken_runs) {
  const Tensor c = th::placeholder(th::DType::boolean, 0, "c");
  const Tensor x = th::dvector("x");
  // the else branch inverts x as a 2x2 matrix: singular for this x, so it throws if it runs
  const Tensor y = th::ifelse(c, x * 2.0, th::reshape(th::linalg::inv(th::reshape(x, {2, 2})), {-1}));
  const th::Function f = th::function({c, x}, y);
  const Tensor singular = th::tensor({1, 2, 2, 4});
  BOOST_TEST(check::vals(f(true, singular)) == (std::vector<double>{2, 4, 4, 8}), boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { f(false, singular); }), "inv: singular matrix"));
  BOOST_TEST(check::vals(f(false, th::tensor({2, 0, 0, 4}))) == (std::vector<double>{0.5, 0, 0, 0.25}),
             boost::test_tools::per_element());
  // the branches' sizes may differ
  const th::Function g = th::function({c, x}, th::ifelse(c, x, th::concatenate({x, x})));
  BOOST_TEST(Tensor(g(false, th::tensor({1, 2}))).size() == 4);
  BOOST_TEST(check::has(th::debugprint(f), "ifelse"));
}

BOOST_AUTO_TEST_CASE(gradients_through_either_branch) {
  check::Options g2;
  g2.grad2 = true;
  for (double t : {-100.0, 100.0}) {  // the condition always true, then always false
    check::op(
        "ifelse " + std::to_string(t), [t](const X& v) {
          return th::ifelse(th::sum(v[0]) > t, th::sin(v[0]) * v[1], v[0] * v[0] + th::exp(v[1]));
        },
        {{3}, {3}}, {3}, g2);
  }
  // a branch that reads only one of the inputs
  check::op("ifelse one-sided", [](const X& v) { return th::ifelse(th::sum(v[0]) > -100.0, v[0] * 2.0, v[1]); },
            {{2, 3}, {2, 3}}, {2, 3});
}

BOOST_AUTO_TEST_CASE(training_through_a_branch) {
  th::Shared w = th::shared(th::tensor({1.0, -1.0}), "w");
  const Tensor x = th::dvector("x");
  const Tensor c = th::placeholder(th::DType::boolean, 0, "c");
  const Tensor cost = th::sum(th::sqr(th::ifelse(c, w * x, w - x)));
  const th::Function step = th::function({c, x}, {cost}, th::optim::sgd(cost, {w}, 0.1));
  step(true, th::tensor({2.0, 2.0}));  // d/dw (w x)^2 = 2 w x^2 = (8, -8): w - 0.8
  auto near = [&](double a, double b) {
    const auto v = check::vals(w.get_value());
    BOOST_TEST(std::fabs(v[0] - a) < 1e-12, v[0] << " vs " << a);
    BOOST_TEST(std::fabs(v[1] - b) < 1e-12, v[1] << " vs " << b);
  };
  near(0.2, -0.2);
  step(false, th::tensor({0.0, 0.0}));  // d/dw (w - x)^2 = 2 w = (0.4, -0.4)
  near(0.16, -0.16);
}

BOOST_AUTO_TEST_CASE(errors) {
  const Tensor c = th::placeholder(th::DType::boolean, 0, "c");
  const Tensor x = th::dvector("x");
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] { th::ifelse(c, x, th::dmatrix("m")); }), "ifelse: the branches differ"));
  // a condition of more than one element: found when the call gives its size
  const Tensor cv = th::placeholder(th::DType::boolean, 1, "cv");
  const th::Function f = th::function({cv, x}, th::ifelse(cv, x, x * 2.0));
  BOOST_TEST(check::vals(f(std::vector<bool>{true}, th::tensor({1.0}))) == (std::vector<double>{1}), boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { f(std::vector<bool>{true, false}, th::tensor({1.0})); }),
                        "ifelse: the condition must have one element"));
}
