// Node lifetime (iterative release of long chains) and small accessors.
#include "core/node.hpp"

#include "theta/error.hpp"

namespace th::detail {

namespace {
std::atomic<std::int64_t> g_live{0};
thread_local std::vector<Tensor> t_pending;  // inputs waiting to be released
thread_local bool t_draining = false;
}  // namespace

Node::Node() { g_live.fetch_add(1, std::memory_order_relaxed); }

Node::~Node() {
  for (auto& t : inputs)
    if (t.node() && t.node().use_count() == 1) t_pending.push_back(std::move(t));
  inputs.clear();
  g_live.fetch_sub(1, std::memory_order_relaxed);
  if (t_draining) return;
  t_draining = true;
  while (!t_pending.empty()) {
    Tensor last = std::move(t_pending.back());
    t_pending.pop_back();
  }  // `last` dies here; its inputs are queued instead of recursing
  t_draining = false;
}

std::mutex& shared_values_mutex() {
  static std::mutex m;  // a shared value is read and replaced whole under it: never torn
  return m;
}

std::int64_t live_nodes() { return g_live.load(std::memory_order_relaxed); }

Node& node_of(const Tensor& t, const char* what) {
  if (!t.node()) throw ValueError(std::string(what) + ": empty tensor (default-constructed th::Tensor)");
  return *t.node();
}

Tensor make_leaf(NodeKind kind, DType dtype, Shape shape, std::optional<Storage> value, std::string name) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->dtype = dtype;
  n->shape = std::move(shape);
  n->value = std::move(value);
  n->recorded = kind != NodeKind::constant;
  n->symbolic = kind == NodeKind::placeholder;
  n->name = std::move(name);
  return Tensor(std::move(n));
}

Tensor make_constant(Storage s) {
  DType d = s.dtype;
  Shape shape = s.shape;
  return make_leaf(NodeKind::constant, d, std::move(shape), std::move(s));
}

const Storage& value_of(const Tensor& t, const char* what) {
  Node& n = node_of(t, what);
  if (!n.value)
    throw ValueError(std::string(what) + ": tensor" + (n.name.empty() ? "" : " '" + n.name + "'") +
                     " is symbolic (it depends on a placeholder); its value exists only inside a th::function");
  return *n.value;
}

}  // namespace th::detail
