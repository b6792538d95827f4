// Every operation of the contract (API.md section 3). Each works on concrete and symbolic
// tensors alike, follows numpy broadcasting and mixes with C++ numbers on either side
// (a number takes the tensor's dtype when it fits, as numpy's weak scalars).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "tensor.hpp"

namespace th {

/// The axes of a reduction: all of them (default, `{}`), one (`1`, `-1`) or several (`{0, 2}`).
struct Axes {
  Axes() = default;
  Axes(int axis) : all(false), axes{axis} {}
  Axes(std::int64_t axis) : all(false), axes{axis} {}
  Axes(std::initializer_list<std::int64_t> list) : all(false), axes(list) {}
  Axes(std::vector<std::int64_t> list) : all(false), axes(std::move(list)) {}
  bool all = true;
  std::vector<std::int64_t> axes;
};

// ---- arithmetic ---------------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
/// True division: integers divide to floatX, as numpy.
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor neg(const Tensor& x);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);
Tensor pow(const Tensor& a, double b);
Tensor pow(double a, const Tensor& b);

// ---- comparisons (boolean results, no gradient) --------------------------------------------
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(double a, const Tensor& b);
Tensor operator<=(double a, const Tensor& b);
Tensor operator>(double a, const Tensor& b);
Tensor operator>=(double a, const Tensor& b);
Tensor operator==(double a, const Tensor& b);
Tensor operator!=(double a, const Tensor& b);

// ---- elementwise ---------------------------------------------------------------------------
Tensor sqr(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, double b);
Tensor maximum(double a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, double b);
Tensor minimum(double a, const Tensor& b);
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi);
Tensor clip(const Tensor& x, double lo, double hi);
/// cond ? a : b elementwise; cond is converted to boolean.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
Tensor where(const Tensor& cond, double a, double b);
Tensor cast(const Tensor& x, DType dtype);
/// The identity whose gradient is zero.
Tensor stop_gradient(const Tensor& x);

// ---- reductions ----------------------------------------------------------------------------
/// Sums; bool and int32 sum to int64, as numpy.
Tensor sum(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// Means; integers average to floatX.
Tensor mean(const Tensor& x, Axes axis = {}, bool keepdims = false);
Tensor max(const Tensor& x, Axes axis = {}, bool keepdims = false);
Tensor min(const Tensor& x, Axes axis = {}, bool keepdims = false);
Tensor prod(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// log(sum(exp(x))), computed stably.
Tensor logsumexp(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// Index of the largest value (of the flattened tensor when axis is not given); int64.
Tensor argmax(const Tensor& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false);
Tensor argmin(const Tensor& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false);
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);

// ---- linear algebra ------------------------------------------------------------------------
/// numpy.dot for 0-, 1- and 2-d operands (BLAS GEMM/GEMV).
Tensor dot(const Tensor& a, const Tensor& b);
/// numpy.matmul: batched over leading dimensions, which broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
/// The outer product of the flattened operands.
Tensor outer(const Tensor& a, const Tensor& b);
/// Reverses the axes.
Tensor transpose(const Tensor& x);
/// Permutes the axes (negative entries count from the end).
Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm);

// ---- shape ---------------------------------------------------------------------------------
/// New shape with the same number of elements; one entry may be -1.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x);
Tensor expand_dims(const Tensor& x, std::int64_t axis);
/// Removes the given axes (which must have size 1), or without axes every axis known to
/// have size 1 (a symbolic tensor's dims that its expression fixes at 1; others stay).
Tensor squeeze(const Tensor& x, Axes axis = {});
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor concatenate(const std::vector<Tensor>& xs, std::int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis = 0);
/// Elements of x at integer `indices` along `axis` (numpy.take); negative indices wrap.
Tensor take(const Tensor& x, const Tensor& indices, std::int64_t axis = 0);

/// One index of th::view: an integer, th::all() or th::range(start, stop, step).
struct Index {
  enum class Kind : unsigned char { integer, range, all };
  Kind kind = Kind::all;
  std::int64_t i = 0;
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;
  Index(int index) : kind(Kind::integer), i(index) {}
  Index(std::int64_t index) : kind(Kind::integer), i(index) {}
  Index(Kind k, std::optional<std::int64_t> a, std::optional<std::int64_t> b, std::int64_t s)
      : kind(k), start(a), stop(b), step(s) {}
};
/// start:stop:step, numpy rules (negative values count from the end; nullopt is open).
inline Index range(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                   std::int64_t step = 1) {
  return Index(Index::Kind::range, start, stop, step);
}
/// The whole axis (numpy's `:`).
inline Index all() { return Index(Index::Kind::all, std::nullopt, std::nullopt, 1); }
/// Basic slicing; trailing axes not indexed are taken whole. Zero-copy on concrete tensors.
Tensor view(const Tensor& x, const std::vector<Index>& indices);
template <class... I>
Tensor view(const Tensor& x, I... indices) {
  return view(x, std::vector<Index>{Index(indices)...});
}

}  // namespace th
