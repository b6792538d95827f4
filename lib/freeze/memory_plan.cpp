// The memory plan of a frozen function: each step's operands are released as soon as the
// last step reading them has run, so a call holds only the values still needed (its peak
// memory is the largest live set, not the sum of all steps) and each freed buffer goes
// straight back to the allocator's cache for the next step to reuse. The buffers' objects
// (and small buffers whole, up to kKeepBytes) stay with the call's frame, for the same step
// of the next call to write into: a warm call with unchanged shapes allocates nothing.
#include "freeze/program.hpp"

namespace th::detail {

void plan_memory(Program& p) {
  constexpr std::size_t kNever = std::size_t(-1);
  std::vector<std::size_t> last(p.slots, kNever);  // the last step reading each slot
  for (std::size_t k = 0; k < p.steps.size(); ++k)
    for (std::size_t s : p.steps[k].in) last[s] = k;
  std::vector<char> kept(p.slots, 0);  // read after the steps: outputs, updates
  for (std::size_t o : p.outputs) kept[o] = true;
  for (const auto& [n, s] : p.updates) kept[s] = true;
  p.made.assign(p.slots, 0);
  std::vector<char> fallback_only(p.slots, 0);  // written only when a fused pass runs op by op
  for (const Step& st : p.steps) {
    p.made[st.out] = true;
    if (!st.fused) continue;
    for (std::size_t s : st.fused->out_slots) p.made[s] = true;
    for (const auto& r : st.fused->reductions) p.made[r.step.out] = true;
    for (const Step& t : st.fused->tail_steps) p.made[t.out] = true;
  }
  auto fallback = [&](std::size_t s) {
    if (!p.made[s]) p.made[s] = fallback_only[s] = true;
  };
  for (const Step& st : p.steps) {
    if (!st.fused) continue;
    for (const Step& m : st.fused->members) fallback(m.out);
    for (const Step& part : st.fused->parts) {
      fallback(part.out);
      if (!part.fused) continue;
      for (std::size_t s : part.fused->out_slots) fallback(s);
      for (const Step& m : part.fused->members) fallback(m.out);
    }
  }
  p.exposable = kept;
  p.held = p.input_slots;
  for (const auto& sh : p.shared) p.held.push_back(sh.first);
  p.held_fallback.clear();
  for (std::size_t s = 0; s < p.slots; ++s)
    if (p.made[s]) (fallback_only[s] ? p.held_fallback : p.held).push_back(s);
  // a call with the last call's layouts finds these steps' values, kept by the frame, unchanged
  p.shape_only.assign(p.steps.size(), 0);
  for (std::size_t k = 0; k < p.steps.size(); ++k) p.shape_only[k] = p.steps[k].op->shape_only;
  p.constant_slot.assign(p.slots, 0);
  for (const auto& c : p.constants) p.constant_slot[c.first] = true;
  p.release.assign(p.steps.size(), {});
  for (std::size_t s = 0; s < p.slots; ++s)
    if (last[s] != kNever && !kept[s]) p.release[last[s]].push_back(s);
}

namespace {
// Keeps slot `slot`'s buffer with the frame for the same step of the next call (which takes
// it over if nothing else holds it then), or lets it go: a small buffer a step wrote stays
// whole, even while a view of it is in use; a large one the frame alone holds stays hollow
// (its memory back in the allocator's cache for the steps after, its buffer object kept:
// alloc_storage refills it); a large one still held elsewhere waits for the views of it to
// be retired, and at the end of the call (`last`) is let go of.
__attribute__((always_inline)) inline void keep_or_let_go(const Program& p, Frame& f, std::size_t slot, bool last) {
  Storage& v = f.vals[slot];
  if (p.constant_slot[slot]) return;  // the program holds it anyway
  if (!p.made[slot] || !v.buf) return v.buf.reset();
  if (v.buf->bytes <= kKeepBytes) {
    // a result or an update's value, or held elsewhere too when the call ends: other
    // threads may read it, so the next call checks with held_alone before writing it
    if (last && (p.exposable[slot] || v.buf.use_count() != 1)) f.exposed[slot] = 1;
    return;
  }
  if (held_alone(v.buf)) {  // (it may have been a result or a shared value: freeing writes)
    if (v.buf->device.type == Device::Type::cpu) hollow(*v.buf);
    else v.buf.reset();
  } else if (last) {
    v.buf.reset();
  }
}
}  // namespace

void note_output(Frame& f, const Step& s) {
  std::size_t owner = kNoSlot;
  const std::shared_ptr<Buffer>& b = f.vals[s.out].buf;
  for (std::size_t in : s.in)
    if (b && f.vals[in].buf == b) {
      owner = f.alias[in] == kNoSlot ? in : f.alias[in];
      break;
    }
  f.alias[s.out] = owner;
}

void retire(const Program& p, Frame& f, std::size_t slot) {
  const std::size_t owner = f.alias[slot];
  if (owner == kNoSlot) {
    f.retired[slot] = 1;
    return keep_or_let_go(p, f, slot, false);
  }
  f.vals[slot].buf.reset();  // a view: the buffer is its owner's
  if (f.retired[owner]) keep_or_let_go(p, f, owner, false);  // perhaps the frame's alone now
}

void retire_all(const Program& p, Frame& f) {
  if (f.exposed.size() < p.slots) return;  // (a first call that failed before its steps: nothing held)
  const bool wide = f.fell_back;
  for_held(p, wide, [&](std::size_t s) {  // the views first: then the owners see who else holds theirs
    if (f.alias[s] != kNoSlot) {
      if (p.exposable[s] && p.made[f.alias[s]]) f.exposed[f.alias[s]] = 1;  // a result or an update views it
      f.vals[s].buf.reset();
    }
  });
  for_held(p, wide, [&](std::size_t s) {
    if (f.alias[s] == kNoSlot && f.vals[s].buf) keep_or_let_go(p, f, s, true);  // (most hold nothing)
  });
}

}  // namespace th::detail
