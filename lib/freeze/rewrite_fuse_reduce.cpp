// Reductions fused with the elementwise work feeding them: a sum over every axis (a loss)
// of a fused step's result is folded into that step (a count reads its operand's shape
// only: rewrite_like_shapes.cpp points it at the chain's inputs instead). On the CPU the pass then
// reduces each block while it is in cache, in theta's order for whole reductions
// (cpu/pairwise.hpp), so the result has the bits of the separate sum; a result nothing
// else reads is then never written to memory. The fused step keeps the original steps and
// runs them after the chain when it does not run as one CPU pass.
#include <algorithm>

#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

// Whether step s sums all of its operand into one 0-d element of the operand's dtype.
bool whole_sum(const Program& p, const Step& s) {
  return s.op == &reduce_op(ReduceKind::sum) && !s.attrs.keepdims &&
         s.attrs.axes.size() == p.slot_shape[s.in[0]].size() &&  // axes are normalised and distinct
         p.slot_dtype[s.out] == p.slot_dtype[s.in[0]];
}

}  // namespace

int fuse_reductions(Program& p) {
  std::vector<long> made_by = producers(p);
  for (std::size_t k = 0; k < p.steps.size(); ++k)  // a merged pass's other results too
    if (p.steps[k].fused)
      for (std::size_t slot : p.steps[k].fused->out_slots) made_by[slot] = long(k);
  std::vector<std::shared_ptr<Fused>> copy(p.steps.size());  // fused steps being extended
  std::vector<bool> drop(p.steps.size(), false);
  int folded = 0;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const Step& s = p.steps[k];
    if (s.fused || !whole_sum(p, s)) continue;
    const long t = made_by[s.in[0]];
    if (t < 0 || !p.steps[std::size_t(t)].fused) continue;
    const std::size_t ts = std::size_t(t);
    if (!copy[ts]) copy[ts] = std::make_shared<Fused>(*p.steps[ts].fused);
    Fused& f = *copy[ts];
    const auto at = std::find(f.out_slots.begin(), f.out_slots.end(), s.in[0]);
    f.reductions.push_back({std::size_t(at - f.out_slots.begin()), s});
    drop[k] = true;
    ++folded;
  }
  if (!folded) return 0;
  // A head only the folded reductions read is not written by the CPU pass.
  std::vector<int> reads(p.slots, 0);
  for (std::size_t k = 0; k < p.steps.size(); ++k)
    if (!drop[k])
      for (std::size_t i : p.steps[k].in) ++reads[i];
  for (std::size_t o : p.outputs) ++reads[o];
  for (const auto& [n, s] : p.updates) ++reads[s];
  std::vector<Step> out;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    if (drop[k]) continue;
    out.push_back(p.steps[k]);
    if (const std::shared_ptr<Fused>& f = copy[k]) {
      f->unread.assign(f->out_slots.size(), false);
      for (std::size_t h = 0; h < f->out_slots.size(); ++h) f->unread[h] = reads[f->out_slots[h]] == 0;
      out.back().fused = f;
    }
  }
  p.steps = std::move(out);
  return folded;
}

}  // namespace th::detail
