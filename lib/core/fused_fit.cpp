// The run-time condition under which a fused chain runs as one kernel (core/backend.hpp);
// the CPU's and the GPU's fused kernels both ask it.
#include <algorithm>

#include "core/backend.hpp"

namespace th::detail {

bool fused_inputs_fit(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
                      const std::vector<int>& outs, const Storage& out, std::vector<bool>& scalar,
                      std::vector<std::int64_t>* period, bool columns) {
  const std::int64_t n = out.size();
  // Per-thread scratch (assign reuses capacity): this runs on every fused step of every call.
  thread_local std::vector<char> value, shape_only, full;
  value.assign(inputs.size(), 0);
  shape_only.assign(inputs.size(), 0);
  for (const FusedInstr& in : code) {
    if (in.a < 0) value[std::size_t(-1 - in.a)] = true;
    if (!in.unary && in.b < 0) (in.identity() ? shape_only : value)[std::size_t(-1 - in.b)] = true;
  }
  scalar.assign(inputs.size(), false);
  if (period) period->assign(inputs.size(), 0);
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const Storage& s = *inputs[k];
    if (s.device() != out.device()) return false;
    if (shape_only[k] && s.shape != out.shape) return false;
    if (!value[k]) continue;
    if (s.dtype != dtype) return false;
    bool one_value = s.size() == 1;  // one element, or one broadcast everywhere (all strides 0)
    if (!one_value && s.size() > 0) {
      one_value = true;
      for (auto st : s.strides) one_value = one_value && st == 0;
    }
    if (one_value && n != 1) {
      scalar[k] = true;
    } else if (!(s.size() == n && s.shape == out.shape && s.contiguous())) {
      if (!period || !s.contiguous() || s.size() <= 1) return false;
      // a row: the input without its leading 1s is the output's trailing dims
      const std::size_t rank = s.shape.size(), lead = std::size_t(
          std::find_if(s.shape.begin(), s.shape.end(), [](std::int64_t d) { return d != 1; }) - s.shape.begin());
      const std::size_t r = rank - lead;
      const std::ptrdiff_t out_lead = std::ptrdiff_t(out.shape.size()) - std::ptrdiff_t(rank);
      if (r < out.shape.size() && std::equal(s.shape.begin() + std::ptrdiff_t(lead), s.shape.end(),
                                             out.shape.end() - std::ptrdiff_t(r))) {
        (*period)[k] = s.size();
        continue;
      }
      // a column: right-aligned to the output's rank, 1s, then the output's dims, then 1s
      // (a row maximum kept with keepdims, or a (C, 1, 1) bias over (N, C, H, W), whose
      // values then cycle); each value repeats over the trailing dims
      if (!columns || out_lead < 0) return false;
      std::size_t c = rank;
      while (c > 0 && s.shape[c - 1] == 1) --c;
      if (c == rank) return false;
      const std::size_t o = std::size_t(out_lead);
      if (!std::equal(s.shape.begin() + std::ptrdiff_t(lead), s.shape.begin() + std::ptrdiff_t(c),
                      out.shape.begin() + std::ptrdiff_t(o + lead)))
        return false;
      std::int64_t repeat = 1;
      for (std::size_t d = o + c; d < out.shape.size(); ++d) repeat *= out.shape[d];
      (*period)[k] = -repeat;
    }
  }
  // An instruction is "full" when one of its values comes from an input of the output's
  // shape (a stride-0 broadcast of one value included).
  full.assign(code.size(), 0);
  auto full_of = [&](int o) {
    return o < 0 ? inputs[std::size_t(-1 - o)]->shape == out.shape : bool(full[std::size_t(o)]);
  };
  for (std::size_t j = 0; j < code.size(); ++j) {
    const FusedInstr& in = code[j];
    if (in.identity()) {
      // its result has the like's shape: the output's (checked above for an input; an
      // intermediate like must be full itself)
      if (in.b >= 0 && !full[std::size_t(in.b)]) return false;
      if (in.code == FusedInstr::kSumToLike && !full_of(in.a)) return false;  // a real reduction
      full[j] = true;
    } else {
      full[j] = full_of(in.a) || (!in.unary && full_of(in.b));
    }
  }
  if (outs.size() > 1 && n != 1)
    for (int o : outs)
      if (!full[std::size_t(o)]) return false;  // its own shape would be smaller
  return true;
}

}  // namespace th::detail
