// Fuzzes th::onnx::load: any bytes either load into a graph or throw a th::Error (th::IOError
// for what is not a readable model); nothing else (crash, other exception, huge allocation).
// Without th::onnx (a build without libonnx-dev) it checks nothing.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <theta/theta.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
#ifdef THETA_HAS_ONNX
  static const std::string path = "/tmp/theta_fuzz_onnx_" + std::to_string(::getpid()) + ".onnx";
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  try {
    const th::onnx::Model m = th::onnx::load(path);
    (void)m;
  } catch (const th::Error&) {
  }
#else
  (void)data, (void)size;
#endif
  return 0;
}
