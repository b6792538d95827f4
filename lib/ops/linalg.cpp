// Linear algebra: matmul is the primitive (numpy's matmul: batch dims broadcast, 1-d
// operands as a row or a column; BLAS through the backend's gemm); dot and outer use it.
#include "core/scalar_math.hpp"
#include "cpu/cpu_backend.hpp"
#include "ops/op.hpp"
#include "theta/nn.hpp"

namespace th::detail {

Tensor swap_last(const Tensor& t) {
  std::vector<std::int64_t> perm(t.node()->shape.size());
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = std::int64_t(i);
  std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
  return transpose(t, perm);
}

namespace {

const Tensor none{};

// The shape of a @ b with the operands read as `transpose` says (bit 0: a's last two axes
// swapped, bit 1: b's), into `s`: the batch dims broadcast, then M and N (left out for a
// 1-d operand). Returns broadcast_into's verdict on the batch dims (< 0: they broadcast).
long matmul_shape(const Shape& a, const Shape& b, unsigned transpose, Shape& s) {
  const std::size_t na = a.size(), nb = b.size();
  s.clear();
  long bad = -1;
  if (na > 2) s.assign(a.begin(), a.end() - 2);
  if (nb > 2) {
    thread_local Shape batch;  // reused: the frozen matmul_acc asks on every call
    batch.assign(b.begin(), b.end() - 2);
    bad = broadcast_into(s, batch);
  }
  if (na >= 2) s.push_back(a[na - 2 + (transpose & 1u ? 1 : 0)]);
  if (nb >= 2) s.push_back(b[nb - 1 - (transpose & 2u ? 1 : 0)]);
  return bad;
}

// a (..., M, K) @ b (..., K, N) -> (..., M, N), numpy's matmul: a 1-d a is one row (its M
// dimension is left out of the result), a 1-d b one column (N left out). One op for all
// cases, so dot(matrix, vector) is one GEMV step, not a view, a GEMM and a squeeze.
Meta infer_matmul(const Op& op, const std::vector<Meta>& in, const Attrs& attrs) {
  if (attrs.transpose) {  // matmul_t: the rule on the operands as read
    std::vector<Meta> t = in;
    for (std::size_t i = 0; i < 2; ++i)
      if (attrs.transpose >> i & 1u) std::swap(t[i].shape[t[i].shape.size() - 1], t[i].shape[t[i].shape.size() - 2]);
    Attrs plain = attrs;
    plain.transpose = 0;
    return infer_matmul(op, t, plain);
  }
  const Shape& a = in[0].shape;
  const Shape& b = in[1].shape;
  if (a.empty() || b.empty()) throw_shape(op, "operands must have at least one dimension", in);
  const std::size_t kb_dim = b.size() == 1 ? 0 : b.size() - 2;
  const std::int64_t ka = a.back(), kb = b[kb_dim];
  if (ka >= 0 && kb >= 0 && ka != kb)
    throw_shape(op, "shapes not aligned: " + std::to_string(ka) + " (dim " + std::to_string(a.size() - 1) +
                        ") != " + std::to_string(kb) + " (dim " + std::to_string(kb_dim) + ")",
                in);
  Shape s;
  if (matmul_shape(a, b, 0, s) >= 0)  // the batch dims do not broadcast: the usual message
    broadcast_shapes(op, {{in[0].dtype, Shape(a.begin(), a.end() - 2), in[0].name},
                          {in[1].dtype, Shape(b.begin(), b.end() - 2), in[1].name}});
  DType d = promote_types(in[0].dtype, in[1].dtype);
  return {d == DType::boolean ? DType::int64 : d, s};
}

// `v` := operand `s` as the backend's GEMM takes it: (batch..., rows, cols) over the
// result's batch dims (stride 0 where it broadcasts), a vector as one row (`row`) or one
// column (`col`). Assigned in place, so a reused `v` allocates nothing.
void gemm_operand(const Storage& s, bool row, bool col, bool swap, const Shape& y2, Storage& v) {
  const std::size_t nd = y2.size(), nb = nd - 2;
  v.buf = borrowed(s.buf);
  v.dtype = s.dtype;
  v.offset = s.offset;
  v.shape.resize(nd);
  v.strides.resize(nd);
  const std::size_t r = s.shape.size();
  if (row || col) {  // (K) as (1, K) or (K, 1), strided as a dense matrix of that shape would be
    const std::size_t k = row ? nd - 1 : nd - 2, unit = 2 * nd - 3 - k;
    v.shape[k] = s.shape[0];
    v.strides[k] = s.strides[0];
    v.shape[unit] = 1;
    v.strides[unit] = row ? s.strides[0] * s.shape[0] : 1;  // (BLAS leading dimensions read it)
  } else {
    for (std::size_t d = 0; d < 2; ++d) {  // the last two axes, swapped when read transposed
      const std::size_t from = r - 1 - (swap ? 1 - d : d);
      v.shape[nd - 1 - d] = s.shape[from];
      v.strides[nd - 1 - d] = s.strides[from];
    }
  }
  const std::size_t sb = row || col ? 0 : r - 2;  // the operand's own batch dims, right-aligned
  for (std::size_t d = 0; d < nb; ++d) {
    v.shape[d] = y2[d];
    const bool has = d + sb >= nb;
    v.strides[d] = has && s.shape[d + sb - nb] != 1 ? s.strides[d + sb - nb] : 0;
  }
}

// a @ b (read as matmul_t reads them) as y(M) = A x: which operand is the matrix A (read
// as M x K with element strides s0, s1) and which the vector x; false when it is not a
// matrix times a vector of y's dtype.
struct MatvecForm {
  bool matrix_first;
  std::int64_t s0, s1;
};
bool matvec_form(const Storage& a, const Storage& b, unsigned transpose, DType ydtype, MatvecForm& f) {
  const bool a1 = a.shape.size() == 1, b1 = b.shape.size() == 1;
  if (a1 == b1 || a.shape.size() + b.shape.size() != 3 || a.dtype != ydtype || b.dtype != ydtype) return false;
  const Storage& m = b1 ? a : b;  // the matrix, as stored
  const bool swap = transpose & (b1 ? 1u : 2u);
  f.s0 = m.strides[swap ? 1 : 0], f.s1 = m.strides[swap ? 0 : 1];  // read as (rows, cols)
  if (a1) std::swap(f.s0, f.s1);  // y = x^T B: the rows of B^T
  f.matrix_first = b1;
  return true;
}

// A matrix times a vector on the CPU, straight to the GEMV kernels (no GEMM views: a
// frozen matrix-vector step runs this on every call); false when the general path must run.
bool matvec_step(const Storage& a, const Storage& b, unsigned transpose, const Storage& y) {
  MatvecForm f;
  if (y.device() != th::cpu() || !matvec_form(a, b, transpose, y.dtype, f)) return false;
  const Storage &m = f.matrix_first ? a : b, &x = f.matrix_first ? b : a;
  return cpu::matvec(y.dtype, y.shape[0], x.shape[0], m.bytes(), f.s0, f.s1, x.bytes(), x.strides[0], y.bytes());
}

Storage forward_matmul(const Op&, const std::vector<const Storage*>& in, const Attrs& attrs, const Meta& out) {
  const bool a1 = in[0]->shape.size() == 1, b1 = in[1]->shape.size() == 1;
  Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
  if (matvec_step(*in[0], *in[1], attrs.transpose, y)) return y;
  // The views the backend's GEMM takes, in per-thread storages whose vectors are reused
  // (their buffer references are dropped on the way out). y2 is the result as the GEMM
  // sees it: (batch..., M, N) with M or N of 1 for a vector operand, over the same buffer.
  thread_local Storage av, bv, y2;
  const ViewGuard views(av, bv, y2);
  if (a1 || b1) {
    y2.buf = borrowed(y.buf);
    y2.dtype = y.dtype;
    y2.offset = 0;
    y2.shape = y.shape;
    if (a1) y2.shape.insert(y2.shape.end() - (b1 ? 0 : 1), 1);
    if (b1) y2.shape.push_back(1);
    set_contiguous_strides(y2.shape, y2.strides);
  }
  const Storage& yg = a1 || b1 ? y2 : y;
  Storage ca, cb;  // operands converted to the result's dtype, when they differ
  const Storage& a = in[0]->dtype == out.dtype ? *in[0] : (ca = contiguous_as(*in[0], out.dtype));
  const Storage& b = in[1]->dtype == out.dtype ? *in[1] : (cb = contiguous_as(*in[1], out.dtype));
  gemm_operand(a, a1, false, attrs.transpose & 1u, yg.shape, av);
  gemm_operand(b, false, b1, attrs.transpose & 2u, yg.shape, bv);
  backend_for(y.device()).gemm(av, bv, yg);
  return y;
}

// a matrix (or batch of them) times g as columns: m @ g for a 1-d g, else each batch's
// m @ g[..., :, None] (batch broadcasting is undone by the engine).
Tensor times_columns(const Tensor& m, const Tensor& g) {
  if (g.node()->shape.size() == 1) return matmul(m, g);
  return squeeze(matmul(m, expand_dims(g, -1)), -1);
}

// y = a @ b: da = g @ b^T, db = a^T @ g (batch broadcasting undone by the engine). With a
// vector operand the product with it is an outer product, written as a broadcast multiply.
std::vector<Tensor> vjp_matmul(const Op&, const VjpCtx& c) {
  const Tensor &a = c.x[0], &b = c.x[1], &g = c.g;
  const bool a1 = a.node()->shape.size() == 1, b1 = b.node()->shape.size() == 1;
  if (a1 && b1) return {c.needs[0] ? g * b : none, c.needs[1] ? g * a : none};
  if (b1)  // y (..., M) = a (..., M, K) @ b (K)
    return {c.needs[0] ? expand_dims(g, -1) * b : none, c.needs[1] ? times_columns(swap_last(a), g) : none};
  if (a1)  // y (..., N) = a (K) @ b (..., K, N)
    return {c.needs[0] ? times_columns(b, g) : none, c.needs[1] ? expand_dims(a, -1) * expand_dims(g, -2) : none};
  const std::size_t ra = a.node()->shape.size(), rb = b.node()->shape.size();
  if (rb == 2 && ra > 2 && c.needs[1]) {
    // b shared by a's batches (x (T, B, K) @ W): db = a^T g over all rows at once, one GEMM
    // instead of a product per batch summed afterwards
    auto rows = [](const Tensor& t) {
      const std::int64_t last = t.node()->shape.back();
      if (last >= 0) return reshape(t, {-1, last});
      return reshape_by(t, concatenate({tensor(std::vector<std::int64_t>{-1}, {1}), view(shape_of(t), range(-1, std::nullopt))}));
    };
    return {c.needs[0] ? matmul(g, swap_last(b)) : none, matmul(swap_last(rows(a)), rows(g))};
  }
  return {c.needs[0] ? matmul(g, swap_last(b)) : none, c.needs[1] ? matmul(swap_last(a), g) : none};
}

const Op op_matmul{"matmul", {2, 2}, 0, &infer_matmul, &forward_matmul, &vjp_matmul};
const Op op_matmul_t{"matmul_t", {2, 2}, 0, &infer_matmul, &forward_matmul, nullptr};

// matmul_acc(a, b, c) = c - m * k (attrs.axis 0), c + m * k (1) or m * k + c (2), with m =
// a @ b read as matmul_t reads them (attrs.transpose), summed down to c's shape first when
// attrs.all (a gradient's sum_to_like), and k = attrs.scale: a gradient step w - lr * x^T g
// (rewrite_gemm_acc.cpp). When m has c's shape and dtype, c is contiguous and on the CPU,
// the product is written to the result and c combined into it in the same step, with the
// formulas of the ops it replaces (mul, then sub or add: the same bits); otherwise it runs
// as those ops.
Meta infer_matmul_acc(const Op&, const std::vector<Meta>& in, const Attrs& a) {
  const Meta m = infer_matmul(op_matmul_t, {in[0], in[1]}, a);
  std::vector<Meta> sides{in[2], a.all ? in[2] : m};
  if (a.axis == 2) std::swap(sides[0], sides[1]);
  return {promote_types(sides[0].dtype, sides[1].dtype), broadcast_shapes(op_matmul_t, sides)};
}

template <class T>
void combine_acc(const Storage& c, const Storage& y, double k, std::int64_t how) {
  const T* cp = c.data<T>();
  T* yp = y.data<T>();
  const T kk = static_cast<T>(k);
  const std::int64_t n = y.size();
  for (std::int64_t i = 0; i < n; ++i) {
    const T t = wrap_mul(yp[i], kk);
    yp[i] = how == 0 ? wrap_sub(cp[i], t) : how == 1 ? wrap_add(cp[i], t) : wrap_add(t, cp[i]);
  }
}

bool acc_in_place(const std::vector<const Storage*>& in, const Attrs& a, const Meta& out, Meta& m);

Storage forward_matmul_acc(const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage &c = *in[2];
  thread_local Meta m;  // reused: no allocation per call
  if (c.device() == th::cpu() && acc_in_place(in, a, out, m)) {  // (the shape rule accepted the operands)
    thread_local std::vector<const Storage*> ab(2);
    ab[0] = in[0], ab[1] = in[1];
    Storage y = forward_matmul(op_matmul_t, ab, a, m);
    if (out.dtype == DType::float32) combine_acc<float>(c, y, a.scale, a.axis);
    else combine_acc<double>(c, y, a.scale, a.axis);
    return y;
  }
  // the ops it stands for
  Storage prod = forward_matmul(op_matmul_t, {in[0], in[1]}, a, Meta{m.dtype, m.shape});
  if (a.all) prod = sum_to_like_op().forward(sum_to_like_op(), {&prod, &c}, {}, Meta{m.dtype, c.shape});
  Storage k = alloc_storage(prod.dtype, {}, prod.device());
  backend_for(k.device()).fill(k, a.scale);
  const Op& mul = binary_op(BinaryKind::mul);
  Storage t = run_op(mul, {&prod, &k}, {meta_of(prod), meta_of(k)}, {});
  const Op& comb = binary_op(a.axis == 0 ? BinaryKind::sub : BinaryKind::add);
  if (a.axis == 2) return run_op(comb, {&t, &c}, {meta_of(t), meta_of(c)}, {});
  return run_op(comb, {&c, &t}, {meta_of(c), meta_of(t)}, {});
}

const Op op_matmul_acc{"matmul_acc", {3, 3}, 0, &infer_matmul_acc, &forward_matmul_acc, nullptr};

// forward_matmul_acc's one-step case: the product has c's shape and the result's dtype,
// and c is contiguous (the caller checks the device); `m` gets the product's meta.
bool acc_in_place(const std::vector<const Storage*>& in, const Attrs& a, const Meta& out, Meta& m) {
  const Storage& c = *in[2];
  m.dtype = promote_types(in[0]->dtype, in[1]->dtype);
  matmul_shape(in[0]->shape, in[1]->shape, a.transpose, m.shape);
  return m.dtype == out.dtype && c.dtype == out.dtype && same_dims(m.shape, c.shape) && same_dims(out.shape, c.shape) &&
         c.contiguous() && (out.dtype == DType::float32 || out.dtype == DType::float64);
}

// The public matmul/dot: `name` is the user's function, so errors speak of dot when the
// user called dot (the shapes are checked here, before anything is recorded).
Tensor matmul_as(const char* name, const Tensor& a, const Tensor& b) {
  const Op named{Op::Unlisted{}, name, &infer_matmul, &forward_matmul};
  {
    OperandScratch scratch;
    infer_matmul(named, scratch_metas(scratch, named, {a, b}), {});
  }
  Attrs attrs;
  attrs.called = name;  // a frozen call's errors name it too
  return apply(op_matmul, {a, b}, std::move(attrs));
}

}  // namespace

bool small_product(const Op& op, const std::vector<const Storage*>& in, const Attrs& attrs, const Meta& out,
                   SmallProduct& sp) {
  if (&op != &op_matmul && &op != &op_matmul_t && &op != &op_matmul_acc) return false;
  sp.acc = &op == &op_matmul_acc;
  Meta m = out;
  if (sp.acc) {
    if (!acc_in_place(in, attrs, out, m)) return false;
    sp.scale = attrs.scale;
    sp.how = int(attrs.axis);
  }
  MatvecForm f;
  if (m.shape.size() != 1 || !matvec_form(*in[0], *in[1], attrs.transpose, m.dtype, f)) return false;
  sp.matrix = f.matrix_first ? 0 : 1;
  const Storage& x = *in[1 - sp.matrix];
  return cpu::matvec_small(m.dtype, m.shape[0], x.shape[0], f.s0, f.s1, x.strides[0], sp.g);
}

const Op& matmul_op() { return op_matmul; }
const Op& matmul_t_op() { return op_matmul_t; }
const Op& matmul_acc_op() { return op_matmul_acc; }

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
