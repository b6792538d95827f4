// th::config(): defaults, overridden by THETA_FLAGS="key=value,..." on first use.
#include <cstdlib>
#include <sstream>

#include "theta/config.hpp"
#include "theta/error.hpp"

namespace th {

namespace {

Config from_flags(const char* flags) {
  Config c;
  if (!flags) return c;
  std::stringstream ss(flags);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "floatX" && (value == "float32" || value == "float64")) {
      c.floatX = value == "float32" ? DType::float32 : DType::float64;
    } else if (key == "device" && value == "cpu") {
      c.device = cpu();
    } else if (key == "device" && value.rfind("cuda", 0) == 0) {
      int index = value.size() > 5 && value[4] == ':' ? std::atoi(value.c_str() + 5) : 0;
      if (!cuda_available())
        throw DeviceError("THETA_FLAGS: device=" + value + " asked for, but no CUDA device is available");
      c.device = cuda(index);
    } else if (key == "mode" && (value == "fast" || value == "nan_guard" || value == "debug")) {
      c.mode = value == "fast" ? Mode::fast : value == "nan_guard" ? Mode::nan_guard : Mode::debug;
    } else if (key == "native" && (value == "off" || value == "async" || value == "sync")) {
      c.native = value == "off" ? NativeMode::off : value == "async" ? NativeMode::async : NativeMode::sync;
    } else if (key == "conv" && (value == "auto" || value == "dnnl" || value == "theta")) {
      c.conv = value == "auto" ? ConvEngine::automatic : value == "dnnl" ? ConvEngine::dnnl : ConvEngine::theta;
    } else if (key == "gemm" && (value == "auto" || value == "dnnl" || value == "blas")) {
      c.gemm = value == "auto" ? GemmEngine::automatic : value == "dnnl" ? GemmEngine::dnnl : GemmEngine::blas;
    } else if (key == "winograd" && (value == "on" || value == "off")) {
      c.winograd = value == "on";
    } else {
      throw ValueError("THETA_FLAGS: unknown flag or value '" + item +
                       "' (known: floatX=float32|float64, device=cpu|cuda[:N], mode=fast|nan_guard|debug, "
                       "native=off|async|sync, conv=auto|dnnl|theta, gemm=auto|dnnl|blas, winograd=on|off)");
    }
  }
  return c;
}

}  // namespace

Config& config() {
  static Config c = from_flags(std::getenv("THETA_FLAGS"));
  return c;
}

}  // namespace th
