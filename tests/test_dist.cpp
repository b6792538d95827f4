// th::dist (API.md section 15), run by ctest as one process and under mpirun with 2 and 3
// ranks (tests/dist/CMakeLists.txt): allreduce's values and gradient, eager and frozen;
// ranks each training on their share of a batch reproduce one process on the whole batch
// (the seed's regression and an MLP, float64, to 1e-12); broadcast; mismatched shapes are
// an error on every rank.
#define BOOST_TEST_MODULE dist
#include "check.hpp"

using th::Tensor;
namespace dist = th::dist;

struct Join {
  Join() {
    int argc = boost::unit_test::framework::master_test_suite().argc;
    char** argv = boost::unit_test::framework::master_test_suite().argv;
    dist::init(argc, argv);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(Join);

namespace {
const int R = dist::rank(), N = dist::size();

// rows r, r + N, r + 2N, ... of x: this rank's share of a batch
Tensor share(const Tensor& x) {
  std::vector<std::int64_t> rows;
  for (std::int64_t i = dist::rank(); i < x.shape()[0]; i += dist::size()) rows.push_back(i);
  return th::take(x, th::tensor(rows, {std::int64_t(rows.size())}));
}
}  // namespace

BOOST_AUTO_TEST_CASE(allreduce_values) {
  (void)R, (void)N;
  const int r = dist::rank(), n = dist::size();
  BOOST_TEST_MESSAGE("rank " << r << " of " << n);
  const Tensor x = th::tensor({double(r + 1), -double(r + 1)});
  BOOST_TEST(check::vals(dist::allreduce(x)) == (std::vector<double>{n * (n + 1) / 2.0, -n * (n + 1) / 2.0}),
             boost::test_tools::per_element());
  BOOST_TEST(check::vals(dist::allreduce(x, dist::Op::mean)) == (std::vector<double>{(n + 1) / 2.0, -(n + 1) / 2.0}),
             boost::test_tools::per_element());
  BOOST_TEST(check::vals(dist::allreduce(x, dist::Op::max)) == (std::vector<double>{double(n), -1.0}),
             boost::test_tools::per_element());
  BOOST_TEST(check::vals(dist::allreduce(x, dist::Op::min)) == (std::vector<double>{1.0, -double(n)}),
             boost::test_tools::per_element());
  const Tensor i = th::tensor(std::vector<std::int64_t>{r, 1}, {2});
  BOOST_TEST(check::vals(dist::allreduce(i)) == (std::vector<double>{n * (n - 1) / 2.0, double(n)}),
             boost::test_tools::per_element());
  // frozen, the same
  const Tensor v = th::dvector("v");
  const th::Function f = th::function({v}, dist::allreduce(v * 2.0, dist::Op::sum));
  BOOST_TEST(check::vals(f(x)) == (std::vector<double>{double(n * (n + 1)), -double(n * (n + 1))}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(allreduce_gradient) {
  // L = sum over ranks of sum(allreduce(x^2)): dL/dx on each rank = N * 2x (sum), 2x (mean)
  const int n = dist::size();
  const Tensor x = th::variable(th::tensor({1.0 + dist::rank(), 2.0}));
  const auto g = check::vals(th::grad(th::sum(dist::allreduce(x * x)), x));
  const auto gm = check::vals(th::grad(th::sum(dist::allreduce(x * x, dist::Op::mean)), x));
  const auto xv = check::vals(x);
  for (std::size_t k = 0; k < 2; ++k) {
    BOOST_TEST(g[k] == 2.0 * n * xv[k]);
    BOOST_TEST(gm[k] == 2.0 * xv[k]);
  }
  // max: the gradient goes to the rank holding the extreme
  const auto gx = check::vals(th::grad(th::sum(dist::allreduce(x, dist::Op::max)), x));
  BOOST_TEST(gx[0] == (dist::rank() == n - 1 ? double(n) : 0.0));
  BOOST_TEST(gx[1] == double(n));  // (a tie: every rank holds it)
}

BOOST_AUTO_TEST_CASE(shares_of_a_batch_train_as_one_process) {
  std::vector<double> xv, yv;
  {  // the seed's regression data (bench/harness.hpp's generator)
    unsigned s = 12345;
    auto next = [&] { return (s = s * 1103515245u + 12345u) / 4294967296.0; };
    xv.resize(125 * 4), yv.resize(125);
    for (auto& v : xv) v = next();
    for (int i = 0; i < 125; ++i) yv[i] = 3 * xv[i * 4] + 3 * xv[i * 4 + 1] + 2 * xv[i * 4 + 2] + 2 * xv[i * 4 + 3];
  }
  const Tensor X = th::tensor(xv, {125, 4}), Y = th::tensor(yv, {125});
  // a regression and an MLP; each rank's loss is its rows' part of the whole batch's sum
  auto train = [&](bool distributed, bool mlp) {
    th::Shared w1 = th::shared(mlp ? th::random::uniform({4, 6}, -0.5, 0.5, 1) : th::zeros({4}), "w1");
    th::Shared w2 = th::shared(th::random::uniform({6}, -0.5, 0.5, 2), "w2");
    const Tensor x = th::dmatrix("x"), y = th::dvector("y");
    const Tensor pred = mlp ? th::matmul(th::tanh(th::matmul(x, w1)), w2) : th::matmul(x, w1);
    const Tensor cost = th::sum(th::sqr(pred - y)) / 125.0;
    std::vector<Tensor> g = th::grad(cost, {w1, w2});
    if (distributed)
      for (Tensor& t : g) t = dist::allreduce(t);
    const th::Function step = th::function({x, y}, {cost}, th::optim::sgd(g, {w1, w2}, 0.1));
    const Tensor xs = distributed ? share(X) : X, ys = distributed ? share(Y) : Y;
    for (int i = 0; i < 100; ++i) step(xs, ys);
    return check::vals(w1.get_value());
  };
  for (bool mlp : {false, true}) {
    const auto one = train(false, mlp), many = train(true, mlp);
    BOOST_TEST_REQUIRE(one.size() == many.size());
    for (std::size_t i = 0; i < one.size(); ++i)
      BOOST_TEST(std::fabs(one[i] - many[i]) < 1e-12, (mlp ? "mlp " : "regression ") << one[i] << " vs " << many[i]);
  }
}

BOOST_AUTO_TEST_CASE(broadcast_makes_ranks_alike) {
  th::Shared w = th::shared(th::random::uniform({3, 2}, -1, 1, 100 + std::uint64_t(dist::rank())), "w");
  dist::broadcast({w}, 0);
  const Tensor spread = dist::allreduce(w.get_value(), dist::Op::max) - dist::allreduce(w.get_value(), dist::Op::min);
  BOOST_TEST(check::vals(spread) == std::vector<double>(6, 0.0), boost::test_tools::per_element());
  BOOST_TEST(check::vals(w.get_value()) == check::vals(th::random::uniform({3, 2}, -1, 1, 100)), boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { dist::broadcast({w}, dist::size()); }), "is not a rank"));
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_are_an_error_on_every_rank) {
  if (dist::size() == 1) return;  // (one rank always agrees with itself)
  const Tensor x = th::zeros({2 + dist::rank()});
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { dist::allreduce(x); }), "differ in their sizes"));
  const Tensor y = dist::rank() == 0 ? th::zeros({2}, th::DType::float32) : th::zeros({2});
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] { dist::allreduce(y); }), "differ in their dtypes"));
  // and the ranks still agree afterwards
  BOOST_TEST(dist::allreduce(th::tensor(1.0)).item<double>() == double(dist::size()));
}

BOOST_AUTO_TEST_CASE(a_frozen_average_is_one_allreduce) {
  th::Shared a = th::shared(th::random::uniform({3, 2}, -1, 1, 7), "a"), b = th::shared(th::random::uniform({4}, -1, 1, 8), "b");
  th::Shared c = th::shared(th::random::uniform({2, 2, 2}, -1, 1, 9), "c");
  const Tensor x = th::dscalar("x");
  const Tensor cost = (th::sum(th::sqr(a)) + th::sum(b * b * b) + th::sum(th::exp(c))) * x;
  const std::vector<th::Shared> params{a, b, c};
  const std::vector<Tensor> g = dist::average(th::grad(cost, params));  // (API.md's line, verbatim)
  const th::Function f = th::function({x}, g);
  const std::string text = th::debugprint(f);
  std::size_t count = 0;
  for (std::size_t at = text.find("= allreduce("); at != std::string::npos; at = text.find("= allreduce(", at + 1)) ++count;
  BOOST_TEST(count == (dist::size() > 1 ? 1u : 3u), text);  // one MPI call for the three gradients
  const th::Result r = f(1.0 + dist::rank());
  const double scale = (dist::size() + 1) / 2.0;  // the mean of x over the ranks
  const auto ga = check::vals(r[0]), gb = check::vals(r[1]), gc = check::vals(r[2]);
  const auto av = check::vals(a.get_value()), bv = check::vals(b.get_value()), cv = check::vals(c.get_value());
  for (std::size_t i = 0; i < av.size(); ++i) BOOST_TEST(std::fabs(ga[i] - 2 * av[i] * scale) < 1e-12);
  for (std::size_t i = 0; i < bv.size(); ++i) BOOST_TEST(std::fabs(gb[i] - 3 * bv[i] * bv[i] * scale) < 1e-12);
  for (std::size_t i = 0; i < cv.size(); ++i) BOOST_TEST(std::fabs(gc[i] - std::exp(cv[i]) * scale) < 1e-12);
  BOOST_TEST(r[2].shape() == (th::Shape{2, 2, 2}));
}

BOOST_AUTO_TEST_CASE(a_frozen_call_packs_its_allreduces) {
  // three allreduces written one by one (two float64 sums, then a max that waits for them)
  const Tensor a = th::dvector("a"), b = th::dmatrix("b");
  const Tensor s1 = dist::allreduce(a * 2.0), s2 = dist::allreduce(b);
  const Tensor m = dist::allreduce(th::sum(s1) + th::sum(s2), dist::Op::max);
  const th::Function f = th::function({a, b}, {s1, s2, m});
  const std::string text = th::debugprint(f);
  std::size_t count = 0;
  for (std::size_t at = text.find("= allreduce("); at != std::string::npos; at = text.find("= allreduce(", at + 1)) ++count;
  const int n = dist::size();
  BOOST_TEST(count == (n > 1 ? 2u : 3u), text);  // s1 and s2 in one call (with several ranks)
  const th::Result r = f(th::tensor({1.0, 2.0}), th::tensor({{1.0, double(dist::rank())}}));
  BOOST_TEST(check::vals(r[0]) == (std::vector<double>{2.0 * n, 4.0 * n}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(r[1]) == (std::vector<double>{double(n), n * (n - 1) / 2.0}), boost::test_tools::per_element());
  BOOST_TEST(r[1].shape() == (th::Shape{1, 2}));
  BOOST_TEST(r[2].item<double>() == 6.0 * n + n + n * (n - 1) / 2.0);
}
