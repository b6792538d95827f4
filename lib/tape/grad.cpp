// The backward sweep: topological order of the recorded graph, VJPs in reverse, gradients
// summed back to each input's shape here (the one place broadcasting is undone).
#include <unordered_map>
#include <unordered_set>

#include "ops/op.hpp"
#include "theta/autodiff.hpp"

namespace th::detail {

namespace {

// Recorded tensors reachable from `roots`, inputs before users (iterative DFS).
std::vector<Tensor> topo_order(const std::vector<Tensor>& roots) {
  std::vector<Tensor> order;
  std::unordered_set<const Node*> seen;
  std::vector<std::pair<Tensor, std::size_t>> stack;
  for (const Tensor& r : roots) {
    if (!r.node()->recorded || !seen.insert(r.node().get()).second) continue;
    stack.push_back({r, 0});
    while (!stack.empty()) {
      auto& [t, next] = stack.back();
      if (next < t.node()->inputs.size()) {
        const Tensor& in = t.node()->inputs[next++];
        if (in.node()->recorded && seen.insert(in.node().get()).second) stack.push_back({in, 0});
      } else {
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
  std::vector<Tensor> order = topo_order(ys);
  // A node is relevant when a wrt is reachable from it through the tape.
  std::unordered_set<Node*> wanted;
  for (const Tensor& w : wrt) wanted.insert(w.node().get());
  std::unordered_set<Node*> relevant = wanted;
  for (const Tensor& t : order)
    for (const Tensor& in : t.node()->inputs)
      if (relevant.count(in.node().get())) {
        relevant.insert(t.node().get());
        break;
      }

  std::unordered_map<Node*, Tensor> grads;
  auto accumulate = [&](Node* n, Tensor g) {
    auto it = grads.find(n);
    if (it == grads.end()) grads.emplace(n, std::move(g));
    else it->second = it->second + g;
  };
  for (std::size_t i = 0; i < ys.size(); ++i)
    if (relevant.count(ys[i].node().get())) accumulate(ys[i].node().get(), seeds[i]);

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = it->node().get();
    if (!n->op || !n->op->vjp || n->inputs.empty()) continue;
    auto git = grads.find(n);
    if (git == grads.end()) continue;
    std::vector<bool> needs(n->inputs.size());
    bool any = false;
    for (std::size_t i = 0; i < needs.size(); ++i) {
      const Node& in = *n->inputs[i].node();
      needs[i] = relevant.count(n->inputs[i].node().get()) && is_floating(in.dtype);
      any = any || needs[i];
    }
    if (!any) continue;
    Tensor g = git->second;
    VjpCtx ctx{n->inputs, *it, g, n->attrs, needs};
    std::vector<Tensor> gin = n->op->vjp(*n->op, ctx);
    for (std::size_t i = 0; i < needs.size(); ++i) {
      if (!needs[i] || i >= gin.size() || !gin[i]) continue;
      const Tensor& x = n->inputs[i];
      Tensor gi = sum_to_like(gin[i], x);
      if (gi.dtype() != x.dtype()) gi = cast(gi, x.dtype());
      accumulate(x.node().get(), std::move(gi));
    }
    if (!wanted.count(n)) grads.erase(n);  // release intermediate gradients early
  }

  std::vector<Tensor> out;
  for (const Tensor& w : wrt) {
    auto it = grads.find(w.node().get());
    DType d = is_floating(w.dtype()) ? w.dtype() : floatX();
    out.push_back(it != grads.end() ? it->second : zeros_like(w, d));
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
