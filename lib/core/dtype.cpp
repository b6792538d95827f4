// DType names, sizes, numpy promotion and the floatX setting.
#include <ostream>

#include "theta/config.hpp"
#include "theta/dtype.hpp"
#include "theta/error.hpp"

namespace th {

DType floatX() { return config().floatX; }

void set_floatX(DType dtype) {
  if (!is_floating(dtype))
    throw TypeError(std::string("set_floatX: floatX must be float32 or float64, not ") + dtype_name(dtype));
  config().floatX = dtype;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::boolean: return "bool";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::string: return "string";
  }
  return "?";
}

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::boolean: return 1;
    case DType::int32: return 4;
    case DType::int64: return 8;
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::string: return sizeof(void*);  // a pointer into the intern table (core/text.hpp)
  }
  return 0;
}

bool is_floating(DType d) { return d == DType::float32 || d == DType::float64; }

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::string || b == DType::string)
    throw TypeError(std::string("no common type of ") + dtype_name(a) + " and " + dtype_name(b) +
                    ": text converts to numbers with astype");
  if (a > b) std::swap(a, b);  // now a < b in the lattice
  if (a == DType::boolean) return b;
  // NOTE: numpy gives float64 for int32 + float32 and int64 + float32 (float32 cannot hold them).
  if (b == DType::float32 && (a == DType::int32 || a == DType::int64)) return DType::float64;
  return b;
}

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

std::ostream& operator<<(std::ostream& os, DType d) { return os << dtype_name(d); }

}  // namespace th
