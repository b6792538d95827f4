// th::Tensor, the cheap shared handle to a concrete or symbolic value, and the
// functions that create tensors. Operations live in ops.hpp, gradients in autodiff.hpp.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "device.hpp"
#include "dtype.hpp"

namespace th {

namespace detail {
struct Node;
}

/// A handle (shared ownership) to a tensor. A tensor is concrete (it holds a value)
/// or symbolic (it depends on a placeholder and knows only its dtype and rank).
/// Operations on a recorded tensor (variable, shared, placeholder) record onto the tape.
class Tensor {
 public:
  /// An empty handle; any use other than assignment throws th::ValueError.
  Tensor() = default;
  /// A handle to a graph node (internal: operations make tensors).
  explicit Tensor(std::shared_ptr<detail::Node> node) : node_(std::move(node)) {}

  /// Shape of a concrete tensor; th::ValueError on a symbolic one.
  Shape shape() const;
  /// Number of dimensions (known for symbolic tensors too).
  std::int64_t ndim() const;
  /// Number of elements; th::ValueError on a symbolic tensor.
  std::int64_t size() const;
  /// Element type (known for symbolic tensors too).
  DType dtype() const;
  /// Where the value lives (a symbolic tensor: the default Device).
  Device device() const;
  /// The user's name ("" when unnamed).
  const std::string& name() const;
  /// True when the tensor depends on a placeholder (it has no value until a function runs).
  bool is_symbolic() const;
  /// True when operations on this tensor are recorded for th::grad.
  bool is_recorded() const;

  /// The single element, converted to T; th::ValueError when size() != 1.
  template <class T = double>
  T item() const {
    T v{};
    if constexpr (std::is_same_v<T, bool>) {
      unsigned char b = 0;
      copy_to_(&b, DType::boolean, 1, "item");
      v = b != 0;
    } else {
      copy_to_(&v, dtype_of<T>(), 1, "item");
    }
    return v;
  }
  /// Row-major copy of the values, converted to T (std::string: a string tensor's text, or
  /// numbers as text; numbers from a string tensor are read from its text).
  template <class T = double>
  std::vector<T> to_vector() const {
    if constexpr (std::is_same_v<T, std::string>) {
      return to_strings_();
    } else if constexpr (std::is_same_v<T, bool>) {
      std::vector<unsigned char> b(static_cast<std::size_t>(size()));
      copy_to_(b.data(), DType::boolean, b.size(), "to_vector");
      return std::vector<bool>(b.begin(), b.end());
    } else {
      std::vector<T> v(static_cast<std::size_t>(size()));
      copy_to_(v.data(), dtype_of<T>(), v.size(), "to_vector");
      return v;
    }
  }
  /// Copy into an xt::xarray<T> (defined in <theta/xtensor.hpp>, included by theta.hpp).
  template <class T = double>
  auto to_xarray() const;

  /// A copy on `device` (shares the value when it is already there).
  Tensor to(Device device) const;
  /// Conversion to `dtype` (recorded; gradients flow back for float targets).
  Tensor astype(DType dtype) const;
  /// Marks this concrete tensor for recording (in place) and returns it.
  Tensor& requires_grad(bool on = true);
  /// Sets the user's name, used in errors and graph printing; returns *this.
  Tensor& set_name(std::string name);

  /// numpy's a.dot(b).
  Tensor dot(const Tensor& other) const;
  /// Transpose (reverses the axes).
  Tensor T() const;

  /// The graph node (internal).
  const std::shared_ptr<detail::Node>& node() const { return node_; }
  /// False for an empty handle.
  explicit operator bool() const { return node_ != nullptr; }

 private:
  void copy_to_(void* dst, DType dst_type, std::size_t n, const char* what) const;
  std::vector<std::string> to_strings_() const;
  std::shared_ptr<detail::Node> node_;
};

/// Prints like numpy (values of a concrete tensor; a description of a symbolic one).
std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- creation ------------------------------------------------------------------------------
namespace detail {
Tensor scalar_tensor(double value, std::optional<DType> dtype);
}  // namespace detail
/// A 0-d tensor of any number (floatX unless `dtype` is given): `th::tensor(1.5)`. A template
/// over arithmetic types rather than a `double` parameter so that a one-number list,
/// `th::tensor({1.5})`, is a 1-d tensor with every compiler (clang ranks a plain `double`
/// above the list overload for it, gcc the list).
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
Tensor tensor(T value, std::optional<DType> dtype = std::nullopt) {
  return detail::scalar_tensor(static_cast<double>(value), dtype);
}
/// One number of a 1-d list literal. NOTE: a wrapper (not plain double) so that a column
/// literal such as {{1}, {2}} reads as 2-d rather than as a 1-d list.
struct ListValue {
  double v;  ///< the number
  /// Any number of a list literal.
  ListValue(double x) : v(x) {}
};
/// A 1-d tensor from a list.
Tensor tensor(std::initializer_list<ListValue> values, std::optional<DType> dtype = std::nullopt);
/// A 2-d tensor from nested lists (rows must have equal length).
Tensor tensor(std::initializer_list<std::initializer_list<double>> values,
              std::optional<DType> dtype = std::nullopt);
/// A 3-d tensor from nested lists.
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> values,
              std::optional<DType> dtype = std::nullopt);
/// A tensor from raw bytes of `dtype` laid out row-major with `shape` (copied).
Tensor tensor_from_data(const void* data, DType dtype, Shape shape);
/// A string tensor (DType::string, host-only) from row-major text and a shape.
Tensor tensor(const std::vector<std::string>& data, Shape shape);
/// A tensor from row-major data and a shape; dtype from T unless given.
template <class T>
Tensor tensor(const std::vector<T>& data, Shape shape, std::optional<DType> dtype = std::nullopt) {
  Tensor t;
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<unsigned char> b(data.begin(), data.end());
    t = tensor_from_data(b.data(), DType::boolean, std::move(shape));
  } else {
    t = tensor_from_data(data.data(), dtype_of<T>(), std::move(shape));
  }
  return dtype && *dtype != t.dtype() ? t.astype(*dtype) : t;
}

/// A tensor of `shape` filled with 0, with 1, or with `value` (floatX unless `dtype` is given).
///@{
Tensor zeros(const Shape& shape, std::optional<DType> dtype = std::nullopt);
Tensor ones(const Shape& shape, std::optional<DType> dtype = std::nullopt);
Tensor full(const Shape& shape, double value, std::optional<DType> dtype = std::nullopt);
///@}
/// [0, stop): int64 when the bound is integral, floatX otherwise (as numpy).
Tensor arange(double stop, std::optional<DType> dtype = std::nullopt);
/// [start, stop) by step: int64 when all three are integral, floatX otherwise.
Tensor arange(double start, double stop, double step = 1, std::optional<DType> dtype = std::nullopt);
/// n evenly spaced values from a to b inclusive.
Tensor linspace(double a, double b, std::int64_t n, std::optional<DType> dtype = std::nullopt);
/// The n x n identity.
Tensor eye(std::int64_t n, std::optional<DType> dtype = std::nullopt);

namespace random {
/// Standard normal samples; the same seed gives the same values.
Tensor normal(const Shape& shape, std::uint64_t seed = 0, std::optional<DType> dtype = std::nullopt);
/// Uniform samples in [lo, hi).
Tensor uniform(const Shape& shape, double lo = 0, double hi = 1, std::uint64_t seed = 0,
               std::optional<DType> dtype = std::nullopt);
}  // namespace random

/// A recorded leaf that shares `t`'s value: operations on it record onto the tape.
Tensor variable(const Tensor& t, std::string name = "");

}  // namespace th
