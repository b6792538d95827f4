// Fuzzes idx parsing (plain and gzip): any bytes either parse into a tensor whose size
// matches its shape or throw th::IOError; nothing else (crash, other exception, huge
// allocation) is allowed.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <theta/theta.hpp>

#include "io/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    th::Tensor t = th::detail::parse_idx(bytes, "fuzz");
    std::int64_t n = 1;
    for (auto d : t.shape()) n *= d;
    if (n != t.size()) std::abort();
    if (t.size() > 0 && t.size() < 64) (void)th::sum(th::cast(t, th::DType::float64)).item<double>();
  } catch (const th::IOError&) {
  }
  return 0;
}
