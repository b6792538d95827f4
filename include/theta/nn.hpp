// Neural-network operations (API.md section 9, Theano's nnet and pool): convolution,
// pooling, the statistics and losses of classifiers, shape_of, and weight initialisation.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "ops.hpp"
#include "tensor.hpp"

namespace th {

/// Theano's border_mode: the zero padding of a convolution's input.
struct Padding {
  /// No padding (the default).
  static Padding valid() { return Padding(0, 0); }
  /// (dilated filter size - 1) on each side: every overlap of filter and input.
  static Padding full() { return Padding(kFull, kFull); }
  /// (dilated filter size) // 2 on each side: "same" output size for odd filters and stride 1.
  static Padding half() { return Padding(kHalf, kHalf); }
  /// Explicit rows and columns of zeros on each side.
  Padding(std::int64_t rows, std::int64_t cols) : rows(rows), cols(cols) {}
  std::int64_t rows;  ///< rows of zeros above and below (>= 0), or kFull / kHalf
  std::int64_t cols;  ///< columns of zeros left and right (>= 0), or kFull / kHalf
  static constexpr std::int64_t kFull = -1;  ///< rows/cols of full()
  static constexpr std::int64_t kHalf = -2;  ///< rows/cols of half()
};

/// The options of conv2d (Theano's AbstractConv2d).
struct ConvOptions {
  Padding border_mode = Padding::valid();                 ///< zero padding of the input
  std::array<std::int64_t, 2> subsample = {1, 1};        ///< stride
  std::array<std::int64_t, 2> filter_dilation = {1, 1};  ///< spacing of the filter's taps
  std::int64_t num_groups = 1;                           ///< channel groups (filters see channels / num_groups)
  /// true: convolution (filters flipped), as Theano; false: cross-correlation, as PyTorch.
  bool filter_flip = true;
};

/// 2-d convolution: input (batch, channels, rows, cols), filters (out_channels,
/// channels / num_groups, rows, cols) -> (batch, out_channels, out_rows, out_cols).
/// Its gradients are convolutions too, so they differentiate again.
Tensor conv2d(const Tensor& input, const Tensor& filters, const ConvOptions& options = {});

/// The transposed convolution (PyTorch's conv_transpose2d, Theano's conv2d_grad_wrt_inputs):
/// the gradient of conv2d(., filters, options) with respect to its input, for an input of
/// (batch, in_channels, rows, cols). filters (in_channels, out_channels / num_groups, rows,
/// cols), as PyTorch's ConvTranspose2d; the result (batch, out_channels, (rows - 1) * stride -
/// 2 * padding + dilation * (filter rows - 1) + 1 + output_padding, likewise for columns).
/// With filter_flip = false exactly PyTorch's; the default true flips the filters as
/// Theano's convolution does. output_padding (< the stride or the dilation) adds rows and
/// columns at the bottom and right. Differentiable in both operands (its gradients are
/// convolutions).
Tensor conv2d_transpose(const Tensor& input, const Tensor& filters, const ConvOptions& options = {},
                        std::array<std::int64_t, 2> output_padding = {0, 0});

/// What pool_2d computes over a window: its maximum, its sum, or its mean counting the
/// padding (inc_pad) or not (exc_pad).
enum class PoolMode { max, sum, average_inc_pad, average_exc_pad };

/// The options of pool_2d (Theano's pool_2d).
struct PoolOptions {
  /// true: only whole windows; false: windows cut at the border count too (needs pad 0).
  bool ignore_border = true;
  std::optional<std::array<std::int64_t, 2>> stride;  ///< default: the window size
  std::array<std::int64_t, 2> pad = {0, 0};          ///< zeros on each side (smaller than the window)
  PoolMode mode = PoolMode::max;  ///< max, sum or average
};

/// Pools windows of ws = (rows, cols) over the last two axes of x (rank >= 2). Max pooling's
/// gradient goes to each window's first maximum.
Tensor pool_2d(const Tensor& x, std::array<std::int64_t, 2> ws, const PoolOptions& options = {});

/// The results of batch_normalization_train.
struct BatchNormTrain {
  Tensor out;               ///< (x - mean) * invstd * gamma + beta, x's shape
  Tensor mean;              ///< the batch mean over the reduced axes, gamma's shape
  Tensor invstd;            ///< 1 / sqrt(biased batch variance + eps), gamma's shape
  Tensor new_running_mean;  ///< (1 - f) running_mean + f mean (no gradient); empty without running statistics
  Tensor new_running_var;   ///< (1 - f) running_var + f unbiased variance (no gradient); empty without them
};
/// Batch normalization in training (Theano's bn.batch_normalization_train): x normalized by
/// its mean and biased variance over `axes` (empty: (0, 2, 3, ...) for input of 3 or more
/// dimensions, "spatial"; (0,) for 2-d, "per-activation"), then scaled by gamma and shifted by
/// beta. gamma, beta and the running statistics have x's shape with the reduced axes dropped
/// (e.g. (C,)) or kept as 1 (e.g. (1, C, 1, 1)). With running statistics, the new ones use the
/// factor f = running_average_factor (PyTorch's momentum) and the unbiased variance; put them in
/// the training function's updates. Differentiable in x, gamma and beta (twice, too).
BatchNormTrain batch_normalization_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         std::vector<int> axes = {}, double eps = 1e-4,
                                         double running_average_factor = 0.1, const Tensor& running_mean = {},
                                         const Tensor& running_var = {});
/// Batch normalization in inference (Theano's bn.batch_normalization_test): (x - mean) /
/// sqrt(var + eps) * gamma + beta with given statistics (e.g. the running ones), shapes as
/// batch_normalization_train's parameters.
Tensor batch_normalization_test(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& var, std::vector<int> axes = {}, double eps = 1e-4);

/// Layer normalization (PyTorch's layer_norm with normalized_shape = gamma's shape): x
/// normalized over its trailing gamma.ndim() axes by their mean and biased variance, then
/// scaled by gamma and shifted by beta (both of x's trailing shape). Composed of reductions
/// and elementwise ops: it fuses in frozen functions and differentiates twice.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

/// Attention (PyTorch's scaled_dot_product_attention): softmax(q k^T * scale + mask) v for
/// q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) with the same batch dims -> (..., Lq, dv);
/// scale 1/sqrt(d) by default. `mask`: boolean (true attends) or additive (q's dtype),
/// broadcast to (..., Lq, Lk); `causal` hides key j > query i (top-left aligned). Runs in blocks
/// with running softmax statistics (flash attention): no (Lq x Lk) matrix per head, forward or
/// backward. Differentiable in q, k, v and an additive mask (once).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = {},
                                    bool causal = false, std::optional<double> scale = {});

/// Variance over `axis` with `ddof` delta degrees of freedom (numpy.var).
Tensor var(const Tensor& x, Axes axis = {}, bool keepdims = false, std::int64_t ddof = 0);
/// Standard deviation: sqrt(var(...)).
Tensor std(const Tensor& x, Axes axis = {}, bool keepdims = false, std::int64_t ddof = 0);

/// labels (integers, any shape) as one-hot rows of n classes: shape labels.shape + (n,).
/// A label outside [0, n) is a th::ValueError.
Tensor one_hot(const Tensor& labels, std::int64_t n, std::optional<DType> dtype = std::nullopt);
/// Theano's categorical_crossentropy, one value per row: -log p[i, t_i] for integer class
/// indices t, -sum(t * log p, -1) for a one-hot or probability matrix t. When p is
/// th::softmax(z), the loss is computed as -log_softmax(z) (value and gradient stay finite).
Tensor categorical_crossentropy(const Tensor& p, const Tensor& targets);
/// Theano's binary_crossentropy, elementwise: -(t log p + (1 - t) log(1 - p)); when p is
/// th::sigmoid(z) it is computed from z with softplus (finite for any z).
Tensor binary_crossentropy(const Tensor& p, const Tensor& targets);

/// The shape of x as an int64 vector, symbolic when x is; accepted where a shape is (reshape,
/// zeros, random draws).
Tensor shape_of(const Tensor& x);
namespace detail {
Tensor reshape_by(const Tensor& x, const Tensor& shape);
Tensor zeros_by(const Tensor& shape, std::optional<DType> dtype);
}  // namespace detail
/// x reshaped to the shape held by the int64 vector `shape` (e.g. shape_of(y); one entry
/// may be -1). NOTE: a template so that reshape(x, {}) still means th::Shape{}.
template <class S, std::enable_if_t<std::is_base_of_v<Tensor, S>, int> = 0>
Tensor reshape(const Tensor& x, const S& shape) {
  return detail::reshape_by(x, shape);
}
/// Zeros of the shape held by the int64 vector `shape` (e.g. shape_of(y)).
template <class S, std::enable_if_t<std::is_base_of_v<Tensor, S>, int> = 0>
Tensor zeros(const S& shape, std::optional<DType> dtype = std::nullopt) {
  return detail::zeros_by(shape, dtype);
}

/// Weight initialisation (Lasagne's initialisers), concrete tensors of floatX (or `dtype`).
/// fan_in / fan_out: a dense (in, out) matrix gives in and out; a conv filter (out, in, kh,
/// kw) gives in * kh * kw and out * kh * kw; a vector gives its size for both.
namespace init {
/// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor glorot_uniform(const Shape& shape, std::uint64_t seed, double gain = 1, std::optional<DType> dtype = std::nullopt);
/// N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).
Tensor glorot_normal(const Shape& shape, std::uint64_t seed, double gain = 1, std::optional<DType> dtype = std::nullopt);
/// U(-a, a), a = gain * sqrt(3 / fan_in) (Lasagne's He; gain sqrt(2) for relu, PyTorch's kaiming).
Tensor he_uniform(const Shape& shape, std::uint64_t seed, double gain = 1, std::optional<DType> dtype = std::nullopt);
/// N(0, s^2), s = gain * sqrt(1 / fan_in).
Tensor he_normal(const Shape& shape, std::uint64_t seed, double gain = 1, std::optional<DType> dtype = std::nullopt);
}  // namespace init

}  // namespace th
