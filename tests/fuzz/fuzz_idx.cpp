// Fuzzes idx parsing (plain and gzip): any bytes either parse into a tensor whose size
// matches its shape or throw th::IOError; nothing else (crash, other exception, huge
// allocation) is allowed.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <theta/theta.hpp>

#include "io/idx.hpp"
#include "parsed.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    fuzz::check_parsed(th::detail::parse_idx(bytes, "fuzz"));
  } catch (const th::IOError&) {
  }
  return 0;
}
