// Bad input gets a th:: error naming the operation, the shapes/dtypes and user names.
#define BOOST_TEST_MODULE errors
#include "check.hpp"

using th::Tensor;
using check::has;
using check::message_of;


BOOST_AUTO_TEST_CASE(dot_alignment_names_operands) {
  Tensor x = th::variable(th::zeros({125, 4}), "x");
  Tensor w = th::variable(th::zeros({3}), "w");
  std::string m = message_of<th::ShapeError>([&] { th::dot(x, w); });
  BOOST_TEST(has(m, "dot: shapes not aligned: 4 (dim 1) != 3 (dim 0)"), m);
  BOOST_TEST(has(m, "(125, 4) float64 and (3,) float64 [x, w]"), m);
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::matmul(th::zeros({2, 3}), th::zeros({2, 3})); }), "matmul:"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::dot(th::zeros({2, 2, 2}), th::zeros({2})); }), "th::matmul"));
}

BOOST_AUTO_TEST_CASE(a_frozen_call_names_the_function_the_user_wrote) {
  // dot records a matmul step; the frozen call's error still says dot, with the inputs' names
  Tensor x = th::dmatrix("x"), w = th::dvector("w");
  const th::Function f = th::function({x, w}, th::dot(x, w) * 2.0);
  std::string m = message_of<th::ShapeError>([&] { f(th::zeros({125, 4}), th::zeros({3})); });
  BOOST_TEST(has(m, "dot: shapes not aligned: 4 (dim 1) != 3 (dim 0)"), m);
  BOOST_TEST(has(m, "[x, w]"), m);
  const th::Function g = th::function({x, w}, th::matmul(x, w));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { g(th::zeros({2, 3}), th::zeros({2})); }), "matmul: shapes"));
}

BOOST_AUTO_TEST_CASE(broadcast_and_shape_errors) {
  Tensor a = th::variable(th::zeros({2, 3}), "a");
  std::string m = message_of<th::ShapeError>([&] { a + th::zeros({4}); });
  BOOST_TEST(has(m, "add: shapes cannot be broadcast together"), m);
  BOOST_TEST(has(m, "(2, 3) float64 and (4,) float64 [a, ?]"), m);
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::reshape(a, {4, -1}); }), "reshape: cannot reshape 6 elements"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::reshape(a, {-1, -1}); }), "only one dimension can be -1"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::sum(a, 2); }), "sum: axis 2 is out of range"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::sum(a, {1, -1}); }), "repeated axis"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::transpose(a, {0, 0}); }), "transpose: invalid permutation"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::squeeze(a, 0); }), "cannot squeeze axis 0 of size 2"));
  // an empty axis is not size 1 (found by test_property, seed 4892)
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::squeeze(th::zeros({0, 1}), 0); }), "cannot squeeze axis 0 of size 0"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::concatenate({a, th::zeros({3, 3})}, 1); }),
                 "concatenate: sizes differ in dim 0"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::broadcast_to(a, {3, 3}); }), "broadcast_to: cannot broadcast"));
  BOOST_TEST(has(message_of<th::ShapeError>([&] { th::view(a, 0, 0, 0); }), "view: too many indices"));
  BOOST_TEST(has(message_of<th::ShapeError>([] { th::tensor({{1, 2}, {3}}); }), "ragged"));
}

BOOST_AUTO_TEST_CASE(value_and_type_errors) {
  Tensor a = th::variable(th::zeros({2, 3}), "a");
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::grad(a, a); }), "grad: cost must have exactly one element"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::view(a, 5); }), "view: index 5 is out of bounds for axis 0"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::take(a, th::tensor({3}, th::DType::int64)); }),
                 "take: index 3 is out of bounds"));
  BOOST_TEST(has(message_of<th::TypeError>([&] { th::take(a, th::tensor({1.0})); }), "take: indices must be int32"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { a.item(); }), "has 6 elements, not 1"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::max(th::zeros({0})); }), "max: zero-size array"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::argmax(th::zeros({0})); }), "argmax:"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::exp(Tensor()); }), "exp: empty tensor"));
  BOOST_TEST(has(message_of<th::ValueError>([] { th::arange(0, 1, 0); }), "arange:"));
  BOOST_TEST(has(message_of<th::ValueError>([&] { th::view(a, th::range(0, 1, 0)); }), "slice step cannot be zero"));
  BOOST_TEST(has(message_of<th::DeviceError>([&] { a.to(th::cuda()); }), "to: cannot move"));
  BOOST_TEST(has(message_of<th::TypeError>([] { th::set_floatX(th::DType::int32); }), "floatX"));
  // Every theta error is a th::Error and a std::runtime_error.
  BOOST_CHECK_THROW(th::dot(a, a), th::Error);
  BOOST_CHECK_THROW(th::dot(a, a), std::runtime_error);
}
