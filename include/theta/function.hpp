// Theano's half: symbolic placeholders, shared variables, and th::function, which freezes
// recorded expressions into an immutable program with parameter updates.
#pragma once
#include <array>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "tensor.hpp"
#include "xtensor.hpp"

namespace th {

// ---- placeholders (symbolic inputs) ----------------------------------------------------------
/// A symbolic input of `dtype` and rank `ndim`; its sizes are fixed only when a function runs.
/// Theano's shorthands make them too: th::scalar, vector, matrix, tensor3, tensor4 (floatX)
/// and the same names prefixed with d (float64), f (float32), i (int32) and l (int64), as
/// th::dmatrix("x").
Tensor placeholder(DType dtype, std::int64_t ndim, std::string name = "");
#define THETA_PLACEHOLDERS(prefix, dtype_expr)                                                     \
  inline Tensor prefix##scalar(std::string name = "") { return placeholder(dtype_expr, 0, std::move(name)); } \
  inline Tensor prefix##vector(std::string name = "") { return placeholder(dtype_expr, 1, std::move(name)); } \
  inline Tensor prefix##matrix(std::string name = "") { return placeholder(dtype_expr, 2, std::move(name)); } \
  inline Tensor prefix##tensor3(std::string name = "") { return placeholder(dtype_expr, 3, std::move(name)); } \
  inline Tensor prefix##tensor4(std::string name = "") { return placeholder(dtype_expr, 4, std::move(name)); }
THETA_PLACEHOLDERS(, floatX())
THETA_PLACEHOLDERS(d, DType::float64)
THETA_PLACEHOLDERS(f, DType::float32)
THETA_PLACEHOLDERS(i, DType::int32)
THETA_PLACEHOLDERS(l, DType::int64)
#undef THETA_PLACEHOLDERS

// ---- shared variables -------------------------------------------------------------------------
/// A named, persistent value that expressions and functions read; always recorded.
class Shared : public Tensor {
 public:
  Shared() = default;
  /// The tensor of a shared variable (th::shared makes them).
  explicit Shared(Tensor t) : Tensor(std::move(t)) {}
  /// A copy of the current value.
  Tensor get_value() const;
  /// Replaces the value (same dtype and rank, else th::TypeError).
  void set_value(const Tensor& value);
};
/// A shared variable holding `value` (copied from the caller's tensor).
Shared shared(const Tensor& value, std::string name = "");

// ---- functions --------------------------------------------------------------------------------
/// How a function is frozen and run.
struct Options {
  Mode mode = Mode::fast;             ///< fast, or checking every step for NaN/Inf (at least th::config().mode)
  bool allow_input_downcast = false;  ///< accept arguments that lose precision (float64 for a float32 input)
};
/// (shared variable, its new value): all computed from the values before the call, then applied.
using Updates = std::vector<std::pair<Shared, Tensor>>;

/// What a call returns: a sequence of tensors; converts to one Tensor when the function was
/// made with a single output (not a list).
class Result {
 public:
  /// The outputs `values`; `single`: the function was made with one output.
  Result(std::vector<Tensor> values, bool single);
  /// The n tensors first[0], ..., first[n - 1] (up to four kept inline: no heap allocation).
  Result(const Tensor* first, std::size_t n, bool single);
  /// The number of outputs.
  std::size_t size() const { return n_; }
  /// The i-th output (std::out_of_range past the end).
  const Tensor& operator[](std::size_t i) const;
  /// The outputs, for range-for.
  ///@{
  const Tensor* begin() const { return n_ <= kInline ? few_.data() : many_.data(); }
  const Tensor* end() const { return begin() + n_; }
  ///@}
  /// The single output (th::ValueError for a function made with a list of outputs).
  operator Tensor() const;
  /// The single output's one value (Tensor::item).
  template <class T = double>
  T item() const {
    return Tensor(*this).item<T>();
  }
  /// The single output's values (Tensor::to_vector).
  template <class T = double>
  std::vector<T> to_vector() const {
    return Tensor(*this).to_vector<T>();
  }
  /// Whether the function was made with one output (not a list).
  bool single() const { return single_; }

 private:
  static constexpr std::size_t kInline = 4;
  std::array<Tensor, kInline> few_;  // the outputs when there are at most kInline
  std::vector<Tensor> many_;         // else here
  std::size_t n_ = 0;
  bool single_;
};
/// Prints the outputs (one, or a list).
std::ostream& operator<<(std::ostream& os, const Result& r);

namespace detail {
struct Program;
template <class A>
Tensor to_argument(const A& a) {
  if constexpr (std::is_base_of_v<Tensor, A>) return a;
  else if constexpr (std::is_same_v<A, bool>) return tensor(a ? 1.0 : 0.0, DType::boolean);
  else if constexpr (std::is_arithmetic_v<A>) return tensor(static_cast<double>(a), dtype_of<A>());
  else static_assert(std::is_arithmetic_v<A>, "theta: a function argument must be a Tensor, a number, "
                                               "a std::vector<T> or an xt::xarray<T>");
}
template <class T>
Tensor to_argument(const std::vector<T>& v) {
  return tensor(v, Shape{std::int64_t(v.size())});
}
template <class T>
Tensor to_argument(const xt::xarray<T>& a) {
  return tensor(a);
}
/// A call's argument as a Tensor: a Tensor itself (by reference), anything else converted.
inline const Tensor& as_argument(const Tensor& t) { return t; }
template <class A>
Tensor as_argument(const A& a) {
  return to_argument(a);
}
}  // namespace detail

/// A frozen, reusable, optimized function (cheap to copy; immutable).
class Function {
 public:
  /// A function over a frozen program (th::function and th::load_function make them).
  explicit Function(std::shared_ptr<detail::Program> p) : p_(std::move(p)) {}
  /// Calls with one argument per input: Tensors, C++ numbers, std::vector<T>, xt::xarray<T>.
  template <class... A>
  Result operator()(const A&... args) const {
    return call_with(detail::as_argument(args)...);
  }
  /// Calls with arguments counted at run time.
  Result call(const std::vector<Tensor>& args) const;
  /// Time per operation over the calls so far, most expensive first.
  std::string profile() const;
  /// The shared variables the function reads or updates (its weights, optimizer state and
  /// random streams), in the order it first meets them; the handles themselves, so
  /// set_value on one changes what the function sees.
  std::vector<Shared> shared_variables() const;
  /// The frozen program (internal: debugprint, to_dot, th::save read it).
  const std::shared_ptr<detail::Program>& program() const { return p_; }

 private:
  /// Calls with the n arguments *args[0], ..., *args[n - 1].
  Result call(const Tensor* const* args, std::size_t n) const;
  template <class... T>
  Result call_with(const T&... args) const {  // the Tensors by address: no copy, no heap vector
    const std::array<const Tensor*, sizeof...(T)> a{&args...};
    return call(a.data(), a.size());
  }
  std::shared_ptr<detail::Program> p_;
};

/// Freezes the recorded graph from `inputs` (placeholders) to the outputs, with `updates`
/// of shared variables applied after each call (all computed from the values before it):
/// Theano's theano.function. One output gives a Result that converts to a Tensor; a list
/// gives a list.
///@{
Function function(const std::vector<Tensor>& inputs, const Tensor& output, const Updates& updates = {},
                  const Options& options = {});
Function function(const std::vector<Tensor>& inputs, std::initializer_list<Tensor> outputs,
                  const Updates& updates = {}, const Options& options = {});
Function function(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                  const Updates& updates = {}, const Options& options = {});
///@}

/// Freezes `f` by calling it once on the placeholders.
template <class F, class... P>
Function trace(F&& f, const P&... placeholders) {
  return function(std::vector<Tensor>{placeholders...}, f(placeholders...));
}

/// Readable text of the graph of a tensor or of a function (a function's: its optimized
/// steps, the memory plan, the rewrites that fired, and which fused steps run natively).
///@{
std::string debugprint(const Tensor& t);
std::string debugprint(const Function& f);
///@}
/// Graphviz (dot) text of the graph.
///@{
std::string to_dot(const Tensor& t);
std::string to_dot(const Function& f);
///@}

}  // namespace th
