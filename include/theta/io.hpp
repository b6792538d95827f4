// numpy-compatible files: .npy (one array) and .npz (a zip of named .npy arrays).
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "function.hpp"
#include "tensor.hpp"

namespace th {

/// Writes `t` as a .npy file (format 1.0, little-endian, C order).
void save_npy(const std::string& path, const Tensor& t);
/// Reads a .npy file (bool, int32, int64, float32, float64; C or Fortran order).
/// A truncated, corrupt or oversized file throws th::IOError.
Tensor load_npy(const std::string& path);
/// Writes named tensors as an uncompressed .npz (as numpy.savez).
void save_npz(const std::string& path, const std::map<std::string, Tensor>& named);
/// Reads an .npz written by numpy.savez or save_npz (compressed archives: th::IOError).
std::map<std::string, Tensor> load_npz(const std::string& path);
/// Reads an idx file (the MNIST family's format), gzip-compressed or not: integer values
/// as int64, float values as float32/float64. A truncated, corrupt or oversized file
/// throws th::IOError.
Tensor load_idx(const std::string& path);

/// A checkpoint: the shared variables' current values as an .npz, one entry per name
/// (names must be set and unique; list the optimizer's state and the random streams' too,
/// e.g. f.shared_variables(), to resume training exactly).
void save_params(const std::string& path, const std::vector<Shared>& params);
/// Sets each listed shared variable to the checkpoint's entry of its name. Every entry is
/// checked (present, same dtype, rank and shape) before any value is replaced: a bad
/// checkpoint throws th::IOError / th::TypeError / th::ShapeError (naming the entry and both
/// shapes) and changes nothing. Entries not listed are ignored. `allow_new_shapes` accepts an
/// entry of another shape (same dtype and rank) on purpose, as Shared::set_value does.
void load_params(const std::string& path, const std::vector<Shared>& params, bool allow_new_shapes = false);

/// Writes a frozen function to one file (API.md section 14; the format: docs/format.md): its
/// optimized program, its constants, and its shared variables' current values under their
/// names. Written beside `path` and renamed over it (a failed save leaves the old file).
void save(const std::string& path, const Function& f);
/// Reads a function th::save wrote, in any program that links theta: it runs bit for bit as
/// the original did on the same machine, and its shared variables (new ones, holding the
/// saved values: f.shared_variables()) go on training where the original stopped. A
/// truncated, corrupt or hostile file, or one from a newer format, is a th::IOError.
Function load_function(const std::string& path);
namespace detail {
/// load_function on a file's bytes (`where` names it in errors). The fuzzer calls it with
/// verify = false, which skips the entries' checksums so that its edits reach the program.
Function load_function_bytes(std::string_view bytes, const std::string& where, bool verify = true);
}  // namespace detail

}  // namespace th
