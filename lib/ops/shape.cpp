// Shape primitives: reshape, transpose, expand_dims, squeeze, broadcasts and sum_to_like.
// All are views of the input's storage (reshape copies only non-contiguous inputs). The
// "_like" forms take their target shape from a second operand at run time, so they work
// on symbolic tensors; their second operand gets no gradient.
#include <algorithm>
#include <numeric>

#include "core/backend.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

bool known(const Shape& s) {
  for (auto d : s)
    if (d < 0) return false;
  return true;
}

// reshape: attrs.shape, with at most one -1
Meta infer_reshape(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  Shape s = a.shape;
  std::int64_t free = -1, prod = 1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (free >= 0) throw_shape(op, "only one dimension can be -1 in " + shape_str(a.shape), in);
      free = std::int64_t(i);
    } else if (s[i] < 0) {
      throw_shape(op, "negative dimension in " + shape_str(a.shape), in);
    } else {
      prod *= s[i];
    }
  }
  if (!known(in[0].shape)) return {in[0].dtype, s};
  std::int64_t n = shape_size(in[0].shape);
  if (free >= 0) {
    if (prod == 0 || n % prod != 0)
      throw_shape(op, "cannot reshape " + std::to_string(n) + " elements into " + shape_str(a.shape), in);
    s[std::size_t(free)] = n / prod;
  } else if (prod != n) {
    throw_shape(op, "cannot reshape " + std::to_string(n) + " elements into " + shape_str(a.shape), in);
  }
  return {in[0].dtype, s};
}

Storage forward_view_reshape(const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  return reshape_view(*in[0], out.shape);
}

std::vector<Tensor> vjp_reshape(const Op&, const VjpCtx& c) { return {reshape_like(c.g, c.x[0])}; }

const Op op_reshape{"reshape", {1, 1}, 0, &infer_reshape, &forward_view_reshape, &vjp_reshape};

const Op op_reshape_like{
    "reshape_like", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs&) {
      if (known(in[0].shape) && known(in[1].shape) && shape_size(in[0].shape) != shape_size(in[1].shape))
        throw_shape(op, "element counts differ", in);
      return Meta{in[0].dtype, in[1].shape};
    },
    &forward_view_reshape,
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {reshape_like(c.g, c.x[0]), none}; },
    0b10};  // like: its shape only

// transpose: attrs.axes is the permutation
Meta infer_transpose(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const std::size_t nd = in[0].shape.size();
  std::vector<bool> seen(nd, false);
  if (a.axes.size() != nd) throw_shape(op, "permutation has " + std::to_string(a.axes.size()) + " axes", in);
  Shape s(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    auto p = a.axes[i];
    if (p < 0 || p >= std::int64_t(nd) || seen[std::size_t(p)]) throw_shape(op, "invalid permutation", in);
    seen[std::size_t(p)] = true;
    s[i] = in[0].shape[std::size_t(p)];
  }
  return {in[0].dtype, s};
}

const Op op_transpose{
    "transpose", {1, 1}, 0, &infer_transpose,
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      Storage v = view_of(*in[0]);
      v.shape = out.shape;
      for (std::size_t i = 0; i < a.axes.size(); ++i) v.strides[i] = in[0]->strides[std::size_t(a.axes[i])];
      return v;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      std::vector<std::int64_t> inv(c.attrs.axes.size());
      for (std::size_t i = 0; i < inv.size(); ++i) inv[std::size_t(c.attrs.axes[i])] = std::int64_t(i);
      return {transpose(c.g, inv)};
    }};

const Op op_expand_dims{
    "expand_dims", {1, 1}, 0,
    [](const Op&, const std::vector<Meta>& in, const Attrs& a) {
      Shape s = in[0].shape;
      s.insert(s.begin() + a.axis, 1);
      return Meta{in[0].dtype, s};
    },
    &forward_view_reshape, &vjp_reshape};

const Op op_squeeze{
    "squeeze", {1, 1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      Shape s;
      for (std::size_t i = 0; i < in[0].shape.size(); ++i) {
        bool listed = std::find(a.axes.begin(), a.axes.end(), std::int64_t(i)) != a.axes.end();
        std::int64_t d = in[0].shape[i];
        if (listed && d >= 0 && d != 1) throw_shape(op, "cannot squeeze axis " + std::to_string(i) + " of size " + std::to_string(d), in);
        if (!listed) s.push_back(d);
      }
      return Meta{in[0].dtype, s};
    },
    &forward_view_reshape, &vjp_reshape};

void check_broadcastable(const Op& op, const Shape& from, const Shape& to, const std::vector<Meta>& in) {
  if (from.size() > to.size()) throw_shape(op, "cannot broadcast to fewer dimensions", in);
  std::size_t lead = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) {
    auto f = from[i], t = to[lead + i];
    if (f != 1 && f != t && f >= 0 && t >= 0)
      throw_shape(op, "cannot broadcast dim " + std::to_string(i) + " of size " + std::to_string(f) + " to " +
                          std::to_string(t),
                  in);
  }
}

Storage forward_broadcast(const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  return broadcast_view(*in[0], out.shape);
}

const Op op_broadcast_to{
    "broadcast_to", {1, 1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      check_broadcastable(op, in[0].shape, a.shape, in);
      return Meta{in[0].dtype, a.shape};
    },
    &forward_broadcast, [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {sum_to_like(c.g, c.x[0])}; }};

const Op op_broadcast_like{
    "broadcast_like", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs&) {
      check_broadcastable(op, in[0].shape, in[1].shape, in);
      return Meta{in[0].dtype, in[1].shape};
    },
    &forward_broadcast,
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {sum_to_like(c.g, c.x[0]), none}; },
    0b10};  // like: its shape only

// g summed over the axes along which `like` was broadcast up to g's shape.
const Op op_sum_to_like{
    "sum_to_like", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs&) {
      check_broadcastable(op, in[1].shape, in[0].shape, in);
      return Meta{in[0].dtype, in[1].shape};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
      const Storage& g = *in[0];
      const std::size_t lead = g.shape.size() - out.shape.size();
      thread_local std::vector<std::int64_t> axes;  // reused: no allocation in a warm call
      axes.clear();
      for (std::size_t i = 0; i < g.shape.size(); ++i)
        if (i < lead || (out.shape[i - lead] == 1 && g.shape[i] != 1)) axes.push_back(std::int64_t(i));
      if (axes.empty()) return reshape_view(g, out.shape);
      return reduce_over(ReduceKind::sum, g, axes, out.shape);
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {broadcast_like(c.g, c.x[0]), none}; },
    0b10};  // like: its shape only

Tensor reshape_to(const Op& op, const Tensor& x, Attrs a) { return apply(op, {x}, std::move(a)); }

// A zero-copy tensor (one element, stride 0) of the broadcast shape of its operands, with
// attrs.axis dimensions: what a gradient's broadcast_like/sum_to_like needs of its `like`
// operand (rewrite_like_shapes.cpp), without keeping that operand's values alive.
const Op op_broadcast_shape{
    "broadcast_shape", {1, -1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      Shape s = broadcast_shapes(op, in);
      s.insert(s.begin(), std::size_t(a.axis) - std::min(s.size(), std::size_t(a.axis)), 1);
      return Meta{a.dtype, s};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
      return zero_broadcast(out.dtype, out.shape, in[0]->device());
    },
    nullptr, ~0u, true};  // shapes only: the result lives with the first operand

}  // namespace

const Op& broadcast_shape_op() { return op_broadcast_shape; }

Storage zero_broadcast(DType dtype, const Shape& shape, Device dev) {
  Storage one = alloc_storage(dtype, {}, dev);
  backend_for(one.device()).fill(one, 0.0);
  one.shape = shape;  // broadcast in place: the vectors (reused between calls) stay
  one.strides.assign(shape.size(), 0);
  return one;
}
const Op& transpose_op() { return op_transpose; }
bool is_reshape(const Op& op) {
  return &op == &op_reshape || &op == &op_reshape_like || &op == &op_expand_dims || &op == &op_squeeze;
}

const Op& sum_to_like_op() { return op_sum_to_like; }
const Op& broadcast_like_op() { return op_broadcast_like; }

Tensor sum_to_like(const Tensor& g, const Tensor& like) {
  const Node& gn = *g.node();
  const Node& ln = *like.node();
  if (gn.shape == ln.shape && known(gn.shape)) return g;
  return apply(op_sum_to_like, {g, like});
}

Tensor broadcast_like(const Tensor& x, const Tensor& like) {
  const Node& xn = *x.node();
  const Node& ln = *like.node();
  if (xn.shape == ln.shape && known(xn.shape)) return x;
  return apply(op_broadcast_like, {x, like});
}

Tensor reshape_like(const Tensor& x, const Tensor& like) {
  const Node& xn = *x.node();
  const Node& ln = *like.node();
  if (xn.shape == ln.shape && known(xn.shape)) return x;
  return apply(op_reshape_like, {x, like});
}

Tensor zeros_like(const Tensor& like, DType dtype) { return broadcast_like(scalar_const(0, dtype), like); }
Tensor zeros_like(const Tensor& x) { return zeros_like(x, node_of(x, "zeros_like").dtype); }
Tensor ones_like(const Tensor& x) { return broadcast_like(scalar_const(1, node_of(x, "ones_like").dtype), x); }

}  // namespace th::detail

namespace th {

using detail::Attrs;

Tensor reshape(const Tensor& x, const Shape& shape) {
  Attrs a;
  a.shape = shape;
  return detail::reshape_to(detail::op_reshape, x, std::move(a));
}

Tensor flatten(const Tensor& x) { return reshape(x, {-1}); }

Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm) {
  const std::int64_t nd = std::int64_t(detail::node_of(x, "transpose").shape.size());
  Attrs a;
  for (auto p : perm) a.axes.push_back(p < 0 && p >= -nd ? p + nd : p);
  return detail::apply(detail::op_transpose, {x}, std::move(a));
}

Tensor transpose(const Tensor& x) {
  std::vector<std::int64_t> perm(detail::node_of(x, "transpose").shape.size());
  std::iota(perm.rbegin(), perm.rend(), 0);
  return transpose(x, perm);
}

Tensor expand_dims(const Tensor& x, std::int64_t axis) {
  const std::int64_t nd = std::int64_t(detail::node_of(x, "expand_dims").shape.size());
  Attrs a;
  a.axis = detail::norm_axis(detail::op_expand_dims, axis, nd + 1, {detail::meta_of(x)});
  return detail::apply(detail::op_expand_dims, {x}, std::move(a));
}

// Without axes: the axes known to have size 1 (all of a concrete tensor's; of a symbolic one,
// those its expression fixes at 1, as Theano's broadcastable dimensions); others stay.
Tensor squeeze(const Tensor& x, Axes axis) {
  const Shape& s = detail::node_of(x, "squeeze").shape;
  Attrs a;
  if (axis.all) {
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] == 1) a.axes.push_back(std::int64_t(i));
  } else {
    a.axes = detail::norm_axes(detail::op_squeeze, axis, std::int64_t(s.size()), {detail::meta_of(x)});
  }
  return detail::apply(detail::op_squeeze, {x}, std::move(a));
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  Attrs a;
  a.shape = shape;
  return detail::apply(detail::op_broadcast_to, {x}, std::move(a));
}

}  // namespace th
