// Global settings, like Theano's flags: THETA_FLAGS="floatX=float32,mode=nan_guard" in the
// environment (read once, at first use) or th::config() in code.
#pragma once
#include "device.hpp"
#include "dtype.hpp"

namespace th {

/// How frozen functions run: fast, or checking every step for NaN/Inf (nan_guard, debug).
enum class Mode { fast, nan_guard, debug };

struct Config {
  DType floatX = DType::float64;  ///< default float type of lists, placeholders without prefix
  Device device = cpu();          ///< where new tensors live (cuda needs the CUDA backend)
  Mode mode = Mode::fast;         ///< the mode of every function (at least this strict)
};

/// The settings, initialised from THETA_FLAGS on first use (th::ValueError on a bad flag).
Config& config();

}  // namespace th
