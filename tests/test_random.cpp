// Random streams (API.md section 10): the statistics of each distribution on 10^6 draws
// (moments and a Kolmogorov-Smirnov test), independence across draws and calls, the same
// numbers on any number of kernel threads, frozen draws advancing with the updates (and not
// when a call throws), Philox's published test vector, and dropout.
#define BOOST_TEST_MODULE random
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "check.hpp"
#include "core/philox.hpp"

using th::Tensor;

namespace {

// The Kolmogorov-Smirnov statistic sqrt(n) * D of sorted samples against the CDF F.
template <class F>
double ks(std::vector<double> v, F cdf) {
  std::sort(v.begin(), v.end());
  const double n = double(v.size());
  double d = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double f = cdf(v[i]);
    d = std::max({d, std::fabs(f - double(i) / n), std::fabs(double(i + 1) / n - f)});
  }
  return std::sqrt(n) * d;
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double var_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double e : v) s += (e - m) * (e - m);
  return s / double(v.size());
}
double corr(const std::vector<double>& a, const std::vector<double>& b) {
  const double ma = mean_of(a), mb = mean_of(b);
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - ma) * (b[i] - mb);
  return s / double(a.size()) / std::sqrt(var_of(a) * var_of(b));
}

// sqrt(n) D above 1.95 has probability 0.001 for a correct generator.
constexpr double kKsLimit = 1.95;
constexpr std::int64_t kDraws = 1000000;

}  // namespace

BOOST_AUTO_TEST_CASE(uniform_statistics) {
  th::RandomStreams srng(42);
  for (th::DType d : {th::DType::float64, th::DType::float32}) {
    const auto v = srng.uniform({kDraws}, 0.0, 1.0, d).to_vector<double>();
    BOOST_TEST(*std::min_element(v.begin(), v.end()) >= 0.0);
    BOOST_TEST(*std::max_element(v.begin(), v.end()) < 1.0);
    BOOST_TEST(mean_of(v) == 0.5, boost::test_tools::tolerance(0.003));
    BOOST_TEST(var_of(v) == 1.0 / 12, boost::test_tools::tolerance(0.005));
    BOOST_TEST(ks(v, [](double x) { return x; }) < kKsLimit);
    // neighbours are independent
    const std::vector<double> a(v.begin(), v.end() - 1), b(v.begin() + 1, v.end());
    BOOST_TEST(std::fabs(corr(a, b)) < 0.005);
  }
  const auto w = srng.uniform({1000}, -3.0, 5.0).to_vector<double>();
  BOOST_TEST(*std::min_element(w.begin(), w.end()) >= -3.0);
  BOOST_TEST(*std::max_element(w.begin(), w.end()) < 5.0);
}

BOOST_AUTO_TEST_CASE(normal_statistics) {
  th::RandomStreams srng(7);
  for (th::DType d : {th::DType::float64, th::DType::float32}) {
    const auto v = srng.normal({kDraws}, 0.0, 1.0, d).to_vector<double>();
    BOOST_TEST(mean_of(v) == 0.0, boost::test_tools::tolerance(0.003));
    BOOST_TEST(std::fabs(mean_of(v)) < 0.005);
    BOOST_TEST(var_of(v) == 1.0, boost::test_tools::tolerance(0.005));
    double m3 = 0, m4 = 0;
    for (double e : v) m3 += e * e * e, m4 += e * e * e * e;
    BOOST_TEST(std::fabs(m3 / kDraws) < 0.02);
    BOOST_TEST(m4 / kDraws == 3.0, boost::test_tools::tolerance(0.01));
    BOOST_TEST(ks(v, [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }) < kKsLimit);
    const std::vector<double> a(v.begin(), v.end() - 1), b(v.begin() + 1, v.end());
    BOOST_TEST(std::fabs(corr(a, b)) < 0.005);  // the two halves of a Box-Muller pair too
  }
  const auto s = srng.normal({200000}, 3.0, 2.0).to_vector<double>();
  BOOST_TEST(mean_of(s) == 3.0, boost::test_tools::tolerance(0.005));
  BOOST_TEST(var_of(s) == 4.0, boost::test_tools::tolerance(0.01));
}

BOOST_AUTO_TEST_CASE(discrete_draws) {
  th::RandomStreams srng(3);
  const Tensor b = srng.binomial({kDraws}, 1, 0.3);
  BOOST_TEST((b.dtype() == th::DType::int64));
  BOOST_TEST(mean_of(b.to_vector<double>()) == 0.3, boost::test_tools::tolerance(0.005));
  const auto b5 = srng.binomial({200000}, 5, 0.4, th::DType::float64).to_vector<double>();
  BOOST_TEST(mean_of(b5) == 2.0, boost::test_tools::tolerance(0.005));
  BOOST_TEST(var_of(b5) == 1.2, boost::test_tools::tolerance(0.01));
  const auto k = srng.integers({600000}, -2, 4).to_vector<std::int64_t>();
  std::vector<std::int64_t> counts(6);
  for (auto e : k) {
    BOOST_TEST_REQUIRE((e >= -2 && e < 4));
    ++counts[std::size_t(e + 2)];
  }
  for (auto c : counts) BOOST_TEST(std::abs(c - 100000) < 1500);  // 5 sigma
  auto p = srng.permutation(1000).to_vector<std::int64_t>();
  const auto first = p;
  std::sort(p.begin(), p.end());
  for (std::int64_t i = 0; i < 1000; ++i) BOOST_TEST_REQUIRE(p[std::size_t(i)] == i);
  BOOST_TEST(first != p);  // shuffled
  BOOST_TEST(srng.permutation(0).size() == 0);
}

BOOST_AUTO_TEST_CASE(same_seed_same_numbers_and_draws_differ) {
  th::RandomStreams a(5), b(5), c(6);
  const auto a1 = a.uniform({100}).to_vector<double>(), a2 = a.uniform({100}).to_vector<double>();
  const auto b1 = b.uniform({100}).to_vector<double>(), c1 = c.uniform({100}).to_vector<double>();
  BOOST_TEST(a1 == b1, boost::test_tools::per_element());
  BOOST_TEST(a1 != a2);
  BOOST_TEST(a1 != c1);
  a.seed(5);
  BOOST_TEST(a.uniform({100}).to_vector<double>() == a1, boost::test_tools::per_element());
  // a prefix of a longer draw is the shorter draw: numbers depend on the element index only
  th::RandomStreams d(5);
  const auto d1 = d.uniform({250}).to_vector<double>();
  BOOST_TEST(std::vector<double>(d1.begin(), d1.begin() + 100) == a1, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_same_numbers_on_any_number_of_threads) {
  // The kernel threads are fixed per process: run this test's draw in children with
  // THETA_NUM_THREADS=1 and 2 and compare with this process's numbers.
  const char* self = std::getenv("THETA_RANDOM_CHILD");
  th::RandomStreams srng(11);
  const auto v = srng.normal({300000}, 0.0, 1.0, th::DType::float32).to_vector<double>();
  double h = 0;
  for (std::size_t i = 0; i < v.size(); ++i) h = std::fmod(h * 31 + v[i] * 1000 + double(i), 1e9);
  if (self) {
    std::printf("HASH %.6f\n", h);
    return;
  }
  const std::string exe = boost::unit_test::framework::master_test_suite().argv[0];
  for (const char* n : {"1", "2", "3"}) {
    const std::string cmd = "THETA_RANDOM_CHILD=1 THETA_NUM_THREADS=" + std::string(n) + " '" + exe +
                            "' --run_test=the_same_numbers_on_any_number_of_threads 2>/dev/null | grep HASH";
    FILE* p = popen(cmd.c_str(), "r");
    BOOST_TEST_REQUIRE(p != nullptr);
    char line[128] = {0};
    const bool got = std::fgets(line, sizeof line, p) != nullptr;
    pclose(p);
    BOOST_TEST_REQUIRE(got, "the child with " << n << " threads printed nothing");
    char want[64];
    std::snprintf(want, sizeof want, "HASH %.6f\n", h);
    BOOST_TEST(std::string(line) == std::string(want), "threads=" << n);
  }
}

BOOST_AUTO_TEST_CASE(frozen_draws_advance_per_call_with_the_updates) {
  th::RandomStreams srng(9);
  const Tensor x = th::dmatrix("x");
  const Tensor u = srng.uniform(th::shape_of(x));  // a symbolic shape
  const Tensor n = srng.normal({3});
  th::Shared count = th::shared(th::tensor(0.0), "count");
  const th::Function f = th::function({x}, {u, n}, {{count, count + 1.0}});
  const th::Result r1 = f(th::zeros({2, 3})), r2 = f(th::zeros({2, 3}));
  BOOST_TEST((r1[0].shape() == th::Shape{2, 3}));
  BOOST_TEST(r1[0].to_vector<double>() != r2[0].to_vector<double>());
  BOOST_TEST(r1[1].to_vector<double>() != r2[1].to_vector<double>());
  BOOST_TEST(r1[0].to_vector<double>() != r1[1].to_vector<double>());
  BOOST_TEST(srng.state().get_value().to_vector<std::int64_t>() == (std::vector<std::int64_t>{9, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(count.get_value().item<double>() == 2.0);
}

BOOST_AUTO_TEST_CASE(a_call_that_throws_advances_nothing) {
  auto make = [](th::RandomStreams& srng) {
    const Tensor x = th::dmatrix("x"), w = th::dvector("w");
    return th::function({x, w}, th::dot(x, w) + srng.uniform({2}));
  };
  th::RandomStreams s1(4), s2(4);
  const th::Function f = make(s1), g = make(s2);
  const Tensor x = th::zeros({2, 3}), w = th::zeros({3});
  const auto first = Tensor(g(x, w)).to_vector<double>();
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { f(x, th::zeros({4})); }), "not aligned"));
  BOOST_TEST(s1.state().get_value().to_vector<std::int64_t>() == (std::vector<std::int64_t>{4, 0}),
             boost::test_tools::per_element());
  BOOST_TEST(Tensor(f(x, w)).to_vector<double>() == first, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(philox_known_answers) {
  // Random123's kat_vectors for philox4x32_10
  std::uint32_t out[4];
  th::detail::Philox{0, 0}.block(0, 0, out);
  BOOST_TEST(out[0] == 0x6627e8d5u);
  BOOST_TEST(out[1] == 0xe169c58du);
  BOOST_TEST(out[2] == 0xbc57ac4cu);
  BOOST_TEST(out[3] == 0x9b00dbd8u);
  th::detail::Philox{0xa4093822u, 0x299f31d0u}.block(0x85a308d3243f6a88ull, 0x0370734413198a2eull, out);
  BOOST_TEST(out[0] == 0xd16cfe09u);
  BOOST_TEST(out[1] == 0x94fdccebu);
  BOOST_TEST(out[2] == 0x5001e420u);
  BOOST_TEST(out[3] == 0x24126ea1u);
}

BOOST_AUTO_TEST_CASE(dropout_keeps_the_expectation) {
  th::RandomStreams srng(1);
  const Tensor x = th::ones({1000, 1000});
  const auto v = th::dropout(x, 0.3, srng).to_vector<double>();
  std::size_t zeros = 0;
  for (double e : v) {
    if (e == 0) ++zeros;
    else BOOST_TEST_REQUIRE(e == 1.0 / 0.7, boost::test_tools::tolerance(1e-15));
  }
  BOOST_TEST(double(zeros) / 1e6 == 0.3, boost::test_tools::tolerance(0.005));
  BOOST_TEST(check::vals(th::dropout(x, 0.0, srng)) == check::vals(x), boost::test_tools::per_element());
  BOOST_TEST(th::sum(th::dropout(x, 1.0, srng)).item<double>() == 0.0);
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::dropout(x, 1.5, srng); }), "dropout: p must be in [0, 1]"));
  // the gradient is the mask over (1 - p); symbolic, every call a new mask
  const Tensor xv = th::variable(th::ones({4, 5}));
  const Tensor y = th::dropout(xv, 0.5, srng);
  BOOST_TEST(check::vals(th::grad(th::sum(y), xv)) == check::vals(y), boost::test_tools::per_element());
  const Tensor xs = th::dmatrix("xs");
  const th::Function f = th::function({xs}, th::dropout(xs, 0.5, srng));
  const auto m1 = Tensor(f(th::ones({10, 10}))).to_vector<double>(), m2 = Tensor(f(th::ones({10, 10}))).to_vector<double>();
  BOOST_TEST(m1 != m2);
  for (double e : m1) BOOST_TEST_REQUIRE((e == 0.0 || e == 2.0));
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  th::RandomStreams srng(1);
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { srng.uniform({2}, 3.0, 1.0); }), "RandomStreams::uniform"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { srng.integers({2}, 3, 3); }), "RandomStreams::integers"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { srng.binomial({2}, 1, 1.5); }), "p must be in [0, 1]"));
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] { srng.normal({2}, 0.0, 1.0, th::DType::int64); }), "float32 or float64"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { srng.uniform({2, -1}); }), "negative dimension"));
  // two streams in one checkpoint need names apart
  th::RandomStreams a(1), b(2), c(3, "noise");
  BOOST_TEST(c.state().name() == "noise.state");
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::save_params("/tmp/theta_never_written.npz", {a.state(), b.state()}); }),
                        "two shared variables are named 'srng.state'"));
}
