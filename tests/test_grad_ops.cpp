// Every differentiable operation through the shared checker: shape rule, VJP against
// central differences (float64), broadcasting and axis variants, grad of grad on a sample.
#define BOOST_TEST_MODULE grad_ops
#include "check.hpp"

using th::Tensor;
using X = check::Inputs;
using check::op;

namespace {
check::Options pos() {  // strictly positive inputs (log, sqrt, division, pow base)
  check::Options o;
  o.lo = 0.5;
  o.hi = 2.0;
  return o;
}
check::Options g2(check::Options o = {}) {
  o.grad2 = true;
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
  op("clip", [](const X& x) { return th::clip(x[0], -0.5, 0.7); }, {{3, 5}}, {3, 5});
  op("scalar arithmetic", [](const X& x) { return 2.0 - x[0] * 3.0 + 1.0 / (x[0] + 5.0); }, {{4}}, {4});
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
