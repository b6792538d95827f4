// Dead code elimination: keeps only the steps, constants and shared reads that an output
// or an update needs (rewrites leave their replaced steps behind for this pass).
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

}  // namespace th::detail
