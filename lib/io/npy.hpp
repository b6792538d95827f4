// In-memory .npy/.npz parsing behind load_npy/load_npz (the fuzzers call these directly).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "theta/tensor.hpp"

namespace th::detail {

/// Parses the bytes of a .npy file; `where` names it in errors. Bad input: th::IOError.
Tensor parse_npy(const std::string& bytes, const std::string& where);
/// Parses the bytes of an uncompressed .npz archive; `path` names it in errors.
std::map<std::string, Tensor> parse_npz(const std::string& bytes, const std::string& path);
/// The zip/PNG CRC-32 of `bytes`.
std::uint32_t crc32(const std::string& bytes);

}  // namespace th::detail
