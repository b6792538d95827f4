// Fused passes that read the same inputs merge into one pass placed at the earlier one,
// when everything the later one reads is ready there: a loss's forward chain and its
// gradient's chain then read their operands once. rewrite_fuse.cpp already merges chains
// whose places allow it as it builds them; this pass also moves a chain up, past the steps
// that read the earlier chain's result (a sum, a division), once the shape-only steps the
// later chain needs (broadcast_shape, count) are hoisted to right after their operands.
// The merged step falls back to its two passes when their shapes differ at run time.
#include <algorithm>
#include <map>

#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

constexpr std::size_t kMaxCode = 64;  // instructions of a merged pass (fused kernels keep them on the stack)

// Shape-only steps moved to right after the last step they read (their results are cheap
// views or numbers; running them early lets later chains move up).
void hoist_shape_steps(Program& p) {
  std::vector<Step> out;
  std::vector<long> at(p.slots, -1);  // position in `out` of each slot's producer
  for (const Step& s : p.steps) {
    std::size_t pos = out.size();
    if (s.op->shape_only) {
      long after = -1;
      for (std::size_t i : s.in) after = std::max(after, at[i]);
      pos = std::size_t(after + 1);
    }
    out.insert(out.begin() + std::ptrdiff_t(pos), s);
    for (std::size_t k = pos; k < out.size(); ++k) {  // positions from pos on moved by one
      at[out[k].out] = long(k);
      if (out[k].fused)
        for (std::size_t slot : out[k].fused->out_slots) at[slot] = long(k);
    }
  }
  p.steps = std::move(out);
}

// B's pass appended to A's: B's inputs joined to A's, B's instructions after A's (an
// instruction both recompute, the same step's copy, is computed once), both passes' results.
Step merged(const Step& a, const Step& b) {
  const Fused &fa = *a.fused, &fb = *b.fused;
  auto f = std::make_shared<Fused>(fa);
  Step st = a;
  std::map<std::size_t, int> external;  // slot -> operand code
  for (std::size_t j = 0; j < a.in.size(); ++j) external[a.in[j]] = -1 - int(j);
  std::map<std::size_t, int> made;  // member result slot -> instruction
  for (std::size_t k = 0; k < fa.members.size(); ++k) made[fa.members[k].out] = int(k);
  std::vector<int> code_of(fb.code.size());
  auto operand = [&](int o) {
    if (o >= 0) return code_of[std::size_t(o)];
    const std::size_t slot = b.in[std::size_t(-1 - o)];
    auto it = external.find(slot);
    if (it != external.end()) return it->second;
    st.in.push_back(slot);
    st.names.push_back(b.names[std::size_t(-1 - o)]);
    return external[slot] = -int(st.in.size());
  };
  for (std::size_t k = 0; k < fb.code.size(); ++k) {
    const auto same = made.find(fb.members[k].out);
    if (same != made.end()) {
      code_of[k] = same->second;
      continue;
    }
    FusedInstr in = fb.code[k];
    in.a = operand(in.a);
    if (!in.unary) in.b = operand(in.b);
    code_of[k] = int(f->code.size());
    made[fb.members[k].out] = code_of[k];
    f->code.push_back(in);
    f->members.push_back(fb.members[k]);
  }
  for (std::size_t h = 0; h < fb.out_slots.size(); ++h) {
    f->out_slots.push_back(fb.out_slots[h]);
    f->out_instr.push_back(code_of[std::size_t(fb.out_instr[h])]);
  }
  f->parts.clear();
  for (const Step* s : {&a, &b}) {
    if (s->fused->parts.empty()) f->parts.push_back(*s);
    else f->parts.insert(f->parts.end(), s->fused->parts.begin(), s->fused->parts.end());
  }
  st.fused = std::move(f);
  return st;
}

}  // namespace

int merge_fused_passes(Program& p) {
  hoist_shape_steps(p);
  int merges = 0;
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    if (!p.steps[i].fused) continue;
    std::vector<long> by = producers(p);
    for (std::size_t j = i + 1; j < p.steps.size(); ++j) {
      const Step &a = p.steps[i], &b = p.steps[j];
      if (!b.fused || b.fused->dtype != a.fused->dtype) continue;
      if (a.fused->code.size() + b.fused->code.size() > kMaxCode) continue;
      bool shares = false, ready = true;
      for (std::size_t slot : b.in) {
        ready = ready && by[slot] < long(i);  // made before A (or an input, constant, shared value)
        const Storage* c = constant_of(p, slot);
        shares = shares || (!(c && c->size() <= 1) && std::count(a.in.begin(), a.in.end(), slot));
      }
      if (!shares || !ready || !static_shapes_may_agree(p.slot_shape[a.out], p.slot_shape[b.out])) continue;
      p.steps[i] = merged(a, b);
      p.steps.erase(p.steps.begin() + std::ptrdiff_t(j));
      by = producers(p);
      --j;
      ++merges;
    }
  }
  return merges;
}

}  // namespace th::detail
