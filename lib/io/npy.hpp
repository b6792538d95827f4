// In-memory .npy/.npz parsing behind load_npy/load_npz (the fuzzers call these directly).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "theta/tensor.hpp"

namespace th::detail {

/// Parses the bytes of a .npy file; `where` names it in errors. Bad input: th::IOError.
Tensor parse_npy(const std::string& bytes, const std::string& where);
/// Parses the bytes of an uncompressed .npz archive; `path` names it in errors.
std::map<std::string, Tensor> parse_npz(const std::string& bytes, const std::string& path);
/// An uncompressed zip archive of (name, bytes) entries, as numpy.savez writes them; `what`
/// names the caller in errors (th::IOError past zip32's limits).
std::string zip_bytes(const std::vector<std::pair<std::string, std::string>>& entries, const char* what);
/// The entries of an uncompressed zip archive, in order, each checked against its CRC;
/// truncated, corrupt or compressed archives are th::IOError naming `what` and `path`.
std::vector<std::pair<std::string, std::string>> zip_entries(const std::string& bytes, const std::string& path,
                                                             const char* what);
/// A whole file's bytes (th::IOError naming `what` when it cannot be read).
std::string read_bytes(const std::string& path, const char* what);
/// Writes a whole file, through a temporary beside it renamed over the target (a failed
/// write leaves an existing file as it was).
void write_bytes(const std::string& path, const std::string& bytes, const char* what);
/// The bytes of `t` as a .npy file.
std::string npy_bytes(const Tensor& t);
/// The zip/PNG CRC-32 of `bytes`.
std::uint32_t crc32(const std::string& bytes);

}  // namespace th::detail
