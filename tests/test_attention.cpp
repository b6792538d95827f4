// scaled_dot_product_attention (API.md section 16): the blocked kernels against the maths
// written out (softmax(q k^T * scale + mask) v) on lengths that cross the kernels' tiles, with
// boolean and additive masks broadcast from several shapes, causal with Lq != Lk, float32 and
// float64; gradients in q, k, v and an additive mask through the shared checker; eager ==
// frozen bitwise; the errors.
#define BOOST_TEST_MODULE attention
#include <cmath>
#include <limits>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;

namespace {

// the maths written out with theta's ops (PyTorch's reference, math path)
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal, double scale) {
  const std::int64_t nd = q.ndim();
  std::vector<std::int64_t> perm(static_cast<std::size_t>(nd));
  for (std::int64_t i = 0; i < nd; ++i) perm[std::size_t(i)] = i;
  std::swap(perm[std::size_t(nd - 1)], perm[std::size_t(nd - 2)]);
  Tensor s = th::matmul(q, th::transpose(k, perm)) * scale;
  const double inf = std::numeric_limits<double>::infinity();
  if (mask) s = mask.dtype() == th::DType::boolean ? th::where(mask, s, -inf) : s + mask;
  if (causal) s = th::where(th::tril(th::ones(s.shape())) > 0.5, s, -inf);
  return th::matmul(th::softmax(s, -1), v);
}

void close(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  BOOST_TEST_REQUIRE(got.shape() == want.shape(), what);
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  BOOST_TEST(worst <= tol, what << ": max |diff| " << worst);
}

}  // namespace

BOOST_AUTO_TEST_CASE(values_match_the_maths_written_out) {
  // 70 queries and 150 keys: two query tiles (64) and two key tiles (128), partly filled
  const Tensor q = check::input({2, 3, 70, 16}, 1, -1, 1), k = check::input({2, 3, 150, 16}, 2, -1, 1),
               v = check::input({2, 3, 150, 8}, 3, -1, 1);
  const double s = 1.0 / 4.0;
  close("plain", th::scaled_dot_product_attention(q, k, v), reference(q, k, v, {}, false, s), 1e-12);
  close("scale", th::scaled_dot_product_attention(q, k, v, {}, false, 0.3), reference(q, k, v, {}, false, 0.3), 1e-12);
  close("causal, Lq != Lk", th::scaled_dot_product_attention(q, k, v, {}, true), reference(q, k, v, {}, true, s), 1e-12);
  const Tensor keep = check::input({70, 150}, 4, 0, 1) > 0.3;  // (Lq, Lk), broadcast over batch and heads
  close("boolean mask", th::scaled_dot_product_attention(q, k, v, keep), reference(q, k, v, keep, false, s), 1e-12);
  const Tensor pad = check::input({2, 1, 1, 150}, 5, 0, 1) > 0.2;  // per-sequence key padding
  close("padding mask, causal", th::scaled_dot_product_attention(q, k, v, pad, true), reference(q, k, v, pad, true, s), 1e-12);
  const Tensor bias = check::input({3, 70, 150}, 6, -2, 2);  // additive, per head
  close("additive mask", th::scaled_dot_product_attention(q, k, v, bias), reference(q, k, v, bias, false, s), 1e-12);
  // float32 (the kernel's own exponential) within float32's rounding
  const auto f = [](const Tensor& t) { return th::cast(t, th::DType::float32); };
  const Tensor y32 = th::scaled_dot_product_attention(f(q), f(k), f(v), keep, true);
  BOOST_TEST(y32.dtype() == th::DType::float32);
  close("float32", y32, reference(q, k, v, keep, true, s), 2e-6);
  // a 2-d call (one head)
  close("2-d", th::scaled_dot_product_attention(th::view(q, 0, 0), th::view(k, 0, 0), th::view(v, 0, 0)),
        th::view(reference(q, k, v, {}, false, s), 0, 0), 1e-12);
}

BOOST_AUTO_TEST_CASE(gradients) {
  auto with = [](std::vector<bool> diff) {
    check::Options o;
    o.diff = std::move(diff);
    o.tol = 1e-5;
    return o;
  };
  // grad of grad: the gradient step's own gradient writes the first gradient out in theta's ops
  check::op("attention", [](const X& x) { return th::scaled_dot_product_attention(x[0], x[1], x[2]); },
            {{2, 5, 4}, {2, 7, 4}, {2, 7, 3}}, {2, 5, 3}, check::g2());
  check::op("attention causal, scale", [](const X& x) { return th::scaled_dot_product_attention(x[0], x[1], x[2], {}, true, 0.7); },
            {{2, 6, 4}, {2, 6, 4}, {2, 6, 5}}, {2, 6, 5}, check::g2());
  // a non-linear use (dout depends on q, k, v) and one tensor as q, k and v
  check::op("attention squared", [](const X& x) { return th::sqr(th::scaled_dot_product_attention(x[0], x[1], x[2])); },
            {{1, 4, 3}, {1, 5, 3}, {1, 5, 2}}, {1, 4, 2}, check::g2());
  check::op("self-attention of one x", [](const X& x) { return th::sqr(th::scaled_dot_product_attention(x[0], x[0], x[0], {}, true)); },
            {{2, 5, 4}}, {2, 5, 4}, check::g2());
  const Tensor keep = check::input({1, 5, 7}, 9, 0, 1) > 0.25;
  check::op("attention boolean mask", [keep](const X& x) { return th::scaled_dot_product_attention(x[0], x[1], x[2], keep); },
            {{2, 5, 4}, {2, 7, 4}, {2, 7, 3}}, {2, 5, 3}, [] {
              check::Options o = check::g2();
              o.frozen = false;  // the mask is a fixed (5, 7): the grown shapes would not broadcast
              return o;
            }());
  check::op("attention additive mask (its gradient too)",
            [](const X& x) { return th::scaled_dot_product_attention(x[0], x[1], x[2], x[3], true); },
            {{2, 6, 3}, {2, 6, 3}, {2, 6, 2}, {6, 6}}, {2, 6, 2}, check::g2(with({true, true, true, true})));
  // tiles: lengths across the kernels' block sizes
  check::op("attention across tiles", [](const X& x) { return th::scaled_dot_product_attention(x[0], x[1], x[2], {}, true); },
            {{1, 130, 2}, {1, 140, 2}, {1, 140, 2}}, {1, 130, 2}, [] {
              check::Options o;
              o.frozen = false;  // (the checker's grown shapes: 131 x 141, the same tiles)
              return o;
            }());
}

BOOST_AUTO_TEST_CASE(eager_and_frozen_give_the_same_bits) {
  const Tensor q = th::random::uniform({2, 4, 100, 32}, -1, 1, 11, th::DType::float32),
               k = th::random::uniform({2, 4, 200, 32}, -1, 1, 12, th::DType::float32),
               v = th::random::uniform({2, 4, 200, 32}, -1, 1, 13, th::DType::float32);
  const Tensor pq = th::ftensor4("q"), pk = th::ftensor4("k"), pv = th::ftensor4("v");
  const Tensor y = th::scaled_dot_product_attention(pq, pk, pv, {}, true);
  const Tensor c = th::sum(y * y);
  const th::Function f = th::function({pq, pk, pv}, {y, th::grad(c, pq), th::grad(c, pk), th::grad(c, pv)});
  const auto r = f.call({q, k, v});
  const Tensor vq = th::variable(q), vk = th::variable(k), vv = th::variable(v);
  const Tensor ye = th::scaled_dot_product_attention(vq, vk, vv, {}, true);
  const Tensor ce = th::sum(ye * ye);
  const std::vector<Tensor> want{ye, th::grad(ce, vq), th::grad(ce, vk), th::grad(ce, vv)};
  for (std::size_t i = 0; i < want.size(); ++i)
    BOOST_TEST(r[i].to_vector<float>() == want[i].to_vector<float>(), boost::test_tools::per_element());
  // the gradient is one step with three outputs, the forward one with two
  const std::string text = th::debugprint(f);
  BOOST_TEST(check::has(text, "= scaled_dot_product_attention("), text);
  BOOST_TEST(check::has(text, "= scaled_dot_product_attention_grad("), text);
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const Tensor q = th::zeros({2, 5, 4}).set_name("q"), k = th::zeros({2, 7, 4}).set_name("k"),
               v = th::zeros({2, 7, 3}).set_name("v");
  std::string m = check::message_of<th::ShapeError>([&] { th::scaled_dot_product_attention(q, th::zeros({2, 7, 5}), v); });
  BOOST_TEST(check::has(m, "scaled_dot_product_attention: q and k must have the same feature size d (4 vs 5)"), m);
  m = check::message_of<th::ShapeError>([&] { th::scaled_dot_product_attention(q, k, th::zeros({2, 6, 3}).set_name("values")); });
  BOOST_TEST(check::has(m, "k and v must have the same length Lk (7 vs 6)"), m);
  BOOST_TEST(check::has(m, "values"), m);
  m = check::message_of<th::ShapeError>([&] { th::scaled_dot_product_attention(q, k, v, th::zeros({5, 6}).set_name("mask")); });
  BOOST_TEST(check::has(m, "the mask does not broadcast to (..., Lq, Lk) = (2, 5, 7)"), m);
  BOOST_TEST(check::has(m, "mask"), m);
  m = check::message_of<th::ShapeError>([&] { th::scaled_dot_product_attention(q, th::zeros({3, 7, 4}), v); });
  BOOST_TEST(check::has(m, "same batch dims"), m);
  m = check::message_of<th::TypeError>(
      [&] { th::scaled_dot_product_attention(q, k, v, th::zeros({5, 7}, th::DType::int64)); });
  BOOST_TEST(check::has(m, "additive mask"), m);
  // frozen: the run-time shapes are checked the same way
  const Tensor pq = th::dtensor3("q"), pk = th::dtensor3("k"), pv = th::dtensor3("v");
  const th::Function f = th::function({pq, pk, pv}, th::scaled_dot_product_attention(pq, pk, pv));
  m = check::message_of<th::ShapeError>([&] { f(q, th::zeros({2, 7, 5}), v); });
  BOOST_TEST(check::has(m, "q and k must have the same feature size d"), m);
}
