// The backward sweep: topological order of the recorded graph, VJPs in reverse, gradients
// summed back to each input's shape here (the one place broadcasting is undone).
#include <cstdint>
#include <vector>

#include "ops/op.hpp"
#include "theta/autodiff.hpp"

namespace th::detail {

namespace {

// Node* -> index, open addressing (the sweep's only lookup structure: no allocation per
// node, as std::unordered_* would make; a 10^5-node tape is swept in a few allocations).
class NodeIndex {
 public:
  explicit NodeIndex(std::size_t expected = 64) { grow(expected); }
  /// The index of `n`, or -1.
  long find(const Node* n) const {
    for (std::size_t i = slot(n);; i = (i + 1) & mask_) {
      if (keys_[i] == n) return vals_[i];
      if (!keys_[i]) return -1;
    }
  }
  /// Inserts n -> v unless present; true when inserted.
  bool insert(const Node* n, long v) {
    if (2 * (count_ + 1) > keys_.size()) grow(keys_.size());
    for (std::size_t i = slot(n);; i = (i + 1) & mask_) {
      if (keys_[i] == n) return false;
      if (!keys_[i]) {
        keys_[i] = n;
        vals_[i] = v;
        ++count_;
        return true;
      }
    }
  }

 private:
  std::size_t slot(const Node* n) const {
    return std::size_t((reinterpret_cast<std::uintptr_t>(n) >> 4) * 0x9E3779B97F4A7C15ull) & mask_;
  }
  void grow(std::size_t at_least) {
    std::size_t cap = 16;
    while (cap < 2 * at_least) cap *= 2;
    std::vector<const Node*> keys(cap, nullptr);
    std::vector<long> vals(cap, -1);
    keys.swap(keys_);
    vals.swap(vals_);
    mask_ = cap - 1;
    count_ = 0;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i]) insert(keys[i], vals[i]);
  }
  std::vector<const Node*> keys_;
  std::vector<long> vals_;
  std::size_t mask_ = 0, count_ = 0;
};

// Recorded tensors reachable from `roots`, inputs before users (iterative DFS); `index`
// receives each one's position.
std::vector<Tensor> topo_order(const std::vector<Tensor>& roots, NodeIndex& index) {
  std::vector<Tensor> order;
  NodeIndex seen;
  std::vector<std::pair<Tensor, std::size_t>> stack;
  for (const Tensor& r : roots) {
    if (!r.node()->recorded || !seen.insert(r.node().get(), 0)) continue;
    stack.push_back({r, 0});
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      if (next < t.node()->inputs.size()) {
        const Tensor& in = t.node()->inputs[next++];
        if (in.node()->recorded && seen.insert(in.node().get(), 0)) stack.push_back({in, 0});
      } else {
        index.insert(t.node().get(), long(order.size()));
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
                             const std::vector<Tensor>& wrt) {
  NodeIndex index;
  std::vector<Tensor> order = topo_order(ys, index);
  // Positions: the tape's nodes in order, then any wrt that is not on it.
  std::size_t count = order.size();
  for (const Tensor& w : wrt)
    if (index.insert(w.node().get(), long(count))) ++count;
  auto pos = [&](const Node* n) { return index.find(n); };
  // A node is relevant when a wrt is reachable from it through the tape.
  std::vector<char> wanted(count, 0), relevant(count, 0);
  for (const Tensor& w : wrt) wanted[std::size_t(pos(w.node().get()))] = relevant[std::size_t(pos(w.node().get()))] = 1;
  auto is_relevant = [&](const Node* n) {
    const long p = pos(n);
    return p >= 0 && relevant[std::size_t(p)];
  };
  for (std::size_t k = 0; k < order.size(); ++k)
    for (const Tensor& in : order[k].node()->inputs)
      if (is_relevant(in.node().get())) {
        relevant[k] = 1;
        break;
      }

  std::vector<Tensor> grads(count);  // empty: no gradient (yet)
  auto accumulate = [&](const Node* n, Tensor g) {
    Tensor& slot = grads[std::size_t(pos(n))];
    slot = slot ? slot + g : std::move(g);
  };
  for (std::size_t i = 0; i < ys.size(); ++i)
    if (is_relevant(ys[i].node().get())) accumulate(ys[i].node().get(), seeds[i]);

  std::vector<bool> needs;
  for (std::size_t k = order.size(); k-- > 0;) {
    const Tensor& t = order[k];
    Node* n = t.node().get();
    if (!n->op || !n->op->vjp || n->inputs.empty() || !grads[k]) continue;
    needs.assign(n->inputs.size(), false);
    bool any = false;
    for (std::size_t i = 0; i < needs.size(); ++i) {
      const Node& in = *n->inputs[i].node();
      needs[i] = is_relevant(&in) && is_floating(in.dtype);
      any = any || needs[i];
    }
    if (!any) continue;
    Tensor g = grads[k];
    VjpCtx ctx{n->inputs, t, g, n->attrs, needs};
    std::vector<Tensor> gin = n->op->vjp(*n->op, ctx);
    for (std::size_t i = 0; i < needs.size(); ++i) {
      if (!needs[i] || i >= gin.size() || !gin[i]) continue;
      const Tensor& x = n->inputs[i];
      Tensor gi = sum_to_like(gin[i], x);
      if (gi.dtype() != x.dtype()) gi = cast(gi, x.dtype());
      accumulate(x.node().get(), std::move(gi));
    }
    if (!wanted[k]) grads[k] = Tensor();  // release intermediate gradients early
  }

  std::vector<Tensor> out;
  for (const Tensor& w : wrt) {
    const Tensor& g = grads[std::size_t(pos(w.node().get()))];
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

Tensor jacobian(const Tensor& y, const Tensor& x) {
  const detail::Node& yn = detail::node_of(y, "jacobian");
  const detail::Node& xn = detail::node_of(x, "jacobian");
  std::int64_t n = 1;
  for (auto d : yn.shape) {
    if (d < 0)
      throw ValueError("jacobian: y must have a known size (it is symbolic with shape " + shape_str(yn.shape) +
                       "); use th::vjp for symbolic outputs");
    n *= d;
  }
  if (yn.shape.empty()) return grad(y, x);
  Tensor flat = reshape(y, {-1});
  std::vector<Tensor> rows;
  for (std::int64_t i = 0; i < n; ++i) rows.push_back(grad(view(flat, i), x));
  Tensor j = stack(rows, 0);
  bool x_known = true;
  for (auto d : xn.shape) x_known = x_known && d >= 0;
  if (yn.shape.size() == 1 || !x_known) {
    if (yn.shape.size() != 1)
      throw ValueError("jacobian: a multi-dimensional y needs x of known shape; flatten y first");
    return j;
  }
  Shape s = yn.shape;
  s.insert(s.end(), xn.shape.begin(), xn.shape.end());
  return reshape(j, s);
}

Tensor hessian(const Tensor& cost, const Tensor& x) { return jacobian(grad(cost, x), x); }

}  // namespace th
