// Element types, shapes and numpy's type promotion.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <type_traits>
#include <vector>

namespace th {

/// Element type of a tensor. Ordered by numpy's promotion lattice; `string` (text, as ONNX's
/// string tensors) stands outside it: host-only, made by th::tensor(std::vector<std::string>,
/// shape) and read by to_vector<std::string>(), taken only by the operations on text (astype
/// to and from numbers, th::onnx's StringNormalizer); any other operation is a th::TypeError.
enum class DType : std::uint8_t { boolean, int32, int64, float32, float64, string };

/// A tensor's shape, numpy style (row-major).
using Shape = std::vector<std::int64_t>;

/// The default float type (float64 unless configured with THETA_FLAGS=floatX=float32).
DType floatX();

/// Sets the default float type (float32 or float64).
void set_floatX(DType dtype);

/// "float64", "int32", ...
const char* dtype_name(DType dtype);
/// Size of one element in bytes.
std::size_t dtype_size(DType dtype);
/// float32 or float64.
bool is_floating(DType dtype);
/// numpy's result_type for two arrays (int32 + float32 -> float64, as numpy).
DType promote_types(DType a, DType b);
/// "(125, 4)"; unknown (symbolic) dimensions print as "?".
std::string shape_str(const Shape& shape);
/// Prints dtype_name().
std::ostream& operator<<(std::ostream& os, DType dtype);

/// The DType of a C++ element type.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, bool>) return DType::boolean;
  else if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? DType::float32 : DType::float64;
  else {
    static_assert(std::is_integral_v<T>, "theta: element type must be arithmetic");
    return (sizeof(T) <= 4 && std::is_signed_v<T>) ? DType::int32 : DType::int64;
  }
}

}  // namespace th
