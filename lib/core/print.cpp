// numpy-style printing: `[5. 7. 9.]`, `[[ 58.  64.]\n [139. 154.]]`, 0-d as Python's repr,
// precision 8, scientific when numpy would, summarised past 1000 elements, 75 columns.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "core/backend.hpp"
#include "core/node.hpp"
#include "theta/tensor.hpp"

namespace th {

namespace {

std::string trim_zeros(std::string s) {  // "1.50000000" -> "1.5", "5.00000000" -> "5."
  auto dot = s.find('.');
  if (dot == std::string::npos) return s;
  auto end = s.find_last_not_of('0');
  return s.substr(0, std::max(end, dot) + 1);
}

std::string shortest_repr(double v) {  // Python's repr of a float
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// Formats all elements of one array with a shared style, as numpy's FloatingFormat.
std::vector<std::string> format_floats(const std::vector<double>& v) {
  double max_abs = 0, min_abs = INFINITY;
  bool any_finite = false;
  for (double x : v)
    if (std::isfinite(x)) {
      any_finite = true;
      double a = std::fabs(x);
      max_abs = std::max(max_abs, a);
      if (a > 0) min_abs = std::min(min_abs, a);
    }
  bool sci = any_finite && min_abs != INFINITY &&
             (max_abs >= 1e8 || min_abs < 1e-4 || max_abs / min_abs > 1e3);
  std::vector<std::string> out(v.size());
  std::size_t frac = 0;
  char buf[64];
  for (std::size_t i = 0; i < v.size(); ++i) {
    double x = v[i];
    if (!std::isfinite(x)) continue;
    if (sci) {
      std::snprintf(buf, sizeof buf, "%.8e", x);
      std::string s = buf;
      auto e = s.find('e');
      std::string m = trim_zeros(s.substr(0, e));
      frac = std::max(frac, m.size() - m.find('.') - 1);
    } else {
      std::snprintf(buf, sizeof buf, "%.8f", x);
      std::string s = trim_zeros(buf);
      frac = std::max(frac, s.size() - s.find('.') - 1);
    }
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    double x = v[i];
    if (std::isnan(x)) out[i] = "nan";
    else if (std::isinf(x)) out[i] = x > 0 ? "inf" : "-inf";
    else if (sci) {
      std::snprintf(buf, sizeof buf, "%.*e", int(frac), x);
      std::string s = buf;
      if (frac == 0) s.insert(s.find('e'), ".");
      out[i] = s;
    } else {
      std::snprintf(buf, sizeof buf, "%.8f", x);
      std::string s = trim_zeros(buf);
      s.append(frac - (s.size() - s.find('.') - 1), ' ');  // pad the fraction on the right
      out[i] = s;
    }
  }
  std::size_t width = 0;
  for (auto& s : out) width = std::max(width, s.size());
  for (auto& s : out)
    if (s.size() < width) s.insert(0, width - s.size(), ' ');
  return out;
}

struct Printer {
  const std::vector<std::string>& cells;
  const Shape& shape;
  bool summarize;
  std::ostream& os;
  std::size_t width = 0;

  // Recursively writes the sub-array at `depth` starting at flat index `base`.
  void write(std::size_t depth, std::int64_t base, std::int64_t stride, std::size_t indent) {
    std::int64_t n = shape[depth];
    std::int64_t inner = stride / std::max<std::int64_t>(n, 1);
    os << '[';
    std::size_t col = indent + 1;
    bool last_dim = depth + 1 == shape.size();
    for (std::int64_t i = 0; i < n; ++i) {
      if (summarize && n > 6 && i == 3) {
        if (last_dim) {
          os << " ...";
          col += 4;
        } else {
          os << "\n" << std::string(indent + 1, ' ') << "...";
          os << std::string(shape.size() - depth - 1, '\n');
        }
        i = n - 3;
      }
      if (last_dim) {
        const std::string& c = cells[std::size_t(base + i)];
        if (i > 0 || (summarize && n > 6 && i == n - 3)) {
          if (col + 1 + c.size() + 1 > 75) {
            os << "\n" << std::string(indent + 1, ' ');
            col = indent + 1;
          } else {
            os << ' ';
            ++col;
          }
        }
        os << c;
        col += c.size();
      } else {
        if (i > 0 && !(summarize && n > 6 && i == n - 3)) os << std::string(shape.size() - depth - 1, '\n') << std::string(indent + 1, ' ');
        else if (i > 0) os << std::string(indent + 1, ' ');
        write(depth + 1, base + i * inner, inner, indent + 1);
      }
    }
    os << ']';
  }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t) return os << "Tensor(empty)";
  const detail::Node& n = *t.node();
  if (!n.value) {
    os << "Tensor(symbolic, " << dtype_name(n.dtype) << ", shape=" << shape_str(n.shape);
    if (!n.name.empty()) os << ", name='" << n.name << "'";
    return os << ")";
  }
  const detail::Storage& v = *n.value;
  const std::int64_t size = v.size();
  const bool summarize = size > 1000;
  std::vector<std::string> cells;
  if (is_floating(v.dtype)) {
    std::vector<double> d = t.to_vector<double>();
    if (v.shape.empty()) return os << shortest_repr(d[0]);
    cells = format_floats(d);
  } else if (v.dtype == DType::boolean) {
    std::vector<bool> b = t.to_vector<bool>();
    bool any_true = false;
    for (bool x : b) any_true = any_true || x;
    for (bool x : b) cells.push_back(x ? (any_true && b.size() > 1 ? " True" : "True") : "False");
    bool any_false = false;
    for (bool x : b) any_false = any_false || !x;
    if (!any_false)
      for (auto& c : cells) c = "True";
  } else if (v.dtype == DType::string) {  // numpy's str(): quoted
    for (const std::string& x : t.to_vector<std::string>()) cells.push_back("'" + x + "'");
  } else {
    std::vector<std::int64_t> d = t.to_vector<std::int64_t>();
    std::size_t w = 0;
    for (auto x : d) w = std::max(w, std::to_string(x).size());
    for (auto x : d) {
      std::string s = std::to_string(x);
      cells.push_back(std::string(w - s.size(), ' ') + s);
    }
  }
  if (v.shape.empty()) return os << cells[0];
  if (size == 0) return os << "[]";
  Printer p{cells, v.shape, summarize, os};
  p.write(0, 0, size, 0);
  return os;
}

}  // namespace th
