// The intern table of string tensors' elements and text <-> number conversion.
#include "core/text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "theta/error.hpp"

namespace th::detail {

Text intern(std::string_view s) {
  if (s.empty()) return nullptr;
  struct Table {
    std::mutex m;
    std::unordered_set<std::string> strings;  // node-based: element addresses never move
  };
  static Table* t = new Table;  // never destroyed: tensors may outlive statics
  const std::lock_guard<std::mutex> lock(t->m);
  return &*t->strings.emplace(s).first;
}

namespace {

template <class T>
std::string shortest(T v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

std::string number_text(const char* elem, DType dtype) {
  switch (dtype) {
    case DType::boolean: return *reinterpret_cast<const bool*>(elem) ? "True" : "False";
    case DType::int32: return std::to_string(*reinterpret_cast<const std::int32_t*>(elem));
    case DType::int64: return std::to_string(*reinterpret_cast<const std::int64_t*>(elem));
    case DType::float32: return shortest(*reinterpret_cast<const float*>(elem));
    case DType::float64: return shortest(*reinterpret_cast<const double*>(elem));
    case DType::string: break;
  }
  return std::string(text_of(*reinterpret_cast<const Text*>(elem)));
}

void text_number(std::string_view text, char* elem, DType dtype, const char* what) {
  const std::string s(text);  // (strtod needs the terminating zero)
  const auto fail = [&](const char* kind) {
    return ValueError(std::string(what) + ": the text \"" + s + "\" is not " + kind + " (converting to " +
                      dtype_name(dtype) + ")");
  };
  if (dtype == DType::string) {
    *reinterpret_cast<Text*>(elem) = intern(s);
    return;
  }
  if (dtype == DType::boolean && (s == "True" || s == "False" || s == "true" || s == "false")) {
    *reinterpret_cast<bool*>(elem) = s[0] == 'T' || s[0] == 't';
    return;
  }
  if (dtype == DType::int32 || dtype == DType::int64) {  // exact digits first ("+" allowed), then 1e3 and the like
    const char* b = s.c_str() + (!s.empty() && s[0] == '+');
    std::int64_t v = 0;
    const auto r = std::from_chars(b, s.c_str() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.c_str() + s.size()) {
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || !(std::fabs(d) < 9.2e18) || std::trunc(d) != d) throw fail("an integer");
      v = std::int64_t(d);
    }
    if (dtype == DType::int32 && (v < INT32_MIN || v > INT32_MAX)) throw fail("an int32");
    if (dtype == DType::int64) *reinterpret_cast<std::int64_t*>(elem) = v;
    else *reinterpret_cast<std::int32_t*>(elem) = std::int32_t(v);
    return;
  }
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw fail("a number");
  if (dtype == DType::boolean) *reinterpret_cast<bool*>(elem) = v != 0;
  else if (dtype == DType::float32) *reinterpret_cast<float*>(elem) = std::strtof(s.c_str(), nullptr);
  else *reinterpret_cast<double*>(elem) = v;
}

}  // namespace th::detail
