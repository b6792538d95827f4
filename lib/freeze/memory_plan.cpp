// The memory plan of a frozen function: each step's operands are released as soon as the
// last step reading them has run, so a call holds only the values still needed (its peak
// memory is the largest live set, not the sum of all steps) and each freed buffer goes
// straight back to the allocator's cache for the next step to reuse. Small buffers that
// steps wrote (up to kKeepBytes) stay with the call's frame instead, for the same step of
// the next call to write into: at those sizes the cost of a step is its allocations.
#include "freeze/program.hpp"

namespace th::detail {

void plan_memory(Program& p) {
  constexpr std::size_t kNever = std::size_t(-1);
  std::vector<std::size_t> last(p.slots, kNever);  // the last step reading each slot
  for (std::size_t k = 0; k < p.steps.size(); ++k)
    for (std::size_t s : p.steps[k].in) last[s] = k;
  std::vector<bool> kept(p.slots, false);  // read after the steps: outputs, updates
  for (std::size_t o : p.outputs) kept[o] = true;
  for (const auto& [n, s] : p.updates) kept[s] = true;
  p.made.assign(p.slots, false);
  for (const Step& st : p.steps) {
    p.made[st.out] = true;
    if (!st.fused) continue;
    for (std::size_t s : st.fused->out_slots) p.made[s] = true;
    for (const Step& m : st.fused->members) p.made[m.out] = true;  // written when it falls back
    for (const auto& r : st.fused->reductions) p.made[r.step.out] = true;
    for (const Step& t : st.fused->tail_steps) p.made[t.out] = true;
    for (const Step& part : st.fused->parts) {
      p.made[part.out] = true;
      if (part.fused)
        for (const Step& m : part.fused->members) p.made[m.out] = true;
    }
  }
  // a call with the last call's layouts finds these steps' values, kept by the frame, unchanged
  p.shape_only.assign(p.steps.size(), false);
  for (std::size_t k = 0; k < p.steps.size(); ++k) p.shape_only[k] = p.steps[k].op->shape_only;
  p.constant_slot.assign(p.slots, false);
  for (const auto& c : p.constants) p.constant_slot[c.first] = true;
  p.release.assign(p.steps.size(), {});
  for (std::size_t s = 0; s < p.slots; ++s)
    if (last[s] != kNever && !kept[s]) p.release[last[s]].push_back(s);
}

}  // namespace th::detail
