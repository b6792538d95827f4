// Reductions over axes (sum, prod, max, min), arg reductions and count. attrs.axes are
// normalised and sorted when recorded; the shape rule drops them (or keeps 1s).
#include <algorithm>
#include <limits>

#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

Shape reduced_shape(const Shape& s, const std::vector<std::int64_t>& axes, bool keepdims) {
  Shape r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool red = std::find(axes.begin(), axes.end(), std::int64_t(i)) != axes.end();
    if (!red) r.push_back(s[i]);
    else if (keepdims) r.push_back(1);
  }
  return r;
}

DType reduce_dtype(ReduceKind k, DType d) {
  if (k == ReduceKind::sum || k == ReduceKind::prod)
    return (d == DType::boolean || d == DType::int32) ? DType::int64 : d;  // as numpy
  return d == DType::boolean ? DType::int64 : d;
}

Meta infer_reduce(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  for (auto ax : a.axes)
    if (ax >= std::int64_t(in[0].shape.size())) throw_shape(op, "axis " + std::to_string(ax) + " out of range", in);
  return {reduce_dtype(ReduceKind(op.code), in[0].dtype), reduced_shape(in[0].shape, a.axes, a.keepdims)};
}

Storage forward_reduce(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const ReduceKind k = ReduceKind(op.code);
  thread_local Storage converted;  // a boolean or int32 x as the result's dtype (per-thread scratch)
  const ScratchGuard held(converted);
  const Storage& x = in[0]->dtype == out.dtype ? *in[0] : copy_to_scratch(*in[0], out.dtype, converted);
  bool empty_line = false;
  for (auto ax : a.axes) empty_line = empty_line || x.shape[std::size_t(ax)] == 0;
  if ((k == ReduceKind::max || k == ReduceKind::min) && empty_line)
    throw ValueError(message(op, "zero-size array to a reduction which has no identity", {meta_of(x)}));
  return reduce_over(k, x, a.axes, out.shape);
}

// g with the reduced axes put back as size 1, ready to broadcast against x.
Tensor keep_reduced(const Tensor& g, const Attrs& a) {
  if (a.keepdims) return g;
  Tensor r = g;
  for (auto ax : a.axes) r = expand_dims(r, ax);  // ascending axes: each lands where it was
  return r;
}

std::vector<Tensor> vjp_sum(const Op&, const VjpCtx& c) { return {broadcast_like(keep_reduced(c.g, c.attrs), c.x[0])}; }

// d prod / dx_i = product of the others, exact with zeros: 0 zeros -> y/x, 1 zero -> the
// product of the non-zeros at the zero, 2+ zeros -> 0.
std::vector<Tensor> vjp_prod(const Op&, const VjpCtx& c) {
  const Tensor& x = c.x[0];
  Axes axes(c.attrs.axes);
  Tensor is_zero = x == 0.0;
  Tensor safe = where(is_zero, 1.0, x);
  Tensor zeros = sum(is_zero, axes, true);
  Tensor p = prod(safe, axes, true);
  Tensor g = keep_reduced(c.g, c.attrs);
  Tensor others = where(is_zero, where(zeros == 1.0, p, 0.0), where(zeros == 0.0, p / safe, 0.0));
  return {g * others};
}

// The gradient goes to the extreme elements, split evenly between ties.
std::vector<Tensor> vjp_extreme(const Op&, const VjpCtx& c) {
  const Tensor& x = c.x[0];
  Axes axes(c.attrs.axes);
  Tensor hit = x == broadcast_like(keep_reduced(c.y, c.attrs), x);
  Tensor ties = cast(sum(hit, axes, true), c.g.dtype());
  return {where(hit, keep_reduced(c.g, c.attrs) / ties, 0.0)};
}

const Op op_sum{"sum", {1, 1}, int(ReduceKind::sum), &infer_reduce, &forward_reduce, &vjp_sum};
const Op op_prod{"prod", {1, 1}, int(ReduceKind::prod), &infer_reduce, &forward_reduce, &vjp_prod};
const Op op_max{"max", {1, 1}, int(ReduceKind::max), &infer_reduce, &forward_reduce, &vjp_extreme};
const Op op_min{"min", {1, 1}, int(ReduceKind::min), &infer_reduce, &forward_reduce, &vjp_extreme};

Meta infer_arg(const Op&, const std::vector<Meta>& in, const Attrs& a) {
  if (a.all) return {DType::int64, a.keepdims ? Shape(in[0].shape.size(), 1) : Shape{}};
  return {DType::int64, reduced_shape(in[0].shape, {a.axis}, a.keepdims)};
}

Storage forward_arg(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage& x = *in[0];
  if (x.size() == 0) throw ValueError(message(op, "attempt to get the index of an empty sequence", {meta_of(x)}));
  // x seen as (outer, n) rows with the axis last: a view when the other axes merge into
  // one evenly strided axis (and, for the whole tensor, when it is contiguous), else a
  // contiguous copy in per-thread scratch. Per-thread storages: no allocation per call.
  thread_local Storage rows, moved, copy;
  const ViewGuard views(rows, moved);
  const ScratchGuard held(copy);
  auto as_rows = [&](const Storage& v, std::size_t ax) {
    std::int64_t outer = 1, so = 0, n = v.size(), sn = 1;  // the whole tensor: one row
    if (a.all) {
      if (!v.contiguous()) return false;
    } else {
      n = v.shape[ax];
      sn = v.strides[ax];
      for (std::size_t d = v.shape.size(); d-- > 0;) {
        if (d == ax || v.shape[d] == 1) continue;
        if (outer == 1) so = v.strides[d];
        else if (v.strides[d] != so * outer) return false;
        outer *= v.shape[d];
      }
    }
    rows.buf = borrowed(v.buf);
    rows.dtype = v.dtype;
    rows.offset = v.offset;
    rows.shape.assign({outer, n});
    rows.strides.assign({outer == 1 ? 0 : so, sn});
    return true;
  };
  if (!as_rows(x, std::size_t(a.axis))) {  // x with the axis moved last, copied contiguous: its rows are even
    moved.buf = borrowed(x.buf);
    moved.dtype = x.dtype;
    moved.offset = x.offset;
    moved.shape.clear();
    moved.strides.clear();
    const std::size_t ax = std::size_t(a.axis);
    for (std::size_t d = 0; d < x.shape.size(); ++d)
      if (a.all || d != ax) moved.shape.push_back(x.shape[d]), moved.strides.push_back(x.strides[d]);
    if (!a.all) moved.shape.push_back(x.shape[ax]), moved.strides.push_back(x.strides[ax]);
    as_rows(copy_to_scratch(moved, x.dtype, copy), moved.shape.size() - 1);
  }
  Storage y = alloc_storage(DType::int64, out.shape, x.device());
  backend_for(x.device()).arg_reduce(op.code == 1, rows, y);
  return y;
}

const Op op_argmin{"argmin", {1, 1}, 0, &infer_arg, &forward_arg, nullptr};
const Op op_argmax{"argmax", {1, 1}, 1, &infer_arg, &forward_arg, nullptr};

// The number of elements over attrs.axes, as a 0-d tensor of attrs.dtype.
const Op op_count{
    "count", {1, 1}, 0, [](const Op&, const std::vector<Meta>&, const Attrs& a) { return Meta{a.dtype, {}}; },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
      double n = 1;
      for (auto ax : a.axes) n *= double(in[0]->shape[std::size_t(ax)]);
      Storage s = alloc_storage(a.dtype, {}, in[0]->device());
      backend_for(s.device()).fill(s, n);
      return s;
    },
    nullptr, 0u, true};

Tensor reduce(const Op& op, const Tensor& x, const Axes& axis, bool keepdims) {
  Attrs a;
  {
    OperandScratch scratch;
    const std::vector<Meta>& m = scratch_metas(scratch, op, {x});
    a.axes = norm_axes(op, axis, std::int64_t(m[0].shape.size()), m);
  }
  a.keepdims = keepdims;
  return apply(op, {x}, std::move(a));
}

Tensor arg_reduce(const Op& op, const Tensor& x, std::optional<std::int64_t> axis, bool keepdims) {
  Attrs a;
  a.all = !axis.has_value();
  if (axis) a.axis = norm_axis(op, *axis, std::int64_t(node_of(x, op.name).shape.size()), {meta_of(x)});
  a.keepdims = keepdims;
  return apply(op, {x}, std::move(a));
}

}  // namespace

const Op& reduce_op(ReduceKind k) {
  switch (k) {
    case ReduceKind::sum: return op_sum;
    case ReduceKind::prod: return op_prod;
    case ReduceKind::max: return op_max;
    case ReduceKind::min: return op_min;
  }
  return op_sum;
}
const Op& count_op() { return op_count; }

Storage reduce_over(ReduceKind k, const Storage& x, const std::vector<std::int64_t>& axes, const Shape& shape) {
  // The result is allocated with its final shape and seen, through `yv`, with x's shape
  // (stride 0 on the reduced axes) while it accumulates. yv, `first` and `yk` are
  // per-thread storages whose vectors are reused; their buffer references are dropped on
  // the way out.
  Storage y = alloc_storage(x.dtype, shape, x.device());
  thread_local Storage yv, first, yk;
  const ViewGuard views(yv, first, yk);
  yv.buf = borrowed(y.buf);
  yv.dtype = y.dtype;
  yv.offset = 0;
  yv.shape = x.shape;
  yv.strides.resize(x.shape.size());
  std::int64_t acc = 1;
  for (std::size_t i = x.shape.size(); i-- > 0;) {
    const bool reduced = std::find(axes.begin(), axes.end(), std::int64_t(i)) != axes.end();
    yv.strides[i] = reduced ? 0 : acc;
    if (!reduced) acc *= x.shape[i];
  }
  Backend& be = backend_for(x.device());
  if (k == ReduceKind::max || k == ReduceKind::min) {
    // NOTE: start from the first element of each reduced line, not from a +-infinity
    // identity: integer extremes do not survive a trip through double (int64 min gave -2^63).
    first = x;
    for (auto ax : axes) first.shape[std::size_t(ax)] = 1;
    yk = yv;  // y with the reduced axes kept as 1s
    for (auto ax : axes) yk.shape[std::size_t(ax)] = 1;
    be.copy(first, yk);
  } else {
    be.fill(y, k == ReduceKind::prod ? 1.0 : 0.0);
  }
  be.reduce(k, x, yv);
  return y;
}

Tensor count(const Tensor& x, const Axes& axes, DType dtype) {
  Attrs a;
  {
    OperandScratch scratch;
    const std::vector<Meta>& m = scratch_metas(scratch, op_count, {x});
    a.axes = norm_axes(op_count, axes, std::int64_t(m[0].shape.size()), m);
  }
  a.dtype = dtype;
  return apply(op_count, {x}, std::move(a));
}

}  // namespace th::detail

namespace th {

Tensor sum(const Tensor& x, Axes axis, bool keepdims) { return detail::reduce(detail::op_sum, x, axis, keepdims); }
Tensor prod(const Tensor& x, Axes axis, bool keepdims) { return detail::reduce(detail::op_prod, x, axis, keepdims); }
Tensor max(const Tensor& x, Axes axis, bool keepdims) { return detail::reduce(detail::op_max, x, axis, keepdims); }
Tensor min(const Tensor& x, Axes axis, bool keepdims) { return detail::reduce(detail::op_min, x, axis, keepdims); }
Tensor argmax(const Tensor& x, std::optional<std::int64_t> axis, bool keepdims) {
  return detail::arg_reduce(detail::op_argmax, x, axis, keepdims);
}
Tensor argmin(const Tensor& x, std::optional<std::int64_t> axis, bool keepdims) {
  return detail::arg_reduce(detail::op_argmin, x, axis, keepdims);
}

}  // namespace th
