// In-memory idx parsing behind load_idx (the fuzzer calls it directly).
#pragma once
#include <string>

#include "theta/tensor.hpp"

namespace th::detail {

/// Parses the bytes of an idx file, gzip-compressed or not; `where` names it in errors.
/// Bad input: th::IOError. Decompression stops at the size the header claims, so no
/// allocation outgrows what the input really holds.
Tensor parse_idx(const std::string& bytes, const std::string& where);

}  // namespace th::detail
