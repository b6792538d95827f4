// Elementwise fusion: a tree of float unary/binary steps (and the broadcast_like/sum_to_like
// of gradients, which are no-ops when the shapes agree at run time; see fused_inputs_fit)
// whose intermediate results have no other reader becomes one fused step at the position of its last step, run by
// cpu::run_fused as one blocked pass over memory (no full-size temporaries). Every op in it
// computes in one float dtype (no promotion) so the fused kernel needs no conversion; the
// original steps are kept for the fallback (see Fused in program.hpp).
#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

constexpr std::size_t kMaxMembers = 32;
// A value read by several fused chains (and nothing else) is recomputed in each instead of
// written to memory and read back, when its chain is this short and its readers this few:
// the backward of tanh/sigmoid then re-derives their outputs from the inputs in registers.
constexpr std::size_t kMaxRecompute = 8;
constexpr int kMaxReaders = 4;

// Whether sum_to_like(x, like) sums over some axis by the static shapes (-1: known at run
// time): `like` has fewer dims than x (a bias's gradient summed over the batch), or a dim of
// 1 where x's is not known to be 1 (a row's sum kept as a column). A fused pass takes a
// sum_to_like only where it is a no-op, so a chain with such a step would always run op by
// op: the chain ends there instead (the parts before and after it fuse, the sum runs as
// its op). Only a batch of one makes it a no-op after all, and then costs a pass.
bool sums_over_an_axis(const Shape& x, const Shape& like) {
  if (like.size() < x.size()) return true;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (like[like.size() - x.size() + i] == 1 && x[i] != 1) return true;
  return false;
}

}  // namespace

std::optional<FusedInstr> fused_instr_of(const Program& p, const Step& s) {
  const DType dt = p.slot_dtype[s.out];
  if (s.fused || (dt != DType::float32 && dt != DType::float64) || s.in.empty()) return std::nullopt;
  if (s.op == &sum_to_like_op() && sums_over_an_axis(p.slot_shape[s.in[0]], p.slot_shape[s.in[1]]))
    return std::nullopt;
  if (s.op == &broadcast_like_op() || s.op == &sum_to_like_op())  // the second operand: its shape only
    return p.slot_dtype[s.in[0]] != dt ? std::nullopt
                                       : std::optional<FusedInstr>(FusedInstr{
                                             false, s.op == &sum_to_like_op() ? FusedInstr::kSumToLike
                                                                              : FusedInstr::kBroadcastLike, 0, 0});
  for (std::size_t i : s.in)
    if (p.slot_dtype[i] != dt) return std::nullopt;
#define THETA_MATCH_UNARY(name, ...) \
  if (s.op == &unary_op(UnaryKind::name)) return FusedInstr{true, int(UnaryKind::name), 0, 0};
  THETA_UNARY_OPS(THETA_MATCH_UNARY)
#undef THETA_MATCH_UNARY
  for (BinaryKind k : {BinaryKind::add, BinaryKind::sub, BinaryKind::mul, BinaryKind::div, BinaryKind::pow,
                       BinaryKind::maximum, BinaryKind::minimum})
    if (s.op == &binary_op(k)) return FusedInstr{false, int(k), 0, 0};
  return std::nullopt;
}

const Op& fused_op() {
  static const Op op{"fused", {1, -1}, 0, nullptr, nullptr, nullptr};
  return op;
}

int fuse_elementwise(Program& p) {
  std::vector<int> uses(p.slots, 0);
  for (const Step& s : p.steps)
    for (std::size_t i : s.in) ++uses[i];
  for (std::size_t o : p.outputs) ++uses[o];
  for (const auto& [n, s] : p.updates) ++uses[s];
  const std::vector<long> made_by = producers(p);
  // group[k]: the steps fused into step k (k its last), in step order; empty when k joined another.
  std::vector<std::vector<std::size_t>> group(p.steps.size());
  std::vector<std::optional<FusedInstr>> instr(p.steps.size());
  std::vector<int> fused_reads(p.slots, 0);  // reads as a value by fusable steps
  auto values_of = [&](std::size_t k) { return instr[k]->identity() ? 1 : p.steps[k].in.size(); };  // like: shape only
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    instr[k] = fused_instr_of(p, p.steps[k]);
    if (instr[k])
      for (std::size_t v = 0; v < values_of(k); ++v) ++fused_reads[p.steps[k].in[v]];
  }
  // recompute[t]: step t's chain is copied into each of its readers (all of them fused);
  // a reader that has no room for it reads it from memory, and emit[t] keeps t a step.
  std::vector<bool> absorbed(p.steps.size(), false), recompute(p.steps.size(), false),
      emit(p.steps.size(), false);
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    if (!instr[k]) continue;
    std::vector<std::size_t> members;
    for (std::size_t v = 0; v < values_of(k); ++v) {
      const std::size_t i = p.steps[k].in[v];
      const long t = made_by[i];
      if (t < 0 || !instr[std::size_t(t)]) continue;
      const std::size_t ts = std::size_t(t);
      const auto& sub = group[ts];
      const bool shared = uses[i] > 1;
      if (shared) {
        const bool copyable = recompute[ts] || (uses[i] == fused_reads[i] && uses[i] <= kMaxReaders &&
                                                sub.size() <= kMaxRecompute);
        if (!copyable) continue;  // never copied: t stays a step
        if (members.size() + sub.size() + 1 > kMaxMembers) {
          emit[ts] = true;  // this reader reads it from memory
          continue;
        }
        recompute[ts] = true;
      } else if (absorbed[ts] || members.size() + sub.size() + 1 > kMaxMembers) {
        continue;
      }
      members.insert(members.end(), sub.begin(), sub.end());
      absorbed[ts] = true;
    }
    members.push_back(k);
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());
    group[k] = std::move(members);
  }
  // The fused step of a sorted member list writing the results of `heads` (the last one
  // is the step's own output).
  auto build = [&](const std::vector<std::size_t>& members, const std::vector<std::size_t>& heads,
                   std::vector<Step> parts) {
    auto f = std::make_shared<Fused>();
    f->dtype = p.slot_dtype[p.steps[heads.back()].out];
    Step st{&fused_op(), {}, {}, p.steps[heads.back()].out, {}};
    std::map<std::size_t, int> operand;  // slot -> operand code (external: -1 - index)
    auto ref = [&](std::size_t slot, const std::string& name) {
      auto it = operand.find(slot);
      if (it != operand.end()) return it->second;
      st.in.push_back(slot);
      st.names.push_back(name);
      return operand[slot] = -int(st.in.size());
    };
    for (std::size_t m : members) {
      const Step& s = p.steps[m];
      FusedInstr in = *instr[m];
      in.a = ref(s.in[0], s.names[0]);
      if (!in.unary) in.b = ref(s.in[1], s.names[1]);
      operand[s.out] = int(f->code.size());
      f->code.push_back(in);
      f->members.push_back(s);
    }
    for (std::size_t h : heads) {
      f->out_slots.push_back(p.steps[h].out);
      f->out_instr.push_back(operand.at(p.steps[h].out));
    }
    f->parts = std::move(parts);
    st.fused = std::move(f);
    return st;
  };
  // Chains that read a common input are merged into one pass writing all their outputs
  // (the forward and the backward of W3 read a, b, c once), as long as no step between them
  // reads the earlier one's output (the merged step runs where the later one did).
  struct Cluster {
    std::vector<std::size_t> heads, members;
    std::set<std::size_t> outs, reads;
    bool open = true;
  };
  std::vector<Cluster> clusters;
  std::vector<long> cluster_at(p.steps.size(), -1);  // the step that ends a cluster -> cluster
  auto reads_of = [&](const std::vector<std::size_t>& members) {
    std::set<std::size_t> r, made;
    for (std::size_t m : members) made.insert(p.steps[m].out);
    for (std::size_t m : members)
      for (std::size_t i : p.steps[m].in)
        if (!made.count(i)) r.insert(i);
    return r;
  };
  long last = -1;  // the cluster that may still take a chain
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    if (absorbed[k] && !emit[k]) continue;
    const Step& s = p.steps[k];
    const bool head = instr[k].has_value();
    Cluster* c = last >= 0 ? &clusters[std::size_t(last)] : nullptr;
    if (c && c->open) {
      bool touches = false;
      for (std::size_t i : s.in) touches = touches || c->outs.count(i);
      if (head) {
        const std::set<std::size_t> r = reads_of(group[k]);
        bool reads_c = false, shares = false;
        for (std::size_t i : r) {
          reads_c = reads_c || c->outs.count(i);
          const Storage* k1 = constant_of(p, i);  // a C++ number in both is no reason to merge
          shares = shares || (c->reads.count(i) && !(k1 && k1->size() <= 1));
        }
        std::vector<std::size_t> u;
        std::set_union(c->members.begin(), c->members.end(), group[k].begin(), group[k].end(), std::back_inserter(u));
        // static shapes that cannot agree (a 0-d cost and a gradient) would always fall back
        // to the chains one by one
        const bool may_agree = static_shapes_may_agree(p.slot_shape[s.out], p.slot_shape[p.steps[c->heads.back()].out]);
        if (!reads_c && shares && may_agree && p.slot_dtype[s.out] == p.slot_dtype[p.steps[c->heads.back()].out] &&
            u.size() <= 2 * kMaxMembers) {
          cluster_at[c->heads.back()] = -1;
          c->heads.push_back(k);
          c->members = std::move(u);
          c->outs.insert(s.out);
          c->reads = reads_of(c->members);
          cluster_at[k] = last;
          continue;
        }
      }
      if (touches) c->open = false;
    }
    if (head) {
      clusters.push_back({{k}, group[k], {s.out}, reads_of(group[k]), true});
      last = long(clusters.size()) - 1;
      cluster_at[k] = last;
    }
  }
  int fused = 0;
  std::vector<Step> out;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    if (absorbed[k] && !emit[k]) continue;
    if (!instr[k]) {
      out.push_back(p.steps[k]);
      continue;
    }
    if (cluster_at[k] < 0) continue;  // merged into a later step
    const Cluster& c = clusters[std::size_t(cluster_at[k])];
    if (c.members.size() < 2) {
      out.push_back(p.steps[k]);
      continue;
    }
    std::vector<Step> parts;
    if (c.heads.size() > 1)
      for (std::size_t h : c.heads) parts.push_back(group[h].size() < 2 ? p.steps[h] : build(group[h], {h}, {}));
    out.push_back(build(c.members, c.heads, std::move(parts)));
    fused += int(c.members.size());
  }
  p.steps = std::move(out);
  return fused;
}

}  // namespace th::detail
