// More of numpy's extra ops (API.md section 16): sort / argsort / topk, split / chunk, tril /
// triu, cumsum / cumprod: values against numpy's (written out), stability and NaN order,
// gradients through the shared checker (axes, batches, grad of grad), one step for several
// outputs when frozen, and the errors.
#define BOOST_TEST_MODULE extra_ops
#include <cmath>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;
using check::g2;

using check::expect;

using check::count;

namespace {

// keeps dimension `axis` as it is when the checker grows the shapes (split sizes, topk's k)
check::Options keep_axis(std::size_t axis, bool grad2 = false) {
  check::Options o;
  o.grad2 = grad2;
  o.grow = [axis](std::size_t, const th::Shape& s) {
    th::Shape g = s;
    for (std::size_t i = 0; i < g.size(); ++i)
      if (i != axis && g[i] > 1) ++g[i];
    return g;
  };
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sort_values_are_numpys_and_stable) {
  const Tensor x = th::tensor({{3, 1, 2, 1}, {0, -1, 5, 0}});
  expect("sort", th::sort(x), {1, 1, 2, 3, -1, 0, 0, 5});
  expect("argsort (ties in order)", th::argsort(x), {1, 3, 2, 0, 1, 0, 3, 2});
  expect("argsort descending (ties in order)", th::argsort(x, -1, true), {0, 2, 1, 3, 2, 0, 3, 1});
  expect("sort axis 0", th::sort(x, 0), {0, -1, 2, 0, 3, 1, 5, 1});
  BOOST_TEST(th::argsort(x).dtype() == th::DType::int64);
  const auto [v, i] = th::topk(x, 2);
  expect("topk values", v, {3, 2, 5, 0});
  expect("topk indices", i, {0, 2, 2, 0});
  const auto [sv, si] = th::topk(x, 1, 0, false);
  expect("topk smallest along 0", sv, {0, -1, 2, 0});
  expect("topk smallest indices", si, {1, 1, 0, 1});
  const double nan = std::nan("");
  expect("NaN sorts last", th::sort(th::tensor({2.0, nan, -1.0})), {-1, 2, nan});
  expect("NaN first descending", th::sort(th::tensor({2.0, nan, -1.0}), -1, true), {nan, 2, -1});
  expect("integers", th::sort(th::tensor(std::vector<std::int64_t>{4, -2, 7}, th::Shape{3})), {-2, 4, 7});
  // one step for both outputs, frozen; argsort and sort of one x share it
  const Tensor a = th::dmatrix("a");
  const auto [tv, ti] = th::topk(a, 2);
  const th::Function f = th::function({a}, {tv, ti, th::sort(a, -1, true), th::argsort(a, -1, true)});
  const std::string text = th::debugprint(f);
  BOOST_TEST(count(text, "= sort(") == 2u, text);  // topk's k = 2 and the whole sort
  const auto outs = f.call({x});
  expect("frozen topk values", outs[0], {3, 2, 5, 0});
  expect("frozen topk indices", outs[1], {0, 2, 2, 0});
  expect("frozen argsort", outs[3], {0, 2, 1, 3, 2, 0, 3, 1});
}

BOOST_AUTO_TEST_CASE(split_chunk_tril_triu_cum_values) {
  const Tensor x = th::reshape(th::arange(0.0, 12.0), {3, 4});
  const auto parts = th::split(x, {1, 3}, 1);
  BOOST_TEST_REQUIRE(parts.size() == 2u);
  expect("split 0", parts[0], {0, 4, 8});
  expect("split 1", parts[1], {1, 2, 3, 5, 6, 7, 9, 10, 11});
  const auto ch = th::chunk(th::arange(0.0, 7.0), 3);
  BOOST_TEST_REQUIRE(ch.size() == 3u);
  BOOST_TEST(ch[0].shape() == th::Shape({3}));
  BOOST_TEST(ch[2].shape() == th::Shape({2}));
  expect("chunk 2", ch[2], {5, 6});
  BOOST_TEST(th::chunk(th::arange(0.0, 2.0), 3)[2].shape() == th::Shape({0}));
  expect("tril", th::tril(x), {0, 0, 0, 0, 4, 5, 0, 0, 8, 9, 10, 0});
  expect("tril -1", th::tril(x, -1), {0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0});
  expect("triu 1", th::triu(x, 1), {0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11});
  expect("cumsum 1", th::cumsum(x, 1), {0, 1, 3, 6, 4, 9, 15, 22, 8, 17, 27, 38});
  expect("cumsum 0", th::cumsum(x, 0), {0, 1, 2, 3, 4, 6, 8, 10, 12, 15, 18, 21});
  expect("cumprod", th::cumprod(th::tensor({1.0, 2.0, 0.0, 3.0}), 0), {1, 2, 0, 0});
  BOOST_TEST(th::cumsum(th::cast(th::tensor({1, 1, 0}), th::DType::boolean), 0).dtype() == th::DType::int64);
  // a fused q|k|v projection split in three: one step, three views
  const Tensor h = th::dmatrix("h");
  const auto qkv = th::split(h, {2, 2, 2}, 1);
  const th::Function f = th::function({h}, {qkv[0] * 1.0, qkv[2] + 0.0});
  const std::string text = th::debugprint(f);
  BOOST_TEST(count(text, "= split(") == 1u, text);
  const auto outs = f.call({th::reshape(th::arange(0.0, 12.0), {2, 6})});
  expect("frozen split q", outs[0], {0, 1, 6, 7});
  expect("frozen split v", outs[1], {4, 5, 10, 11});
}

BOOST_AUTO_TEST_CASE(gradients) {
  check::op("sort", [](const X& v) { return th::sort(v[0]); }, {{3, 5}}, {3, 5}, g2());
  check::op("sort axis 0 descending", [](const X& v) { return th::sort(v[0], 0, true); }, {{4, 3}}, {4, 3});
  check::op("topk", [](const X& v) { return th::topk(v[0], 2).first; }, {{3, 5}}, {3, 2}, keep_axis(1, true));
  check::op("topk smallest, axis 1 of 3", [](const X& v) { return th::topk(v[0], 2, 1, false).first; }, {{2, 4, 3}},
            {2, 2, 3}, keep_axis(1));
  check::op("split (all parts used)", [](const X& v) {
    const auto p = th::split(v[0], {1, 2, 2}, 1);
    return p[0] * p[1] + th::sqr(p[2]);
  }, {{3, 5}}, {3, 2}, check::Options{});
  check::op("split (one part used)", [](const X& v) { return th::sqr(th::split(v[0], {2, 1}, 0)[1]); }, {{3, 2}}, {1, 2},
            keep_axis(0, true));
  check::op("chunk", [](const X& v) {
    const auto c = th::chunk(v[0], 2, -1);
    return c[0] * th::sin(c[1]);
  }, {{2, 6}}, {2, 3}, [] {
    check::Options o = g2();
    o.frozen = false;  // chunk needs the axis's size when it records (split takes sizes)
    return o;
  }());
  check::op("tril", [](const X& v) { return th::tril(v[0], 1); }, {{2, 3, 4}}, {2, 3, 4});
  check::op("triu", [](const X& v) { return th::sqr(th::triu(v[0], -1)); }, {{4, 3}}, {4, 3}, g2());
  check::op("cumsum", [](const X& v) { return th::cumsum(v[0], 1); }, {{3, 4}}, {3, 4}, g2());
  check::op("cumsum axis 0 of 3", [](const X& v) { return th::sqr(th::cumsum(v[0], 0)); }, {{3, 2, 2}}, {3, 2, 2});
  check::op("cumprod", [](const X& v) { return th::cumprod(v[0], -1); }, {{3, 4}}, {3, 4}, g2());
  check::op("cumprod axis 0", [](const X& v) { return th::cumprod(v[0], 0); }, {{4, 2}}, {4, 2}, g2());
  check::op("cumprod sqr", [](const X& v) { return th::sqr(th::cumprod(v[0], -1)); }, {{2, 3}}, {2, 3}, g2());
  check::op("cumprod middle axis", [](const X& v) { return th::sqr(th::cumprod(v[0], 1)); }, {{2, 3, 2}}, {2, 3, 2}, g2());
}

// cumprod's gradient where x has zeros (one, two, at the start, at the end) against central
// differences of the eager values: the formula y / x alone would divide by zero there.
BOOST_AUTO_TEST_CASE(cumprod_gradient_with_zeros) {
  const std::vector<double> x0 = {2, 0, 3, 0.5, 0, 1.5, -1, 2, 0, -2, 1, 3, 4, 0, 0, 1, 1.5, 2, -1, 0};
  const Tensor r = check::input({4, 5}, 5, -1, 1);
  const Tensor x = th::variable(th::tensor(x0, th::Shape{4, 5}));
  const Tensor g = th::grad(th::sum(th::cumprod(x, 1) * r), x);
  const auto gv = g.to_vector<double>();
  const double eps = 1e-6;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    auto at = [&](double d) {
      std::vector<double> xp = x0;
      xp[i] += d;
      return th::sum(th::cumprod(th::tensor(xp, th::Shape{4, 5}), 1) * r).item<double>();
    };
    const double fd = (at(eps) - at(-eps)) / (2 * eps);
    BOOST_TEST(std::fabs(gv[i] - fd) <= 1e-6, "d/dx[" << i << "]: " << gv[i] << " vs " << fd);
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const Tensor x = th::zeros({3, 4}).set_name("scores");
  std::string m = check::message_of<th::ShapeError>([&] { th::topk(x, 5); });
  BOOST_TEST(check::has(m, "topk: k = 5 is larger than axis 1 of size 4"), m);
  BOOST_TEST(check::has(m, "scores"), m);
  m = check::message_of<th::ValueError>([&] { th::topk(x, -1); });
  BOOST_TEST(check::has(m, "topk: k must be >= 0"), m);
  m = check::message_of<th::ShapeError>([&] { th::sort(x, 2); });
  BOOST_TEST(check::has(m, "sort"), m);
  m = check::message_of<th::ShapeError>([&] { th::split(x, {1, 2}, 1); });
  BOOST_TEST(check::has(m, "split: the sizes sum to 3 but axis 1 has 4"), m);
  BOOST_TEST(check::has(m, "scores"), m);
  m = check::message_of<th::ShapeError>([&] { th::split(x, {5, -1}, 1); });
  BOOST_TEST(check::has(m, "negative"), m);
  m = check::message_of<th::ValueError>([&] { th::chunk(x, 0); });
  BOOST_TEST(check::has(m, "chunk: n must be >= 1"), m);
  m = check::message_of<th::ShapeError>([&] { th::tril(th::zeros({3}).set_name("v")); });
  BOOST_TEST(check::has(m, "tril: needs a matrix"), m);
  BOOST_TEST(check::has(m, "v"), m);
  m = check::message_of<th::ShapeError>([&] { th::cumsum(th::tensor(1.0), 0); });
  BOOST_TEST(check::has(m, "cumsum"), m);
  // symbolic: a k too large for the run-time size is the same error from the frozen call
  const Tensor a = th::dmatrix("a");
  const th::Function f = th::function({a}, th::topk(a, 3).first);
  m = check::message_of<th::ShapeError>([&] { f(th::zeros({2, 2})); });
  BOOST_TEST(check::has(m, "topk: k = 3 is larger than axis 1 of size 2"), m);
}

// einsum: values against numpy.einsum's (computed by numpy on the same arange inputs),
// gradients through the checker (its frozen functions have sizes open until they run: the
// broadcast-product path; eager has them: the matmul path), and the errors.
BOOST_AUTO_TEST_CASE(einsum_values_gradients_errors) {
  const Tensor A = th::reshape(th::arange(0.0, 6.0), {2, 3}), B = th::reshape(th::arange(0.0, 12.0), {3, 4}) - 5.0,
               S = th::reshape(th::arange(0.0, 9.0), {3, 3}), C = th::reshape(th::arange(0.0, 24.0), {2, 3, 4}) * 0.5,
               D = th::reshape(th::arange(0.0, 8.0), {4, 2}), E = th::reshape(th::arange(0.0, 4.0), {2, 2});
  expect("matmul", th::einsum("ij,jk->ik", {A, B}), {5, 8, 11, 14, -4, 8, 20, 32});
  expect("implicit matmul", th::einsum("ij,jk", {A, B}), {5, 8, 11, 14, -4, 8, 20, 32});
  expect("diagonal", th::einsum("ii->i", {S}), {0, 4, 8});
  expect("trace", th::einsum("ii", {S}), {12});
  expect("three operands", th::einsum("ijk,kl,lm->ijm", {C, D, E}), {34, 65, 98, 185, 162, 305, 226, 425, 290, 545, 354, 665});
  const Tensor bx = th::einsum("...ij,jk->...ik", {th::reshape(th::arange(0.0, 6.0), {2, 1, 3}), th::reshape(th::arange(0.0, 12.0), {3, 4})});
  BOOST_TEST(bx.shape() == th::Shape({2, 1, 4}));
  expect("ellipsis", bx, {20, 23, 26, 29, 56, 68, 80, 92});
  expect("implicit transpose", th::einsum("ba", {A}), {0, 3, 1, 4, 2, 5});
  expect("outer", th::einsum("i,j", {th::arange(0.0, 2.0), th::arange(0.0, 3.0)}), {0, 0, 0, 0, 1, 2});
  expect("sum", th::einsum("ij->", {A}), {15});
  expect("batched", th::einsum("bij,bjk->bik", {C, th::reshape(th::arange(0.0, 16.0), {2, 4, 2})}),
         th::matmul(C, th::reshape(th::arange(0.0, 16.0), {2, 4, 2})).to_vector<double>());

  check::op("einsum matmul", [](const X& v) { return th::einsum("ij,jk->ik", {v[0], v[1]}); }, {{2, 3}, {3, 4}}, {2, 4}, g2());
  check::op("einsum attention-like", [](const X& v) { return th::einsum("bhqd,bhkd->bhqk", {v[0], v[1]}); },
            {{2, 2, 3, 4}, {2, 2, 5, 4}}, {2, 2, 3, 5}, g2());
  check::op("einsum three operands", [](const X& v) { return th::einsum("ij,jk,kl->il", {v[0], v[1], v[2]}); },
            {{2, 3}, {3, 4}, {4, 2}}, {2, 2});
  check::op("einsum trace and diagonal", [](const X& v) { return th::einsum("ii,i->i", {v[0], v[1]}); }, {{3, 3}, {3}}, {3},
            g2());
  check::op("einsum ellipsis broadcast", [](const X& v) { return th::einsum("...ij,...j->...i", {v[0], v[1]}); },
            {{2, 3, 4}, {4}}, {2, 3});

  const Tensor a = th::zeros({2, 3}).set_name("a");
  std::string m = check::message_of<th::ValueError>([&] { th::einsum("ij,jk->ik", {a}); });
  BOOST_TEST(check::has(m, "einsum: 'ij,jk->ik': 2 subscripts for 1 operands"), m);
  m = check::message_of<th::ShapeError>([&] { th::einsum("ijk->i", {a}); });
  BOOST_TEST(check::has(m, "operand 0 has subscripts 'ijk' but 2 dimensions"), m);
  BOOST_TEST(check::has(m, "[a]"), m);
  m = check::message_of<th::ShapeError>([&] { th::einsum("ij,jk->ik", {a, th::zeros({4, 2})}); });
  BOOST_TEST(check::has(m, "index 'j' has sizes 3 and 4"), m);
  m = check::message_of<th::ValueError>([&] { th::einsum("ij->iz", {a}); });
  BOOST_TEST(check::has(m, "output index 'z' is in no operand"), m);
  m = check::message_of<th::ValueError>([&] { th::einsum("ij->ii", {a}); });
  BOOST_TEST(check::has(m, "output index 'i' is repeated"), m);
  m = check::message_of<th::ValueError>([&] { th::einsum("i1->i", {a}); });
  BOOST_TEST(check::has(m, "letters"), m);
}
