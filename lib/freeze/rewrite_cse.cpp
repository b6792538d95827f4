// Common subexpression elimination. Constants first: every C++ number in an expression is
// its own constant node, so equal small constants are merged, which lets `x * 2.0` written
// twice become one step. Then steps with the same op, attributes and input slots are merged
// (steps are in dependency order, so one forward pass sees every duplicate).
#include <cstring>
#include <map>
#include <tuple>

#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

bool same_index(const Index& a, const Index& b) {
  return a.kind == b.kind && a.i == b.i && a.start == b.start && a.stop == b.stop && a.step == b.step;
}

bool same_attrs(const Attrs& a, const Attrs& b) {
  if (a.axes != b.axes || a.shape != b.shape || a.axis != b.axis || a.part != b.part || a.keepdims != b.keepdims ||
      a.all != b.all || a.dtype != b.dtype || a.device != b.device || a.transpose != b.transpose ||
      a.scale != b.scale || a.sub != b.sub || a.index.size() != b.index.size())
    return false;
  for (std::size_t i = 0; i < a.index.size(); ++i)
    if (!same_index(a.index[i], b.index[i])) return false;
  return true;
}

// Small constants by value: dtype, shape and bytes.
std::string constant_key(const Storage& v) {
  Storage c = contiguous_as(transfer(v, th::cpu()), v.dtype);
  std::string k(reinterpret_cast<const char*>(c.bytes()), std::size_t(c.size()) * dtype_size(c.dtype));
  k += char(v.dtype);
  for (auto d : v.shape) k += std::to_string(d) + ",";
  return k;
}

}  // namespace

int rewrite_cse(Program& p) {
  int fired = 0;
  std::map<std::string, std::size_t> seen_const;
  for (const auto& [s, v] : p.constants) {
    if (v.size() > 64) continue;
    auto [it, fresh] = seen_const.emplace(constant_key(v), s);
    if (!fresh) {
      replace_uses(p, s, it->second);
      ++fired;
    }
  }
  std::map<std::tuple<const Op*, std::vector<std::size_t>>, std::vector<std::size_t>> seen;  // -> step indices
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    Step& s = p.steps[k];
    auto& same = seen[{s.op, s.in}];
    bool merged = false;
    for (std::size_t j : same)
      if (same_attrs(p.steps[j].attrs, s.attrs)) {
        replace_uses(p, s.out, p.steps[j].out);
        ++fired;
        merged = true;
        break;
      }
    if (!merged) same.push_back(k);
  }
  return fired;
}

}  // namespace th::detail
