// .npy and .npz reading and writing. Every length read from a file is checked against
// the bytes actually present before anything is allocated.
#include <algorithm>
#include <array>
#include <deque>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <zlib.h>

#include "core/node.hpp"
#include "io/npy.hpp"
#include "ops/op.hpp"
#include "theta/error.hpp"
#include "theta/io.hpp"

namespace th {

namespace {

using Bytes = std::string;

// numpy's type strings for theta's dtypes (little-endian), used for writing and reading.
constexpr std::pair<DType, const char*> kDescr[] = {{DType::boolean, "|b1"},
                                                    {DType::int32, "<i4"},
                                                    {DType::int64, "<i8"},
                                                    {DType::float32, "<f4"},
                                                    {DType::float64, "<f8"}};

const char* descr_of(DType d) {
  for (const auto& [dt, descr] : kDescr)
    if (dt == d) return descr;
  return "";
}

// Writes `path` through fill(stream): beside it first, then renamed over it, so a failed
// write (or a throw from fill) leaves an existing file whole and no temporary behind.
template <class Fill>
void write_replacing(const std::string& path, const char* what, Fill&& fill) {
  const std::string tmp = path + ".part";
  bool ok = false;
  try {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (f) {
      fill(f);
      ok = bool(f.flush());
    }
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IOError(std::string(what) + ": cannot write '" + path + "'");
  }
}

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw IOError("load_npy: " + where + ": " + what);
}

std::string field(const std::string& h, const std::string& key, const std::string& where) {
  auto k = h.find("'" + key + "'");
  if (k == std::string::npos) bad(where, "header has no '" + key + "'");
  auto colon = h.find(':', k);
  if (colon == std::string::npos) bad(where, "corrupt header");
  return h.substr(colon + 1);
}

}  // namespace

std::string detail::npy_header(DType dtype, const Shape& s) {
  if (dtype == DType::string)
    throw TypeError("npy: a string tensor of shape " + shape_str(s) + " cannot be written (.npy and .npz files hold numbers here)");
  std::string shape = "(";
  for (std::size_t i = 0; i < s.size(); ++i) shape += std::to_string(s[i]) + (s.size() == 1 ? "," : (i + 1 < s.size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + descr_of(dtype) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  Bytes out("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char((header.size() >> 8) & 0xff);
  out += header;
  return out;
}

Tensor detail::parse_npy(std::string_view b, const std::string& where) {
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) bad(where, "not a .npy file (bad magic)");
  const unsigned major = static_cast<unsigned char>(b[6]);
  std::size_t hlen, start;
  if (major == 1) {
    hlen = std::size_t(static_cast<unsigned char>(b[8])) | std::size_t(static_cast<unsigned char>(b[9])) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) bad(where, "truncated header");
    hlen = 0;
    for (int i = 3; i >= 0; --i) hlen = hlen << 8 | static_cast<unsigned char>(b[8 + std::size_t(i)]);
    start = 12;
  } else {
    bad(where, "unsupported format version " + std::to_string(major));
  }
  if (hlen > 1 << 20 || start + hlen > b.size()) bad(where, "truncated or oversized header");
  const std::string h(b.substr(start, hlen));
  std::string descr = field(h, "descr", where);
  auto q1 = descr.find('\''), q2 = descr.find('\'', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) bad(where, "corrupt descr");
  descr = descr.substr(q1 + 1, q2 - q1 - 1);
  const auto known = std::find_if(std::begin(kDescr), std::end(kDescr), [&](const auto& e) { return descr == e.second; });
  if (known == std::end(kDescr))
    bad(where, "unsupported dtype '" + descr + "' (theta reads bool, int32, int64, float32, float64, little-endian)");
  const DType dtype = known->first;
  const std::string order = field(h, "fortran_order", where);
  const bool fortran = order.find("True") < order.find(',');
  std::string sh = field(h, "shape", where);
  auto lp = sh.find('('), rp = sh.find(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) bad(where, "corrupt shape");
  Shape shape;
  std::stringstream ss(sh.substr(lp + 1, rp - lp - 1));
  std::string tok;
  unsigned __int128 count = 1;
  while (std::getline(ss, tok, ',')) {
    tok.erase(std::remove(tok.begin(), tok.end(), ' '), tok.end());
    if (tok.empty()) continue;
    if (tok.size() > 18 || tok.find_first_not_of("0123456789") != std::string::npos) bad(where, "corrupt shape '" + tok + "'");
    shape.push_back(std::stoll(tok));
    count *= static_cast<unsigned __int128>(shape.back());
    if (count > (unsigned __int128)(b.size())) break;  // checked below against the data present
  }
  const unsigned __int128 need = count * dtype_size(dtype);
  const std::size_t have = b.size() - start - hlen;
  if (need != have)
    bad(where, "data has " + std::to_string(have) + " bytes but the header's shape " + shape_str(shape) + " and dtype " +
                   dtype_name(dtype) + " need a different amount (truncated or corrupt file)");
  const char* data = b.data() + start + hlen;
  std::string normalised;
  if (dtype == DType::boolean) {  // any nonzero byte is True; a bool holding 39 is undefined behaviour
    normalised = std::string(b.substr(start + hlen));
    for (char& c : normalised) c = c != 0;
    data = normalised.data();
  }
  if (fortran) {
    Shape rev(shape.rbegin(), shape.rend());
    Tensor t = tensor_from_data(data, dtype, rev);
    detail::Storage s = detail::contiguous_as(*transpose(t).node()->value, dtype);
    return detail::make_constant(s);
  }
  return tensor_from_data(data, dtype, shape);
}

std::string detail::read_bytes(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw IOError(std::string(what) + ": cannot open '" + path + "'");
  const std::streamoff size = f.tellg();
  if (size < 0) throw IOError(std::string(what) + ": cannot read '" + path + "'");
  Bytes b(std::size_t(size), '\0');
  f.seekg(0);
  if (!f.read(b.data(), size)) throw IOError(std::string(what) + ": cannot read '" + path + "'");
  return b;
}

// ---- zip (stored entries only), enough for numpy.savez -----------------------------------
std::uint32_t detail::crc32(std::string_view b, std::uint32_t crc) {
  // zlib's (several bytes per step, and SIMD where the CPU has it), in chunks its uInt takes
  uLong c = crc;
  for (std::size_t at = 0; at < b.size(); at += 1u << 30)
    c = ::crc32(c, reinterpret_cast<const Bytef*>(b.data() + at), uInt(std::min<std::size_t>(b.size() - at, 1u << 30)));
  return std::uint32_t(c);
}

namespace {

void put16(Bytes& o, std::uint32_t v) { o += char(v & 0xff), o += char((v >> 8) & 0xff); }
void put32(Bytes& o, std::uint32_t v) { put16(o, v & 0xffff), put16(o, v >> 16); }
std::uint32_t get(std::string_view b, std::size_t at, int n, const std::string& path) {
  if (at + std::size_t(n) > b.size()) throw IOError("'" + path + "': truncated archive");
  std::uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[at + std::size_t(i)]);
  return v;
}

}  // namespace

detail::ZipEntry detail::npy_entry(std::string name, const Storage& s, std::deque<Storage>& keep) {
  keep.push_back(contiguous_as(transfer(s, th::cpu()), s.dtype));  // (itself when it is one already)
  const Storage& c = keep.back();
  return {std::move(name), npy_header(c.dtype, c.shape), c.bytes(), std::size_t(c.size()) * dtype_size(c.dtype)};
}

void save_npy(const std::string& path, const Tensor& t) {
  std::deque<detail::Storage> keep;
  const detail::ZipEntry e = detail::npy_entry("", detail::value_of(t, "save_npy"), keep);
  write_replacing(path, "save_npy", [&](std::ofstream& f) {
    f.write(e.head.data(), std::streamsize(e.head.size()));
    f.write(e.data, std::streamsize(e.size));
  });
}

Tensor load_npy(const std::string& path) {
  return detail::parse_npy(detail::read_bytes(path, "load_npy"), "'" + path + "'");
}

void save_npz(const std::string& path, const std::map<std::string, Tensor>& named) {
  std::deque<detail::Storage> keep;
  std::vector<detail::ZipEntry> entries;
  for (const auto& [name, t] : named) entries.push_back(detail::npy_entry(name + ".npy", detail::value_of(t, "save_npz"), keep));
  detail::zip_write(path, entries, "save_npz");
}

std::map<std::string, Tensor> load_npz(const std::string& path) {
  return detail::parse_npz(detail::read_bytes(path, "load_npz"), path);
}

std::map<std::string, Tensor> detail::parse_npz(std::string_view b, const std::string& path) {
  std::map<std::string, Tensor> out;
  for (auto& [name, npy] : zip_entries(b, path, "load_npz")) {
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    out[key] = detail::parse_npy(npy, "'" + path + "' entry '" + key + "'");
  }
  return out;
}

namespace {
// The zip records: a stored entry's local header (the central one adds its offset).
void zip_common(Bytes& o, std::uint32_t crc, std::uint32_t size, std::size_t name_size) {
  put16(o, 20), put16(o, 0), put16(o, 0), put16(o, 0), put16(o, 0x21);  // version, flags, stored, time, date
  put32(o, crc), put32(o, size), put32(o, size);
  put16(o, std::uint32_t(name_size)), put16(o, 0);
}

template <class Out>
void zip_to(Out&& out, const std::vector<detail::ZipEntry>& entries, const char* what) {
  Bytes central;
  std::uint64_t at = 0;
  std::uint32_t n = 0;
  for (const detail::ZipEntry& e : entries) {
    const std::uint64_t size = e.head.size() + e.size;
    if (size > 0xFFFFFFFEu || at + size + 30 + e.name.size() > 0xFFFFFFFEu)
      throw IOError(std::string(what) + ": '" + e.name + "' does not fit a zip32 archive (4 GiB)");
    if (n == 0xFFFF) throw IOError(std::string(what) + ": more than 65535 entries");
    const std::uint32_t crc = detail::crc32(std::string_view(e.data, e.size), detail::crc32(e.head));
    Bytes local;
    put32(local, 0x04034b50);
    zip_common(local, crc, std::uint32_t(size), e.name.size());
    local += e.name;
    local += e.head;
    out(local.data(), local.size());
    out(e.data, e.size);
    put32(central, 0x02014b50);
    put16(central, 20);
    zip_common(central, crc, std::uint32_t(size), e.name.size());
    put16(central, 0), put16(central, 0), put16(central, 0), put32(central, 0), put32(central, std::uint32_t(at));
    central += e.name;
    at += local.size() + e.size;
    ++n;
  }
  Bytes end;
  put32(end, 0x06054b50), put16(end, 0), put16(end, 0), put16(end, n), put16(end, n);
  put32(end, std::uint32_t(central.size())), put32(end, std::uint32_t(at)), put16(end, 0);
  out(central.data(), central.size());
  out(end.data(), end.size());
}
}  // namespace

std::string detail::zip_bytes(const std::vector<ZipEntry>& entries, const char* what) {
  Bytes out;
  zip_to([&](const char* p, std::size_t n) { out.append(p, n); }, entries, what);
  return out;
}

void detail::zip_write(const std::string& path, const std::vector<ZipEntry>& entries, const char* what) {
  write_replacing(path, what, [&](std::ofstream& f) {
    zip_to([&](const char* p, std::size_t n) { f.write(p, std::streamsize(n)); }, entries, what);
  });
}

std::vector<std::pair<std::string, std::string_view>> detail::zip_entries(std::string_view b, const std::string& path,
                                                                          const char* what, bool verify) {
  const std::string w = std::string(what) + ": '" + path + "': ";
  if (b.size() < 22) throw IOError(w + "not a zip archive");
  std::size_t eocd = std::string::npos;
  for (std::size_t i = b.size() - 22 + 1; i-- > (b.size() > 22 + 65535 ? b.size() - 22 - 65535 : 0);)
    if (get(b, i, 4, path) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) throw IOError(w + "not a zip archive (no end record)");
  const std::uint32_t count = get(b, eocd + 10, 2, path), cd = get(b, eocd + 16, 4, path);
  std::vector<std::pair<std::string, std::string_view>> out;
  std::size_t at = cd;
  for (std::uint32_t e = 0; e < count; ++e) {
    if (get(b, at, 4, path) != 0x02014b50) throw IOError(w + "corrupt central directory");
    const std::uint32_t method = get(b, at + 10, 2, path), crc = get(b, at + 16, 4, path);
    const std::uint32_t csize = get(b, at + 20, 4, path), nlen = get(b, at + 28, 2, path);
    const std::uint32_t xlen = get(b, at + 30, 2, path), clen = get(b, at + 32, 2, path);
    const std::uint32_t local = get(b, at + 42, 4, path);
    if (at + 46 + nlen > b.size()) throw IOError(w + "truncated archive");
    std::string name(b.substr(at + 46, nlen));
    if (method != 0)
      throw IOError(w + "entry '" + name +
                    "' is compressed; theta reads uncompressed archives (numpy.savez, not savez_compressed)");
    const std::size_t data = std::size_t(local) + 30 + get(b, local + 26, 2, path) + get(b, local + 28, 2, path);
    if (data + csize > b.size()) throw IOError(w + "truncated entry '" + name + "'");
    const std::string_view bytes = b.substr(data, csize);
    if (verify && detail::crc32(bytes) != crc) throw IOError(w + "checksum mismatch in '" + name + "'");
    out.push_back({std::move(name), bytes});
    at += 46 + nlen + xlen + clen;
  }
  return out;
}

}  // namespace th
