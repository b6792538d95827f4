// th::linalg (API.md section 13, in part): values against hand-computed results, every op's
// gradient (and gradient of gradient) through the shared checker, batches, float32, errors.
#define BOOST_TEST_MODULE linalg
#include <cmath>
#include <limits>
#include <tuple>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;
using check::g2;

using check::expect;

namespace {
// well conditioned: a + 4 I (inputs in [-2, 2])
Tensor wc(const Tensor& a) { return a + 4.0 * th::eye(3); }
Tensor spd(const Tensor& a) {
  return th::matmul(a, a.ndim() == 3 ? th::transpose(a, {0, 2, 1}) : th::transpose(a)) + 3.0 * th::eye(3);
}
}  // namespace

BOOST_AUTO_TEST_CASE(hand_computed_values) {
  const Tensor a = th::tensor({{3, 1}, {1, 2}});
  expect("solve", th::linalg::solve(a, th::tensor({9, 8})), {2, 3});
  expect("solve matrix rhs", th::linalg::solve(a, th::tensor({{9, 1}, {8, 2}})), {2, 0, 3, 1});
  expect("inv", th::linalg::inv(th::tensor({{4, 7}, {2, 6}})), {0.6, -0.7, -0.2, 0.4});
  expect("det", th::linalg::det(th::tensor({{4, 7}, {2, 6}})), {10});
  expect("det negative", th::linalg::det(th::tensor({{0, 1}, {1, 0}})), {-1});
  const auto [sign, logabs] = th::linalg::slogdet(th::tensor({{-2, 0}, {0, 3}}));
  expect("slogdet sign", sign, {-1});
  expect("slogdet log", logabs, {std::log(6.0)});
  const auto [s0, l0] = th::linalg::slogdet(th::tensor({{1, 2}, {2, 4}}));
  expect("singular sign", s0, {0});
  BOOST_TEST(l0.item<double>() == -std::numeric_limits<double>::infinity());
  expect("cholesky", th::linalg::cholesky(th::tensor({{4, 2}, {2, 3}})), {2, 0, 1, std::sqrt(2.0)});
  expect("solve_triangular lower", th::linalg::solve_triangular(th::tensor({{2, 99}, {1, 4}}), th::tensor({4, 10}), true), {2, 2});
  expect("solve_triangular upper", th::linalg::solve_triangular(th::tensor({{2, 1}, {99, 4}}), th::tensor({4, 8}), false), {1, 2});
  expect("norm", th::linalg::norm(th::tensor({{3, 4}, {0, 0}})), {5});
  expect("norm 1", th::linalg::norm(th::tensor({3, -4}), 1), {7});
  expect("norm inf", th::linalg::norm(th::tensor({3, -4}), INFINITY), {4});
  expect("norm 3", th::linalg::norm(th::tensor({3, -4}), 3), {std::cbrt(91.0)});
  expect("matrix norm 1", th::linalg::norm(th::tensor({{1, -2}, {3, 4}}), 1), {6});
  expect("matrix norm inf", th::linalg::norm(th::tensor({{1, -2}, {3, 4}}), INFINITY), {7});
  const auto [w, v] = th::linalg::eigh(th::tensor({{2, 1}, {1, 2}}));
  expect("eigh values", w, {1, 3});
  expect("eigh vectors (squared: the signs are LAPACK's)", th::sqr(v), {0.5, 0.5, 0.5, 0.5});
  // reconstruction and orthogonality on a batch of random symmetric matrices
  const Tensor r = th::random::normal({3, 4, 4}, 9);
  const Tensor sym = r + th::transpose(r, {0, 2, 1});
  const auto [wb, vb] = th::linalg::eigh(sym);
  expect("v diag(w) v^T", th::matmul(vb * th::expand_dims(wb, 1), th::transpose(vb, {0, 2, 1})), sym.to_vector<double>(), 1e-12);
  const auto wv = wb.to_vector<double>();
  for (std::size_t i = 0; i + 1 < wv.size(); ++i)
    if (i % 4 != 3) BOOST_TEST(wv[i] <= wv[i + 1]);  // ascending within each matrix
  // qr and svd reconstruct their matrix; q orthonormal, r upper; s descending
  for (const th::Shape& sh : {th::Shape{5, 3}, th::Shape{3, 5}, th::Shape{2, 4, 4}}) {
    const Tensor m = th::random::normal(sh, 11);
    const auto [q, rr] = th::linalg::qr(m);
    expect("q r " + th::shape_str(sh), th::matmul(q, rr), m.to_vector<double>(), 1e-12);
    const auto [u, sv, vt] = th::linalg::svd(m);
    expect("u diag(s) vt " + th::shape_str(sh), th::matmul(u * th::expand_dims(sv, -2), vt), m.to_vector<double>(), 1e-12);
    const auto s_ = sv.to_vector<double>();
    for (std::size_t i = 0; i + 1 < s_.size(); ++i)
      if (sh.size() == 2 || i % 4 != 3) BOOST_TEST(s_[i] >= s_[i + 1]);
    if (sh.size() == 2) {
      const Tensor qtq = th::matmul(th::transpose(q), q);
      expect("q^T q", qtq, th::eye(qtq.shape()[0]).to_vector<double>(), 1e-12);
      // pinv: a pinv(a) a = a
      expect("a pinv(a) a", th::matmul(th::matmul(m, th::linalg::pinv(m)), m), m.to_vector<double>(), 1e-11);
    }
  }
  expect("svd values", std::get<1>(th::linalg::svd(th::tensor({{3, 0}, {0, -4}}))), {4, 3});
  expect("matrix norm 2", th::linalg::norm(th::tensor({{3, 0}, {0, -4}}), 2), {4});
  expect("pinv of a singular matrix", th::linalg::pinv(th::tensor({{1, 0}, {0, 0}})), {1, 0, 0, 0});
  // empty matrices: nothing for LAPACK to do; det of 0 x 0 is 1, as numpy
  expect("det 0x0", th::linalg::det(th::zeros({0, 0})), {1});
  BOOST_TEST((th::linalg::inv(th::zeros({2, 0, 0})).shape() == th::Shape{2, 0, 0}));
  BOOST_TEST((th::linalg::eigh(th::zeros({0, 0})).first.shape() == th::Shape{0}));
  // batches and float32
  const Tensor b = th::stack({th::tensor({{2, 0}, {0, 4}}), th::tensor({{1, 1}, {0, 1}})});
  expect("batched inv", th::linalg::inv(b), {0.5, 0, 0, 0.25, 1, -1, 0, 1});
  expect("batched det", th::linalg::det(b), {8, 1});
  const Tensor f = th::linalg::solve(th::tensor({{3, 1}, {1, 2}}, th::DType::float32), th::tensor({9, 8}, th::DType::float32));
  BOOST_TEST((f.dtype() == th::DType::float32));
  expect("float32 solve", f, {2, 3}, 1e-6);
  // many right-hand sides: solved in chunks of columns on the kernel threads (a ragged last
  // one), each column as A x = b says
  for (th::DType dt : {th::DType::float64, th::DType::float32}) {
    const Tensor big = th::random::uniform({150, 150}, -1, 1, 4, dt) + 150.0 * th::eye(150, dt);
    const Tensor rhs = th::random::uniform({150, 101}, -1, 1, 5, dt);
    const double err = th::max(th::abs(th::dot(big, th::linalg::solve(big, rhs)) - rhs)).item();
    BOOST_TEST(err < (dt == th::DType::float64 ? 1e-12 : 1e-4), th::dtype_name(dt) << " " << err);
  }
}

BOOST_AUTO_TEST_CASE(gradients) {
  check::op("solve vector", [](const X& v) { return th::linalg::solve(wc(v[0]), v[1]); }, {{3, 3}, {3}}, {3}, g2());
  check::op("solve batched", [](const X& v) { return th::linalg::solve(wc(v[0]), v[1]); }, {{2, 3, 3}, {2, 3, 2}}, {2, 3, 2});
  check::op("solve_triangular lower", [](const X& v) { return th::linalg::solve_triangular(wc(v[0]), v[1], true); },
            {{3, 3}, {3, 2}}, {3, 2}, g2());
  check::op("solve_triangular upper", [](const X& v) { return th::linalg::solve_triangular(wc(v[0]), v[1], false); },
            {{2, 3, 3}, {2, 3, 1}}, {2, 3, 1});
  check::op("inv", [](const X& v) { return th::linalg::inv(wc(v[0])); }, {{3, 3}}, {3, 3}, g2());
  check::op("inv batched", [](const X& v) { return th::linalg::inv(wc(v[0])); }, {{2, 3, 3}}, {2, 3, 3});
  check::op("det", [](const X& v) { return th::linalg::det(wc(v[0])); }, {{3, 3}}, {}, g2());
  check::op("slogdet", [](const X& v) { return th::linalg::slogdet(wc(v[0])).second; }, {{2, 3, 3}}, {2}, g2());
  check::op("cholesky", [](const X& v) { return th::linalg::cholesky(spd(v[0])); }, {{3, 3}}, {3, 3}, g2());
  check::op("cholesky batched", [](const X& v) { return th::linalg::cholesky(spd(v[0])); }, {{2, 3, 3}}, {2, 3, 3});
  auto sym = [](const Tensor& a) { return a + (a.ndim() == 3 ? th::transpose(a, {0, 2, 1}) : th::transpose(a)); };
  check::op("eigh values", [sym](const X& v) { return th::linalg::eigh(sym(v[0])).first; }, {{3, 3}}, {3}, g2());
  check::op("eigh vectors (squared)", [sym](const X& v) { return th::sqr(th::linalg::eigh(sym(v[0])).second); },
            {{2, 3, 3}}, {2, 3, 3});
  check::op("qr q (tall)", [](const X& v) { return std::get<0>(th::linalg::qr(v[0])); }, {{4, 3}}, {4, 3}, g2());
  check::op("qr q (wide)", [](const X& v) { return std::get<0>(th::linalg::qr(v[0])); }, {{3, 5}}, {3, 3}, g2());
  check::op("qr r (wide, batched)", [](const X& v) { return std::get<1>(th::linalg::qr(v[0])); }, {{2, 2, 4}}, {2, 2, 4});
  check::op("qr r (square, batched)", [](const X& v) { return std::get<1>(th::linalg::qr(v[0])); }, {{2, 3, 3}}, {2, 3, 3});
  check::op("svd s (wide)", [](const X& v) { return std::get<1>(th::linalg::svd(v[0])); }, {{3, 4}}, {3}, g2());
  check::op("svd u (tall, squared)", [](const X& v) { return th::sqr(std::get<0>(th::linalg::svd(v[0]))); }, {{4, 3}}, {4, 3});
  check::op("svd vt (wide, squared)", [](const X& v) { return th::sqr(std::get<2>(th::linalg::svd(v[0]))); }, {{3, 4}}, {3, 4});
  check::op("svd u (wide, squared)", [](const X& v) { return th::sqr(std::get<0>(th::linalg::svd(v[0]))); }, {{3, 4}}, {3, 3});
  check::op("svd vt (tall, squared)", [](const X& v) { return th::sqr(std::get<2>(th::linalg::svd(v[0]))); }, {{4, 3}}, {3, 3});
  check::op("pinv", [](const X& v) { return th::linalg::pinv(v[0]); }, {{4, 3}}, {3, 4});
  // several outputs of one step used together: their gradients reach one backward rule
  check::op("qr q and r (tall)", [](const X& v) {
    const auto [q, r] = th::linalg::qr(v[0]);
    return th::matmul(q, th::sqr(r));
  }, {{4, 3}}, {4, 3}, g2());
  check::op("qr q and r (wide)", [](const X& v) {
    const auto [q, r] = th::linalg::qr(v[0]);
    return th::matmul(q, th::sqr(r));
  }, {{3, 5}}, {3, 5});
  check::op("svd u, s and vt (tall)", [](const X& v) {
    const auto [u, s, vt] = th::linalg::svd(v[0]);
    return th::matmul(th::sqr(u) * s, th::sqr(vt));
  }, {{4, 3}}, {4, 3}, g2());
  check::op("eigh values and vectors", [sym](const X& v) {
    const auto [w, V] = th::linalg::eigh(sym(v[0]));
    return th::sqr(V) * th::expand_dims(w, -2);
  }, {{2, 3, 3}}, {2, 3, 3});
  check::op("matrix norm 2", [](const X& v) { return th::linalg::norm(v[0], 2); }, {{3, 4}}, {});
  check::op("norm", [](const X& v) { return th::linalg::norm(v[0]); }, {{3, 4}}, {}, g2());
  check::op("norm 3", [](const X& v) { return th::linalg::norm(v[0], 3); }, {{5}}, {});
  check::op("matrix norm inf", [](const X& v) { return th::linalg::norm(v[0], INFINITY); }, {{3, 4}}, {});
}

// A factorization is one step with several outputs: a frozen pinv runs the SVD once
// (it used to run it once per factor), and the factors of one call come from one LAPACK run.
BOOST_AUTO_TEST_CASE(factorizations_are_one_step) {
  const Tensor a = th::dmatrix("a");
  const th::Function f = th::function({a}, th::linalg::pinv(a));
  const std::string text = th::debugprint(f);
  BOOST_TEST(check::count(text, "= svd(") == 1u, text);
  const Tensor m = check::input({5, 3}, 11, -1, 1);
  expect("frozen pinv", f(m), th::linalg::pinv(m).to_vector<double>(), 1e-12);
  // the eager outputs are parts of one value: q r = a, u s vt = a
  const auto [q, r] = th::linalg::qr(m);
  expect("q r", th::matmul(q, r), m.to_vector<double>(), 1e-12);
  const auto [u, s, vt] = th::linalg::svd(m);
  expect("u s vt", th::matmul(u * s, vt), m.to_vector<double>(), 1e-12);
  const auto [sign, logabs] = th::linalg::slogdet(th::zeros({2, 0, 0}));
  expect("slogdet of 0 x 0", sign * th::exp(logabs), {1, 1}, 0);
  // a frozen function returning every factor: each part once, the step once
  const th::Function g = th::function({a}, {std::get<0>(th::linalg::svd(a)), std::get<1>(th::linalg::svd(a))});
  const auto outs = g.call({m});
  expect("frozen u", outs[0], u.to_vector<double>(), 1e-12);
  expect("frozen s", outs[1], s.to_vector<double>(), 1e-12);
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const Tensor sing = th::tensor({{1, 2}, {2, 4}}).set_name("k");
  std::string m = check::message_of<th::ValueError>([&] { th::linalg::solve(sing, th::tensor({1, 2})); });
  // NOTE: a kernel's error has the shapes, not the user's names (forward sees values only)
  BOOST_TEST(check::has(m, "solve: singular matrix (matrix 0 of the batch): (2, 2) float64"), m);
  m = check::message_of<th::ValueError>([&] { th::linalg::inv(sing); });
  BOOST_TEST(check::has(m, "inv: singular matrix"), m);
  m = check::message_of<th::ValueError>([&] { th::linalg::cholesky(th::tensor({{1, 2}, {2, 1}})); });
  BOOST_TEST(check::has(m, "cholesky: matrix is not positive definite"), m);
  m = check::message_of<th::ShapeError>([&] { th::linalg::inv(th::zeros({2, 3})); });
  BOOST_TEST(check::has(m, "inv: needs square matrices, got 2 x 3"), m);
  m = check::message_of<th::ShapeError>([&] { th::linalg::solve(th::eye(3), th::zeros({2})); });
  BOOST_TEST(check::has(m, "solve: shapes not aligned: 3 != 2"), m);
  m = check::message_of<th::ValueError>([&] { th::linalg::norm(th::eye(3), 3); });
  BOOST_TEST(check::has(m, "norm: ord=3"), m);
  // symbolic: the frozen call reports the singular matrix
  const Tensor a = th::dmatrix("a"), b = th::dvector("b");
  const th::Function f = th::function({a, b}, th::linalg::solve(a, b));
  m = check::message_of<th::ValueError>([&] { f(sing, th::tensor({1, 2})); });
  BOOST_TEST(check::has(m, "solve: singular matrix"), m);
}

// Forward mode (API.md section 13): jvp against jacobian @ v, eager and frozen; the
// Hessian-vector product against hessian @ v.
BOOST_AUTO_TEST_CASE(jvp_and_hessian_vector_product) {
  const Tensor x0 = check::input({4}, 3, -1, 1), v = check::input({4}, 4, -1, 1);
  const Tensor W = check::input({3, 4}, 5, -1, 1);
  auto f = [&](const Tensor& x) { return th::tanh(th::dot(W, x)) * th::sum(th::sin(x)); };
  const Tensor x = th::variable(x0);
  const Tensor y = f(x);
  const Tensor want = th::dot(th::jacobian(y, x), v);
  expect("jvp", th::jvp(y, x, v), want.to_vector<double>(), 1e-12);
  // symbolic: frozen into a function of x and v
  const Tensor xs = th::dvector("x"), vs = th::dvector("v");
  const th::Function jf = th::function({xs, vs}, th::jvp(f(xs), xs, vs));
  expect("frozen jvp", jf(x0, v), want.to_vector<double>(), 1e-12);
  // a matrix input and linalg inside
  const Tensor A0 = check::input({3, 3}, 6, -1, 1), V = check::input({3, 3}, 7, -1, 1);
  const Tensor A = th::variable(A0);
  const Tensor yi = th::reshape(th::linalg::inv(A + 4.0 * th::eye(3)), {-1});
  const Tensor wi = th::reshape(th::dot(th::reshape(th::jacobian(yi, A), {9, 9}), th::reshape(V, {9})), {9});
  expect("jvp of inv", th::jvp(yi, A, V), wi.to_vector<double>(), 1e-12);
  // Hessian-vector product
  const Tensor c = th::sum(th::exp(th::dot(W, x))) + th::sum(x * x * x);
  expect("hvp", th::hessian_vector_product(c, x, v), th::dot(th::hessian(c, x), v).to_vector<double>(), 1e-12);
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { th::jvp(y, x, th::zeros({3})); }), "jvp: v must have x's shape"));
}
