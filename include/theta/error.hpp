// theta's exception hierarchy. Messages read "<op>: <what>: <shapes/dtypes> [<names>]".
#pragma once
#include <stdexcept>
#include <string>

namespace th {

/// Base of every theta error.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Shapes that do not fit the operation (broadcasting, dot, reshape, axes).
struct ShapeError : Error { using Error::Error; };
/// Wrong dtype or rank, or a conversion that would lose precision.
struct TypeError : Error { using Error::Error; };
/// A bad value: symbolic read, non-scalar cost, out-of-range index.
struct ValueError : Error { using Error::Error; };
/// Tensors on different devices, or a device that is not available.
struct DeviceError : Error { using Error::Error; };
/// File input/output.
struct IOError : Error { using Error::Error; };

}  // namespace th
