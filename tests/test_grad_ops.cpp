// Every differentiable operation through the shared checker: shape rule, VJP against
// central differences (float64), broadcasting and axis variants, grad of grad on a sample.
#define BOOST_TEST_MODULE grad_ops
#include <limits>

#include "check.hpp"

using th::Tensor;
using X = check::Inputs;
using check::g2;
using check::op;

namespace {
check::Options pos() {  // strictly positive inputs (log, sqrt, division, pow base)
  check::Options o;
  o.lo = 0.5;
  o.hi = 2.0;
  return o;
}
}  // namespace

BOOST_AUTO_TEST_CASE(unary) {
  op("neg", [](const X& x) { return -x[0]; }, {{3, 4}}, {3, 4});
  op("abs", [](const X& x) { return th::abs(x[0]); }, {{3, 4}}, {3, 4});
  op("sign", [](const X& x) { return th::sign(x[0]) * x[0]; }, {{5}}, {5});
  op("exp", [](const X& x) { return th::exp(x[0]); }, {{3, 4}}, {3, 4}, g2());
  op("log", [](const X& x) { return th::log(x[0]); }, {{3, 4}}, {3, 4}, g2(pos()));
  op("log1p", [](const X& x) { return th::log1p(x[0]); }, {{4}}, {4}, pos());
  op("sqrt", [](const X& x) { return th::sqrt(x[0]); }, {{2, 3}}, {2, 3}, g2(pos()));
  op("sin", [](const X& x) { return th::sin(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("cos", [](const X& x) { return th::cos(x[0]); }, {{2, 3}}, {2, 3});
  op("tanh", [](const X& x) { return th::tanh(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("sigmoid", [](const X& x) { return th::sigmoid(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("softplus", [](const X& x) { return th::softplus(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("sqr", [](const X& x) { return th::sqr(x[0]); }, {{3, 2}}, {3, 2}, g2());
  op("relu", [](const X& x) { return th::relu(x[0]); }, {{3, 5}}, {3, 5});
  op("expm1", [](const X& x) { return th::expm1(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("erf", [](const X& x) { return th::erf(x[0]); }, {{2, 3}}, {2, 3}, g2());
  check::Options inside;  // (-1, 1): arcsin and arccos are defined there, with finite gradients
  inside.lo = -0.9;
  inside.hi = 0.9;
  op("arcsin", [](const X& x) { return th::arcsin(x[0]); }, {{2, 3}}, {2, 3}, g2(inside));
  op("arccos", [](const X& x) { return th::arccos(x[0]); }, {{2, 3}}, {2, 3}, g2(inside));
  op("arctan", [](const X& x) { return th::arctan(x[0]); }, {{2, 3}}, {2, 3}, g2());
  const std::vector<double> at = th::arcsin(th::tensor({-1.0, 0.5, 1.0})).to_vector<double>();
  BOOST_TEST(at == (std::vector<double>{-M_PI / 2, M_PI / 6, M_PI / 2}), boost::test_tools::tolerance(1e-15) << boost::test_tools::per_element());
  const std::vector<double> ac = th::arccos(th::tensor({-1.0, 0.5, 2.0})).to_vector<double>();
  BOOST_TEST(ac[0] == M_PI, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(ac[1] == M_PI / 3, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(std::isnan(ac[2]));  // outside [-1, 1]
  const std::vector<float> tf = th::arctan(th::tensor({-1e30, 1.0}, th::DType::float32)).to_vector<float>();
  BOOST_TEST(tf[0] == float(-M_PI / 2), boost::test_tools::tolerance(1e-7f));
  BOOST_TEST(tf[1] == float(M_PI / 4), boost::test_tools::tolerance(1e-7f));
  op("clip", [](const X& x) { return th::clip(x[0], -0.5, 0.7); }, {{3, 5}}, {3, 5});
  op("scalar arithmetic", [](const X& x) { return 2.0 - x[0] * 3.0 + 1.0 / (x[0] + 5.0); }, {{4}}, {4});
}

// The activations of API.md section 16 (composites of the elementwise ops): values against
// PyTorch's (torch.nn.functional, float64), gradients through the checker (twice), and one
// fused pass when frozen.
BOOST_AUTO_TEST_CASE(activations) {
  const Tensor v = th::tensor({-2.0, -0.5, 0.0, 1.0, 3.0});
  auto expect = [](const std::string& what, const Tensor& got, const std::vector<double>& want) {
    const auto g = got.to_vector<double>();
    BOOST_TEST_REQUIRE(g.size() == want.size());
    for (std::size_t i = 0; i < g.size(); ++i) BOOST_TEST(std::fabs(g[i] - want[i]) <= 1e-12, what << "[" << i << "] = " << g[i]);
  };
  expect("erf", th::erf(v), {-0.9953222650189527, -0.5204998778130465, 0, 0.8427007929497149, 0.9999779095030014});
  expect("gelu", th::gelu(v), {-0.04550026389635842, -0.15426876936299344, 0, 0.841344746068543, 2.99595030590511});
  expect("gelu tanh", th::gelu(v, true), {-0.04540230591222494, -0.15428599017485606, 0, 0.8411919906082768, 2.996362607918227});
  expect("elu", th::elu(v, 0.5), {-0.43233235838169365, -0.19673467014368328, 0, 1, 3});
  expect("selu", th::selu(v), {-1.5201664685956948, -0.6917581878028713, 0, 1.0507009873554805, 3.1521029620664414});
  expect("leaky_relu", th::leaky_relu(v, 0.1), {-0.2, -0.05, 0, 1, 3});
  expect("silu", th::silu(v), {-0.2384058440442351, -0.1887703343990727, 0, 0.7310585786300049, 2.8577223804672998});
  expect("softsign", th::softsign(v), {-2.0 / 3, -1.0 / 3, 0, 0.5, 0.75});
  expect("hard_sigmoid", th::hard_sigmoid(v), {1.0 / 6, 5.0 / 12, 0.5, 2.0 / 3, 1});
  op("gelu", [](const X& x) { return th::gelu(x[0]); }, {{2, 3}}, {2, 3}, g2());
  op("gelu tanh", [](const X& x) { return th::gelu(x[0], true); }, {{2, 3}}, {2, 3}, g2());
  op("elu", [](const X& x) { return th::elu(x[0], 0.7); }, {{3, 4}}, {3, 4}, g2());
  op("selu", [](const X& x) { return th::selu(x[0]); }, {{3, 4}}, {3, 4});
  op("leaky_relu", [](const X& x) { return th::leaky_relu(x[0], 0.2); }, {{3, 4}}, {3, 4});
  op("silu", [](const X& x) { return th::silu(x[0]); }, {{3, 4}}, {3, 4}, g2());
  op("softsign", [](const X& x) { return th::softsign(x[0]); }, {{3, 4}}, {3, 4});
  op("hard_sigmoid", [](const X& x) { return th::hard_sigmoid(x[0] * 4.0); }, {{3, 4}}, {3, 4});
  // elu's gradient stays finite where exp overflows in the branch not taken
  const Tensor big = th::variable(th::tensor({800.0, -800.0}));
  BOOST_TEST(th::grad(th::sum(th::elu(big)), big).to_vector<double>() == std::vector<double>({1.0, 0.0}),
             boost::test_tools::per_element());
  // one pass in a frozen function
  const Tensor x = th::dvector("x");
  const th::Function f = th::function({x}, th::gelu(x) + th::silu(x));
  BOOST_TEST(check::has(th::debugprint(f), "fused["), th::debugprint(f));
}

BOOST_AUTO_TEST_CASE(binary_broadcasting) {
  op("add", [](const X& x) { return x[0] + x[1]; }, {{3, 4}, {4}}, {3, 4});
  op("sub", [](const X& x) { return x[0] - x[1]; }, {{2, 3, 4}, {3, 1}}, {2, 3, 4});
  op("mul", [](const X& x) { return x[0] * x[1]; }, {{4, 1}, {1, 5}}, {4, 5}, g2());
  op("div", [](const X& x) { return x[0] / x[1]; }, {{3, 4}, {4}}, {3, 4}, g2(pos()));
  op("pow", [](const X& x) { return th::pow(x[0], x[1]); }, {{2, 3}, {3}}, {2, 3}, g2(pos()));
  op("pow scalar", [](const X& x) { return th::pow(x[0], 3.0); }, {{2, 3}}, {2, 3});
  op("maximum", [](const X& x) { return th::maximum(x[0], x[1]); }, {{3, 4}, {4}}, {3, 4});
  op("minimum", [](const X& x) { return th::minimum(x[0], x[1]); }, {{1, 4}, {3, 1}}, {3, 4});
  op("where", [](const X& x) { return th::where(x[0] > 0.0, x[1], x[2]); }, {{3, 4}, {3, 4}, {4}}, {3, 4},
     [] {
       check::Options o;
       o.diff = {false, true, true};
       return o;
     }());
  op("scalar (0-d) with matrix", [](const X& x) { return x[0] * x[1]; }, {{}, {2, 3}}, {2, 3});
}

BOOST_AUTO_TEST_CASE(reductions) {
  op("sum all", [](const X& x) { return th::sum(x[0]); }, {{3, 4}}, {}, g2());
  op("sum axis 1", [](const X& x) { return th::sum(x[0], 1); }, {{3, 4}}, {3});
  op("sum axes {0,2} keepdims", [](const X& x) { return th::sum(x[0], {0, 2}, true); }, {{2, 3, 4}}, {1, 3, 1});
  op("mean axis -1", [](const X& x) { return th::mean(x[0], -1); }, {{3, 5}}, {3});
  op("mean all", [](const X& x) { return th::mean(x[0]); }, {{3, 5}}, {});
  op("max axis 0", [](const X& x) { return th::max(x[0], 0); }, {{4, 3}}, {3});
  op("min all", [](const X& x) { return th::min(x[0]); }, {{4, 3}}, {});
  op("prod axis 1", [](const X& x) { return th::prod(x[0], 1); }, {{3, 4}}, {3}, g2());
  op("prod keepdims", [](const X& x) { return th::prod(x[0], 0, true); }, {{3, 2}}, {1, 2});
  op("logsumexp axis 1", [](const X& x) { return th::logsumexp(x[0], 1); }, {{3, 4}}, {3}, g2());
  op("logsumexp all", [](const X& x) { return th::logsumexp(x[0]); }, {{3, 4}}, {});
  op("softmax", [](const X& x) { return th::softmax(x[0]); }, {{3, 4}}, {3, 4}, g2());
  op("softmax axis 0", [](const X& x) { return th::softmax(x[0], 0); }, {{3, 4}}, {3, 4});
  op("log_softmax", [](const X& x) { return th::log_softmax(x[0], 0); }, {{3, 4}}, {3, 4});
  op("log_softmax last axis", [](const X& x) { return th::log_softmax(x[0]); }, {{2, 5}}, {2, 5}, g2());
  op("softmax middle axis of 3", [](const X& x) { return th::softmax(x[0], 1); }, {{2, 3, 4}}, {2, 3, 4}, g2());
}

// softmax and log_softmax are primitives with their own gradient rules: values and gradients
// stay finite for logits far apart (no exp overflow, no log of an underflowed 0), masked
// entries (-inf, as attention's) get 0 probability and 0 gradient, and a frozen function
// runs the same kernel as eager (same bits).
BOOST_AUTO_TEST_CASE(softmax_primitives_are_stable) {
  const Tensor z = th::variable(th::tensor({{1000.0, -1000.0, 0.0}, {-1e300, 5.0, -std::numeric_limits<double>::infinity()}}));
  const Tensor p = th::softmax(z), lp = th::log_softmax(z);
  const std::vector<double> pv = p.to_vector<double>(), lv = lp.to_vector<double>();
  BOOST_TEST(pv == std::vector<double>({1, 0, 0, 0, 1, 0}), boost::test_tools::per_element());
  BOOST_TEST(lv[0] == 0.0);
  BOOST_TEST(lv[1] == -2000.0);
  BOOST_TEST(lv[5] == -std::numeric_limits<double>::infinity());
  const Tensor w = th::tensor({{0.5, -1.0, 2.0}, {1.0, 3.0, -2.0}});
  for (const Tensor& g : {th::grad(th::sum(p * w), z), th::grad(th::sum(th::where(lp > -1e308, lp, 0.0) * w), z)})
    for (double v : g.to_vector<double>()) BOOST_TEST(std::isfinite(v), v);
  BOOST_TEST(th::grad(th::sum(p * w), z).to_vector<double>()[5] == 0.0);
  const Tensor zs = th::dmatrix("z");
  const th::Function f = th::function({zs}, {th::softmax(zs), th::log_softmax(zs, 0)});
  const Tensor Z = check::input({7, 9}, 3, -5, 5);
  const auto r = f.call({Z});
  BOOST_TEST(r[0].to_vector<double>() == th::softmax(Z).to_vector<double>(), boost::test_tools::per_element());
  BOOST_TEST(r[1].to_vector<double>() == th::log_softmax(Z, 0).to_vector<double>(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(linear_algebra) {
  op("dot matrix-vector", [](const X& x) { return th::dot(x[0], x[1]); }, {{3, 4}, {4}}, {3}, g2());
  op("dot vector-matrix", [](const X& x) { return th::dot(x[0], x[1]); }, {{3}, {3, 5}}, {5});
  op("dot vector-vector", [](const X& x) { return th::dot(x[0], x[1]); }, {{4}, {4}}, {});
  op("dot matrix-matrix", [](const X& x) { return x[0].dot(x[1]); }, {{2, 3}, {3, 5}}, {2, 5}, g2());
  op("dot transposed operands", [](const X& x) { return th::dot(x[0].T(), x[1].T()); }, {{3, 2}, {5, 3}}, {2, 5});
  op("dot of a column-strided view", [](const X& x) {
       return th::dot(th::view(x[0], th::all(), th::range(std::nullopt, std::nullopt, 2)), x[1]);
     }, {{3, 8}, {4, 2}}, {3, 2});
  op("dot of a broadcast operand", [](const X& x) { return th::dot(th::broadcast_to(x[0], {3, 4}), x[1]); },
     {{4}, {4, 2}}, {3, 2});
  op("dot scalar", [](const X& x) { return th::dot(x[0], x[1]); }, {{}, {3}}, {3});
  op("matmul batched", [](const X& x) { return th::matmul(x[0], x[1]); }, {{2, 3, 4}, {4, 5}}, {2, 3, 5});
  op("matmul broadcast batches", [](const X& x) { return th::matmul(x[0], x[1]); }, {{2, 1, 3, 4}, {5, 4, 2}},
     {2, 5, 3, 2});
  // 1-d operands ride in the matmul op itself (a row or a column), batches around them
  op("matmul batch of matrices times a vector", [](const X& x) { return th::matmul(x[0], x[1]); },
     {{2, 3, 4}, {4}}, {2, 3});
  op("matmul vector times a batch of matrices", [](const X& x) { return th::matmul(x[0], x[1]); },
     {{4}, {2, 4, 5}}, {2, 5});
  op("matmul vector times a transposed matrix", [](const X& x) { return th::matmul(x[0], x[1].T()); },
     {{4}, {3, 4}}, {3});
  op("outer", [](const X& x) { return th::outer(x[0], x[1]); }, {{3}, {4}}, {3, 4});
  // an empty operand: the other gradient is a sum over an empty axis (found by test_property, seed 3829)
  op("outer with an empty operand", [](const X& x) { return th::outer(x[0], x[1]); }, {{0}, {4, 2}}, {0, 8});
  op("transpose", [](const X& x) { return th::transpose(x[0]); }, {{2, 3}}, {3, 2});
  op("transpose perm", [](const X& x) { return th::transpose(x[0], {1, -1, 0}); }, {{2, 3, 4}}, {3, 4, 2});
}

BOOST_AUTO_TEST_CASE(shape_and_indexing) {
  op("reshape", [](const X& x) { return th::reshape(x[0], {3, -1}); }, {{2, 6}}, {3, 4});
  op("reshape of transposed", [](const X& x) { return th::reshape(x[0].T(), {-1}); }, {{2, 3}}, {6});
  op("flatten", [](const X& x) { return th::flatten(x[0]); }, {{2, 3}}, {6});
  op("expand_dims", [](const X& x) { return th::expand_dims(x[0], -1) * x[1]; }, {{3}, {3, 2}}, {3, 2});
  op("squeeze", [](const X& x) { return th::squeeze(x[0]); }, {{1, 3, 1}}, {3}, [] {
       check::Options o;
       o.frozen = false;  // a placeholder's sizes are open: squeeze() keeps them (see the next line)
       return o;
     }());
  op("squeeze of keepdims", [](const X& x) { return th::squeeze(th::sum(x[0], 1, true)); }, {{3, 4}}, {3});
  op("squeeze axis", [](const X& x) { return th::squeeze(x[0], 0); }, {{1, 3, 1}}, {3, 1});
  op("broadcast_to", [](const X& x) { return th::broadcast_to(x[0], {2, 3, 4}); }, {{3, 1}}, {2, 3, 4});
  op("concatenate", [](const X& x) { return th::concatenate({x[0], x[1]}, 1); }, {{2, 3}, {2, 2}}, {2, 5}, g2());
  op("stack", [](const X& x) { return th::stack({x[0], x[1], x[0]}, 1); }, {{2, 3}, {2, 3}}, {2, 3, 3});
  op("view", [](const X& x) { return th::view(x[0], th::range(1, 3), th::all(), 2); }, {{4, 3, 5}}, {2, 3}, g2());
  op("view step", [](const X& x) { return th::view(x[0], th::range(std::nullopt, std::nullopt, 2)); }, {{5, 2}},
     {3, 2});
  op("view negative step", [](const X& x) { return th::view(x[0], th::range(-1, 0, -2)); }, {{6}}, {3});
  op("take", [](const X& x) { return th::take(x[0], th::tensor({2, 0, 2, -1}, th::DType::int64), 1); }, {{3, 4}},
     {3, 4}, g2());
  op("take matrix of indices", [](const X& x) { return th::take(x[0], th::tensor({{0, 1}, {1, 1}}, th::DType::int32)); },
     {{3, 2}}, {2, 2, 2});
}

BOOST_AUTO_TEST_CASE(compositions) {
  // The seed's cost: mean squared error of a linear model.
  op("mse", [](const X& x) { return th::mean(th::sqr(th::dot(x[0], x[1]) - x[2])); }, {{5, 4}, {4}, {5}}, {},
     g2());
  // Softmax cross-entropy with a one-hot target.
  op("cross-entropy", [](const X& x) { return -th::mean(th::sum(th::log_softmax(x[0]) * x[1], 1)); },
     {{4, 3}, {4, 3}}, {});
  // A tiny MLP layer.
  op("tanh layer", [](const X& x) { return th::tanh(th::dot(x[0], x[1]) + x[2]); }, {{3, 4}, {4, 2}, {2}}, {3, 2},
     g2());
}
