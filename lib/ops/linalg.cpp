// Linear algebra: matmul is the primitive (operands of rank >= 2, batch dims broadcast,
// BLAS through the backend's gemm); dot, outer and the 1-d cases of matmul are built on it.
#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

// a (..., M, K) @ b (..., K, N) -> (..., M, N)
Meta infer_matmul(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  const Shape& a = in[0].shape;
  const Shape& b = in[1].shape;
  std::int64_t ka = a[a.size() - 1], kb = b[b.size() - 2];
  if (ka >= 0 && kb >= 0 && ka != kb)
    throw_shape(op, "shapes not aligned: " + std::to_string(ka) + " (dim " + std::to_string(a.size() - 1) +
                        ") != " + std::to_string(kb) + " (dim " + std::to_string(b.size() - 2) + ")",
                in);
  std::vector<Meta> batch{{in[0].dtype, Shape(a.begin(), a.end() - 2), in[0].name},
                          {in[1].dtype, Shape(b.begin(), b.end() - 2), in[1].name}};
  Shape s = broadcast_shapes(op, batch);
  s.push_back(a[a.size() - 2]);
  s.push_back(b[b.size() - 1]);
  DType d = promote_types(in[0].dtype, in[1].dtype);
  return {d == DType::boolean ? DType::int64 : d, s};
}

Storage forward_matmul(const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  auto batch_view = [&](const Storage& s) {
    Storage c = s.dtype == out.dtype ? s : contiguous_as(s, out.dtype);
    Shape target(out.shape.begin(), out.shape.end() - 2);
    target.push_back(c.shape[c.shape.size() - 2]);
    target.push_back(c.shape[c.shape.size() - 1]);
    return broadcast_view(c, target);
  };
  Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
  backend_for(y.device()).gemm(batch_view(*in[0]), batch_view(*in[1]), y);
  return y;
}

Tensor swap_last(const Tensor& t) {
  std::vector<std::int64_t> perm(t.node()->shape.size());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = std::int64_t(i);
  std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
  return transpose(t, perm);
}

// y = a @ b: da = g @ b^T, db = a^T @ g (batch broadcasting undone by the engine)
const Op op_matmul{"matmul", 0, &infer_matmul, &forward_matmul, [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
                     return {c.needs[0] ? matmul(c.g, swap_last(c.x[1])) : none,
                             c.needs[1] ? matmul(swap_last(c.x[0]), c.g) : none};
                   }};

// numpy matmul on top of the primitive: 1-d operands gain then lose a unit axis. `name`
// is the user's function, so errors speak of dot when the user called dot.
Tensor matmul_as(const char* name, const Tensor& a, const Tensor& b) {
  const Node& an = node_of(a, name);
  const Node& bn = node_of(b, name);
  std::vector<Meta> metas{meta_of(a), meta_of(b)};
  const Op named{name, 0, &infer_matmul, &forward_matmul, nullptr};
  if (an.shape.empty() || bn.shape.empty()) throw_shape(named, "operands must have at least one dimension", metas);
  std::int64_t ka = an.shape.back(), kb = bn.shape.size() == 1 ? bn.shape[0] : bn.shape[bn.shape.size() - 2];
  if (ka >= 0 && kb >= 0 && ka != kb)
    throw_shape(named, "shapes not aligned: " + std::to_string(ka) + " (dim " + std::to_string(an.shape.size() - 1) +
                           ") != " + std::to_string(kb) + " (dim " +
                           std::to_string(bn.shape.size() == 1 ? 0 : bn.shape.size() - 2) + ")",
                metas);
  const bool a1 = an.shape.size() == 1, b1 = bn.shape.size() == 1;
  Tensor r = apply(op_matmul, {a1 ? expand_dims(a, 0) : a, b1 ? expand_dims(b, -1) : b});
  if (b1) r = squeeze(r, -1);
  if (a1) r = squeeze(r, -1 - (b1 ? 0 : 1));
  return r;
}

}  // namespace

}  // namespace th::detail

namespace th {

Tensor matmul(const Tensor& a, const Tensor& b) { return detail::matmul_as("matmul", a, b); }

Tensor dot(const Tensor& a, const Tensor& b) {
  const std::size_t na = detail::node_of(a, "dot").shape.size(), nb = detail::node_of(b, "dot").shape.size();
  if (na == 0 || nb == 0) return a * b;
  if (na > 2 || nb > 2)
    throw ShapeError("dot: only 0-, 1- and 2-d operands are supported (use th::matmul for batches): " +
                     detail::describe({detail::meta_of(a), detail::meta_of(b)}));
  return detail::matmul_as("dot", a, b);
}

Tensor outer(const Tensor& a, const Tensor& b) { return reshape(a, {-1, 1}) * reshape(b, {1, -1}); }

Tensor Tensor::dot(const Tensor& other) const { return th::dot(*this, other); }
Tensor Tensor::T() const { return th::transpose(*this); }

}  // namespace th
