// th::onnx::load (API.md section 17): an ONNX ModelProto, parsed by Debian's libonnx (its
// generated protobuf classes), becomes theta's graph: the graph's inputs placeholders, its
// initializers shared variables, each node theta's operations (lib/onnx/ops.cpp). Hostile
// files end in th::IOError before anything is allocated from their sizes.
#include "onnx/import.hpp"

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/node.hpp"
#include "core/backend.hpp"
#include "core/storage.hpp"
#include "theta/config.hpp"
#include "theta/error.hpp"
#include "theta/onnx.hpp"

namespace th::onnx {

namespace {

namespace fs = std::filesystem;
namespace pb = ::onnx;

// The largest model file and tensor theta reads (protobuf itself stops at 2 GiB).
constexpr std::int64_t kMaxFileBytes = std::int64_t(2047) << 20;
constexpr std::int64_t kMaxTensorElements = std::int64_t(1) << 31;

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  throw IOError("onnx::load: " + path + ": " + what);
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) io_error(path, "cannot read the file (" + ec.message() + ")");
  if (std::int64_t(size) > kMaxFileBytes) io_error(path, "larger than 2 GiB, protobuf's limit");
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error(path, "cannot open the file");
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), std::streamsize(size))) io_error(path, "could not read all of the file");
  return bytes;
}

}  // namespace

namespace detail {

DType dtype_of_onnx(int t, const std::string& where) {
  switch (t) {
    case pb::TensorProto::FLOAT: return DType::float32;
    case pb::TensorProto::DOUBLE: return DType::float64;
    case pb::TensorProto::INT32:
    case pb::TensorProto::INT16:
    case pb::TensorProto::INT8:
    case pb::TensorProto::UINT16:
    case pb::TensorProto::UINT8: return DType::int32;  // widened: theta has no narrower integers
    case pb::TensorProto::INT64:
    case pb::TensorProto::UINT32: return DType::int64;
    case pb::TensorProto::BOOL: return DType::boolean;
    case pb::TensorProto::STRING: return DType::string;
    default: break;
  }
  const std::string name = pb::TensorProto::DataType_IsValid(t) ? pb::TensorProto::DataType_Name(pb::TensorProto::DataType(t))
                                                                 : std::to_string(t);
  throw TypeError(where + ": element type " + name + " is not supported by theta (it has bool, int32, int64, float32, float64, string)");
}

namespace {

// Raw data taken over as tensors' buffers: each buffer's bytes are its string's, freed with it.
constexpr std::size_t kAdoptBytes = 1 << 20;  // smaller data is copied
std::mutex& adopted_mu() {
  static std::mutex* m = new std::mutex;  // (never destroyed: buffers may outlive statics)
  return *m;
}
std::unordered_map<void*, std::string*>& adopted() {
  static auto* m = new std::unordered_map<void*, std::string*>;
  return *m;
}
void free_adopted(void* data, std::size_t) {
  std::string* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(adopted_mu());
    const auto it = adopted().find(data);
    if (it == adopted().end()) return;
    s = it->second;
    adopted().erase(it);
  }
  delete s;
}

// The string's bytes as a tensor of dt and shape (the caller checked the size). A large model's
// weights are then in memory once: the copy into a fresh buffer would touch as many new pages
// again, which is most of the time of loading it.
Tensor adopt(std::string* bytes, DType dt, const Shape& shape) {
  auto b = std::make_shared<th::detail::Buffer>();
  b->data = bytes->data();
  b->bytes = bytes->size();
  b->device = th::cpu();
  {
    std::lock_guard<std::mutex> lock(adopted_mu());
    adopted()[b->data] = bytes;
  }
  b->free_fn = &free_adopted;
  th::detail::Storage s;
  s.buf = std::move(b);
  s.dtype = dt;
  s.shape = shape;
  s.strides = th::detail::contiguous_strides(shape);
  return th::detail::make_constant(th::detail::transfer(s, config().device));
}

}  // namespace

Tensor tensor_of(const pb::TensorProto& t, const std::string& where, const std::string& model_dir, pb::TensorProto* owner) {
  const std::string what = where + (t.name().empty() ? "" : " '" + t.name() + "'");
  Shape shape;
  std::int64_t n = 1;
  for (std::int64_t d : t.dims()) {
    if (d < 0) throw IOError(what + ": negative dimension " + std::to_string(d));
    if (d > 0 && n > kMaxTensorElements / d) throw IOError(what + ": more than 2^31 elements");
    n *= d;
    shape.push_back(d);
  }
  const DType dt = dtype_of_onnx(t.data_type(), what);
  const int src = t.data_type();
  std::string external;
  const std::string* raw = t.has_raw_data() ? &t.raw_data() : nullptr;
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    std::string location;
    std::int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    }
    if (location.empty() || model_dir.empty()) throw IOError(what + ": external data without a location");
    const fs::path base = fs::weakly_canonical(fs::path(model_dir));
    const fs::path file = fs::weakly_canonical(base / location);
    const std::string b = base.string(), f = file.string();
    if (fs::path(location).is_absolute() || f.compare(0, b.size(), b) != 0 || (f.size() > b.size() && f[b.size()] != '/'))
      throw IOError(what + ": external data '" + location + "' lies outside the model's folder");
    std::error_code ec;
    const auto fsize = std::int64_t(fs::file_size(file, ec));
    if (ec) throw IOError(what + ": cannot read external data '" + location + "'");
    if (offset < 0 || offset > fsize || (length >= 0 && length > fsize - offset))
      throw IOError(what + ": external data '" + location + "' is shorter than its offset and length say");
    if (length < 0) length = fsize - offset;
    if (length > kMaxFileBytes) throw IOError(what + ": external data larger than 2 GiB");
    std::ifstream in(file, std::ios::binary);
    in.seekg(offset);
    external.resize(std::size_t(length));
    if (!in.read(external.data(), std::streamsize(length))) throw IOError(what + ": could not read external data");
    raw = &external;
  }
  auto sized = [&](std::int64_t have, const char* field) {
    if (have != n)
      throw IOError(what + ": declares " + std::to_string(n) + " elements but " + field + " holds " + std::to_string(have));
  };
  auto from = [&](auto* data, DType d) { return tensor_from_data(data, d, shape); };
  if (src == pb::TensorProto::STRING) {  // text is in string_data only
    if (raw) throw IOError(what + ": a string tensor's text must be in string_data, not in raw or external data");
    sized(t.string_data_size(), "string_data");
    return th::tensor(std::vector<std::string>(t.string_data().begin(), t.string_data().end()), shape);
  }
  if (raw) {
    std::int64_t width = 0;
    switch (src) {
      case pb::TensorProto::FLOAT: case pb::TensorProto::INT32: case pb::TensorProto::UINT32: width = 4; break;
      case pb::TensorProto::DOUBLE: case pb::TensorProto::INT64: width = 8; break;
      case pb::TensorProto::INT16: case pb::TensorProto::UINT16: width = 2; break;
      default: width = 1;
    }
    if (std::int64_t(raw->size()) != n * width)
      throw IOError(what + ": declares " + std::to_string(n) + " elements (" + std::to_string(n * width) +
                    " bytes) but raw_data holds " + std::to_string(raw->size()) + " bytes");
    const char* p = raw->data();
    const auto count = static_cast<std::size_t>(n);
    auto copied = [&](auto zero) {  // raw little-endian values of zero's type
      std::vector<decltype(zero)> v(count);
      std::memcpy(v.data(), p, raw->size());
      return v;
    };
    switch (src) {
      // theta's dtype has the file's layout: one copy of the bytes (tensor_from_data memcpys)
      case pb::TensorProto::FLOAT: case pb::TensorProto::DOUBLE: case pb::TensorProto::INT64: case pb::TensorProto::INT32:
        if (owner == &t && raw == &t.raw_data() && raw->size() >= kAdoptBytes && std::int64_t(dtype_size(dt)) == width)
          return adopt(owner->release_raw_data(), dt, shape);
        return tensor_from_data(p, dt, shape);
      case pb::TensorProto::UINT32: {
        const std::vector<std::uint32_t> u = copied(std::uint32_t(0));
        std::vector<std::int64_t> v(u.begin(), u.end());
        return from(v.data(), dt);
      }
      case pb::TensorProto::INT16: case pb::TensorProto::UINT16: {
        std::vector<std::int32_t> v(count);
        for (std::int64_t i = 0; i < n; ++i) {
          std::uint16_t u;
          std::memcpy(&u, p + 2 * i, 2);
          v[std::size_t(i)] = src == pb::TensorProto::INT16 ? std::int32_t(std::int16_t(u)) : std::int32_t(u);
        }
        return from(v.data(), dt);
      }
      case pb::TensorProto::BOOL: {
        std::vector<char> v(count);
        for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i)] = p[i] != 0;
        return from(reinterpret_cast<const bool*>(v.data()), dt);
      }
      default: {  // int8, uint8
        std::vector<std::int32_t> v(count);
        for (std::int64_t i = 0; i < n; ++i)
          v[std::size_t(i)] = src == pb::TensorProto::INT8 ? std::int32_t(std::int8_t(p[i])) : std::int32_t(std::uint8_t(p[i]));
        return from(v.data(), dt);
      }
    }
  }
  switch (src) {
    case pb::TensorProto::FLOAT: {
      sized(t.float_data_size(), "float_data");
      std::vector<float> v(t.float_data().begin(), t.float_data().end());
      return from(v.data(), dt);
    }
    case pb::TensorProto::DOUBLE: {
      sized(t.double_data_size(), "double_data");
      std::vector<double> v(t.double_data().begin(), t.double_data().end());
      return from(v.data(), dt);
    }
    case pb::TensorProto::INT64: {
      sized(t.int64_data_size(), "int64_data");
      std::vector<std::int64_t> v(t.int64_data().begin(), t.int64_data().end());
      return from(v.data(), dt);
    }
    case pb::TensorProto::UINT32: {
      sized(t.uint64_data_size(), "uint64_data");
      std::vector<std::int64_t> v(t.uint64_data().begin(), t.uint64_data().end());
      return from(v.data(), dt);
    }
    case pb::TensorProto::BOOL: {
      sized(t.int32_data_size(), "int32_data");
      std::vector<char> v(t.int32_data().begin(), t.int32_data().end());
      for (char& c : v) c = c != 0;
      return from(reinterpret_cast<const bool*>(v.data()), dt);
    }
    default: {
      sized(t.int32_data_size(), "int32_data");
      std::vector<std::int32_t> v(t.int32_data().begin(), t.int32_data().end());
      return from(v.data(), dt);
    }
  }
}

Tensor read_tensor_file(const std::string& path) {
  const std::string bytes = read_file(path);
  pb::TensorProto t;
  if (!t.ParseFromString(bytes)) io_error(path, "not a serialized ONNX TensorProto");
  return tensor_of(t, path, fs::path(path).parent_path().string());
}

namespace {
// Parsed straight from the file (no copy of its bytes: a 100 MB model is read once, into its
// tensors' fields).
pb::ModelProto parse_model(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) io_error(path, "cannot read the file (" + ec.message() + ")");
  if (std::int64_t(size) > kMaxFileBytes) io_error(path, "larger than 2 GiB, protobuf's limit");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error(path, "cannot open the file");
  google::protobuf::io::FileInputStream in(fd);
  in.SetCloseOnDelete(true);
  pb::ModelProto m;
  if (!m.ParseFromZeroCopyStream(&in) || in.GetErrno() != 0)
    io_error(path, "not an ONNX model (the protobuf does not parse: corrupt or truncated?)");
  if (!m.has_graph()) io_error(path, "the model has no graph");
  return m;
}
}  // namespace

std::vector<std::string> graph_input_names(const std::string& path) {
  const pb::ModelProto m = parse_model(path);
  std::vector<std::string> names;
  for (const auto& in : m.graph().input()) {
    bool init = false;
    for (const auto& i : m.graph().initializer()) init = init || i.name() == in.name();
    if (!init) names.push_back(in.name());
  }
  return names;
}

Model import_model(const std::string& path, const std::map<std::string, Tensor>& bound) {
  pb::ModelProto m = parse_model(path);
  Opsets opsets;
  for (const auto& o : m.opset_import()) opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = o.version();
  if (opsets.empty()) opsets[""] = 1;
  return import_graph(*m.mutable_graph(), opsets, fs::path(path).parent_path().string(), bound, path);
}

}  // namespace detail

Model load(const std::string& path) { return detail::import_model(path, {}); }

Function load_function(const std::string& path) {
  Model m = load(path);
  return function(m.inputs, m.outputs);
}

}  // namespace th::onnx
