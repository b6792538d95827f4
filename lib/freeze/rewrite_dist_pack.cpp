// Horovod's tensor fusion at freeze time: the allreduces of one call that can wait for one
// another (same reduction and dtype, none of their results read before the last of them)
// become one: their operands flattened and concatenated, one allreduce (one MPI call), and
// each result taken back out as a view (split_part) reshaped to its operand's shape. Only
// when the job has several ranks (th::dist::size() at freeze time): alone, an allreduce
// costs nothing and a packed one would copy.
#include "freeze/optimize.hpp"
#include "theta/dist.hpp"

namespace th::detail {

namespace {

// Replaces steps [first..last] of `group` (indices into p.steps, in order) by the packed
// sequence, placed where the last of them was.
void pack(Program& p, const std::vector<std::size_t>& group, std::vector<Step>& out_steps,
          const std::vector<Step>& steps) {
  const Op& reshape = *op_by_key("reshape");
  const Op& concatenate = *op_by_key("concatenate");
  const Op& split = split_part_op();
  const Op& reshape_like = *op_by_key("reshape_like");
  const Step& first = steps[group[0]];
  const DType d = p.slot_dtype[first.in[0]];
  std::vector<std::size_t> flats;
  for (std::size_t k : group) {
    const Step& s = steps[k];
    Step flat{&reshape, {}, {s.in[0]}, new_slot(p, d, {-1}), {s.names[0]}};
    flat.attrs.shape = {-1};
    flats.push_back(flat.out);
    out_steps.push_back(std::move(flat));
  }
  Step cat{&concatenate, {}, flats, new_slot(p, d, {-1}), std::vector<std::string>(flats.size(), "flattened")};
  cat.attrs.axis = 0;
  const std::size_t packed = cat.out;
  out_steps.push_back(std::move(cat));
  Step all{first.op, first.attrs, {packed}, new_slot(p, d, {-1}), {"packed"}};
  const std::size_t reduced = all.out;
  out_steps.push_back(std::move(all));
  for (std::size_t j = 0; j < group.size(); ++j) {
    const Step& s = steps[group[j]];
    std::vector<std::size_t> in{reduced};
    in.insert(in.end(), flats.begin(), flats.end());
    Step part{&split, {}, in, new_slot(p, d, {-1}), std::vector<std::string>(in.size(), "packed")};
    part.attrs.axis = 0;
    part.attrs.part = std::int64_t(j);
    const std::size_t piece = part.out;
    out_steps.push_back(std::move(part));
    out_steps.push_back(Step{&reshape_like, {}, {piece, s.in[0]}, s.out, {"packed", s.names[0]}});
  }
}

}  // namespace

int pack_allreduces(Program& p) {
  if (th::dist::size() <= 1) return 0;
  const Op* allreduce = op_by_key("allreduce");
  const std::vector<Step> steps = std::move(p.steps);
  p.steps.clear();
  std::vector<std::size_t> group;  // indices into steps
  std::vector<char> pending(p.slots, 0);  // outputs of the open group
  int packed = 0;
  auto close = [&](std::vector<Step>& out) {
    if (group.size() >= 2) {
      pack(p, group, out, steps);
      ++packed;
    } else if (group.size() == 1) {
      out.push_back(steps[group[0]]);
    }
    for (std::size_t k : group) pending[steps[k].out] = 0;
    group.clear();
  };
  std::vector<Step> out;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const Step& s = steps[k];
    bool reads = false;
    for (std::size_t i : s.in) reads = reads || (i < pending.size() && pending[i]);
    const bool is_allreduce = s.op == allreduce && !s.fused;
    const bool joins = is_allreduce && (group.empty() || (steps[group[0]].attrs.axis == s.attrs.axis &&
                                                          p.slot_dtype[steps[group[0]].in[0]] == p.slot_dtype[s.in[0]]));
    if (reads || (is_allreduce && !joins)) close(out);
    if (is_allreduce) {
      group.push_back(k);
      if (s.out >= pending.size()) pending.resize(s.out + 1, 0);
      pending[s.out] = 1;
      continue;
    }
    out.push_back(s);
  }
  close(out);
  p.steps = std::move(out);
  return packed;
}

}  // namespace th::detail
