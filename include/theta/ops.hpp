// Every operation of the contract (API.md section 3). Each works on concrete and symbolic
// tensors alike, follows numpy broadcasting and mixes with C++ numbers on either side
// (a number takes the tensor's dtype when it fits, as numpy's weak scalars).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace th {

/// The axes of a reduction: all of them (default, `{}`), one (`1`, `-1`) or several (`{0, 2}`).
struct Axes {
  /// All axes.
  Axes() = default;
  /// One axis, or several (negative axes count from the end).
  ///@{
  Axes(int axis) : all(false), axes{axis} {}
  Axes(std::int64_t axis) : all(false), axes{axis} {}
  Axes(std::initializer_list<std::int64_t> list) : all(false), axes(list) {}
  Axes(std::vector<std::int64_t> list) : all(false), axes(std::move(list)) {}
  ///@}
  bool all = true;                ///< every axis (then `axes` is unused)
  std::vector<std::int64_t> axes;  ///< the axes, when not all
};

// ---- arithmetic ---------------------------------------------------------------------------
/// Elementwise a + b, a - b, a * b with numpy broadcasting and dtype promotion; integers wrap.
///@{
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
///@}
/// True division: integers divide to floatX, as numpy.
Tensor operator/(const Tensor& a, const Tensor& b);
/// Elementwise negation.
///@{
Tensor operator-(const Tensor& a);
Tensor neg(const Tensor& x);
///@}
/// a to the power b, elementwise (broadcasting; exact integer powers for integers).
Tensor pow(const Tensor& a, const Tensor& b);
/// The operators and pow with a C++ number on one side (the number takes the tensor's dtype
/// when it fits, as numpy's weak scalars).
///@{
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
///@}

// ---- comparisons (boolean results, no gradient) --------------------------------------------
/// Elementwise comparisons (broadcasting): boolean tensors, without gradient.
///@{
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
///@}

// ---- elementwise ---------------------------------------------------------------------------
/// Elementwise functions: x squared, square root, e^x, ln x, ln(1 + x), |x|, sine, cosine,
/// tanh, the logistic sigmoid, max(x, 0), ln(1 + e^x), e^x - 1 (accurate near 0), the error
/// function and the sign (-1, 0, 1). Integers go to floatX where the result is not an
/// integer.
///@{
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
Tensor expm1(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor sign(const Tensor& x);
/// The inverse trigonometric functions: arcsin and arccos on [-1, 1] (NaN outside), arctan
/// on the reals; their gradients 1/sqrt(1-x^2), -1/sqrt(1-x^2), 1/(1+x^2).
Tensor arcsin(const Tensor& x);
Tensor arccos(const Tensor& x);
Tensor arctan(const Tensor& x);
///@}
// ---- activations of today's models (API.md section 16): composed of the elementwise ops
// above, so they fuse with their neighbours in a frozen function --------------------------------
/// x for x > 0, alpha (e^x - 1) below.
Tensor elu(const Tensor& x, double alpha = 1);
/// scale * elu(x, alpha) with the self-normalizing constants (PyTorch's selu).
Tensor selu(const Tensor& x);
/// x for x > 0, slope * x below.
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
/// x * sigmoid(x) (swish).
Tensor silu(const Tensor& x);
/// x * Phi(x) with Phi the normal CDF: 0.5 x (1 + erf(x / sqrt 2)); with tanh_approximation,
/// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (PyTorch's approximate="tanh").
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
/// x / (1 + |x|).
Tensor softsign(const Tensor& x);
/// PyTorch's: clip(x / 6 + 1/2, 0, 1).
Tensor hard_sigmoid(const Tensor& x);
/// Elementwise larger / smaller of a and b (NaN propagates; ties send the gradient to a).
///@{
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, double b);
Tensor maximum(double a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, double b);
Tensor minimum(double a, const Tensor& b);
///@}
/// x limited to [lo, hi] elementwise.
///@{
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi);
Tensor clip(const Tensor& x, double lo, double hi);
///@}
/// cond ? a : b elementwise; cond is converted to boolean.
///@{
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
Tensor where(const Tensor& cond, double a, double b);
///@}
/// x converted to `dtype` (differentiable between float types).
Tensor cast(const Tensor& x, DType dtype);
/// The identity whose gradient is zero.
Tensor stop_gradient(const Tensor& x);

// ---- reductions ----------------------------------------------------------------------------
/// Sums; bool and int32 sum to int64, as numpy.
Tensor sum(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// Means; integers average to floatX.
Tensor mean(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// Largest, smallest values and products over the axes.
///@{
Tensor max(const Tensor& x, Axes axis = {}, bool keepdims = false);
Tensor min(const Tensor& x, Axes axis = {}, bool keepdims = false);
Tensor prod(const Tensor& x, Axes axis = {}, bool keepdims = false);
///@}
/// log(sum(exp(x))), computed stably.
Tensor logsumexp(const Tensor& x, Axes axis = {}, bool keepdims = false);
/// Index of the largest value (of the flattened tensor when axis is not given); int64.
Tensor argmax(const Tensor& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false);
/// Index of the smallest value (of the flattened tensor when axis is not given); int64.
Tensor argmin(const Tensor& x, std::optional<std::int64_t> axis = std::nullopt, bool keepdims = false);
/// exp(x) / sum(exp(x)) along `axis`, computed stably.
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
/// log(softmax(x)) along `axis`, computed stably.
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
/// The elements as a 1-d tensor.
Tensor flatten(const Tensor& x);
/// A new axis of size 1 at `axis`.
Tensor expand_dims(const Tensor& x, std::int64_t axis);
/// Removes the given axes (which must have size 1), or without axes every axis known to
/// have size 1 (a symbolic tensor's dims that its expression fixes at 1; others stay).
Tensor squeeze(const Tensor& x, Axes axis = {});
/// x repeated to `shape` by numpy broadcasting.
Tensor broadcast_to(const Tensor& x, const Shape& shape);
/// The tensors joined along an existing axis.
Tensor concatenate(const std::vector<Tensor>& xs, std::int64_t axis = 0);
/// The tensors (of one shape) joined along a new axis.
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis = 0);
/// Elements of x at integer `indices` along `axis` (numpy.take); negative indices wrap.
Tensor take(const Tensor& x, const Tensor& indices, std::int64_t axis = 0);

/// One index of th::view: an integer, th::all() or th::range(start, stop, step).
struct Index {
  /// What the index selects: one position, a range, the whole axis.
  enum class Kind : unsigned char { integer, range, all };
  Kind kind = Kind::all;                    ///< which of the three
  std::int64_t i = 0;                       ///< the position (integer)
  std::optional<std::int64_t> start;        ///< the range's first position (nullopt: open)
  std::optional<std::int64_t> stop;         ///< the range's end, excluded (nullopt: open)
  std::int64_t step = 1;                    ///< the range's step
  /// One position (negative counts from the end); the axis is dropped.
  ///@{
  Index(int index) : kind(Kind::integer), i(index) {}
  Index(std::int64_t index) : kind(Kind::integer), i(index) {}
  ///@}
  /// Any index (th::range and th::all make them).
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
/// th::view(x, 0, th::range(1, 3)): the indices as arguments.
template <class... I>
Tensor view(const Tensor& x, I... indices) {
  return view(x, std::vector<Index>{Index(indices)...});
}

// ---- more of numpy's extra ops (API.md section 16) ------------------------------------------------
/// x's values sorted along `axis` (stable: equal values keep their order; NaN sorts as the
/// largest). The gradient flows back to each value's place.
Tensor sort(const Tensor& x, int axis = -1, bool descending = false);
/// The int64 positions that sort x along `axis` (stable).
Tensor argsort(const Tensor& x, int axis = -1, bool descending = false);
/// The k largest (or, with largest = false, smallest) values along `axis`, sorted that way,
/// and their int64 positions (ties: the earlier first). One step computes both.
std::pair<Tensor, Tensor> topk(const Tensor& x, std::int64_t k, int axis = -1, bool largest = true);
/// The lower triangle of each matrix of x, the rest zero: k = 0 from the main diagonal down,
/// k > 0 also k diagonals above it, k < 0 starting below it (numpy.tril).
Tensor tril(const Tensor& x, std::int64_t k = 0);
/// The upper triangle of each matrix of x, the rest zero (numpy.triu; k as tril's).
Tensor triu(const Tensor& x, std::int64_t k = 0);
/// x cut along `axis` into parts of the given sizes (they sum to the axis): one step, its parts
/// views of x (no copy); e.g. a fused q|k|v projection split in three.
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, int axis = 0);
/// x cut along `axis` into n near-equal parts (numpy.array_split: the first size % n parts one
/// longer; n parts always, empty ones when n exceeds the size).
std::vector<Tensor> chunk(const Tensor& x, std::int64_t n, int axis = 0);
/// Running sum along `axis` (booleans count as int64). Differentiable (twice, too).
Tensor cumsum(const Tensor& x, int axis);
/// Running product along `axis`. Differentiable once; the gradient is exact where x has zeros.
Tensor cumprod(const Tensor& x, int axis);
/// numpy.einsum: "ij,jk->ik" (explicit output) or "ij,jk" (implicit: the indices seen once, in
/// letter order), repeated indices for diagonals and traces ("ii->i", "ii"), "..." for
/// broadcast dims. Contractions are batched matmuls (BLAS), three or more operands contracted
/// pairwise, the smallest intermediate first. Differentiable (twice, too).
Tensor einsum(const std::string& spec, const std::vector<Tensor>& operands);

}  // namespace th
