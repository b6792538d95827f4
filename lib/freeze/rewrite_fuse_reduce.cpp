// Reductions fused with the elementwise work feeding them: a sum over every axis (a loss)
// of a fused step's result is folded into that step (a count reads its operand's shape
// only: rewrite_like_shapes.cpp points it at the chain's inputs instead). On the CPU the pass then
// reduces each block while it is in cache, in theta's order for whole reductions
// (cpu/pairwise.hpp), so the result has the bits of the separate sum; elementwise steps on
// the sums and other one-element values follow in the same step (a mean's division); a result nothing
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
  const std::vector<long> made_by = producers(p);
  std::vector<std::shared_ptr<Fused>> copy(p.steps.size());  // fused steps being extended
  std::vector<bool> drop(p.steps.size(), false);
  std::vector<long> scalar_of(p.slots, -1);  // a folded sum's or tail step's slot -> its fused step
  int folded = 0;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const Step& s = p.steps[k];
    // Elementwise steps on one-element values reading a fused step's sums (or tail) and
    // values made before that step join its tail (a mean's division by the count): a
    // single step, or every member of a fused chain of them.
    if (s.fused ? s.fused->reductions.empty() && s.fused->parts.empty() && p.slot_shape[s.out].empty()
                : p.slot_shape[s.out].empty()) {
      const std::vector<Step> one{s};
      const std::vector<Step>& steps = s.fused ? s.fused->members : one;
      long from = -1;  // the fused step whose sums (or tail) they read
      bool ok = true;
      std::vector<std::size_t> joined, outside;  // the steps' own results; what else they read
      for (const Step& m : steps) {
        const std::optional<FusedInstr> in = fused_instr_of(p, m);
        ok = ok && in && !in->identity() && p.slot_shape[m.out].empty();
        for (std::size_t i : m.in) {
          if (scalar_of[i] >= 0) {
            ok = ok && (from < 0 || from == scalar_of[i]);
            from = scalar_of[i];
          } else if (std::find(joined.begin(), joined.end(), i) == joined.end()) {
            outside.push_back(i);
          }
        }
        joined.push_back(m.out);
      }
      for (std::size_t i : outside) ok = ok && made_by[i] < from && p.slot_shape[i].empty();  // ready, one element
      if (ok && from >= 0) {
        for (const Step& m : steps) {
          copy[std::size_t(from)]->tail_steps.push_back(m);
          scalar_of[m.out] = from;
        }
        drop[k] = true;
        ++folded;
        continue;
      }
    }
    if (s.fused || !whole_sum(p, s)) continue;
    const long t = made_by[s.in[0]];
    if (t < 0 || !p.steps[std::size_t(t)].fused || drop[std::size_t(t)]) continue;  // not a chain that joined a tail
    const std::size_t ts = std::size_t(t);
    if (!copy[ts]) copy[ts] = std::make_shared<Fused>(*p.steps[ts].fused);
    Fused& f = *copy[ts];
    const auto at = std::find(f.out_slots.begin(), f.out_slots.end(), s.in[0]);
    f.reductions.push_back({std::size_t(at - f.out_slots.begin()), s});
    scalar_of[s.out] = t;
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
      // the tail's code: operands the sums, then earlier tail results, or the step's inputs
      Step& st = out.back();
      std::vector<long> index(p.slots, -1);
      for (std::size_t j = 0; j < f->reductions.size(); ++j) index[f->reductions[j].step.out] = long(j);
      for (const Step& t : f->tail_steps) {
        FusedInstr in = *fused_instr_of(p, t);
        int* ops[2] = {&in.a, &in.b};
        for (std::size_t o = 0; o < t.in.size(); ++o) {
          const std::size_t slot = t.in[o];
          if (index[slot] >= 0) {
            *ops[o] = int(index[slot]);
            continue;
          }
          auto at = std::find(st.in.begin(), st.in.end(), slot);
          if (at == st.in.end()) {
            st.in.push_back(slot);
            st.names.push_back(t.names[o]);
            at = st.in.end() - 1;
          }
          *ops[o] = -1 - int(at - st.in.begin());
        }
        index[t.out] = long(f->reductions.size() + f->tail.size());
        f->tail.push_back(in);
      }
      f->unread.assign(f->out_slots.size(), false);
      for (std::size_t h = 0; h < f->out_slots.size(); ++h) f->unread[h] = reads[f->out_slots[h]] == 0;
      out.back().fused = f;
    }
  }
  p.steps = std::move(out);
  return folded;
}

}  // namespace th::detail
