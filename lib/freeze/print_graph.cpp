// Graph inspection: th::debugprint (indented text, Theano style, with the user's names)
// and th::to_dot (Graphviz), for a recorded tensor or a frozen function.
#include <sstream>
#include <unordered_map>

#include "cpu/native.hpp"
#include "freeze/whole.hpp"
#include "freeze/program.hpp"
#include "ops/conv_chain.hpp"

namespace th {

namespace {

const char* kind_name(detail::NodeKind k) {
  switch (k) {
    case detail::NodeKind::constant: return "constant";
    case detail::NodeKind::variable: return "variable";
    case detail::NodeKind::placeholder: return "placeholder";
    case detail::NodeKind::shared: return "shared";
    case detail::NodeKind::op: return "op";
  }
  return "?";
}

std::string label(const detail::Node& n) {
  std::string s = n.op ? n.op->name : kind_name(n.kind);
  if (!n.name.empty()) s += " '" + n.name + "'";
  return s + " " + dtype_name(n.dtype) + " " + shape_str(n.shape);
}

// Ids in first-visit order, so repeated subgraphs print once.
struct Ids {
  std::unordered_map<const detail::Node*, std::string> id;
  std::string of(const detail::Node* n, bool& fresh) {
    auto it = id.find(n);
    fresh = it == id.end();
    if (!fresh) return it->second;
    std::size_t k = id.size();
    std::string s;
    do {
      s.insert(s.begin(), char('A' + k % 26));
      k = k / 26;
    } while (k-- > 0);
    return id[n] = s;
  }
};

void print_tree(std::ostream& os, const Tensor& t, const std::string& prefix, Ids& ids, int depth) {
  const detail::Node& n = *t.node();
  bool fresh = false;
  std::string id = ids.of(&n, fresh);
  os << prefix << label(n) << " [id " << id << "]";
  if (!fresh && !n.inputs.empty()) {
    os << " (see above)\n";
    return;
  }
  os << "\n";
  if (depth > 200 && !n.inputs.empty()) {
    os << prefix << " |... (deeper graph not shown)\n";
    return;
  }
  for (const Tensor& in : n.inputs) print_tree(os, in, prefix + " |", ids, depth + 1);
}

// What a step standing for several ops computes, in its operands' slot names: a GEMM with
// transposes folded in (matmul_t), a gradient step folded into its GEMM (matmul_acc);
// which output of a step with several a part step reads; empty for the others.
std::string formula_of(const detail::Step& s) {
  if (detail::is_part(*s.op)) return "output " + std::to_string(s.attrs.part) + " of %" + std::to_string(s.in[0]);
  if (s.op != &detail::matmul_t_op() && s.op != &detail::matmul_acc_op()) return "";
  auto slot = [&](std::size_t j) { return "%" + std::to_string(s.in[j]); };
  std::string m = slot(0) + (s.attrs.transpose & 1u ? "^T" : "") + " @ " + slot(1) + (s.attrs.transpose & 2u ? "^T" : "");
  if (s.op == &detail::matmul_t_op()) return m;
  if (s.attrs.all) m = "sum_to_like(" + m + ", " + slot(2) + ")";
  std::ostringstream os;
  os << s.attrs.scale << " * " << m;
  const std::string t = os.str(), c = slot(2);
  return s.attrs.axis == 0 ? c + " - " + t : s.attrs.axis == 1 ? c + " + " + t : t + " + " + c;
}

}  // namespace

std::string debugprint(const Tensor& t) {
  detail::node_of(t, "debugprint");
  std::ostringstream os;
  Ids ids;
  print_tree(os, t, "", ids, 0);
  return os.str();
}

namespace detail {

std::string step_name(const Step& s) {
  if (const ConvChain* chain = sub_as<ConvChain>(s.attrs)) {
    std::string r = "conv_chain[";
    for (const ConvChain::Link& l : chain->links) r += (r.back() == '[' ? "" : " ") + std::string(l.op->name);
    return r + "]";
  }
  if (!s.fused) return s.op->name;
  std::string r = "fused[";
  for (std::size_t i = 0; i < s.fused->members.size(); ++i) r += (i ? " " : "") + std::string(s.fused->members[i].op->name);
  for (const auto& red : s.fused->reductions) r += " " + std::string(red.step.op->name);
  for (const Step& t : s.fused->tail_steps) r += " " + std::string(t.op->name);
  return r + "]";
}

}  // namespace detail

std::string debugprint(const Function& f) {
  const detail::Program& p = *f.program();
  std::ostringstream os;
  auto slot_name = [&](std::size_t s) { return "%" + std::to_string(s); };
  os << "function: " << p.input_slots.size() << " inputs, " << p.steps.size() << " steps, " << p.outputs.size()
     << " outputs, " << p.updates.size() << " updates";
  // the native tier's whole program (freeze/whole.hpp): compiled, or why not (yet)
  if (const std::string line = detail::whole_state_line(p); !line.empty()) os << "  [whole program: " << line << "]";
  os << "\n";
  for (std::size_t i = 0; i < p.input_slots.size(); ++i)
    os << "  " << slot_name(p.input_slots[i]) << " = input " << i
       << (p.input_names[i].empty() ? "" : " '" + p.input_names[i] + "'") << " " << dtype_name(p.input_meta[i].dtype)
       << " " << p.input_meta[i].shape.size() << "-d\n";
  for (const auto& [s, n] : p.shared) os << "  " << slot_name(s) << " = shared '" << n->name << "'\n";
  for (const auto& [s, v] : p.constants)
    os << "  " << slot_name(s) << " = constant " << dtype_name(v.dtype) << " " << shape_str(v.shape) << "\n";
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const detail::Step& st = p.steps[k];
    os << "  ";
    if (st.fused) {  // a merged chain writes several slots, folded reductions theirs
      for (std::size_t slot : st.fused->out_slots)
        if (slot != st.out) os << slot_name(slot) << ", ";
      for (const auto& red : st.fused->reductions) os << slot_name(red.step.out) << ", ";
      for (const detail::Step& t : st.fused->tail_steps) os << slot_name(t.out) << ", ";
    }
    os << slot_name(st.out) << " = " << detail::step_name(st) << "(";
    for (std::size_t j = 0; j < st.in.size(); ++j)
      os << (j ? ", " : "") << slot_name(st.in[j]) << (st.names[j].empty() ? "" : " " + st.names[j]);
    os << ")";
    if (const std::string f = formula_of(st); !f.empty()) os << " = " << f;
    if (k < p.release.size() && !p.release[k].empty()) {  // the memory plan: values no later step reads
      os << "  [frees";
      for (std::size_t slot : p.release[k]) os << " " << slot_name(slot);
      os << "]";
    }
    if (st.fused)  // the native tier (cpu/native.hpp): compiled, or why not (yet)
      if (const detail::cpu::NativeKernel* nk = st.fused->native.kernel.load(std::memory_order_relaxed))
        if (const std::string line = detail::cpu::native_state_line(*nk); !line.empty()) os << "  [" << line << "]";
    os << "\n";
  }
  for (std::size_t o = 0; o < p.outputs.size(); ++o) os << "  output " << o << " = " << slot_name(p.outputs[o]) << "\n";
  for (const auto& [n, s] : p.updates) os << "  update '" << n->name << "' <- " << slot_name(s) << "\n";
  if (!p.rewrites.empty()) {
    os << "  rewrites:";
    for (const auto& [name, count] : p.rewrites) os << " " << name << " " << count;
    os << "\n";
  }
  return os.str();
}

std::string to_dot(const Tensor& t) {
  detail::node_of(t, "to_dot");
  std::ostringstream os;
  os << "digraph theta {\n  rankdir=BT;\n";
  Ids ids;
  auto emit = [&](const Tensor& x, const std::string& id) {
    os << "  " << id << " [label=\"" << label(*x.node()) << "\"" << (x.node()->op ? "" : ", shape=box") << "];\n";
  };
  bool fresh = false;
  emit(t, ids.of(t.node().get(), fresh));
  std::vector<Tensor> stack{t};
  while (!stack.empty()) {
    Tensor cur = stack.back();
    stack.pop_back();
    const std::string cur_id = ids.id.at(cur.node().get());
    for (const Tensor& in : cur.node()->inputs) {
      std::string id = ids.of(in.node().get(), fresh);
      if (fresh) {
        emit(in, id);
        stack.push_back(in);
      }
      os << "  " << id << " -> " << cur_id << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

std::string to_dot(const Function& f) {
  const detail::Program& p = *f.program();
  std::ostringstream os;
  os << "digraph theta_function {\n  rankdir=BT;\n";
  for (std::size_t i = 0; i < p.input_slots.size(); ++i)
    os << "  s" << p.input_slots[i] << " [shape=box, label=\"input " << (p.input_names[i].empty() ? std::to_string(i) : p.input_names[i]) << "\"];\n";
  for (const auto& [s, n] : p.shared) os << "  s" << s << " [shape=box, label=\"shared " << n->name << "\"];\n";
  for (const auto& [s, v] : p.constants) os << "  s" << s << " [shape=box, label=\"constant " << shape_str(v.shape) << "\"];\n";
  for (const detail::Step& st : p.steps) {
    os << "  s" << st.out << " [label=\"" << detail::step_name(st) << "\"];\n";
    for (std::size_t in : st.in) os << "  s" << in << " -> s" << st.out << ";\n";
    if (st.fused) {  // the other slots a merged chain writes, and folded reductions'
      std::vector<std::size_t> also;
      for (std::size_t slot : st.fused->out_slots)
        if (slot != st.out) also.push_back(slot);
      for (const auto& red : st.fused->reductions) also.push_back(red.step.out);
      for (const detail::Step& t : st.fused->tail_steps) also.push_back(t.out);
      for (std::size_t slot : also)
        os << "  s" << slot << " [shape=point];\n  s" << st.out << " -> s" << slot << " [style=dashed];\n";
    }
  }
  for (std::size_t o = 0; o < p.outputs.size(); ++o) os << "  out" << o << " [shape=plaintext, label=\"output " << o << "\"];\n  s" << p.outputs[o] << " -> out" << o << ";\n";
  os << "}\n";
  return os.str();
}

}  // namespace th
