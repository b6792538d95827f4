// th::scan, th::map, th::foldl (API.md section 12): values against hand-written loops, every
// body through the shared checker (central differences, grad of grad, eager == frozen on
// grown shapes: more steps through the same function), random draws once per step, the
// frozen program's size independent of the number of steps, and errors.
#define BOOST_TEST_MODULE scan
#include <chrono>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;
using V = std::vector<Tensor>;

namespace {
// h_t = tanh(x_t W + h_{t-1} U + b): the Elman cell
V rnn(const X& v) {
  return th::scan([&](const V& a) { return V{th::tanh(th::matmul(a[0], v[2]) + th::matmul(a[1], v[3]) + v[4])}; },
                  {v[0]}, {v[1]});
}
}  // namespace

BOOST_AUTO_TEST_CASE(values_match_a_loop) {
  const Tensor x = th::tensor({1, 2, 3, 4});
  const V r = th::scan([](const V& a) { return V{a[0] * a[1]}; }, {x}, {th::tensor(1.0)});
  BOOST_TEST(check::vals(r[0]) == (std::vector<double>{1, 2, 6, 24}), boost::test_tools::per_element());
  // go_backwards: the outputs in the order computed
  const V b = th::scan([](const V& a) { return V{a[0] + a[1]}; }, {x}, {th::tensor(0.0)}, {}, {-1, true});
  BOOST_TEST(check::vals(b[0]) == (std::vector<double>{4, 7, 9, 10}), boost::test_tools::per_element());
  // n_steps without sequences, a non-sequence, and an output that is not fed back
  const Tensor a = th::tensor({{0.5, 0.0}, {0.0, 2.0}});
  const V p = th::scan([](const V& s) { return V{th::matmul(s[1], s[0]), th::sum(s[0])}; }, {},
                       {th::tensor({1.0, 1.0}), Tensor()}, {a}, {3, false});
  BOOST_TEST(check::vals(p[0]) == (std::vector<double>{0.5, 2, 0.25, 4, 0.125, 8}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(p[1]) == (std::vector<double>{2, 2.5, 4.25}), boost::test_tools::per_element());
  // n_steps with sequences takes the first steps
  const V c = th::scan([](const V& s) { return V{s[0] + s[1]}; }, {x}, {th::tensor(0.0)}, {}, {2, false});
  BOOST_TEST(check::vals(c[0]) == (std::vector<double>{1, 3}), boost::test_tools::per_element());
  // map and foldl
  BOOST_TEST(check::vals(th::map([](const V& s) { return s[0] * s[1]; }, {x}, {th::tensor(3.0)})) ==
                 (std::vector<double>{3, 6, 9, 12}),
             boost::test_tools::per_element());
  BOOST_TEST(th::foldl([](const V& s) { return s[0] + s[1]; }, {x}, th::tensor(0.0)).item() == 10.0);
  // steps written as scan steps (one-element vectors), a th::StepFn1 object, a function pointer
  BOOST_TEST(check::vals(th::map([](const V& s) { return V{s[0] * s[1]}; }, {x}, {th::tensor(3.0)})) ==
                 (std::vector<double>{3, 6, 9, 12}),
             boost::test_tools::per_element());
  BOOST_TEST(th::foldl([](const V& s) { return V{s[0] + s[1]}; }, {x}, th::tensor(0.0)).item() == 10.0);
  const th::StepFn1 twice = [](const V& s) { return s[0] * 2.0; };
  BOOST_TEST(check::vals(th::map(twice, {x})) == (std::vector<double>{2, 4, 6, 8}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(th::map(th::StepFn1(twice), {x})) == (std::vector<double>{2, 4, 6, 8}),
             boost::test_tools::per_element());
  Tensor (*neg)(const V&) = [](const V& s) { return -s[0]; };
  BOOST_TEST(check::vals(th::map(neg, {x})) == (std::vector<double>{-1, -2, -3, -4}), boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::map([](const V& s) { return V{s[0], s[0]}; }, {x}); }),
                        "map: the step function returned 2 tensors; a map step returns one"));
  // an Elman RNN against the loop written out
  const Tensor xs = check::input({4, 2, 3}, 1, -1, 1), h0 = check::input({2, 5}, 2, -1, 1);
  const Tensor W = check::input({3, 5}, 3, -1, 1), U = check::input({5, 5}, 4, -1, 1), bias = check::input({5}, 5, -1, 1);
  const Tensor hs = rnn({xs, h0, W, U, bias})[0];
  Tensor h = h0;
  for (std::int64_t t = 0; t < 4; ++t) {
    h = th::tanh(th::matmul(th::view(xs, t), W) + th::matmul(h, U) + bias);
    const auto got = check::vals(th::view(hs, t)), want = check::vals(h);
    for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(std::fabs(got[i] - want[i]) < 1e-14);
  }
}

BOOST_AUTO_TEST_CASE(zero_steps) {
  const Tensor x = th::dmatrix("x"), h0 = th::dvector("h0");
  const V r = th::scan([](const V& a) { return V{a[0] + a[1], th::sum(a[0])}; }, {x}, {h0, Tensor()});
  const Tensor last = th::foldl([](const V& a) { return a[0] * a[1]; }, {x}, h0);
  const th::Function f = th::function({x, h0}, {r[0], r[1], last, th::grad(th::sum(last) + th::sum(r[0]), h0)});
  const th::Result z = f(th::zeros({0, 3}), th::tensor({1, 2, 3}));
  BOOST_TEST(z[0].shape() == (th::Shape{0, 3}));
  BOOST_TEST(z[1].shape() == (th::Shape{0}));
  BOOST_TEST(check::vals(z[2]) == (std::vector<double>{1, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(check::vals(z[3]) == (std::vector<double>{1, 1, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gradients_through_the_checker) {
  check::Options g2;
  g2.grad2 = true;
  g2.lo = -1, g2.hi = 1;
  check::op("scan rnn", [](const X& v) { return rnn(v)[0]; }, {{3, 2, 3}, {2, 4}, {3, 4}, {4, 4}, {4}}, {3, 2, 4}, g2);
  check::op(
      "scan cumulative product", [](const X& v) {
        return th::scan([](const V& a) { return V{a[0] * a[1]}; }, {v[0]}, {v[1]})[0];
      },
      {{4, 3}, {3}}, {4, 3}, g2);
  check::op(
      "scan go_backwards", [](const X& v) {
        return th::scan([](const V& a) { return V{th::sin(a[0]) * a[1] + a[2]}; }, {v[0]}, {v[1]}, {v[2]},
                        {-1, true})[0];
      },
      {{4, 2}, {2}, {2}}, {4, 2}, g2);
  check::op(
      "map with non-sequences", [](const X& v) {
        return th::map([](const V& a) { return th::matmul(a[1], a[0]) * th::exp(a[2]); }, {v[0], v[1]}, {v[2]});
      },
      {{3, 2, 2}, {3, 2}, {2}}, {3, 2}, g2);
  check::op(
      "foldl", [](const X& v) {
        return th::foldl([](const V& a) { return th::tanh(a[0] * a[1] + a[2]); }, {v[0]}, v[1], {v[2]});
      },
      {{5, 3}, {3}, {3}}, {3}, g2);
  // two fed-back outputs reading each other, one output not fed back, a closure
  check::op(
      "scan two states", [](const X& v) {
        const Tensor w = v[3];
        const V r = th::scan(
            [&](const V& a) {
              const Tensor h = th::tanh(a[0] * a[2] + w);
              return V{h, a[1] + h * a[0], th::sum(h * a[1])};
            },
            {v[0]}, {v[1], v[2], Tensor()});
        return th::concatenate({r[0], r[1], th::expand_dims(r[2], 1)}, 1);
      },
      {{3, 2}, {2}, {2}, {2}}, {3, 5}, g2);
  // without sequences: a power iteration on a matrix given as a non-sequence
  check::Options fixed;
  fixed.frozen = true;
  check::op(
      "scan n_steps", [](const X& v) {
        return th::scan([](const V& a) { return V{th::tanh(th::matmul(a[1], a[0]))}; }, {}, {v[1]}, {v[0]},
                        {3, false})[0];
      },
      {{3, 3}, {3}}, {3, 3}, fixed);
}

BOOST_AUTO_TEST_CASE(one_function_any_length) {
  const Tensor x = th::dtensor3("x"), h0 = th::dmatrix("h0");
  th::Shared W = th::shared(check::input({3, 4}, 11, -1, 1), "W"), U = th::shared(check::input({4, 4}, 12, -1, 1), "U");
  th::Shared b = th::shared(check::input({4}, 13, -1, 1), "b");
  const Tensor hs = rnn({x, h0, W, U, b})[0];
  const Tensor cost = th::sum(th::sqr(hs));
  const V g = th::grad(cost, {W, U, b, h0});
  const th::Function f = th::function({x, h0}, {hs, g[0], g[1], g[2], g[3]});
  const std::size_t steps = th::debugprint(f).size();
  for (std::int64_t T : {1, 2, 7, 20}) {
    const Tensor xv = check::input({T, 2, 3}, std::uint64_t(T), -1, 1), hv = check::input({2, 4}, 99, -1, 1);
    const V vars{th::variable(xv), th::variable(hv)};
    const Tensor ehs = rnn({vars[0], vars[1], th::variable(W.get_value()), th::variable(U.get_value()),
                            th::variable(b.get_value())})[0];
    const th::Result r = f(xv, hv);
    const auto a = check::vals(r[0]), e = check::vals(ehs);
    BOOST_TEST_REQUIRE(a.size() == e.size());
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == e[i]);
    const Tensor eg = th::grad(th::sum(th::sqr(ehs)), vars[1]);
    const auto ga = check::vals(r[4]), ge = check::vals(eg);
    for (std::size_t i = 0; i < ga.size(); ++i) BOOST_TEST(std::fabs(ga[i] - ge[i]) < 1e-12);
  }
  // freezing does not unroll: the program is the same whatever the length it will run
  BOOST_TEST(th::debugprint(f).size() == steps);
  // a function that takes no gradient runs the body without the values saved for one
  // (here only the backward scan, whose own saves would serve a second derivative)
  BOOST_TEST(check::has(th::debugprint(f), "scan_saves 1"));
  const th::Function infer = th::function({x, h0}, hs);
  BOOST_TEST(check::has(th::debugprint(infer), "scan_saves 1"));
  const Tensor xv = check::input({5, 2, 3}, 5, -1, 1), hv = check::input({2, 4}, 6, -1, 1);
  BOOST_TEST(check::vals(infer(xv, hv)) == check::vals(f(xv, hv)[0]), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(freeze_time_does_not_grow_with_steps) {
  auto build = [](std::int64_t n) {
    const Tensor h0 = th::dvector("h0"), a = th::dmatrix("a");
    const Tensor hs = th::scan([](const V& s) { return V{th::tanh(th::matmul(s[1], s[0]))}; }, {}, {h0}, {a},
                               {n, false})[0];
    const auto t0 = std::chrono::steady_clock::now();
    const th::Function f = th::function({h0, a}, {hs, th::grad(th::sum(hs), a)});
    return std::make_pair(th::debugprint(f).size(), std::chrono::steady_clock::now() - t0);
  };
  const auto [p10, t10] = build(10);
  const auto [p1000, t1000] = build(1000);
  BOOST_TEST(p10 == p1000);  // the same program: nothing unrolled (the time is in bench/)
  (void)t10, (void)t1000;
}

BOOST_AUTO_TEST_CASE(random_draws_once_per_step) {
  th::RandomStreams srng(42);
  const Tensor x = th::dmatrix("x");
  // each step drops its own mask; the gradient reads the same masks
  const Tensor y = th::map([&](const V& a) { return th::dropout(a[0], 0.5, srng); }, {x});
  const th::Function f = th::function({x}, {y, th::grad(th::sum(y * y), x)});
  const Tensor ones = th::ones({6, 40});
  const th::Result r1 = f(ones), r2 = f(ones);
  const auto y1 = check::vals(r1[0]), g1 = check::vals(r1[1]), y2 = check::vals(r2[0]);
  for (std::size_t i = 0; i < y1.size(); ++i) {
    BOOST_TEST((y1[i] == 0.0 || y1[i] == 2.0));
    BOOST_TEST(g1[i] == (y1[i] == 0.0 ? 0.0 : 8.0));  // d(y^2)/dx = 2 y * 2 where kept, 0 where dropped
  }
  auto row = [](const std::vector<double>& v, std::size_t t) { return std::vector<double>(v.begin() + 40 * t, v.begin() + 40 * (t + 1)); };
  BOOST_TEST((row(y1, 0) != row(y1, 1)));  // a new mask at each step
  // the stream the body draws from is among the function's shared variables (checkpoints)
  bool listed = false;
  for (const th::Shared& s : f.shared_variables()) listed = listed || s.name() == "srng.state";
  BOOST_TEST(listed);
  BOOST_TEST((y1 != y2));                  // and at each call
}

BOOST_AUTO_TEST_CASE(errors_name_the_problem) {
  const Tensor x = th::dmatrix("x");
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] {
                          th::scan([](const V& a) { return V{a[0]}; }, {}, {th::tensor(1.0)});
                        }),
                        "n_steps"));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] {
                          th::scan([](const V& a) { return V{a[0], a[0]}; }, {x}, {Tensor()});
                        }),
                        "returned 2 values for 1"));
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] {
                          th::scan([](const V& a) { return V{th::sum(a[0])}; }, {x}, {th::dvector("h")});
                        }),
                        "initial value 'h'"));
  const Tensor y = th::dmatrix("y");
  const th::Function f = th::function({x, y}, th::map([](const V& a) { return a[0] + a[1]; }, {x, y}));
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { f(th::zeros({3, 2}), th::zeros({4, 2})); }),
                        "different lengths (3 and 4)"));
  const Tensor h = th::dvector("h");
  const th::Function g = th::function({x, h}, th::scan([](const V& a) { return V{th::concatenate({a[1], a[0]})}; },
                                                       {x}, {h})[0]);
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { g(th::zeros({2, 3}), th::zeros({1})); }),
                        "must keep its shape"));
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { th::scan([](const V& a) { return V{a[0]}; }, {th::tensor(1.0)}, {Tensor()}); }),
                        "0-d"));
}

BOOST_AUTO_TEST_CASE(symbolic_jacobian_and_hessian_of_any_size) {
  const Tensor x = th::dvector("x"), m = th::dmatrix("m");
  auto yf = [](const Tensor& v) { return th::sin(v) * th::sum(v * v); };
  auto cf = [](const Tensor& v) { return th::sum(th::exp(v) * v) * th::sum(v); };
  const th::Function f = th::function({x}, {th::jacobian(yf(x), x), th::hessian(cf(x), x)});
  BOOST_TEST(check::has(th::debugprint(f), "scan"));  // not unrolled: the size is open
  const th::Function fm = th::function({m}, th::jacobian(th::tanh(m) * 2.0, m));
  for (std::int64_t n : {1, 3, 6}) {
    const Tensor v = check::input({n}, std::uint64_t(n), -1, 1);
    const Tensor xv = th::variable(v);
    const th::Result r = f(v);
    const Tensor je = th::jacobian(yf(xv), xv), he = th::hessian(cf(xv), xv);
    BOOST_TEST(r[0].shape() == (th::Shape{n, n}));
    BOOST_TEST(r[1].shape() == (th::Shape{n, n}));
    const auto a = check::vals(r[0]), b = check::vals(je), c = check::vals(r[1]), d = check::vals(he);
    for (std::size_t i = 0; i < a.size(); ++i) {
      BOOST_TEST(std::fabs(a[i] - b[i]) < 1e-12);
      BOOST_TEST(std::fabs(c[i] - d[i]) < 1e-12);
    }
    // a matrix output: (n, 2) + (n, 2), d tanh(m_ij) * 2 / d m_kl on the diagonal only
    const Tensor mv = check::input({n, 2}, 40 + std::uint64_t(n), -1, 1);
    const Tensor jm = fm(mv);
    BOOST_TEST(jm.shape() == (th::Shape{n, 2, n, 2}));
    const auto jv = check::vals(jm), mm = check::vals(mv);
    for (std::size_t i = 0; i < mm.size(); ++i)
      for (std::size_t k = 0; k < mm.size(); ++k) {
        const double want = i == k ? 2 * (1 - std::tanh(mm[i]) * std::tanh(mm[i])) : 0.0;
        BOOST_TEST(std::fabs(jv[i * mm.size() + k] - want) < 1e-12);
      }
  }
}

BOOST_AUTO_TEST_CASE(forward_mode_through_scan) {
  // jvp (two reverse sweeps: grad of grad through the scan) against the Jacobian times v
  const Tensor xs = th::variable(check::input({4, 3}, 61, -1, 1)), h0 = th::variable(check::input({3}, 62, -1, 1));
  const Tensor v = check::input({4, 3}, 63, -1, 1);
  const Tensor y = th::scan([](const V& a) { return V{th::tanh(a[0] + a[1] * 0.5)}; }, {xs}, {h0})[0];
  const Tensor jv = th::jvp(y, xs, v);
  const Tensor j = th::jacobian(th::reshape(y, {-1}), xs);  // (12, 4, 3)
  const auto a = check::vals(jv), b = check::vals(th::matmul(th::reshape(j, {12, 12}), th::reshape(v, {12})));
  BOOST_TEST_REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(std::fabs(a[i] - b[i]) < 1e-12);
}
