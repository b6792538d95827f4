// The backward sweep: topological order of the recorded graph, VJPs in reverse, gradients
// summed back to each input's shape here (the one place broadcasting is undone).
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ops/op.hpp"
#include "theta/autodiff.hpp"
#include "theta/control.hpp"
#include "theta/nn.hpp"

namespace th::detail {

namespace {

// Node* -> index, open addressing in one array (the sweep's only lookup structure: no
// allocation per node, as std::unordered_* would make).
class NodeIndex {
 public:
  NodeIndex() { grow(64); }
  /// The index of `n`, or -1 (also for a node added with -1 and not yet set).
  long find(const Node* n) const {
    const auto& e = slots_[probe(n)];
    return e.first ? e.second : -1;
  }
  /// Adds n -> v unless present; true when added.
  bool add(const Node* n, long v) {
    if (2 * (count_ + 1) > slots_.size()) grow(slots_.size());
    auto& e = slots_[probe(n)];
    if (e.first) return false;
    e = {n, v};
    ++count_;
    return true;
  }
  /// Sets the index of a node already added.
  void set(const Node* n, long v) { slots_[probe(n)].second = v; }

 private:
  // n's entry, or the empty one where it would go.
  std::size_t probe(const Node* n) const {
    std::size_t i = std::size_t((reinterpret_cast<std::uintptr_t>(n) >> 4) * 0x9E3779B97F4A7C15ull) & mask_;
    while (slots_[i].first && slots_[i].first != n) i = (i + 1) & mask_;
    return i;
  }
  void grow(std::size_t at_least) {
    std::size_t cap = 16;
    while (cap < 2 * at_least) cap *= 2;
    std::vector<std::pair<const Node*, long>> old(cap, {nullptr, -1});
    old.swap(slots_);
    mask_ = cap - 1;
    count_ = 0;
    for (const auto& [n, v] : old)
      if (n) add(n, v);
  }
  std::vector<std::pair<const Node*, long>> slots_;
  std::size_t mask_ = 0, count_ = 0;
};

// Recorded tensors reachable from `roots`, inputs before users (iterative DFS); `index`
// maps each to its position.
std::vector<Tensor> topo_order(const std::vector<Tensor>& roots, NodeIndex& index) {
  std::vector<Tensor> order;
  std::vector<std::pair<Tensor, std::size_t>> stack;
  order.reserve(64), stack.reserve(64);  // one allocation each for a usual tape, not one per doubling
  for (const Tensor& r : roots) {
    if (!r.node()->recorded || !index.add(r.node().get(), -1)) continue;
    stack.push_back({r, 0});
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      if (next < t.node()->inputs.size()) {
        const Tensor& in = t.node()->inputs[next++];
        if (in.node()->recorded && index.add(in.node().get(), -1)) stack.push_back({in, 0});
      } else {
        index.set(t.node().get(), long(order.size()));
        order.push_back(std::move(t));
        stack.pop_back();
      }
    }
  }
  return order;
}

}  // namespace

/// Gradients of sum(ys[i] * seeds[i]) with respect to each of `wrt`.
std::vector<Tensor> backward(const std::vector<Tensor>& ys, const std::vector<Tensor>& seeds,
                             const std::vector<Tensor>& wrt, bool partial) {
  NodeIndex index;
  std::vector<Tensor> order = topo_order(ys, index);
  // Positions: the tape's nodes in order, then any wrt that is not on it.
  std::size_t count = order.size();
  for (const Tensor& w : wrt)
    if (index.add(w.node().get(), long(count))) ++count;
  // Each node's inputs' positions (-1: not on the tape), looked up once; a node is relevant
  // when a wrt is reachable from it through the tape.
  std::vector<char> wanted(count, 0), relevant(count, 0);
  for (const Tensor& w : wrt) {
    const std::size_t p = std::size_t(index.find(w.node().get()));
    wanted[p] = relevant[p] = 1;
  }
  std::vector<std::size_t> first(order.size() + 1, 0);
  std::vector<long> inpos;
  inpos.reserve(2 * order.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    first[k] = inpos.size();
    for (const Tensor& in : order[k].node()->inputs) {
      const long p = index.find(in.node().get());
      inpos.push_back(p);
      if (p >= 0 && relevant[std::size_t(p)]) relevant[k] = 1;
    }
  }
  first[order.size()] = inpos.size();

  std::vector<Tensor> grads(count);  // empty: no gradient (yet)
  auto accumulate = [&](std::size_t p, Tensor g) {
    Tensor& slot = grads[p];
    slot = slot ? slot + g : std::move(g);
  };
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const long p = index.find(ys[i].node().get());
    if (p >= 0 && relevant[std::size_t(p)]) accumulate(std::size_t(p), seeds[i]);
  }

  // The gradients of a multi-output op's outputs (a scan's too), gathered for its VJP (by
  // the op's position): its parts come after it in `order`, so all of them are in when the
  // sweep reaches the op.
  std::unordered_map<std::size_t, std::vector<Tensor>> part_grads;
  std::vector<bool> needs;
  for (std::size_t k = order.size(); k-- > 0;) {
    const Tensor& t = order[k];
    Node* n = t.node().get();
    if (partial && wanted[k]) continue;  // a wrt's own inputs get nothing from it
    if (n->op && is_part(*n->op)) {
      const long p = inpos[first[k]];
      if (!grads[k] || p < 0 || !relevant[std::size_t(p)]) continue;
      std::vector<Tensor>& parts = part_grads[std::size_t(p)];
      const std::size_t i = std::size_t(n->attrs.part);
      if (parts.size() <= i) parts.resize(i + 1);
      parts[i] = parts[i] ? parts[i] + grads[k] : grads[k];
      if (!wanted[k]) grads[k] = Tensor();
      continue;
    }
    const auto tuple = part_grads.find(k);
    if (!n->op || !n->op->vjp || n->inputs.empty() || (!grads[k] && tuple == part_grads.end())) continue;
    needs.assign(n->inputs.size(), false);
    bool any = false;
    for (std::size_t i = 0; i < needs.size(); ++i) {
      const long p = inpos[first[k] + i];
      needs[i] = p >= 0 && relevant[std::size_t(p)] && is_floating(n->inputs[i].node()->dtype);
      any = any || needs[i];
    }
    if (!any) continue;
    Tensor g = grads[k];
    VjpCtx ctx{n->inputs, t, g, n->attrs, needs};
    if (tuple != part_grads.end()) ctx.parts = &tuple->second;
    std::vector<Tensor> gin = n->op->vjp(*n->op, ctx);
    if (tuple != part_grads.end()) part_grads.erase(tuple);
    for (std::size_t i = 0; i < needs.size(); ++i) {
      if (!needs[i] || i >= gin.size() || !gin[i]) continue;
      const Tensor& x = n->inputs[i];
      Tensor gi = sum_to_like(gin[i], x);
      if (gi.dtype() != x.dtype()) gi = cast(gi, x.dtype());
      accumulate(std::size_t(inpos[first[k] + i]), std::move(gi));
    }
    if (!wanted[k]) grads[k] = Tensor();  // release intermediate gradients early
  }

  std::vector<Tensor> out;
  for (std::size_t i = 0; i < wrt.size(); ++i) {
    const Tensor& w = wrt[i];
    bool repeated = false;  // partial: one operand passed twice (attention(x, x, x)) gets its total once
    for (std::size_t j = 0; partial && j < i; ++j) repeated = repeated || wrt[j].node() == w.node();
    if (repeated) {
      out.emplace_back();
      continue;
    }
    const Tensor& g = grads[std::size_t(index.find(w.node().get()))];
    DType d = is_floating(w.dtype()) ? w.dtype() : floatX();
    out.push_back(g ? g : zeros_like(w, d));
  }
  return out;
}

namespace {
void check_scalar_cost(const Tensor& cost) {
  const Node& n = node_of(cost, "grad");
  std::int64_t size = 1;
  bool known = true;
  for (auto d : n.shape) {
    if (d < 0) known = false;
    else size *= d;
  }
  if (!known || size != 1)
    throw ValueError("grad: cost must have exactly one element, but has shape " + shape_str(n.shape) +
                     (n.name.empty() ? "" : " [" + n.name + "]") + " (reduce it first, e.g. th::sum or th::mean)");
}
}  // namespace

}  // namespace th::detail

namespace th {

std::vector<Tensor> grad(const Tensor& cost, const std::vector<Tensor>& wrt) {
  detail::check_scalar_cost(cost);
  for (const Tensor& w : wrt) detail::node_of(w, "grad");
  return detail::backward({cost}, {detail::ones_like(cost)}, wrt);
}

Tensor grad(const Tensor& cost, const Tensor& wrt) { return grad(cost, std::vector<Tensor>{wrt})[0]; }

Tensor vjp(const Tensor& y, const Tensor& x, const Tensor& v) {
  const detail::Node& yn = detail::node_of(y, "vjp");
  const detail::Node& vn = detail::node_of(v, "vjp");
  detail::node_of(x, "vjp");
  if (yn.shape.size() != vn.shape.size())
    throw ShapeError("vjp: v must have y's shape: " + detail::describe({detail::meta_of(y), detail::meta_of(v)}));
  for (std::size_t i = 0; i < yn.shape.size(); ++i)
    if (yn.shape[i] >= 0 && vn.shape[i] >= 0 && yn.shape[i] != vn.shape[i])
      throw ShapeError("vjp: v must have y's shape: " + detail::describe({detail::meta_of(y), detail::meta_of(v)}));
  Tensor seed = v.dtype() == y.dtype() ? v : cast(v, y.dtype());
  return detail::backward({y}, {seed}, {x})[0];
}

namespace {
// One row of the Jacobian per element of y, by a scan over y's flattened elements (a
// counter state picks the element): the loop runs inside one frozen step for any size.
Tensor jacobian_by_scan(const Tensor& y, const Tensor& x) {
  const Tensor flat = reshape(y, {-1});
  const std::vector<Tensor> r = scan(
      [&](const std::vector<Tensor>& a) {
        return std::vector<Tensor>{a[1] + 1, grad(take(flat, a[1]), x)};
      },
      {flat}, {tensor(0.0, DType::int64), Tensor()});
  if (y.ndim() == 1) return r[1];
  return detail::reshape_by(r[1], concatenate({shape_of(y), shape_of(x)}));
}
}  // namespace

Tensor jacobian(const Tensor& y, const Tensor& x) {
  const detail::Node& yn = detail::node_of(y, "jacobian");
  const detail::Node& xn = detail::node_of(x, "jacobian");
  std::int64_t n = 1;
  bool known = true;
  for (auto d : yn.shape) {
    known = known && d >= 0;
    n *= std::max<std::int64_t>(d, 0);
  }
  if (yn.shape.empty()) return grad(y, x);
  if (!known || (yn.symbolic && n > 16)) return jacobian_by_scan(y, x);
  Tensor flat = reshape(y, {-1});
  std::vector<Tensor> rows;
  for (std::int64_t i = 0; i < n; ++i) rows.push_back(grad(view(flat, i), x));
  Tensor j = stack(rows, 0);
  bool x_known = true;
  for (auto d : xn.shape) x_known = x_known && d >= 0;
  if (yn.shape.size() == 1) return j;
  if (!x_known) return detail::reshape_by(j, concatenate({shape_of(y), shape_of(x)}));
  Shape s = yn.shape;
  s.insert(s.end(), xn.shape.begin(), xn.shape.end());
  return reshape(j, s);
}

Tensor hessian(const Tensor& cost, const Tensor& x) { return jacobian(grad(cost, x), x); }

namespace {
void same_shape(const char* what, const Tensor& x, const Tensor& v) {
  const detail::Node& xn = detail::node_of(x, what);
  const detail::Node& vn = detail::node_of(v, what);
  bool ok = xn.shape.size() == vn.shape.size();
  for (std::size_t i = 0; ok && i < xn.shape.size(); ++i)
    ok = xn.shape[i] < 0 || vn.shape[i] < 0 || xn.shape[i] == vn.shape[i];
  if (!ok)
    throw ShapeError(std::string(what) + ": v must have x's shape: " + detail::describe({detail::meta_of(x), detail::meta_of(v)}));
}
}  // namespace

// J v = d/du <J^T u, v>: J^T u is linear in u, so its gradient with respect to u is J v
Tensor jvp(const Tensor& y, const Tensor& x, const Tensor& v) {
  same_shape("jvp", x, v);
  const detail::Node& yn = detail::node_of(y, "jvp");
  const DType d = is_floating(yn.dtype) ? yn.dtype : floatX();
  const Tensor u = yn.symbolic ? detail::zeros_like(y, d) : variable(zeros(y.shape(), d));
  const Tensor jtu = detail::backward({y}, {u}, {x})[0];
  const Tensor proj = sum(jtu * v);
  return detail::backward({proj}, {detail::ones_like(proj)}, {u})[0];
}

Tensor hessian_vector_product(const Tensor& cost, const Tensor& x, const Tensor& v) {
  same_shape("hessian_vector_product", x, v);
  return grad(sum(grad(cost, x) * v), x);
}

}  // namespace th
