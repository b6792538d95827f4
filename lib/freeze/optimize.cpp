// The rewrite driver and the helpers every pass shares.
#include "freeze/optimize.hpp"

namespace th::detail {

void optimize(Program& p) {
  auto note = [&](const char* name, int n) {
    if (n > 0) p.rewrites.push_back({name, n});
  };
  note("cse", rewrite_cse(p));
  note("algebra", rewrite_algebra(p));
  note("stability", rewrite_stability(p));
  note("cse", rewrite_cse(p));  // the rewrites above expose new duplicates
  note("like_shapes", rewrite_like_shapes(p));
  note("gemm_transpose", rewrite_gemm_transpose(p));
  note("gemm_acc", rewrite_gemm_acc(p));
  note("conv_epilogue", fuse_conv_epilogues(p));
  note("dead", eliminate_dead(p));
  note("conv_chain", chain_convolutions(p));
  note("scan_saves", drop_scan_saves(p));
  note("dist_pack", pack_allreduces(p));
  note("fused", fuse_elementwise(p));  // late: the other passes match single ops
  note("fused_merge", merge_fused_passes(p));
  note("fused_reduce", fuse_reductions(p));
}

std::vector<int> reader_counts(const Program& p) {
  std::vector<int> uses(p.slots, 0);
  for (const Step& s : p.steps)
    for (std::size_t i : s.in) ++uses[i];
  for (std::size_t o : p.outputs) uses[o] += 2;
  for (const auto& [n, s] : p.updates) uses[s] += 2;
  return uses;
}

std::vector<long> producers(const Program& p) {
  std::vector<long> r(p.slots, -1);
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    r[p.steps[k].out] = long(k);
    if (p.steps[k].fused)  // a merged pass's other results
      for (std::size_t s : p.steps[k].fused->out_slots) r[s] = long(k);
  }
  return r;
}

const Storage* constant_of(const Program& p, std::size_t slot) {
  for (const auto& [s, v] : p.constants)
    if (s == slot) return &v;
  return nullptr;
}

bool one_value_constant(const Program& p, std::size_t slot, double& v) {
  const Storage* c = constant_of(p, slot);
  if (!c || c->size() != 1) return false;
  v = contiguous_as(transfer(*c, th::cpu()), DType::float64).data<double>()[0];
  return true;
}

bool is_scalar_constant(const Program& p, std::size_t slot, double v, std::size_t ndim) {
  const Storage* c = constant_of(p, slot);
  double x = 0;
  return c && c->shape.size() <= ndim && one_value_constant(p, slot, x) && x == v;
}

bool static_shapes_may_agree(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t d = 0; d < a.size(); ++d)
    if (a[d] >= 0 && b[d] >= 0 && a[d] != b[d]) return false;
  return true;
}

void replace_uses(Program& p, std::size_t from, std::size_t to) {
  for (Step& s : p.steps)
    for (std::size_t& i : s.in)
      if (i == from) i = to;
  for (std::size_t& o : p.outputs)
    if (o == from) o = to;
  for (auto& [n, s] : p.updates)
    if (s == from) s = to;
}

}  // namespace th::detail
