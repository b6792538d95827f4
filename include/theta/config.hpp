// Global settings, like Theano's flags: THETA_FLAGS="floatX=float32,mode=nan_guard" in the
// environment (read once, at first use) or th::config() in code.
#pragma once
#include "device.hpp"
#include "dtype.hpp"

namespace th {

/// How frozen functions run: fast, or checking every step for NaN/Inf (nan_guard, debug).
enum class Mode { fast, nan_guard, debug };

/// The native tier of frozen functions (docs/native.md): fused elementwise chains compiled to
/// machine code by the system's C++ compiler and cached on disk. off: interpret only;
/// async: compile a chain in the background once it has run enough, interpreting meanwhile;
/// sync: compile (or load from the cache) on its first call (benchmarks, tests).
enum class NativeMode { off, async, sync };

/// The engine of float32 convolutions on the CPU (docs/design.md, "Convolutions"): automatic
/// (oneDNN where theta was built with it and it takes the geometry, else theta's own
/// im2col + GEMM kernels), dnnl (oneDNN wherever it takes the geometry) or theta (theta's own
/// kernels always). float64 always runs theta's kernels.
enum class ConvEngine { automatic, dnnl, theta };

/// The engine of float32 matrix products on the CPU (docs/design.md, "Matrix products"):
/// automatic (oneDNN's sgemm where theta was built with it, for products of at least 32^3
/// multiply-adds; OpenBLAS below), dnnl (oneDNN's sgemm always) or blas (OpenBLAS always).
/// float64 always runs OpenBLAS.
enum class GemmEngine { automatic, dnnl, blas };

/// Global settings (th::config()).
struct Config {
  DType floatX = DType::float64;  ///< default float type of lists, placeholders without prefix
  Device device = cpu();          ///< where new tensors live (cuda needs the CUDA backend)
  Mode mode = Mode::fast;         ///< the mode of every function (at least this strict)
  NativeMode native = NativeMode::async;  ///< the native tier (THETA_FLAGS native=off|async|sync)
  ConvEngine conv = ConvEngine::automatic;  ///< float32 convolutions (THETA_FLAGS conv=auto|dnnl|theta)
  GemmEngine gemm = GemmEngine::automatic;  ///< float32 matrix products (THETA_FLAGS gemm=auto|dnnl|blas)
  /// oneDNN may run a float32 3x3 stride-1 convolution by Winograd's algorithm where its
  /// rule finds that faster (docs/design.md, "Convolutions"): fewer multiplications, a few
  /// times the rounding error of the direct algorithm (relative ~1e-6). false: the direct
  /// algorithm always, as libtorch (THETA_FLAGS winograd=on|off).
  bool winograd = true;
};

/// The settings, initialised from THETA_FLAGS on first use (th::ValueError on a bad flag).
Config& config();

}  // namespace th
