// Freezing: th::function copies the part of the recorded graph that its outputs and
// updates reach into an immutable Program (steps over numbered value slots), separate
// from the tape, and optimizes it (freeze/optimize.cpp); freeze/execute.cpp runs it. Nodes
// that depend on no input and no shared variable are folded to their (already computed)
// values.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <cmath>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/backend.hpp"
#include "core/stack_or_heap.hpp"
#include "cpu/fused.hpp"
#include "cpu/native.hpp"
#include "freeze/optimize.hpp"
#include "freeze/program.hpp"
#include "ops/subprograms.hpp"

namespace th::detail {

bool lossless(DType from, DType to) {
  if (from == to) return true;
  if (from == DType::string || to == DType::string) return false;  // text converts with astype only
  if (from == DType::boolean) return true;
  if (is_floating(to)) return !is_floating(from) || to == DType::float64;  // int -> float, f32 -> f64
  return from == DType::int32 && to == DType::int64;
}


std::uint64_t profile_clock() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_ia32_rdtsc();
#else
  return std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count());
#endif
}

std::size_t new_slot(Program& p, DType dtype, Shape shape) {
  p.slot_dtype.push_back(dtype);
  p.slot_shape.push_back(std::move(shape));
  return p.slots++;
}

std::shared_ptr<Program> freeze(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, bool single,
                                const Updates& updates, const Options& options) {
  auto p = std::make_shared<Program>();
  p->options = options;
  p->single = single;
  std::unordered_map<const Node*, std::size_t> slot;
  std::unordered_map<const Node*, bool> dynamic;  // depends on an input or a shared variable
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Node& n = node_of(inputs[i], "function");
    if (n.kind != NodeKind::placeholder)
      throw TypeError("function: input " + std::to_string(i) + (n.name.empty() ? "" : " '" + n.name + "'") +
                      " is not a placeholder (make inputs with th::dvector, th::matrix, th::placeholder, ...)");
    if (slot.count(&n)) throw ValueError("function: input '" + n.name + "' is listed twice");
    slot[&n] = new_slot(*p, n.dtype, n.shape);
    dynamic[&n] = true;
    p->input_slots.push_back(slot[&n]);
    p->input_meta.push_back(Meta{n.dtype, n.shape, {}});
    p->input_names.push_back(n.name);
  }
  std::vector<Tensor> streams;  // the random streams' states that draws read
  // Post-order (inputs first), iterative: graphs can be deep.
  auto visit = [&](const Tensor& root) {
    std::vector<std::pair<Tensor, std::size_t>> stack{{root, 0}};
    node_of(root, "function");
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      const Node* n = t.node().get();
      if (slot.count(n)) {
        stack.pop_back();
        continue;
      }
      if (next < n->inputs.size()) {
        Tensor child = n->inputs[next++];
        if (!slot.count(child.node().get())) stack.push_back({child, 0});
        continue;
      }
      Tensor node = t;
      stack.pop_back();
      const std::size_t s = new_slot(*p, n->dtype, n->shape);
      slot[n] = s;
      if (n->kind == NodeKind::placeholder)
        throw ValueError("function: the outputs depend on placeholder '" + display_name(*n) +
                         "', which is not among the inputs");
      if (n->kind == NodeKind::shared) {
        p->shared.push_back({s, node.node()});
        dynamic[n] = true;
        continue;
      }
      bool dyn = false;
      for (const Tensor& in : n->inputs) dyn = dyn || dynamic[in.node().get()];
      dynamic[n] = dyn;
      if (!dyn) {  // a constant, or folded at freeze time
        p->constants.push_back({s, *n->value});
        continue;
      }
      if (n->op == &random_draw_op() &&
          std::none_of(streams.begin(), streams.end(), [&](const Tensor& t) { return t.node() == n->inputs[0].node(); }))
        streams.push_back(n->inputs[0]);
      Step st{n->op, n->attrs, {}, s, {}};
      for (const Tensor& in : n->inputs) {
        st.in.push_back(slot.at(in.node().get()));
        st.names.push_back(display_name(*in.node()));
      }
      p->steps.push_back(std::move(st));
    }
  };
  for (const Tensor& o : outputs) {
    visit(o);
    p->outputs.push_back(slot.at(o.node().get()));
  }
  for (const auto& [sv, value] : updates) {
    const Node& target = node_of(sv, "function updates");
    const Node& v = node_of(value, "function updates");
    if (target.kind != NodeKind::shared)
      throw TypeError("function: an update target must be a th::shared variable" +
                      (target.name.empty() ? std::string() : " [" + target.name + "]"));
    if (v.shape.size() != target.shape.size() || !lossless(v.dtype, target.dtype))
      throw TypeError("function: the update of '" + target.name + "' (" + dtype_name(target.dtype) + ", " +
                      std::to_string(target.shape.size()) + "-d) has a new value of type " + dtype_name(v.dtype) +
                      " with " + std::to_string(v.shape.size()) + " dimensions");
    for (const auto& [other, unused] : p->updates)
      if (other.get() == &target) throw ValueError("function: '" + target.name + "' is updated twice");
    visit(value);
    p->updates.push_back({sv.node(), slot.at(value.node().get())});
  }
  // A random stream's state (seed, calls) advances once per call, with the other updates
  // (so a call that throws draws the same numbers again), unless the user updates it.
  for (const Tensor& state : streams) {
    if (std::any_of(updates.begin(), updates.end(), [&](const auto& u) { return u.first.node() == state.node(); }))
      continue;
    const Tensor next = state + make_constant(value_of(tensor(std::vector<std::int64_t>{0, 1}, {2}), "function"));
    visit(next);
    p->updates.push_back({state.node(), slot.at(next.node().get())});
  }
  if (options.mode != Mode::debug) optimize(*p);  // debug runs the graph as recorded
  finish_program(*p);
  return p;
}

void finish_program(Program& p) {
  p.stripes.clear();
  if (!p.updates.empty()) {
    for (const auto& [s, n] : p.shared) p.stripes.push_back(lock_stripe(n.get()));
    for (const auto& [n, s] : p.updates) p.stripes.push_back(lock_stripe(n.get()));
    std::sort(p.stripes.begin(), p.stripes.end());
    p.stripes.erase(std::unique(p.stripes.begin(), p.stripes.end()), p.stripes.end());
  }
  plan_memory(p);
  p.prof_ticks.assign(p.steps.size(), 0.0);
  p.fallbacks = std::make_unique<std::atomic<std::uint64_t>[]>(p.steps.size());  // zeroed
  p.ticks0 = profile_clock();
  p.time0 = std::chrono::steady_clock::now();
}


}  // namespace th::detail
