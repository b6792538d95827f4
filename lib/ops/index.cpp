// Indexing primitives and their adjoints: slice (th::view) / slice_grad, take / take_grad,
// concatenate / split_part. Each adjoint's own VJP is its partner, so grad-of-grad works.
#include "core/backend.hpp"
#include "ops/op.hpp"

namespace th::detail {

// Each adjoint pair refers to the other in its VJP.
extern const Op op_slice, op_slice_grad, op_take, op_take_grad, op_concatenate, op_split_part;

const Op& split_part_op() { return op_split_part; }

namespace {

const Tensor none{};

// One resolved index of a slice along a dimension of size n (n < 0: unknown).
struct Resolved {
  bool drop = false;  // an integer index removes the axis
  std::int64_t start = 0, len = -1, step = 1;
};

// `metas()`: the operands' metas, made only for an error message (a frozen call's slice
// resolves its index on every call, without allocating).
template <class Metas>
Resolved resolve(const Op& op, const Index& ix, std::int64_t n, std::size_t axis, const Metas& metas) {
  Resolved r;
  if (ix.kind == Index::Kind::integer) {
    r.drop = true;
    r.len = 1;
    if (n >= 0 && (ix.i < -n || ix.i >= n))
      throw ValueError(message(op, "index " + std::to_string(ix.i) + " is out of bounds for axis " +
                                       std::to_string(axis) + " with size " + std::to_string(n),
                               metas()));
    r.start = ix.i < 0 && n >= 0 ? ix.i + n : ix.i;
    return r;
  }
  if (ix.step == 0) throw ValueError(message(op, "slice step cannot be zero", metas()));
  r.step = ix.step;
  if (ix.kind == Index::Kind::all || n < 0) {
    r.len = ix.kind == Index::Kind::all ? n : -1;
    return r;
  }
  auto clampi = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return v < lo ? lo : v > hi ? hi : v; };
  if (r.step > 0) {
    std::int64_t s = ix.start ? (*ix.start < 0 ? *ix.start + n : *ix.start) : 0;
    std::int64_t e = ix.stop ? (*ix.stop < 0 ? *ix.stop + n : *ix.stop) : n;
    s = clampi(s, 0, n);
    e = clampi(e, 0, n);
    r.start = s;
    r.len = e > s ? (e - s + r.step - 1) / r.step : 0;
  } else {
    std::int64_t s = ix.start ? (*ix.start < 0 ? *ix.start + n : *ix.start) : n - 1;
    std::int64_t e = ix.stop ? (*ix.stop < 0 ? *ix.stop + n : *ix.stop) : -1;
    s = clampi(s, -1, n - 1);
    e = clampi(e, -1, n - 1);
    r.start = s;
    r.len = s > e ? (s - e - r.step - 1) / (-r.step) : 0;
  }
  return r;
}

Meta infer_slice(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Shape& s = in[0].shape;
  if (a.index.size() > s.size())
    throw_shape(op, "too many indices (" + std::to_string(a.index.size()) + ") for a " + std::to_string(s.size()) +
                        "-d tensor",
                in);
  Shape out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i >= a.index.size()) {
      out.push_back(s[i]);
      continue;
    }
    Resolved r = resolve(op, a.index[i], s[i], i, [&] { return in; });
    if (!r.drop) out.push_back(r.len);
  }
  return {in[0].dtype, out};
}

// `v` := the view of `s` selected by the index list (s has concrete shape), written into
// v's vectors (their capacity reused: a repeated frozen call allocates nothing for it).
void slice_into(const Op& op, const Storage& s, const std::vector<Index>& index, Storage& v) {
  v.buf = s.buf;
  v.dtype = s.dtype;
  v.offset = s.offset;
  v.shape.clear();
  v.strides.clear();
  for (std::size_t i = 0; i < s.shape.size(); ++i) {
    if (i >= index.size()) {
      v.shape.push_back(s.shape[i]);
      v.strides.push_back(s.strides[i]);
      continue;
    }
    Resolved r = resolve(op, index[i], s.shape[i], i, [&] { return std::vector<Meta>{meta_of(s)}; });
    v.offset += r.start * s.strides[i];
    if (!r.drop) {
      v.shape.push_back(r.len);
      v.strides.push_back(r.step * s.strides[i]);
    }
  }
}

}  // namespace

// ---- view(x, index...) and its adjoint --------------------------------------------------------
const Op op_slice{
    "view", {1, 1}, 0, &infer_slice,
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
      Storage v = view_of(*in[0]);  // an offered storage's vectors, when there is one
      slice_into(op, *in[0], a.index, v);
      return v;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {apply(op_slice_grad, {c.g, c.x[0]}, c.attrs)}; }};

// view_grad(g, x): zeros shaped like x with g written into the viewed region.
const Op op_slice_grad{
    "view_grad", {2, 2}, 0, [](const Op&, const std::vector<Meta>& in, const Attrs&) { return Meta{in[0].dtype, in[1].shape}; },
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
      Backend& be = backend_for(y.device());
      be.fill(y, 0.0);
      thread_local Storage region, g;  // g's values seen as the viewed region of y
      const ViewGuard views(region, g);
      slice_into(op, y, a.index, region);
      region.buf = borrowed(y.buf);
      broadcast_view_into(*in[0], region.shape, g);
      be.copy(g, region);
      return y;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {apply(op_slice, {c.g}, c.attrs), none}; }};

// ---- take(x, indices, axis) and its adjoint -----------------------------------------------------
namespace {

Shape take_shape(const Shape& x, const Shape& idx, std::int64_t axis) {
  Shape s(x.begin(), x.begin() + axis);
  s.insert(s.end(), idx.begin(), idx.end());
  s.insert(s.end(), x.begin() + axis + 1, x.end());
  return s;
}

// Indices as contiguous int64, negatives wrapped, each checked against n (`metas()`: the
// operands, for the error message): `idx` itself when it already is such a list on the
// CPU, else a copy in a per-thread scratch (the caller's ScratchGuard holds it).
// NOTE: checked on the host (the index list is small next to the data); a GPU's gather
// takes the checked list back.
template <class Metas>
const Storage& checked_indices(const Op& op, const Storage& idx, std::int64_t n, std::int64_t axis, const Metas& metas,
                               Storage& scratch) {
  auto check = [&](const std::int64_t* p, std::int64_t len) {
    bool negative = false;
    for (std::int64_t k = 0; k < len; ++k) {
      if (p[k] < -n || p[k] >= n)
        throw ValueError(message(op, "index " + std::to_string(p[k]) + " is out of bounds for axis " +
                                         std::to_string(axis) + " with size " + std::to_string(n),
                                 metas()));
      negative = negative || p[k] < 0;
    }
    return negative;
  };
  if (idx.device() == th::cpu() && idx.dtype == DType::int64 && idx.contiguous() &&
      !check(idx.data<std::int64_t>(), idx.size()))
    return idx;
  Storage moved;  // a GPU's list, on the host
  const Storage& host = idx.device() == th::cpu() ? idx : (moved = transfer(idx, th::cpu()));
  Storage& i64 = copy_to_scratch(host, DType::int64, scratch);
  std::int64_t* p = i64.data<std::int64_t>();
  check(p, i64.size());
  for (std::int64_t k = 0; k < i64.size(); ++k)
    if (p[k] < 0) p[k] += n;
  return i64;
}

void check_index_dtype(const Op& op, const std::vector<Meta>& in, std::size_t which) {
  if (in[which].dtype != DType::int32 && in[which].dtype != DType::int64)
    throw_type(op, std::string("indices must be int32 or int64, not ") + dtype_name(in[which].dtype), in);
}

}  // namespace

const Op op_take{
    "take", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      check_index_dtype(op, in, 1);
      return Meta{in[0].dtype, take_shape(in[0].shape, in[1].shape, a.axis)};
    },
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      const Storage& x = *in[0];
      thread_local Storage scratch;
      const ScratchGuard held(scratch);
      const Storage& idx = checked_indices(
          op, *in[1], x.shape[std::size_t(a.axis)], a.axis,
          [&] { return std::vector<Meta>{meta_of(x), meta_of(*in[1])}; }, scratch);
      Storage y = alloc_storage(out.dtype, out.shape, x.device());
      backend_for(x.device()).gather(x, idx, a.axis, y);
      return y;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      return {apply(op_take_grad, {c.g, c.x[1], c.x[0]}, c.attrs), none};
    },
    0b10};  // the indices may stay on the CPU

// take_grad(g, indices, x): zeros shaped like x, g scattered (added) at the indices.
const Op op_take_grad{
    "take_grad", {3, 3}, 0, [](const Op&, const std::vector<Meta>& in, const Attrs&) { return Meta{in[0].dtype, in[2].shape}; },
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      thread_local Storage scratch;
      const ScratchGuard held(scratch);
      const Storage& idx = checked_indices(op, *in[1], out.shape[std::size_t(a.axis)], a.axis,
                                           [&] { return std::vector<Meta>{meta_of(*in[2])}; }, scratch);
      Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
      Backend& be = backend_for(y.device());
      be.fill(y, 0.0);
      be.scatter_add(*in[0], idx, a.axis, y);
      return y;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      return {apply(op_take, {c.g, c.x[1]}, c.attrs), none, none};
    },
    0b110};  // indices; x for its shape

// ---- concatenate(xs, axis) and split_part(g, xs..., part) ---------------------------------------
const Op op_concatenate{
    "concatenate", {1, -1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      Shape s = in[0].shape;
      DType d = in[0].dtype;
      std::size_t ax = std::size_t(a.axis);
      for (std::size_t k = 1; k < in.size(); ++k) {
        const Shape& t = in[k].shape;
        d = promote_types(d, in[k].dtype);
        if (t.size() != s.size()) throw_shape(op, "all inputs must have the same number of dimensions", in);
        for (std::size_t i = 0; i < s.size(); ++i) {
          if (i == ax) continue;
          if (s[i] >= 0 && t[i] >= 0 && s[i] != t[i])
            throw_shape(op, "sizes differ in dim " + std::to_string(i) + " (" + std::to_string(s[i]) + " vs " +
                                std::to_string(t[i]) + ")",
                        in);
          if (s[i] < 0) s[i] = t[i];
        }
        s[ax] = (s[ax] < 0 || t[ax] < 0) ? -1 : s[ax] + t[ax];
      }
      return Meta{d, s};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
      Backend& be = backend_for(y.device());
      std::size_t ax = std::size_t(a.axis);
      std::int64_t at = 0;
      thread_local Storage part;  // each input's region of y (its vectors reused)
      const ViewGuard view(part);
      part.buf = borrowed(y.buf);
      part.dtype = y.dtype;
      part.strides = y.strides;
      for (const Storage* s : in) {
        part.shape = s->shape;
        part.offset = at * y.strides[ax];
        be.copy(*s, part);
        at += s->shape[ax];
      }
      return y;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      std::vector<Tensor> r;
      for (std::size_t i = 0; i < c.x.size(); ++i) {
        if (!c.needs[i]) {
          r.push_back(none);
          continue;
        }
        std::vector<Tensor> in{c.g};
        in.insert(in.end(), c.x.begin(), c.x.end());
        Attrs a = c.attrs;
        a.part = std::int64_t(i);
        r.push_back(apply(op_split_part, std::move(in), std::move(a)));
      }
      return r;
    }};

// split_part(g, x0..xn): the part of g along attrs.axis that concatenate took from x_part.
const Op op_split_part{
    "split_part", {2, -1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      // (made by concatenate's VJP; checked for the sake of loaded files)
      if (a.part < 0 || std::size_t(a.part) + 1 >= in.size()) throw_shape(op, "no such part", in);
      for (const Meta& m : in)
        if (a.axis < 0 || std::size_t(a.axis) >= m.shape.size() || m.shape.size() != in[0].shape.size())
          throw_shape(op, "the parts do not match the axis", in);
      Shape s = in[std::size_t(a.part) + 1].shape;
      Shape gs = in[0].shape;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (i != std::size_t(a.axis) && s[i] < 0) s[i] = gs[i];
      return Meta{in[0].dtype, s};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      std::size_t ax = std::size_t(a.axis);
      std::int64_t at = 0;
      for (std::int64_t k = 0; k < a.part; ++k) at += in[std::size_t(k) + 1]->shape[ax];
      Storage v = view_of(*in[0]);
      v.offset += at * v.strides[ax];
      v.shape = out.shape;
      return v;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      std::vector<Tensor> parts;
      for (std::size_t k = 1; k < c.x.size(); ++k)
        parts.push_back(std::int64_t(k - 1) == c.attrs.part ? c.g : zeros_like(c.x[k], c.g.dtype()));
      std::vector<Tensor> r{apply(op_concatenate, std::move(parts), c.attrs)};
      r.resize(c.x.size());
      return r;
    }};

}  // namespace th::detail

namespace th {

Tensor view(const Tensor& x, const std::vector<Index>& indices) {
  detail::Attrs a;
  a.index = indices;
  return detail::apply(detail::op_slice, {x}, std::move(a));
}

Tensor take(const Tensor& x, const Tensor& indices, std::int64_t axis) {
  detail::Attrs a;
  a.axis = detail::norm_axis(detail::op_take, axis, std::int64_t(detail::node_of(x, "take").shape.size()),
                             {detail::meta_of(x), detail::meta_of(indices)});
  return detail::apply(detail::op_take, {x, indices}, std::move(a));
}

Tensor concatenate(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("concatenate: need at least one tensor");
  std::vector<detail::Meta> metas;
  for (const Tensor& t : xs) {
    detail::node_of(t, "concatenate");
    metas.push_back(detail::meta_of(t));
  }
  if (metas[0].shape.empty()) throw ShapeError("concatenate: zero-dimensional tensors cannot be concatenated: " + detail::describe(metas));
  detail::Attrs a;
  a.axis = detail::norm_axis(detail::op_concatenate, axis, std::int64_t(metas[0].shape.size()), metas);
  return detail::apply(detail::op_concatenate, xs, std::move(a));
}

Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("stack: need at least one tensor");
  std::vector<Tensor> expanded;
  for (const Tensor& t : xs) expanded.push_back(expand_dims(t, axis));
  return concatenate(expanded, axis);
}

}  // namespace th
