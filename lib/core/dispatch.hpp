// Type dispatch for kernels, shared by the CPU and CUDA backends (no other dependency, so
// .cu files can include it).
#pragma once
#include <cstdint>

#include "theta/dtype.hpp"
#include "theta/error.hpp"

/// Runs `__VA_ARGS__` with `T` bound to the C++ type of `dtype`: NUMERIC covers the
/// four number types, ALL adds bool; neither takes string tensors (core/text.hpp has their
/// kernels).
#define THETA_DISPATCH_NUMERIC(dtype, T, ...)                              \
  switch (dtype) {                                                         \
    case ::th::DType::int32: { using T = std::int32_t; __VA_ARGS__; break; } \
    case ::th::DType::int64: { using T = std::int64_t; __VA_ARGS__; break; } \
    case ::th::DType::float32: { using T = float; __VA_ARGS__; break; }      \
    case ::th::DType::float64: { using T = double; __VA_ARGS__; break; }     \
    default: throw ::th::TypeError("internal: unsupported dtype in kernel"); \
  }
/// FLOAT: float32 or float64 (the LAPACK, convolution and random kernels).
#define THETA_DISPATCH_FLOAT(dtype, T, ...)                                  \
  switch (dtype) {                                                         \
    case ::th::DType::float32: { using T = float; __VA_ARGS__; break; }      \
    case ::th::DType::float64: { using T = double; __VA_ARGS__; break; }     \
    default: throw ::th::TypeError("internal: a float kernel got another dtype"); \
  }
#define THETA_DISPATCH_ALL(dtype, T, ...)                                  \
  switch (dtype) {                                                         \
    case ::th::DType::boolean: { using T = bool; __VA_ARGS__; break; }     \
    case ::th::DType::int32: { using T = std::int32_t; __VA_ARGS__; break; } \
    case ::th::DType::int64: { using T = std::int64_t; __VA_ARGS__; break; } \
    case ::th::DType::float32: { using T = float; __VA_ARGS__; break; }      \
    case ::th::DType::float64: { using T = double; __VA_ARGS__; break; }     \
    default: throw ::th::TypeError("internal: a numeric kernel got a string tensor"); \
  }
