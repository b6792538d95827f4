// Random streams inside graphs (API.md section 10): counter-based Philox-4x32-10 draws that
// are the same for a seed on any number of threads, eager or frozen; and th::dropout.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "function.hpp"
#include "tensor.hpp"

namespace th {

/// A tensor or a C++ number: a draw's parameters, a learning rate.
class TensorOrNumber {
 public:
  /// A number.
  ///@{
  TensorOrNumber(double v) : number_(v) {}
  TensorOrNumber(int v) : number_(v) {}
  TensorOrNumber(std::int64_t v) : number_(double(v)) {}
  ///@}
  /// A tensor (symbolic or concrete).
  TensorOrNumber(const Tensor& t) : tensor_(t) {}
  /// Whether it holds a tensor (else a number).
  bool is_tensor() const { return bool(tensor_); }
  /// The number (when not a tensor).
  double number() const { return number_; }
  /// The tensor (when is_tensor()).
  const Tensor& tensor() const { return tensor_; }

 private:
  double number_ = 0;
  Tensor tensor_;
};

/// A shape given as a th::Shape, a braced list, or an int64 vector tensor (th::shape_of(x),
/// symbolic when x is).
class ShapeArg {
 public:
  /// The 0-d shape.
  ShapeArg() : fixed_(Shape{}) {}
  /// A shape known now.
  ///@{
  ShapeArg(const Shape& s) : fixed_(s) {}
  ShapeArg(std::initializer_list<std::int64_t> s) : fixed_(Shape(s)) {}
  ///@}
  /// A shape computed by the graph (an int64 vector tensor).
  ShapeArg(const Tensor& shape) : tensor_(shape) {}
  /// The shape when known now.
  const std::optional<Shape>& fixed() const { return fixed_; }
  /// The shape tensor, when not known now.
  const Tensor& tensor() const { return tensor_; }

 private:
  std::optional<Shape> fixed_;
  Tensor tensor_;
};

/// Theano's RandomStreams. Eager, a draw happens now; recorded into a frozen function, it
/// draws new numbers on every call: the stream's state (the shared variable state(), an
/// int64 pair: seed and call counter) advances with the function's other updates, so a call
/// that throws advances nothing. Each draw made from the stream is its own Philox key, so
/// draws never repeat one another; the numbers depend only on the seed, the order in which
/// the draws were made and the counter, not on threads or devices.
class RandomStreams {
 public:
  /// `name` names the state ("<name>.state"): give streams distinct names to checkpoint several.
  explicit RandomStreams(std::uint64_t seed = 0, const std::string& name = "srng");
  /// U[low, high) of floatX (or dtype).
  Tensor uniform(const ShapeArg& shape, const TensorOrNumber& low = 0.0, const TensorOrNumber& high = 1.0,
                 std::optional<DType> dtype = std::nullopt);
  /// N(mean, stddev^2) of floatX (or dtype), by Box-Muller.
  Tensor normal(const ShapeArg& shape, const TensorOrNumber& mean = 0.0, const TensorOrNumber& stddev = 1.0,
                std::optional<DType> dtype = std::nullopt);
  /// Successes in n trials of probability p.
  Tensor binomial(const ShapeArg& shape, std::int64_t n = 1, const TensorOrNumber& p = 0.5,
                  DType dtype = DType::int64);
  /// Integers uniform in [low, high), int64.
  Tensor integers(const ShapeArg& shape, std::int64_t low, std::int64_t high);
  /// A random order of 0 .. n-1, int64.
  Tensor permutation(std::int64_t n);
  /// Restarts the stream (and every function drawing from it) from seed s.
  void seed(std::uint64_t s);
  /// The stream's state: [seed, calls], named "<name>.state" (checkpoint it with the weights).
  Shared state() const;

  struct Impl;

 private:
  friend Tensor dropout(const Tensor& x, const TensorOrNumber& p, RandomStreams& srng);
  std::shared_ptr<Impl> impl_;
};

/// Inverted dropout: x * mask / (1 - p), the mask keeping each element with probability
/// 1 - p (p in [0, 1]; p = 0 returns x).
Tensor dropout(const Tensor& x, const TensorOrNumber& p, RandomStreams& srng);

}  // namespace th
