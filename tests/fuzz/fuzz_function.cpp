// Fuzzes th::load_function's reading of a saved function (zip entries, function.json, the
// .npy arrays, the program's checks): any bytes either load into a function or throw
// th::IOError; nothing else (crash, other exception, huge allocation) is allowed. The seed
// corpus holds real saved functions (a predictor, a training step with Adam, a scan, an
// ifelse), written by th::save.
#include <cstdint>
#include <string>

#include <theta/theta.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    th::detail::load_function_bytes(bytes, "fuzz", /*verify=*/false);  // (checksums would stop most edits)
  } catch (const th::IOError&) {
  }
  return 0;
}
