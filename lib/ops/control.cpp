// th::ifelse (API.md section 12): a node holding its two branches as frozen sub-programs
// (Theano's IfElse, the STYLE guide's "a node holding two sub-programs, of which the
// executor runs one"). Its operands are the condition and the recorded leaves the branches
// read (placeholders, shared and recorded variables), so gradients reach them; its VJP is
// another ifelse over the branches' VJPs, lazy in the same way.
#include <unordered_set>

#include "ops/op.hpp"
#include "ops/subprograms.hpp"
#include "freeze/program.hpp"
#include "theta/autodiff.hpp"
#include "theta/function.hpp"

namespace th::detail {

namespace {

const Tensor none{};

// The recorded leaves below `t` (placeholders, shared and recorded variables), in first-seen order.
void leaves_of(const Tensor& t, std::vector<Tensor>& out, std::unordered_set<const Node*>& seen) {
  std::vector<Tensor> stack{t};
  while (!stack.empty()) {
    Tensor n = stack.back();
    stack.pop_back();
    const Node* p = n.node().get();
    if (!seen.insert(p).second) continue;
    if (p->kind == NodeKind::placeholder || p->kind == NodeKind::shared || p->kind == NodeKind::variable) {
      out.push_back(n);
      continue;
    }
    for (auto it = p->inputs.rbegin(); it != p->inputs.rend(); ++it) stack.push_back(*it);
  }
}

Meta infer_ifelse(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Meta& c = in[0];
  for (auto d : c.shape)
    if (d > 1) throw_shape(op, "the condition must have one element", in);
  // (from the branches' programs: a loaded function has those only)
  const Program& tp = *sub_as<Branches>(a)->then_f.program();
  const Program& ep = *sub_as<Branches>(a)->else_f.program();
  const DType td = tp.slot_dtype[tp.outputs[0]], ed = ep.slot_dtype[ep.outputs[0]];
  const Shape& ts = tp.slot_shape[tp.outputs[0]];
  const Shape& es = ep.slot_shape[ep.outputs[0]];
  if (td != ed || ts.size() != es.size())
    throw_type(op, "the branches differ: " + std::string(dtype_name(td)) + " " + shape_str(ts) + " and " +
                       dtype_name(ed) + " " + shape_str(es),
               in);
  Shape s = ts;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != es[i]) s[i] = -1;  // known only when the branch runs
  return {td, s};
}

Storage forward_ifelse(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  const Storage c = contiguous_as(transfer(*in[0], th::cpu()), DType::boolean);
  if (c.size() != 1) throw ShapeError(std::string(op.name) + ": the condition must have one element, got shape " + shape_str(c.shape));
  const bool take = *c.data<bool>();
  const Branches& b = *sub_as<Branches>(a);
  const std::vector<std::size_t>& idx = take ? b.then_args : b.else_args;
  std::vector<Tensor> args;
  for (std::size_t i : idx) args.push_back(make_constant(*in[1 + i]));
  const Tensor r = (take ? b.then_f : b.else_f).call(args)[0];
  return value_of(r, op.name);
}

Tensor make_ifelse(const Tensor& cond, const Tensor& then_value, const Tensor& else_value);

// d/dleaf = ifelse(cond, vjp(then, leaf, g), vjp(else, leaf, g)): lazy like the forward
std::vector<Tensor> vjp_ifelse(const Op&, const VjpCtx& c) {
  const Branches& b = *sub_as<Branches>(c.attrs);
  std::vector<Tensor> out{none};
  for (std::size_t i = 1; i < c.x.size(); ++i) {
    if (!c.needs[i]) {
      out.push_back(none);
      continue;
    }
    const Tensor& leaf = c.x[i];
    const DType d = is_floating(node_of(leaf, "ifelse").dtype) ? node_of(leaf, "ifelse").dtype : floatX();
    // (a leaf one branch does not read gets zeros from that branch)
    auto part = [&](const Tensor& branch) {
      const Tensor g = th::vjp(branch, leaf, c.g);
      return node_of(g, "ifelse").dtype == d ? g : cast(g, d);
    };
    out.push_back(make_ifelse(c.x[0], part(b.then_value), part(b.else_value)));
  }
  return out;
}

const Op op_ifelse{"ifelse", {1, -1}, 0, &infer_ifelse, &forward_ifelse, &vjp_ifelse, ~0u};

Tensor make_ifelse(const Tensor& cond, const Tensor& then_value, const Tensor& else_value) {
  const Node& cn = node_of(cond, "ifelse");
  node_of(then_value, "ifelse");
  node_of(else_value, "ifelse");
  if (!cn.symbolic) {  // eager: the branch is chosen now (both were computed already)
    const Storage c = contiguous_as(transfer(value_of(cond, "ifelse"), th::cpu()), DType::boolean);
    if (c.size() != 1)
      throw ShapeError("ifelse: the condition must have one element, got shape " + shape_str(c.shape));
    return *c.data<bool>() ? then_value : else_value;
  }
  auto b = std::make_shared<Branches>();
  b->then_value = then_value;
  b->else_value = else_value;
  // each branch's leaves, and their union (the node's operands after the condition)
  std::vector<Tensor> then_leaves, else_leaves, leaves;
  std::unordered_set<const Node*> seen_then, seen_else, seen;
  leaves_of(then_value, then_leaves, seen_then);
  leaves_of(else_value, else_leaves, seen_else);
  for (const auto* part : {&then_leaves, &else_leaves})
    for (const Tensor& l : *part)
      if (seen.insert(l.node().get()).second) leaves.push_back(l);
  // a branch frozen over the placeholders it reads; args: their positions among the leaves
  auto sub = [&](const Tensor& v, const std::unordered_set<const Node*>& mine, std::vector<std::size_t>& args) {
    std::vector<Tensor> phs;
    for (std::size_t i = 0; i < leaves.size(); ++i)
      if (mine.count(leaves[i].node().get()) && leaves[i].node()->kind == NodeKind::placeholder) {
        phs.push_back(leaves[i]);
        args.push_back(i);
      }
    return function(phs, v);
  };
  b->then_f = sub(then_value, seen_then, b->then_args);
  b->else_f = sub(else_value, seen_else, b->else_args);
  std::vector<Tensor> inputs{cond};
  inputs.insert(inputs.end(), leaves.begin(), leaves.end());
  Attrs a;
  a.sub = std::move(b);
  return apply(op_ifelse, std::move(inputs), std::move(a));
}

}  // namespace

}  // namespace th::detail

namespace th {

Tensor ifelse(const Tensor& cond, const Tensor& then_value, const Tensor& else_value) {
  return detail::make_ifelse(cond, then_value, else_value);
}

}  // namespace th
