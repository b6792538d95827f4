// In-memory .npy/.npz parsing behind load_npy/load_npz (the fuzzers call these directly).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/storage.hpp"
#include "theta/tensor.hpp"

namespace th::detail {

/// Parses the bytes of a .npy file; `where` names it in errors. Bad input: th::IOError.
Tensor parse_npy(std::string_view bytes, const std::string& where);
/// Parses the bytes of an uncompressed .npz archive; `path` names it in errors.
std::map<std::string, Tensor> parse_npz(std::string_view bytes, const std::string& path);
/// One entry of a zip archive being written: `head`, then `size` bytes at `data` (a .npy
/// header and a tensor's elements, written from where they are).
struct ZipEntry {
  std::string name, head;
  const char* data = nullptr;
  std::size_t size = 0;
};
/// An uncompressed zip archive of the entries, as numpy.savez writes them; `what` names the
/// caller in errors (th::IOError past zip32's limits).
std::string zip_bytes(const std::vector<ZipEntry>& entries, const char* what);
/// The same written to `path`, streamed (no copy of the entries), through a temporary
/// beside it renamed over the target (a failed write leaves an existing file as it was).
void zip_write(const std::string& path, const std::vector<ZipEntry>& entries, const char* what);
/// The entries of an uncompressed zip archive, in order, each checked against its CRC
/// (views into `bytes`); truncated, corrupt or compressed archives are th::IOError naming
/// `what` and `path`. (verify = false skips the checksums: the fuzzer's way past them.)
std::vector<std::pair<std::string, std::string_view>> zip_entries(std::string_view bytes, const std::string& path,
                                                                  const char* what, bool verify = true);
/// A .npy header (format 1.0) for a C-order array of `dtype` and `shape`.
std::string npy_header(DType dtype, const Shape& shape);
/// A whole file's bytes (th::IOError naming `what` when it cannot be read).
std::string read_bytes(const std::string& path, const char* what);
/// The zip entry of `s` as a .npy file named `name`: its header, then its elements, read
/// from a contiguous host copy (`s` itself where it is one) that `keep` holds for the write.
ZipEntry npy_entry(std::string name, const Storage& s, std::deque<Storage>& keep);
/// The zip/PNG CRC-32 of `bytes` (continuing from `crc`, the CRC of the bytes before).
std::uint32_t crc32(std::string_view bytes, std::uint32_t crc = 0);

}  // namespace th::detail
