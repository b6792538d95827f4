// idx files (the MNIST family's format: LeCun et al.), plain or gzip-compressed (zlib):
// a big-endian magic 0x0000 <type> <ndim>, ndim big-endian uint32 sizes, then the values
// big-endian in row-major order. Integer types load as int64, float types as float32/64.
#include "io/idx.hpp"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "theta/error.hpp"
#include "theta/io.hpp"

namespace th::detail {

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw IOError("load_idx: " + where + ": " + what); }

// Up to `limit` bytes of the gzip stream `in` decompressed, growing the output only as data
// arrives; throws on a corrupt stream. `more` is set when the stream holds more than limit.
std::string gunzip(const std::string& in, std::size_t limit, const std::string& where, bool& more) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) bad(where, "cannot start zlib");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(std::min<std::size_t>(in.size(), 0x7fffffffu));
  std::string out;
  char chunk[1 << 16];
  more = false;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t got = sizeof chunk - z.avail_out;
    if (out.size() + got > limit) {
      out.append(chunk, limit - out.size());
      more = true;
      return out;
    }
    out.append(chunk, got);
    if (rc == Z_STREAM_END) return out;
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && got > 0))
      bad(where, rc == Z_BUF_ERROR ? "truncated gzip stream" : std::string("corrupt gzip stream (") + (z.msg ? z.msg : "zlib error") + ")");
  }
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

template <class T>
T be(const unsigned char* p) {
  unsigned char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = p[sizeof(T) - 1 - i];
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

}  // namespace

Tensor parse_idx(const std::string& bytes, const std::string& where) {
  const bool gz = bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b;
  bool more = false;
  // The header first (at most 4 + 255 * 4 bytes), then exactly the values it announces.
  std::string head = gz ? gunzip(bytes, 4 + 255 * 4, where, more) : bytes.substr(0, 4 + 255 * 4);
  if (head.size() < 4) bad(where, "truncated header (" + std::to_string(head.size()) + " bytes)");
  const auto* h = reinterpret_cast<const unsigned char*>(head.data());
  if (h[0] != 0 || h[1] != 0) bad(where, "not an idx file (the magic number must start with two zero bytes)");
  std::size_t size = 0;
  DType dtype = DType::int64;
  switch (h[2]) {
    case 0x08: case 0x09: size = 1; break;
    case 0x0B: size = 2; break;
    case 0x0C: size = 4; break;
    case 0x0D: size = 4, dtype = DType::float32; break;
    case 0x0E: size = 8, dtype = DType::float64; break;
    default: bad(where, "unknown value type 0x" + [&] { char b[3]; std::snprintf(b, 3, "%02x", h[2]); return std::string(b); }());
  }
  const std::size_t ndim = h[3], data_at = 4 + 4 * ndim;
  if (head.size() < data_at) bad(where, "truncated header: " + std::to_string(ndim) + " dimensions announced");
  Shape shape;
  std::uint64_t n = 1;
  for (std::size_t i = 0; i < ndim; ++i) {
    const std::uint32_t d = be32(h + 4 + 4 * i);
    shape.push_back(std::int64_t(d));
    if (d && n > (std::uint64_t(1) << 40) / d) bad(where, "oversized: the dimensions " + shape_str(shape) + "... exceed 2^40 values");
    n *= d;
  }
  const std::uint64_t need = data_at + n * size;
  const std::string all = gz ? gunzip(bytes, std::size_t(need), where, more) : std::string();
  const std::string& src = gz ? all : bytes;
  if (src.size() < need)
    bad(where, "truncated: " + shape_str(shape) + " needs " + std::to_string(n * size) + " bytes of values, the file has " +
                   std::to_string(src.size() - std::min<std::size_t>(src.size(), data_at)));
  if (more || (!gz && src.size() > need))
    bad(where, "corrupt: data after the " + std::to_string(n) + " values that the header announces");
  const auto* p = reinterpret_cast<const unsigned char*>(src.data()) + data_at;
  if (dtype == DType::int64) {
    std::vector<std::int64_t> v(n);
    for (std::uint64_t i = 0; i < n; ++i, p += size) {
      switch (h[2]) {
        case 0x08: v[i] = p[0]; break;
        case 0x09: v[i] = static_cast<std::int8_t>(p[0]); break;
        case 0x0B: v[i] = be<std::int16_t>(p); break;
        default: v[i] = be<std::int32_t>(p); break;
      }
    }
    return tensor(v, shape);
  }
  if (dtype == DType::float32) {
    std::vector<float> v(n);
    for (std::uint64_t i = 0; i < n; ++i, p += size) v[i] = be<float>(p);
    return tensor(v, shape);
  }
  std::vector<double> v(n);
  for (std::uint64_t i = 0; i < n; ++i, p += size) v[i] = be<double>(p);
  return tensor(v, shape);
}

}  // namespace th::detail

namespace th {

Tensor load_idx(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IOError("load_idx: cannot open '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return detail::parse_idx(ss.str(), "'" + path + "'");
}

}  // namespace th
