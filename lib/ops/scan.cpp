// th::scan (API.md section 12): a node holding its body as a frozen sub-program, run in a
// loop by the node's kernel (Theano's Scan op; the STYLE guide's "a node holding a
// sub-program"). Freezing never unrolls it: one step runs any number of iterations.
//
// The node's operands are the sequences, the initial states and the loop invariants (the
// non-sequences and every value the body reads without computing it from the step's inputs:
// weights, closures, outer placeholders), which are hoisted out of the body and computed
// once. Its result is a tuple (several outputs: one node, one loop) that scan_part reads.
//
// Gradients (back-propagation through time): a recorded scan also saves, stacked over the
// steps, the body's intermediate values that the body's VJP reads (a GRU's gates, a dropout
// mask), so the backward pass recomputes nothing and draws nothing again. The VJP is another
// scan, walking the steps backwards over the output gradients, the saved values and the
// previous states, carrying the states' gradients and summing the invariants' gradients in
// last-only outputs (no per-step copies of a weight's gradient). Being a scan itself, it
// has a gradient too (grad of grad). A frozen function that takes no gradient runs the body
// without the saved values (lib/freeze/rewrite_dce.cpp).
#include <algorithm>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "ops/op.hpp"
#include "ops/subprograms.hpp"
#include "theta/autodiff.hpp"
#include "theta/control.hpp"
#include "theta/function.hpp"

namespace th::detail {

namespace {

const Tensor none{};

// ---- graph walks ---------------------------------------------------------------------------------

// Every node reachable from `roots` (roots included), stopping at nodes in `stop`.
template <class Visit>
void walk(const std::vector<Tensor>& roots, const std::unordered_set<const Node*>& stop, Visit&& visit) {
  std::unordered_set<const Node*> seen;
  std::vector<Tensor> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    Tensor t = std::move(stack.back());
    stack.pop_back();
    const Node* n = t.node().get();
    if (!seen.insert(n).second) continue;
    visit(t);
    if (stop.count(n)) continue;
    for (const Tensor& in : n->inputs) stack.push_back(in);
  }
}

// Per node of the body (ancestors of `outs`): whether it depends on the step's inputs
// `inputs` (`step`) or on a random draw, which changes from step to step as well.
std::unordered_map<const Node*, bool> step_dependence(const std::vector<Tensor>& outs,
                                                      const std::unordered_set<const Node*>& inputs) {
  std::unordered_map<const Node*, bool> dep;
  std::vector<std::pair<Tensor, std::size_t>> stack;
  for (const Tensor& o : outs) {
    if (dep.count(o.node().get())) continue;
    stack.push_back({o, 0});
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      const Node* n = t.node().get();
      if (inputs.count(n)) {
        dep[n] = true;
        stack.pop_back();
        continue;
      }
      if (next < n->inputs.size()) {
        const Tensor& c = n->inputs[next++];
        if (!dep.count(c.node().get())) stack.push_back({c, 0});
        continue;
      }
      bool d = n->op == &random_draw_op();
      for (const Tensor& c : n->inputs) d = d || dep.at(c.node().get());
      dep[n] = d;
      stack.pop_back();
    }
  }
  return dep;
}

// ---- the ops -------------------------------------------------------------------------------------

std::int64_t steps_of(const Op& op, const ScanBody& b, const std::vector<const Storage*>& in) {
  if (b.n_seq == 0) return b.n_steps;
  const std::int64_t t = in[0]->shape[0];
  for (std::size_t i = 1; i < b.n_seq; ++i)
    if (in[i]->shape[0] != t)
      throw ShapeError(std::string(op.name) + ": the sequences have different lengths (" + std::to_string(t) + " and " +
                       std::to_string(in[i]->shape[0]) + "); slice them to one length or pass ScanOptions::n_steps");
  return t;
}

Meta infer_scan(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const ScanBody& b = *sub_as<ScanBody>(a);
  if (in.size() != b.n_seq + b.n_state + b.n_const) throw_shape(op, "wrong number of operands", in);
  for (std::size_t i = 0; i < b.n_seq; ++i)
    if (in[i].shape.empty()) throw_shape(op, "sequence " + std::to_string(i) + " has no axis to step along", in);
  return {DType::float64, {0}};
}

// A view of row `i` of `s` (its axis 0 dropped).
Storage row(const Storage& s, std::int64_t i) {
  Storage v;
  v.buf = s.buf;
  v.dtype = s.dtype;
  v.offset = s.offset + i * s.strides[0];
  v.shape.assign(s.shape.begin() + 1, s.shape.end());
  v.strides.assign(s.strides.begin() + 1, s.strides.end());
  return v;
}

Storage forward_scan(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  offer_for_reuse(nullptr);  // (the body's own steps allocate their values)
  const ScanBody& b = *sub_as<ScanBody>(a);
  const std::size_t ns = b.n_seq, nst = b.n_state, nc = b.n_const;
  const std::int64_t steps = steps_of(op, b, in);
  const Function& f = b.body(a.all);
  const std::size_t n_out = a.all ? b.out_dtype.size() : b.n_user;
  std::vector<Tensor> args(ns + nst + nc);
  std::vector<Storage> state(nst);
  for (std::size_t j = 0; j < nst; ++j) state[j] = *in[ns + j];
  for (std::size_t m = 0; m < nc; ++m) args[ns + nst + m] = make_constant(*in[ns + nst + m]);
  std::vector<Storage> out(n_out);
  for (std::int64_t k = 0; k < steps; ++k) {
    const std::int64_t at = b.backwards ? steps - 1 - k : k;
    for (std::size_t i = 0; i < ns; ++i) args[i] = make_constant(row(*in[i], at));
    for (std::size_t j = 0; j < nst; ++j) args[ns + j] = make_constant(state[j]);
    const Result r = f.call(args);
    for (std::size_t o = 0; o < n_out; ++o) {
      const Storage& v = value_of(r[o], op.name);
      const int j = b.feed[o];
      if (k == 0) {
        if (j >= 0 && !same_dims(v.shape, in[ns + std::size_t(j)]->shape))
          throw ShapeError(std::string(op.name) + ": output " + std::to_string(o) + " of the step has shape " +
                           shape_str(v.shape) + " but its initial value has shape " +
                           shape_str(in[ns + std::size_t(j)]->shape) +
                           " (the value fed back must keep its shape)");
        Shape s = v.shape;
        if (!b.last_only[o]) s.insert(s.begin(), steps);
        out[o] = alloc_storage(v.dtype, s, v.device());
      } else if (!same_dims(v.shape, b.last_only[o] ? out[o].shape : row(out[o], 0).shape)) {
        throw ShapeError(std::string(op.name) + ": output " + std::to_string(o) + " of the step has shape " +
                         shape_str(v.shape) + " at step " + std::to_string(k) + " but had shape " +
                         shape_str(b.last_only[o] ? out[o].shape : row(out[o], 0).shape) +
                         " at step 0 (each step must give one shape to be stacked)");
      }
      const Storage dst = b.last_only[o] ? out[o] : row(out[o], k);
      backend_for(dst.device()).copy(v, dst);
      if (j >= 0) state[std::size_t(j)] = dst;
    }
  }
  if (steps == 0)  // each output's shape from its state or its static shape
    for (std::size_t o = 0; o < n_out; ++o) {
      const int j = b.feed[o];
      if (b.last_only[o]) {
        out[o] = *in[ns + std::size_t(j)];
        continue;
      }
      int like = j;  // (a stacked copy of a state has its shape too)
      for (std::size_t k = 0; k < nst; ++k)
        if (b.state_values[k] == int(o)) like = int(k);
      Shape s = like >= 0 ? in[ns + std::size_t(like)]->shape : b.out_shape[o];
      for (auto& d : s) d = std::max<std::int64_t>(d, 0);
      s.insert(s.begin(), 0);
      out[o] = alloc_storage(b.out_dtype[o], s, ns ? in[0]->device() : th::cpu());
    }
  return make_tuple(std::move(out));
}

Meta infer_part(const Op&, const std::vector<Meta>&, const Attrs& a) {
  const ScanBody& b = *sub_as<ScanBody>(a);
  const auto o = std::size_t(a.part);
  Shape s = b.out_shape[o];
  if (!b.last_only[o]) s.insert(s.begin(), b.static_steps);
  return {b.out_dtype[o], s};
}

Storage forward_part(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  return tuple_part(op, *in[0], std::size_t(a.part));
}

std::vector<Tensor> vjp_scan(const Op&, const VjpCtx& c);

// (scan_part's gradient is gathered by th::grad and given to the scan's VJP.)
std::vector<Tensor> vjp_part(const Op&, const VjpCtx&) { return {none}; }

const Op op_scan{"scan", {0, -1}, 0, &infer_scan, &forward_scan, &vjp_scan, ~0u};
const Op op_scan_part{"scan_part", {1, 1}, 0, &infer_part, &forward_part, &vjp_part, ~0u};

Tensor part(const Tensor& tuple, const std::shared_ptr<const SubProgram>& b, std::size_t o) {
  Attrs a;
  a.sub = b;
  a.part = std::int64_t(o);
  return apply(op_scan_part, {tuple}, std::move(a));
}

// ---- building a scan node --------------------------------------------------------------------------

/// A loop before it becomes a node: the body (its inputs and outputs) and the operands.
struct Loop {
  std::vector<Tensor> seq_in, state_in, const_in, outs;
  std::vector<int> feed;
  std::vector<char> last_only;
  std::vector<Tensor> seqs, inits, consts;  // the operands
  bool backwards = false;
  std::int64_t n_steps = -1;

  /// The body program's inputs, in its order: the slices, the states, the invariants.
  std::vector<Tensor> inputs() const {
    std::vector<Tensor> all = seq_in;
    all.insert(all.end(), state_in.begin(), state_in.end());
    all.insert(all.end(), const_in.begin(), const_in.end());
    return all;
  }
  /// Their nodes; without the invariants with `step_only` (what changes from step to step).
  std::unordered_set<const Node*> input_nodes(bool step_only = false) const {
    std::unordered_set<const Node*> r;
    for (const auto* v : {&seq_in, &state_in, &const_in})
      if (!step_only || v != &const_in)
        for (const Tensor& t : *v) r.insert(t.node().get());
    return r;
  }
};

Tensor body_placeholder(const Node& like, const Shape& shape, std::string name) {
  return make_leaf(NodeKind::placeholder, like.dtype, shape, std::nullopt, std::move(name));
}

// Hoists the loop invariants: each value the body reads that depends on none of its inputs
// (and on no random draw) becomes a new body input, its operand the value itself, computed
// once outside the loop. Constants stay in the body (folded there); a draw keeps reading
// its stream's state (its update is the body's).
void hoist(Loop& L) {
  const std::unordered_set<const Node*> inputs = L.input_nodes();
  const auto dep = step_dependence(L.outs, inputs);
  std::vector<std::pair<Tensor, Tensor>> replace;
  std::unordered_set<const Node*> hoisted;
  auto hoistable = [&](const Tensor& t) {
    const Node& n = *t.node();
    return !dep.at(&n) && n.recorded && !hoisted.count(&n);
  };
  auto add = [&](const Tensor& t) {
    hoisted.insert(t.node().get());
    const Node& n = *t.node();
    Tensor ph = body_placeholder(n, n.shape, n.name.empty() ? display_name(n) : n.name);
    replace.push_back({t, ph});
    L.const_in.push_back(ph);
    L.consts.push_back(t);
  };
  for (const Tensor& o : L.outs)
    if (hoistable(o)) add(o);
  walk(L.outs, inputs, [&](const Tensor& t) {
    const Node& n = *t.node();
    if (!dep.count(&n) || !dep.at(&n)) return;
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.op == &random_draw_op() && i == 0) continue;  // the stream's state
      if (hoistable(n.inputs[i])) add(n.inputs[i]);
    }
  });
  if (!replace.empty()) L.outs = clone_graph(L.outs, replace);
}

// The body's values that `grads` (a VJP of the body's outputs) read which change from step
// to step and are not body inputs.
std::vector<Tensor> needed_by_vjp(const Loop& L, const std::vector<Tensor>& grads) {
  const std::unordered_set<const Node*> inputs = L.input_nodes();
  std::unordered_set<const Node*> fwd;
  walk(L.outs, inputs, [&](const Tensor& t) { fwd.insert(t.node().get()); });
  const auto dep = step_dependence(L.outs, L.input_nodes(/*step_only=*/true));
  // a view (slice, reshape, transpose, broadcast) of a value is taken again from that value
  // rather than saved as a copy of its own
  auto is_view = [](const Op* op) {
    return op && (is_reshape(*op) || op == &transpose_op() || op == &broadcast_like_op() ||
                  std::string_view(op->name) == "view");
  };
  std::vector<Tensor> needed;
  std::unordered_set<const Node*> seen;
  std::vector<Tensor> frontier;
  walk(grads, fwd, [&](const Tensor& t) {
    if (fwd.count(t.node().get())) frontier.push_back(t);
  });
  while (!frontier.empty()) {
    Tensor t = std::move(frontier.back());
    frontier.pop_back();
    const Node* n = t.node().get();
    if (!seen.insert(n).second || inputs.count(n) || !dep.count(n) || !dep.at(n)) continue;
    if (is_view(n->op)) frontier.push_back(n->inputs[0]);
    else needed.push_back(t);
  }
  return needed;
}

std::vector<bool> floating_of(const std::vector<Tensor>& ts) {
  std::vector<bool> r;
  for (const Tensor& t : ts) r.push_back(is_floating(t.node()->dtype));
  return r;
}

Tensor make_scan_node(Loop L, std::vector<Tensor>* parts_out);

// The gradients of the body's inputs for output seeds `seeds` (empty: none), w.r.t. the
// inputs flagged in `want` (Loop::inputs' order), one per flagged input.
std::vector<Tensor> body_vjp(const Loop& L, const std::vector<Tensor>& seeds, const std::vector<bool>& want) {
  std::vector<Tensor> ys, ss;
  for (std::size_t o = 0; o < L.outs.size(); ++o)
    if (seeds[o]) ys.push_back(L.outs[o]), ss.push_back(seeds[o]);
  const std::vector<Tensor> all = L.inputs();
  std::vector<Tensor> wrt;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (want[i]) wrt.push_back(all[i]);
  if (ys.empty() || wrt.empty()) return std::vector<Tensor>(wrt.size());
  return backward(ys, ss, wrt);
}

Tensor make_scan_node(Loop L, std::vector<Tensor>* parts_out) {
  hoist(L);
  const std::size_t n_user = L.outs.size();
  bool recorded = false;
  for (const auto* v : {&L.seqs, &L.inits, &L.consts})
    for (const Tensor& t : *v) recorded = recorded || t.node()->recorded;
  auto b = std::make_shared<ScanBody>();
  b->state_values.assign(L.state_in.size(), -1);
  if (recorded) {
    // What a backward pass may read: the VJP with every floating output seeded, w.r.t.
    // every floating input; its step-varying reads of the body are saved, stacked.
    std::vector<Tensor> seeds;
    for (const Tensor& o : L.outs) {
      const Node& n = *o.node();
      seeds.push_back(is_floating(n.dtype) ? body_placeholder(n, n.shape, "g") : none);
    }
    const std::vector<Tensor> grads = body_vjp(L, seeds, floating_of(L.inputs()));
    std::vector<Tensor> present;
    for (const Tensor& g : grads)
      if (g) present.push_back(g);
    for (const Tensor& t : needed_by_vjp(L, present)) {
      bool have = false;
      for (std::size_t o = 0; o < L.outs.size(); ++o)
        have = have || (L.outs[o].node() == t.node() && !L.last_only[o]);
      if (!have) L.outs.push_back(t), L.feed.push_back(-1), L.last_only.push_back(0);
    }
    // each state's values, stacked (the backward pass reads the previous state of each step)
    for (std::size_t o = 0; o < n_user; ++o) {
      const int j = L.feed[o];
      if (j < 0) continue;
      if (L.last_only[o]) {
        L.outs.push_back(L.outs[o]), L.feed.push_back(-1), L.last_only.push_back(0);
        b->state_values[std::size_t(j)] = int(L.outs.size() - 1);
      } else {
        b->state_values[std::size_t(j)] = int(o);
      }
    }
  }
  b->seq_in = L.seq_in;
  b->state_in = L.state_in;
  b->const_in = L.const_in;
  b->n_seq = L.seq_in.size(), b->n_state = L.state_in.size(), b->n_const = L.const_in.size();
  b->outs = L.outs;
  b->feed = L.feed;
  b->last_only = L.last_only;
  b->n_user = n_user;
  b->backwards = L.backwards;
  b->n_steps = L.n_steps;
  if (L.seqs.empty()) {
    b->static_steps = L.n_steps;
  } else {
    b->static_steps = L.seqs[0].node()->shape[0];
    for (const Tensor& s : L.seqs)
      if (s.node()->shape[0] != b->static_steps) b->static_steps = -1;
  }
  for (const Tensor& o : L.outs) {
    b->out_dtype.push_back(o.node()->dtype);
    b->out_shape.push_back(o.node()->shape);
  }
  std::vector<Tensor> operands = L.seqs;
  operands.insert(operands.end(), L.inits.begin(), L.inits.end());
  operands.insert(operands.end(), L.consts.begin(), L.consts.end());
  Attrs a;
  a.sub = b;
  a.all = recorded;  // (save; a frozen function that never reads the saved values drops them)
  Tensor node = apply(op_scan, std::move(operands), std::move(a));
  if (parts_out) {
    parts_out->clear();
    for (std::size_t o = 0; o < n_user; ++o) parts_out->push_back(part(node, b, o));
  }
  return node;
}

// x with its axis 0 reversed (a view).
Tensor flip0(const Tensor& x) {
  std::vector<Index> ix{range(std::nullopt, std::nullopt, -1)};
  return view(x, ix);
}

// BPTT: the backward scan over the steps in reverse (see the file's comment).
std::vector<Tensor> vjp_scan(const Op&, const VjpCtx& c) {
  const auto& bp = c.attrs.sub;
  const ScanBody& b = *sub_as<ScanBody>(c.attrs);
  const std::size_t ns = b.seq_in.size(), nst = b.state_in.size(), nc = b.const_in.size();
  const std::vector<Tensor> noparts;
  const std::vector<Tensor>& gp = c.parts ? *c.parts : noparts;
  auto g_of = [&](std::size_t o) { return o < gp.size() ? gp[o] : none; };
  const Loop F{b.seq_in, b.state_in, b.const_in, b.outs, b.feed, b.last_only, {}, {}, {}, b.backwards, b.n_steps};

  Loop B;
  B.backwards = true;
  std::vector<Tensor> seeds(b.outs.size());
  auto add_seed = [&](std::size_t o, const Tensor& s) { seeds[o] = seeds[o] ? seeds[o] + s : s; };
  // the stacked outputs' gradients, one step at a time
  for (std::size_t o = 0; o < b.outs.size(); ++o) {
    const Tensor g = g_of(o);
    if (!g || b.last_only[o] || !is_floating(b.out_dtype[o])) continue;
    const Tensor ph = body_placeholder(*b.outs[o].node(), b.out_shape[o], "d" + std::to_string(o));
    B.seq_in.push_back(ph);
    B.seqs.push_back(g);
    add_seed(o, ph);
  }
  // the carries: each floating state's gradient flowing back from the later steps
  std::vector<int> carry(nst, -1);
  for (std::size_t j = 0; j < nst; ++j) {
    const Node& s = *b.state_in[j].node();
    if (!is_floating(s.dtype)) continue;
    const Tensor ph = body_placeholder(s, s.shape, "carry");
    carry[j] = int(B.state_in.size());
    B.state_in.push_back(ph);
    std::size_t o = 0;
    while (b.feed[o] != int(j)) ++o;
    const Tensor& init = c.x[ns + j];
    Tensor g0 = b.last_only[o] && g_of(o) ? g_of(o) : zeros_like(init);
    if (node_of(g0, "scan").dtype != s.dtype) g0 = cast(g0, s.dtype);
    B.inits.push_back(broadcast_like(g0, init));
    add_seed(o, ph);
  }
  // the VJP of the body (seq slices and constants only where asked for; states always)
  std::vector<bool> want(ns + nst + nc, false);
  for (std::size_t i = 0; i < ns; ++i) want[i] = c.needs[i] && is_floating(b.seq_in[i].node()->dtype);
  for (std::size_t j = 0; j < nst; ++j) want[ns + j] = carry[j] >= 0;
  for (std::size_t m = 0; m < nc; ++m)
    want[ns + nst + m] = c.needs[ns + nst + m] && is_floating(b.const_in[m].node()->dtype);
  std::vector<Tensor> grads = body_vjp(F, seeds, want);
  // the forward values it reads come in as sequences: saved ones, and the states
  std::vector<std::pair<Tensor, Tensor>> replace;
  std::vector<Tensor> present;
  for (const Tensor& g : grads)
    if (g) present.push_back(g);
  for (const Tensor& t : needed_by_vjp(F, present))
    for (std::size_t o = 0; o < b.outs.size(); ++o)
      if (b.outs[o].node() == t.node() && !b.last_only[o]) {
        const Tensor ph = body_placeholder(*t.node(), b.out_shape[o], "saved");
        replace.push_back({t, ph});
        B.seq_in.push_back(ph);
        B.seqs.push_back(part(c.y, bp, o));
        break;
      }
  if (!replace.empty()) grads = clone_graph(grads, replace);
  for (std::size_t i = 0; i < ns; ++i) {
    B.seq_in.push_back(b.seq_in[i]);
    B.seqs.push_back(b.backwards ? flip0(c.x[i]) : c.x[i]);
  }
  for (std::size_t j = 0; j < nst; ++j) {
    const int o = b.state_values[j];
    if (o < 0) throw ValueError("scan: this scan was not recorded for a gradient");
    // the state before each step: the initial value, then each step's value but the last
    const Tensor& init = c.x[ns + j];
    const Tensor prev = concatenate({expand_dims(init, 0), part(c.y, bp, std::size_t(o))}, 0);
    std::vector<Index> ix{range(std::nullopt, -1)};
    B.seq_in.push_back(b.state_in[j]);
    B.seqs.push_back(view(prev, ix));
  }
  B.const_in = b.const_in;
  B.consts.assign(c.x.begin() + std::ptrdiff_t(ns + nst), c.x.end());
  // outputs: the carries, the constants' sums (last only), the sequences' gradients
  std::size_t k = 0;
  std::vector<int> grad_of_input(ns + nst + nc, -1);
  std::vector<Tensor> wrt_grads(ns + nst + nc);
  for (std::size_t i = 0; i < want.size(); ++i)
    if (want[i]) wrt_grads[i] = grads[k++];
  for (std::size_t j = 0; j < nst; ++j)
    if (carry[j] >= 0) {
      grad_of_input[ns + j] = int(B.outs.size());
      B.outs.push_back(wrt_grads[ns + j]);
      B.feed.push_back(carry[j]);
      B.last_only.push_back(1);
    }
  for (std::size_t m = 0; m < nc; ++m) {
    if (!want[ns + nst + m]) continue;
    const Node& cm = *b.const_in[m].node();
    const Tensor acc = body_placeholder(cm, cm.shape, "sum");
    grad_of_input[ns + nst + m] = int(B.outs.size());
    B.outs.push_back(acc + wrt_grads[ns + nst + m]);
    B.feed.push_back(int(B.state_in.size()));
    B.last_only.push_back(1);
    B.state_in.push_back(acc);
    B.inits.push_back(zeros_like(c.x[ns + nst + m], cm.dtype));
  }
  for (std::size_t i = 0; i < ns; ++i)
    if (want[i]) {
      grad_of_input[i] = int(B.outs.size());
      B.outs.push_back(wrt_grads[i]);
      B.feed.push_back(-1);
      B.last_only.push_back(0);
    }
  if (B.seqs.empty()) throw ValueError("scan: no sequence to run the backward pass over");
  std::vector<Tensor> bparts;
  make_scan_node(std::move(B), &bparts);
  std::vector<Tensor> out(c.x.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (grad_of_input[i] < 0) continue;
    Tensor g = bparts[std::size_t(grad_of_input[i])];
    // the sequences' gradients come out last step first: back to the sequence's order
    if (i < ns && !b.backwards) g = flip0(g);
    out[i] = g;
  }
  return out;
}

}  // namespace

const Op& scan_part_op() { return op_scan_part; }
const Op& scan_op() { return op_scan; }
std::size_t scan_user_outputs(const Attrs& a) { return sub_as<ScanBody>(a)->n_user; }

std::vector<Tensor> clone_graph(const std::vector<Tensor>& outs, const std::vector<std::pair<Tensor, Tensor>>& replace) {
  std::unordered_map<const Node*, Tensor> memo;
  for (const auto& [from, to] : replace) memo[from.node().get()] = to;
  std::vector<std::pair<Tensor, std::size_t>> stack;
  for (const Tensor& o : outs) {
    if (!o || memo.count(o.node().get())) continue;
    stack.push_back({o, 0});
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      const Node* n = t.node().get();
      if (next < n->inputs.size()) {
        const Tensor& c = n->inputs[next++];
        if (!memo.count(c.node().get())) stack.push_back({c, 0});
        continue;
      }
      Tensor r = t;
      if (n->op) {
        bool changed = false;
        std::vector<Tensor> in;
        for (const Tensor& c : n->inputs) {
          in.push_back(memo.at(c.node().get()));
          changed = changed || in.back().node() != c.node();
        }
        if (changed) r = apply(*n->op, std::move(in), n->attrs);
      }
      memo[n] = r;
      stack.pop_back();
    }
  }
  std::vector<Tensor> r;
  for (const Tensor& o : outs) r.push_back(o ? memo.at(o.node().get()) : o);
  return r;
}

}  // namespace th::detail

namespace th {

std::vector<Tensor> scan(const StepFn& fn, const std::vector<Tensor>& sequences, const std::vector<Tensor>& outputs_info,
                         const std::vector<Tensor>& non_sequences, const ScanOptions& options) {
  using namespace detail;
  Loop L;
  L.backwards = options.go_backwards;
  L.n_steps = options.n_steps;
  if (sequences.empty() && options.n_steps < 0)
    throw ValueError("scan: without sequences, ScanOptions::n_steps must give the number of steps");
  std::vector<Tensor> args;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const Node& n = node_of(sequences[i], "scan");
    if (n.shape.empty())
      throw ShapeError("scan: sequence " + std::to_string(i) + (n.name.empty() ? "" : " '" + n.name + "'") +
                       " is 0-d; a sequence is stepped along its axis 0");
    Tensor s = sequences[i];
    if (options.n_steps >= 0) {
      std::vector<Index> ix{range(0, options.n_steps)};
      s = view(s, ix);
    }
    const Node& sn = *s.node();
    L.seqs.push_back(s);
    L.seq_in.push_back(body_placeholder(sn, Shape(sn.shape.begin() + 1, sn.shape.end()),
                                        (n.name.empty() ? "seq" + std::to_string(i) : n.name) + "[t]"));
    args.push_back(L.seq_in.back());
  }
  std::vector<int> state_of(outputs_info.size(), -1);
  for (std::size_t o = 0; o < outputs_info.size(); ++o) {
    if (!outputs_info[o]) continue;
    const Node& n = node_of(outputs_info[o], "scan");
    state_of[o] = int(L.state_in.size());
    L.inits.push_back(outputs_info[o]);
    L.state_in.push_back(body_placeholder(n, n.shape, n.name.empty() ? "state" + std::to_string(o) : n.name));
    args.push_back(L.state_in.back());
  }
  for (const Tensor& t : non_sequences) {
    node_of(t, "scan");
    args.push_back(t);
  }
  L.outs = fn(args);
  if (L.outs.size() != outputs_info.size())
    throw ValueError("scan: the step function returned " + std::to_string(L.outs.size()) + " values for " +
                     std::to_string(outputs_info.size()) + " entries of outputs_info (one per output; "
                     "th::Tensor() for an output not fed back)");
  for (std::size_t o = 0; o < L.outs.size(); ++o) {
    const Node& n = node_of(L.outs[o], "scan (a value the step function returned)");
    L.feed.push_back(state_of[o]);
    L.last_only.push_back(0);
    if (state_of[o] < 0) continue;
    const Node& s = *L.state_in[std::size_t(state_of[o])].node();
    if (n.dtype != s.dtype || n.shape.size() != s.shape.size())
      throw TypeError("scan: the step function returned output " + std::to_string(o) + " as " + dtype_name(n.dtype) +
                      " " + shape_str(n.shape) + " but its initial value '" + display_name(s) + "' is " +
                      dtype_name(s.dtype) + " " + shape_str(s.shape) +
                      " (a value fed back keeps its type: cast the initial value or the result)");
  }
  std::vector<Tensor> parts;
  make_scan_node(std::move(L), &parts);
  return parts;
}

Tensor detail::single_step_output(const std::vector<Tensor>& outs, const char* what) {
  if (outs.size() != 1)
    throw ValueError(std::string(what) + ": the step function returned " + std::to_string(outs.size()) +
                     " tensors; a " + what + " step returns one (th::scan takes steps with several outputs)");
  return outs[0];
}

Tensor map(const StepFn1& fn, const std::vector<Tensor>& sequences, const std::vector<Tensor>& non_sequences) {
  if (sequences.empty()) throw ValueError("map: needs at least one sequence");
  return scan([&](const std::vector<Tensor>& a) { return std::vector<Tensor>{fn(a)}; }, sequences, {Tensor()},
              non_sequences)[0];
}

Tensor foldl(const StepFn1& fn, const std::vector<Tensor>& sequences, const Tensor& init,
             const std::vector<Tensor>& non_sequences) {
  using namespace detail;
  if (sequences.empty()) throw ValueError("foldl: needs at least one sequence");
  const Node& in = node_of(init, "foldl");
  Loop L;
  std::vector<Tensor> args;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const Node& n = node_of(sequences[i], "foldl");
    if (n.shape.empty()) throw ShapeError("foldl: sequence " + std::to_string(i) + " is 0-d; a sequence is stepped along its axis 0");
    L.seqs.push_back(sequences[i]);
    L.seq_in.push_back(body_placeholder(n, Shape(n.shape.begin() + 1, n.shape.end()),
                                        (n.name.empty() ? "seq" + std::to_string(i) : n.name) + "[t]"));
    args.push_back(L.seq_in.back());
  }
  L.inits.push_back(init);
  L.state_in.push_back(body_placeholder(in, in.shape, in.name.empty() ? "acc" : in.name));
  args.push_back(L.state_in.back());
  for (const Tensor& t : non_sequences) args.push_back(t);
  L.outs = {fn(args)};
  const Node& n = node_of(L.outs[0], "foldl (the value the step function returned)");
  if (n.dtype != in.dtype || n.shape.size() != in.shape.size())
    throw TypeError("foldl: the step function returned " + std::string(dtype_name(n.dtype)) + " " + shape_str(n.shape) +
                    " but the initial value is " + dtype_name(in.dtype) + " " + shape_str(in.shape) +
                    " (cast the initial value or the result)");
  L.feed = {0};
  L.last_only = {1};
  std::vector<Tensor> parts;
  make_scan_node(std::move(L), &parts);
  return parts[0];
}

}  // namespace th
