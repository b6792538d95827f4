// Consecutive convolutions and tiling max poolings as one conv_chain step (ops/conv_chain.hpp):
// conv2d_fused / conv2d / 2 x 2 max pool_2d steps of float32, each reading the one before as
// its first operand, that one read by nothing else (so not in a training function, whose
// backward pass reads the values between the layers). The chain runs where its last link
// was; the values between its links stay in oneDNN's layouts. Where oneDNN does not take a
// link at run time (other dtypes, devices, geometries), the step runs its links one by one.
#include <map>

#include "freeze/optimize.hpp"
#include "ops/conv_chain.hpp"

namespace th::detail {

int chain_convolutions(Program& p) {
  const std::vector<long> made_by = producers(p);
  const std::vector<int> uses = reader_counts(p);
  auto link = [&](const Step& s) {
    return !s.fused && conv_chain_link(*s.op, s.attrs) && p.slot_dtype[s.out] == DType::float32 && !s.in.empty() &&
           p.slot_dtype[s.in[0]] == DType::float32;
  };
  // chains as lists of step indices, in program order
  std::vector<std::vector<std::size_t>> chains;
  std::map<std::size_t, std::size_t> chain_of_step;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const Step& s = p.steps[k];
    if (!link(s)) continue;
    const long m = made_by[s.in[0]];
    const auto before = m >= 0 ? chain_of_step.find(std::size_t(m)) : chain_of_step.end();
    if (before != chain_of_step.end() && uses[s.in[0]] == 1) {
      chains[before->second].push_back(k);
      chain_of_step[k] = before->second;
    } else {
      chain_of_step[k] = chains.size();
      chains.push_back({k});
    }
  }
  std::vector<char> drop(p.steps.size(), 0);
  int fired = 0;
  for (const std::vector<std::size_t>& c : chains) {
    bool conv = false;
    for (std::size_t k : c) conv = conv || p.steps[k].op != &pool_2d_op();
    if (c.size() < 2 || !conv) continue;
    auto chain = std::make_shared<ConvChain>();
    Step st{&conv_chain_op(), Attrs{}, {}, p.steps[c.back()].out, {}};
    std::map<std::size_t, int> operand;  // slot -> index among st.in
    for (std::size_t i = 0; i < c.size(); ++i) {
      const Step& s = p.steps[c[i]];
      ConvChain::Link l{s.op, s.attrs, s.in, s.out, s.names, {}};
      for (std::size_t j = 0; j < s.in.size(); ++j) {
        if (i > 0 && j == 0) {
          l.from.push_back(-1);
          continue;
        }
        auto [it, fresh] = operand.emplace(s.in[j], int(st.in.size()));
        if (fresh) st.in.push_back(s.in[j]), st.names.push_back(s.names[j]);
        l.from.push_back(it->second);
      }
      chain->links.push_back(std::move(l));
      if (i + 1 < c.size()) drop[c[i]] = 1;
    }
    st.attrs.sub = std::move(chain);
    p.steps[c.back()] = std::move(st);
    ++fired;
  }
  if (!fired) return 0;
  std::vector<Step> kept;
  for (std::size_t k = 0; k < p.steps.size(); ++k)
    if (!drop[k]) kept.push_back(std::move(p.steps[k]));
  p.steps = std::move(kept);
  return fired;
}

std::vector<Step> unchained(const Step& s) {
  const ConvChain* chain = sub_as<ConvChain>(s.attrs);
  if (!chain) return {s};
  std::vector<Step> r;
  for (const ConvChain::Link& l : chain->links) r.push_back(Step{l.op, l.attrs, l.in, l.out, l.names});
  return r;
}

}  // namespace th::detail
