// Dead code elimination: keeps only the steps, constants and shared reads that an output
// or an update needs (rewrites leave their replaced steps behind for this pass). A scan
// whose saved values (kept for a backward pass) nobody reads runs its body without them.
#include "freeze/optimize.hpp"

namespace th::detail {

int eliminate_dead(Program& p) {
  std::vector<bool> live(p.slots, false);
  for (std::size_t o : p.outputs) live[o] = true;
  for (const auto& [n, s] : p.updates) live[s] = true;
  for (std::size_t k = p.steps.size(); k-- > 0;)
    if (live[p.steps[k].out])
      for (std::size_t i : p.steps[k].in) live[i] = true;
  const std::size_t before = p.steps.size();
  std::vector<Step> kept;
  kept.reserve(before);
  for (Step& s : p.steps)
    if (live[s.out]) kept.push_back(std::move(s));
  p.steps = std::move(kept);
  auto dead = [&](const auto& e) { return !live[e.first]; };
  p.constants.erase(std::remove_if(p.constants.begin(), p.constants.end(), dead), p.constants.end());
  p.shared.erase(std::remove_if(p.shared.begin(), p.shared.end(), dead), p.shared.end());
  return int(before - p.steps.size());
}

int drop_scan_saves(Program& p) {
  // the slots whose saved parts (or whole tuple, read by anything but scan_part) are read
  std::vector<char> saves_read(p.slots, 0);
  for (const Step& r : p.steps)
    for (std::size_t i : r.in)
      if (r.op != &scan_part_op() || std::size_t(r.attrs.part) >= scan_user_outputs(r.attrs)) saves_read[i] = 1;
  int dropped = 0;
  for (Step& s : p.steps)
    if (s.op == &scan_op() && s.attrs.all && !saves_read[s.out]) s.attrs.all = false, ++dropped;
  return dropped;
}

}  // namespace th::detail
