// More of numpy's and Theano's extra ops (API.md section 16): sort / argsort / topk (one step
// with two outputs, values and indices; stable), split / chunk (one step, its outputs views of
// the operand), tril / triu, cumsum / cumprod. Kernels on the host (an operand on a GPU is
// brought over and the result sent back: docs/gpu.md); gradients in theta's ops, so
// they differentiate again where the maths allows (cumprod's once).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/dispatch.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

template <class T>
bool is_nan_v(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// ---- sort: values and indices of each line along attrs.axis ------------------------------------
// attrs: axis (normalised), axes = {k} (-1: the whole axis), all = descending. NaN sorts as
// the largest value (PyTorch's order). Ties keep their order (stable), descending too.
std::vector<Meta> sort_parts(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Shape& s = in[0].shape;
  const auto ax = std::size_t(a.axis);
  if (ax >= s.size()) throw_shape(op, "needs an axis to sort along (x has " + std::to_string(s.size()) + " dimensions)", in);
  const std::int64_t k = a.axes.empty() ? -1 : a.axes[0];
  if (k >= 0 && s[ax] >= 0 && k > s[ax])
    throw_shape(op, "k = " + std::to_string(k) + " is larger than axis " + std::to_string(a.axis) + " of size " +
                        std::to_string(s[ax]), in);
  Shape o = s;
  if (k >= 0) o[ax] = k;
  return {{in[0].dtype, o}, {DType::int64, o}};
}

Storage forward_sort(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  const std::vector<Meta> outs = sort_parts(op, {meta_of(*in[0])}, a);
  const Storage x = on_host(*in[0], in[0]->dtype);
  Storage vals = alloc_storage(outs[0].dtype, outs[0].shape, th::cpu());
  Storage idx = alloc_storage(DType::int64, outs[1].shape, th::cpu());
  const AxisLines L(x.shape, a.axis);
  const std::int64_t k = outs[0].shape[std::size_t(a.axis)];
  const bool desc = a.all;
  THETA_DISPATCH_ALL(x.dtype, T, {
    const T* xd = x.data<T>();
    T* vd = vals.data<T>();
    std::int64_t* id = idx.data<std::int64_t>();
    std::vector<std::int64_t> order(std::size_t(L.n));
    for (std::int64_t o = 0; o < L.outer; ++o)
      for (std::int64_t i = 0; i < L.inner; ++i) {
        const T* line = xd + o * L.n * L.inner + i;
        auto at = [&](std::int64_t j) { return line[j * L.inner]; };
        auto less = [&](std::int64_t p, std::int64_t q) {  // NaN largest
          const T u = at(p), v = at(q);
          if (is_nan_v(v)) return !is_nan_v(u);
          return !is_nan_v(u) && u < v;
        };
        std::iota(order.begin(), order.end(), std::int64_t(0));
        if (desc) std::stable_sort(order.begin(), order.end(), [&](std::int64_t p, std::int64_t q) { return less(q, p); });
        else std::stable_sort(order.begin(), order.end(), less);
        for (std::int64_t j = 0; j < k; ++j) {
          const std::int64_t out = o * k * L.inner + j * L.inner + i;
          vd[out] = at(order[std::size_t(j)]);
          id[out] = order[std::size_t(j)];
        }
      }
  })
  const Device dev = in[0]->device();
  return make_tuple({to_device(std::move(vals), dev), to_device(std::move(idx), dev)});
}

Tensor put_along(const Tensor& g, const Tensor& idx, const Tensor& like, std::int64_t axis);

// the values' gradient goes back to where each value came from
std::vector<Tensor> vjp_sort(const Op& op, const VjpCtx& c) {
  const Tensor& g = part_grad(c, 0);
  if (!g) return {none};
  return {put_along(g, outputs_of(op, c)[1], c.x[0], c.attrs.axis)};
}

// ---- take_along(x, idx) / put_along(g, idx, like): the sort's gather and its adjoint -------------
// numpy's take_along_axis, and zeros of like's shape with g added at the indices.
Meta infer_take_along(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  const Shape &x = in[op.code == 0 ? 0 : 2].shape, &i = in[1].shape;
  if (in[1].dtype != DType::int64 || i.size() != x.size()) throw_shape(op, "indices must be int64 of x's rank", in);
  return {in[0].dtype, op.code == 0 ? i : x};
}

Storage forward_take_along(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage src = on_host(*in[0], out.dtype), idx = on_host(*in[1], DType::int64);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  const Shape& full = op.code == 0 ? src.shape : out.shape;  // the shape the indices point into
  const AxisLines F(full, a.axis), I(idx.shape, a.axis);
  if (I.outer != F.outer || I.inner != F.inner) throw_shape(op, "indices do not match x's other axes", {meta_of(*in[0]), meta_of(*in[1])});
  THETA_DISPATCH_NUMERIC(out.dtype, T, {
    const T* s = src.data<T>();
    T* d = y.data<T>();
    const std::int64_t* ix = idx.data<std::int64_t>();
    if (op.code == 1) std::fill(d, d + y.size(), T(0));
    for (std::int64_t o = 0; o < I.outer; ++o)
      for (std::int64_t j = 0; j < I.n; ++j)
        for (std::int64_t i = 0; i < I.inner; ++i) {
          const std::int64_t at = (o * I.n + j) * I.inner + i, p = ix[at];
          if (p < 0 || p >= F.n) throw ValueError(std::string(op.name) + ": index " + std::to_string(p) + " out of range");
          const std::int64_t full_at = (o * F.n + p) * F.inner + i;
          if (op.code == 0) d[at] = s[full_at];
          else d[full_at] += s[at];
        }
  })
  return to_device(std::move(y), in[0]->device());
}

Tensor take_along(const Tensor& x, const Tensor& idx, std::int64_t axis);

std::vector<Tensor> vjp_take_along(const Op& op, const VjpCtx& c) {
  if (op.code == 0) return {put_along(c.g, c.x[1], c.x[0], c.attrs.axis), none};
  return {take_along(c.g, c.x[1], c.attrs.axis), none, none};
}

const Op op_take_along{"take_along_axis", {2, 2}, 0, &infer_take_along, &forward_take_along, &vjp_take_along, 0b10};
const Op op_put_along{"put_along_axis", {3, 3}, 1, &infer_take_along, &forward_take_along, &vjp_take_along, 0b110};

Tensor take_along(const Tensor& x, const Tensor& idx, std::int64_t axis) {
  Attrs a;
  a.axis = axis;
  return apply(op_take_along, {x, idx}, std::move(a));
}
Tensor put_along(const Tensor& g, const Tensor& idx, const Tensor& like, std::int64_t axis) {
  Attrs a;
  a.axis = axis;
  return apply(op_put_along, {g, idx, like}, std::move(a));
}

const Op op_sort{"sort", {1, 1}, 0, &infer_tuple, &forward_sort, &vjp_sort, 0, false, nullptr, &sort_parts};

// ---- split: the parts of x along attrs.axis, of sizes attrs.axes (views of x) -------------------
std::vector<Meta> split_parts(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Shape& s = in[0].shape;
  const auto ax = std::size_t(a.axis);
  if (ax >= s.size()) throw_shape(op, "needs an axis to split (x has " + std::to_string(s.size()) + " dimensions)", in);
  std::int64_t total = 0;
  for (std::int64_t n : a.axes) {
    if (n < 0) throw_shape(op, "a part's size is negative (" + std::to_string(n) + ")", in);
    total += n;
  }
  if (s[ax] >= 0 && total != s[ax])
    throw_shape(op, "the sizes sum to " + std::to_string(total) + " but axis " + std::to_string(a.axis) + " has " +
                        std::to_string(s[ax]), in);
  std::vector<Meta> r;
  for (std::int64_t n : a.axes) {
    Shape p = s;
    p[ax] = n;
    r.push_back({in[0].dtype, p});
  }
  return r;
}

Storage forward_split(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  split_parts(op, {meta_of(*in[0])}, a);
  std::vector<Storage> parts;
  std::int64_t at = 0;
  const auto ax = std::size_t(a.axis);
  for (std::int64_t n : a.axes) {
    Storage v = view_of(*in[0]);
    v.offset += at * v.strides[ax];
    v.shape[ax] = n;
    parts.push_back(std::move(v));
    at += n;
  }
  return make_tuple(std::move(parts));
}

std::vector<Tensor> vjp_split(const Op& op, const VjpCtx& c) {
  const std::vector<Tensor> ys = outputs_of(op, c);
  std::vector<Tensor> gs;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const Tensor& g = part_grad(c, i);
    gs.push_back(g ? g : zeros_like(ys[i]));
  }
  return {concatenate(gs, c.attrs.axis)};
}

const Op op_split{"split", {1, 1}, 0, &infer_tuple, &forward_split, &vjp_split, 0, false, nullptr, &split_parts};

// ---- triangles: tril / triu (attrs.axis = k, the diagonal: 0 main, > 0 above), and tri_mask
// (the gradients' mask: attrs.axis 1 the strictly lower triangle, 0 the strictly upper one,
// plus the diagonal times attrs.scale) ---------------------------------------------------------------
Meta infer_tri(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  if (in[0].shape.size() < 2) throw_shape(op, "needs a matrix (or a batch of them)", in);
  return {in[0].dtype, in[0].shape};
}

template <class T>
T times(T v, double k) {  // tri_mask's diagonal
  if constexpr (std::is_same_v<T, bool>) return v && k != 0;
  else return T(v * T(k));
}

Storage forward_tri(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage x = on_host(*in[0], out.dtype);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  const std::int64_t rows = x.shape[x.shape.size() - 2], cols = x.shape.back(), mats = rows * cols != 0 ? x.size() / (rows * cols) : 0;
  THETA_DISPATCH_ALL(out.dtype, T, {
    const T* s = x.data<T>();
    T* d = y.data<T>();
    for (std::int64_t m = 0; m < mats; ++m)
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < cols; ++q) {
          const std::int64_t at = (m * rows + r) * cols + q;
          if (op.code == 2 && q == r) {
            d[at] = times(s[at], a.scale);
            continue;
          }
          const bool keep = op.code == 0 ? q - r <= a.axis : op.code == 1 ? q - r >= a.axis : a.axis ? q < r : q > r;
          d[at] = keep ? s[at] : T(0);
        }
  })
  return to_device(std::move(y), in[0]->device());
}

std::vector<Tensor> vjp_tri(const Op& op, const VjpCtx& c) { return {apply(op, {c.g}, c.attrs)}; }

const Op op_tril{"tril", {1, 1}, 0, &infer_tri, &forward_tri, &vjp_tri};
const Op op_triu{"triu", {1, 1}, 1, &infer_tri, &forward_tri, &vjp_tri};
const Op op_tri_mask{"tri_mask", {1, 1}, 2, &infer_tri, &forward_tri, &vjp_tri};

// ---- cumsum / cumprod along attrs.axis (attrs.all: from the end, cumsum only) --------------------
Meta infer_cum(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (std::size_t(a.axis) >= in[0].shape.size()) throw_shape(op, "needs an axis (x is 0-d)", in);
  if (op.code == 2) return {in[1].dtype, in[1].shape};  // cumprod_grad(x, g)
  return {in[0].dtype == DType::boolean ? DType::int64 : in[0].dtype, in[0].shape};
}

// cumprod's gradient, exact with zeros: on each line with y = cumprod(x) and z the first zero,
// gx_i = sum_{i<=j<z} g_j y_j / x_i for i < z; gx_z = sum_{j>=z} g_j y_{z-1} prod_{z<k<=j} x_k;
// 0 after z.
template <class T>
void cumprod_grad_line(const T* x, const T* g, T* gx, std::int64_t n, std::int64_t st) {
  std::int64_t z = 0;
  while (z < n && x[z * st] != T(0)) ++z;
  T y = 1, acc = 0;
  std::vector<T> ys(std::size_t(std::min(z, n)));
  for (std::int64_t j = 0; j < z; ++j) ys[std::size_t(j)] = y = y * x[j * st];
  for (std::int64_t j = z; j-- > 0;) {
    acc += g[j * st] * ys[std::size_t(j)];
    gx[j * st] = acc / x[j * st];
  }
  if (z < n) {
    const T before = z > 0 ? ys[std::size_t(z - 1)] : T(1);
    T run = before, sum = 0;
    for (std::int64_t j = z; j < n; ++j) {
      if (j > z) run *= x[j * st];
      sum += g[j * st] * run;
    }
    gx[z * st] = sum;
    for (std::int64_t j = z + 1; j < n; ++j) gx[j * st] = 0;
  }
}

Storage forward_cum(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage x = on_host(*in[0], out.dtype);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  const AxisLines L(out.shape, a.axis);
  THETA_DISPATCH_NUMERIC(out.dtype, T, {
    const T* s = x.data<T>();
    T* d = y.data<T>();
    const Storage g = op.code == 2 ? on_host(*in[1], out.dtype) : Storage();
    for (std::int64_t o = 0; o < L.outer; ++o)
      for (std::int64_t i = 0; i < L.inner; ++i) {
        const std::int64_t base = o * L.n * L.inner + i, st = L.inner;
        if (op.code == 2) {
          cumprod_grad_line<T>(s + base, g.data<T>() + base, d + base, L.n, st);
          continue;
        }
        T acc = op.code == 0 ? T(0) : T(1);
        for (std::int64_t j0 = 0; j0 < L.n; ++j0) {
          const std::int64_t j = a.all ? L.n - 1 - j0 : j0;
          acc = op.code == 0 ? T(acc + s[base + j * st]) : T(acc * s[base + j * st]);
          d[base + j * st] = acc;
        }
      }
  })
  return to_device(std::move(y), in[0]->device());
}

std::vector<Tensor> vjp_cum(const Op& op, const VjpCtx& c);
std::vector<Tensor> vjp_cumprod_grad(const Op& op, const VjpCtx& c);

const Op op_cumsum{"cumsum", {1, 1}, 0, &infer_cum, &forward_cum, &vjp_cum};
const Op op_cumprod{"cumprod", {1, 1}, 1, &infer_cum, &forward_cum, &vjp_cum};
const Op op_cumprod_grad{"cumprod_grad", {2, 2}, 2, &infer_cum, &forward_cum, &vjp_cumprod_grad};

// cumprod's gradient's gradient: the kernel's gx_i = sum_{j>=i} g_j prod_{k<=j, k!=i} x_k
// written out in theta's ops, without division (exact with zeros), and differentiated by the
// tape: per line, an (n x n) matrix M with M[i][k] = x_k off the diagonal and 1 on it, whose
// running product along k is C[i][j] = prod_{k<=j, k!=i} x_k, so gx_i = sum_{j>=i} g_j C[i][j].
// n x n per line: only a gradient's gradient builds it.
std::vector<Tensor> vjp_cumprod_grad(const Op&, const VjpCtx& c) {
  const std::int64_t nd = std::int64_t(c.x[0].ndim()), axis = c.attrs.axis;
  std::vector<std::int64_t> perm;  // the axis last
  for (std::int64_t d = 0; d < nd; ++d)
    if (d != axis) perm.push_back(d);
  perm.push_back(axis);
  std::vector<std::int64_t> back(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d) back[std::size_t(perm[d])] = std::int64_t(d);
  const bool last = axis == nd - 1;
  const Tensor xt = last ? c.x[0] : transpose(c.x[0], perm), gt = last ? c.x[1] : transpose(c.x[1], perm);
  const Tensor square = expand_dims(xt, -1) * expand_dims(xt, -2);  // (..., n, n): the shape
  const Tensor M = where(identity_like(square) > 0.0, 1.0, broadcast_like(expand_dims(xt, -2), square));
  const Tensor C = apply(op_cumprod, {M}, [&] {
    Attrs a;
    a.axis = nd;  // the last of M's nd + 1 axes
    return a;
  }());
  Tensor gx = sum(triu(ones_like(square)) * expand_dims(gt, -2) * C, Axes(-1));
  if (!last) gx = transpose(gx, back);
  const std::vector<Tensor> g = backward({gx}, {c.g}, {c.x[0], c.x[1]}, true);
  return {c.needs[0] ? g[0] : Tensor(), c.needs[1] ? g[1] : Tensor()};
}

std::vector<Tensor> vjp_cum(const Op& op, const VjpCtx& c) {
  if (op.code == 0) {  // the gradient of a running sum is the running sum from the other end
    Attrs a = c.attrs;
    a.all = !a.all;
    return {apply(op_cumsum, {c.g}, std::move(a))};
  }
  return {apply(op_cumprod_grad, {c.x[0], c.g}, c.attrs)};
}

std::int64_t axis_of(const Op& op, const Tensor& x, std::int64_t axis) {
  return norm_axis(op, axis, std::int64_t(node_of(x, op.name).shape.size()), {meta_of(x)});
}

}  // namespace

const Op& tri_mask_op() { return op_tri_mask; }

Tensor identity_like(const Tensor& x) { return tril(triu(ones_like(x))); }

Tensor take_along_axis(const Tensor& x, const Tensor& indices, std::int64_t axis) { return take_along(x, indices, axis); }
Tensor put_along_axis(const Tensor& values, const Tensor& indices, const Tensor& like, std::int64_t axis) {
  return put_along(values, indices, like, axis);
}

}  // namespace th::detail

namespace th {

using detail::apply;
using detail::Attrs;

namespace {
std::vector<Tensor> sorted(const char* name, const Tensor& x, std::int64_t k, int axis, bool descending) {
  Attrs a;
  a.axis = detail::axis_of(detail::op_sort, x, axis);
  a.axes = {k};
  a.all = descending;
  a.called = name;
  return detail::apply_parts(detail::op_sort, {x}, std::move(a));
}
}  // namespace

Tensor sort(const Tensor& x, int axis, bool descending) { return sorted("sort", x, -1, axis, descending)[0]; }
Tensor argsort(const Tensor& x, int axis, bool descending) { return sorted("argsort", x, -1, axis, descending)[1]; }
std::pair<Tensor, Tensor> topk(const Tensor& x, std::int64_t k, int axis, bool largest) {
  if (k < 0) throw ValueError("topk: k must be >= 0, got " + std::to_string(k) + ": " + detail::describe({detail::meta_of(x)}));
  const auto r = sorted("topk", x, k, axis, largest);
  return {r[0], r[1]};
}

std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, int axis) {
  if (sizes.empty()) throw ValueError("split: give at least one size: " + detail::describe({detail::meta_of(x)}));
  Attrs a;
  a.axis = detail::axis_of(detail::op_split, x, axis);
  a.axes = sizes;
  return detail::apply_parts(detail::op_split, {x}, std::move(a));
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t n, int axis) {
  const Shape& s = detail::node_of(x, "chunk").shape;
  if (n < 1) throw ValueError("chunk: n must be >= 1, got " + std::to_string(n) + ": " + detail::describe({detail::meta_of(x)}));
  const std::int64_t ax = detail::axis_of(detail::op_split, x, axis), size = s[std::size_t(ax)];
  if (size < 0)
    throw ShapeError("chunk: axis " + std::to_string(axis) + " has a size known only when the function runs; use split with sizes: " +
                     detail::describe({detail::meta_of(x)}));
  std::vector<std::int64_t> sizes;  // numpy's array_split: the first size % n parts one longer
  for (std::int64_t i = 0; i < n; ++i) sizes.push_back(size / n + (i < size % n ? 1 : 0));
  return split(x, sizes, int(ax));
}

Tensor tril(const Tensor& x, std::int64_t k) {
  Attrs a;
  a.axis = k;
  return apply(detail::op_tril, {x}, std::move(a));
}
Tensor triu(const Tensor& x, std::int64_t k) {
  Attrs a;
  a.axis = k;
  return apply(detail::op_triu, {x}, std::move(a));
}

Tensor cumsum(const Tensor& x, int axis) {
  Attrs a;
  a.axis = detail::axis_of(detail::op_cumsum, x, axis);
  return apply(detail::op_cumsum, {x}, std::move(a));
}
Tensor cumprod(const Tensor& x, int axis) {
  Attrs a;
  a.axis = detail::axis_of(detail::op_cumprod, x, axis);
  return apply(detail::op_cumprod, {x}, std::move(a));
}

}  // namespace th
