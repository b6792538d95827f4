// th::linalg's factorization ops (API.md section 13, in part): solve, solve_triangular, inv,
// cholesky, qr, svd, eigh, slogdet (det is composed from it; these four are one step each
// with several outputs, ops/tuple.cpp); their gradients mask with tri_mask (ops/extra.cpp: a
// triangle of a matrix, scaled diagonal). Forward: LAPACK per
// matrix of the batch (lib/cpu/lapack.cpp, on the host for other devices); VJPs: PyTorch's
// rules written with these same ops, so they differentiate again. norm is a composite.
#include "theta/linalg.hpp"

#include <cmath>
#include <limits>
#include <optional>
#include <tuple>

#include "core/dispatch.hpp"
#include "cpu/lapack.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

// A float dtype for the operands (integers compute in floatX).
DType float_of(const std::vector<Meta>& in) {
  DType d = in[0].dtype;
  for (const Meta& m : in) d = promote_types(d, m.dtype);
  return is_floating(d) ? d : floatX();
}

// The batch of square matrices in `m` (operand i): its n, or ShapeError.
std::int64_t square(const Op& op, const std::vector<Meta>& in, std::size_t i) {
  const Shape& s = in[i].shape;
  if (s.size() < 2) throw_shape(op, "needs a matrix (at least 2-d)", in);
  const std::int64_t r = s[s.size() - 2], c = s.back();
  if (r >= 0 && c >= 0 && r != c)
    throw_shape(op, "needs square matrices, got " + std::to_string(r) + " x " + std::to_string(c), in);
  return r >= 0 ? r : c;
}

std::int64_t batch_of(const Shape& s, std::size_t matrix_dims) {
  std::int64_t b = 1;
  for (std::size_t i = 0; i + matrix_dims < s.size(); ++i) b *= s[i];
  return b;
}

[[noreturn]] void singular(const Op& op, const Storage& a, std::int64_t at, const char* what) {
  throw ValueError(std::string(op.name) + ": " + what + " (matrix " + std::to_string(at) + " of the batch): " +
                   describe({meta_of(a)}));
}

Tensor tri_mask(const Tensor& x, bool lower, double diag);

// ---- solve / solve_triangular (attrs.axis: 1 lower, 0 upper) ----------------------------------
Meta infer_solve(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  const std::int64_t n = square(op, in, 0);
  const Shape& a = in[0].shape;
  const Shape& b = in[1].shape;
  if (b.size() == 1) {
    if (a.size() != 2) throw_shape(op, "a vector right-hand side needs a single matrix (use (..., n, 1) for a batch)", in);
  } else if (b.size() != a.size()) {
    throw_shape(op, "the right-hand side must be (n,) or have the matrix's batch dims and be (..., n, k)", in);
  }
  for (std::size_t i = 0; b.size() > 1 && i + 2 < a.size(); ++i)
    if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) throw_shape(op, "batch dims differ", in);
  const std::int64_t bn = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (n >= 0 && bn >= 0 && n != bn)
    throw_shape(op, "shapes not aligned: " + std::to_string(n) + " != " + std::to_string(bn), in);
  return {float_of(in), b};
}

// one-matrix ops (forward_matrix below)
enum MatKind { kInv = 0, kCholesky = 1 };

// An operand on a GPU: the factorization by the device's own solver (Backend::factor) on
// a working copy of a; nothing when the backend has none (the op runs on the host).
std::optional<Storage> on_device(const Op& op, Factor k, const Storage& a_in, const Storage* b_in, const Meta& out) {
  const Device dev = a_in.device();
  if (dev.type == Device::Type::cpu || a_in.shape.back() == 0) return std::nullopt;
  Backend& be = backend_for(dev);
  Storage a = alloc_storage(out.dtype, a_in.shape, dev);
  be.copy(a_in, a);
  Storage b;
  const Shape batch(a_in.shape.begin(), a_in.shape.end() - 2);
  if (k == Factor::solve) {
    b = alloc_storage(out.dtype, out.shape, dev);
    be.copy(*b_in, b);
  } else if (k == Factor::inverse) {
    b = alloc_storage(out.dtype, a_in.shape, dev);
  } else if (k == Factor::slogdet) {
    Shape s = batch;
    s.push_back(2);
    b = alloc_storage(out.dtype, s, dev);
  }
  std::vector<int> info;
  if (!be.factor(k, a, b, info)) return std::nullopt;
  for (std::size_t i = 0; k != Factor::slogdet && i < info.size(); ++i)
    if (info[i] > 0)
      singular(op, a_in, std::int64_t(i), k == Factor::cholesky ? "matrix is not positive definite" : "singular matrix");
  if (k == Factor::cholesky) return a;
  return b;  // slogdet: (..., 2), the sign and log|det| of each matrix
}

// Column i of slogdet's (..., 2) result: the signs (0) or the log|det|s (1), a view.
Storage column(const Storage& b, std::int64_t i) {
  Storage v = b;
  v.shape = Shape(b.shape.begin(), b.shape.end() - 1);
  v.strides = contiguous_strides(v.shape);
  for (auto& st : v.strides) st *= 2;
  v.offset += i;
  return v;
}

Storage forward_solve(const Op& op, const std::vector<const Storage*>& in, const Attrs& attrs, const Meta& out) {
  if (op.code != 1)
    if (auto y = on_device(op, Factor::solve, *in[0], in[1], out)) return std::move(*y);
  const Storage a = on_host(*in[0], out.dtype);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  cpu_backend().copy(on_host(*in[1], out.dtype), y);  // solved in place
  const std::int64_t n = a.shape.back(), k = out.shape.size() == 1 ? 1 : out.shape.back();
  const std::int64_t batch = batch_of(a.shape, 2);
  const bool tri = op.code == 1;
  THETA_DISPATCH_FLOAT(out.dtype, T, {
    std::vector<T> work(std::size_t(n * n));
    for (std::int64_t i = 0; i < batch; ++i) {
      const T* am = a.data<T>() + i * n * n;
      T* bm = y.data<T>() + i * n * k;
      int info;
      if (tri) {
        info = cpu::lapack_solve_triangular<T>(int(n), int(k), am, bm, attrs.axis != 0);
      } else {
        std::copy(am, am + n * n, work.begin());
        info = cpu::lapack_solve<T>(int(n), int(k), work.data(), bm);
      }
      if (info > 0) singular(op, *in[0], i, "singular matrix");
    }
  })
  return to_device(y, in[0]->device());
}

Tensor solve_tri(const Tensor& a, const Tensor& b, bool lower);

// x = solve(a, b): gb = solve(a^T, g), ga = -gb x^T (an outer product for a vector b)
std::vector<Tensor> vjp_solve(const Op& op, const VjpCtx& c) {
  const bool tri = op.code == 1, lower = c.attrs.axis != 0;
  const Tensor gb = tri ? solve_tri(swap_last(c.x[0]), c.g, !lower) : linalg::solve(swap_last(c.x[0]), c.g);
  Tensor ga;
  if (c.needs[0]) {
    ga = node_of(c.y, "solve").shape.size() == 1 ? -(expand_dims(gb, -1) * expand_dims(c.y, 0))
                                                 : -matmul(gb, swap_last(c.y));
    if (tri) ga = tri_mask(ga, lower, 1.0);  // only that triangle of a was read
  }
  return {ga, c.needs[1] ? gb : none};
}

const Op op_solve{"solve", {2, 2}, 0, &infer_solve, &forward_solve, &vjp_solve};
const Op op_solve_triangular{"solve_triangular", {2, 2}, 1, &infer_solve, &forward_solve, &vjp_solve};

Tensor solve_tri(const Tensor& a, const Tensor& b, bool lower) {
  Attrs at;
  at.axis = lower ? 1 : 0;
  return apply(op_solve_triangular, {a, b}, std::move(at));
}

// ---- one-matrix ops: inv, cholesky ----------------------------------------------------------------

Meta infer_matrix(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  square(op, in, 0);
  return {float_of(in), in[0].shape};
}

Storage forward_matrix(const Op& op, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  if (auto y = on_device(op, op.code == kInv ? Factor::inverse : Factor::cholesky, *in[0], nullptr, out))
    return std::move(*y);
  const Storage a = on_host(*in[0], out.dtype);
  const std::int64_t n = a.shape.back(), batch = batch_of(a.shape, 2);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  THETA_DISPATCH_FLOAT(out.dtype, T, {
    std::vector<T> work(std::size_t(n * n));
    for (std::int64_t i = 0; i < batch; ++i) {
      const T* am = a.data<T>() + i * n * n;
      std::copy(am, am + n * n, work.begin());
      const int info = op.code == kInv ? cpu::lapack_inverse<T>(int(n), work.data()) : cpu::lapack_cholesky<T>(int(n), work.data());
      if (info > 0) singular(op, *in[0], i, op.code == kInv ? "singular matrix" : "matrix is not positive definite");
      std::copy(work.begin(), work.end(), y.data<T>() + i * n * n);
    }
  })
  return to_device(y, in[0]->device());
}

// inv: ga = -y^T g y^T; cholesky (PyTorch's rule):
// P = tril(L^T gL) with half its diagonal, S = L^-T P L^-1,
// ga = (S + S^T) / 2.
std::vector<Tensor> vjp_matrix(const Op& op, const VjpCtx& c) {
  const Tensor& g = c.g;
  switch (op.code) {
    case kInv: return {-matmul(swap_last(c.y), matmul(g, swap_last(c.y)))};
    case kCholesky: {
      const Tensor Lt = swap_last(c.y);
      const Tensor P = tri_mask(matmul(Lt, g), true, 0.5);
      const Tensor Z = solve_tri(Lt, P, false);       // L^-T P
      const Tensor S = swap_last(solve_tri(Lt, swap_last(Z), false));  // (L^-T (L^-T P)^T)^T = L^-T P L^-1
      return {(S + swap_last(S)) * 0.5};
    }
    default: return {none};
  }
}

const Op op_inv{"inv", {1, 1}, kInv, &infer_matrix, &forward_matrix, &vjp_matrix};
const Op op_cholesky{"cholesky", {1, 1}, kCholesky, &infer_matrix, &forward_matrix, &vjp_matrix};

// ---- qr, svd, eigh, slogdet: one step computes every factor (a tuple of outputs) ------------
enum Factors { kQR = 0, kSVD = 1, kEigh = 2, kSlogdet = 3 };

std::vector<Meta> factor_parts(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  const Shape& a = in[0].shape;
  const DType d = float_of(in);
  if (op.code == kEigh || op.code == kSlogdet) {
    square(op, in, 0);
    const Shape batch(a.begin(), a.end() - 2);
    if (op.code == kSlogdet) return {{d, batch}, {d, batch}};  // sign, log|det|
    return {{d, Shape(a.begin(), a.end() - 1)}, {d, a}};        // w, V
  }
  if (a.size() < 2) throw_shape(op, "needs a matrix (at least 2-d)", in);
  const std::int64_t m = a[a.size() - 2], n = a.back();
  const std::int64_t k = m < 0 || n < 0 ? -1 : std::min(m, n);
  auto batch_with = [&](std::initializer_list<std::int64_t> dims) {
    Shape s(a.begin(), a.end() - 2);
    s.insert(s.end(), dims);
    return Meta{d, s};
  };
  if (op.code == kQR) return {batch_with({m, k}), batch_with({k, n})};  // Q, R
  return {batch_with({m, k}), batch_with({k}), batch_with({k, n})};   // U, S, Vt
}

Storage forward_factors(const Op& op, const std::vector<const Storage*>& in, const Attrs& attrs, const Meta&) {
  const std::vector<Meta> outs = factor_parts(op, {meta_of(*in[0])}, attrs);
  const DType dt = outs[0].dtype;
  if (op.code == kSlogdet && in[0]->shape.back() > 0)
    if (auto b = on_device(op, Factor::slogdet, *in[0], nullptr, outs[0])) return make_tuple({column(*b, 0), column(*b, 1)});
  const Storage a = on_host(*in[0], dt);
  std::vector<Storage> ys;
  for (const Meta& m : outs) ys.push_back(alloc_storage(dt, m.shape, th::cpu()));
  const std::int64_t m = a.shape[a.shape.size() - 2], n = a.shape.back(), k = std::min(m, n), batch = batch_of(a.shape, 2);
  THETA_DISPATCH_FLOAT(dt, T, {
    std::vector<T> work(std::size_t(m * n)), f1(std::size_t(m * k)), f2(std::size_t(k * n)), sv(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < batch && k > 0; ++i) {
      const T* am = a.data<T>() + i * m * n;
      std::copy(am, am + m * n, work.begin());
      switch (op.code) {
        case kQR:
          if (cpu::lapack_qr<T>(int(m), int(n), am, f1.data(), f2.data()) > 0)
            singular(op, *in[0], i, "the factorization did not converge");
          std::copy(f1.begin(), f1.end(), ys[0].data<T>() + i * m * k);
          std::copy(f2.begin(), f2.end(), ys[1].data<T>() + i * k * n);
          break;
        case kSVD:
          if (cpu::lapack_svd<T>(int(m), int(n), work.data(), f1.data(), sv.data(), f2.data()) > 0)
            singular(op, *in[0], i, "the factorization did not converge");
          std::copy(f1.begin(), f1.end(), ys[0].data<T>() + i * m * k);
          std::copy(sv.begin(), sv.end(), ys[1].data<T>() + i * k);
          std::copy(f2.begin(), f2.end(), ys[2].data<T>() + i * k * n);
          break;
        case kEigh:
          if (cpu::lapack_eigh<T>(int(n), work.data(), sv.data()) > 0)
            singular(op, *in[0], i, "the eigensolver did not converge");
          std::copy(sv.begin(), sv.end(), ys[0].data<T>() + i * n);
          std::copy(work.begin(), work.end(), ys[1].data<T>() + i * n * n);
          break;
        default: {
          double sign, logabs;
          cpu::lapack_slogdet<T>(int(n), work.data(), sign, logabs);
          ys[0].data<T>()[i] = T(sign);
          ys[1].data<T>()[i] = T(logabs);
        }
      }
    }
    if (op.code == kSlogdet && k == 0)  // the determinant of a 0 x 0 matrix is 1
      for (std::int64_t i = 0; i < batch; ++i) ys[0].data<T>()[i] = T(1), ys[1].data<T>()[i] = T(0);
  })
  for (Storage& y : ys) y = to_device(std::move(y), in[0]->device());
  return make_tuple(std::move(ys));
}

// X R^-T, R upper triangular
Tensor times_inv_rt(const Tensor& X, const Tensor& R) { return swap_last(solve_tri(R, swap_last(X), false)); }
// M's lower triangle mirrored into the upper one (the diagonal kept once)
Tensor copyltu(const Tensor& M) { return tri_mask(M, true, 1.0) + swap_last(tri_mask(M, true, 0.0)); }
// a + b where either may be absent (empty)
Tensor plus(const Tensor& a, const Tensor& b) { return !a ? b : !b ? a : a + b; }

// qr (PyTorch's rule; m >= n here, wide below): gA = (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q.
// svd (PyTorch's rule), E_ij = s_j^2 - s_i^2 (1 on the diagonal), the terms of each factor's
// gradient summed:
//   s:  U diag(g) Vt
//   U:  U [((J - J^T) / E) s_j] Vt + (gU - U J) / s_j Vt,       J = U^T gU
//   Vt: U [s_i ((K - K^T) / E)] Vt + U ((gV - V K) / s_j)^T,    K = Vt gV, gV = gVt^T
// eigh: w: V diag(g) V^T; V: V (F o (V^T gV)) V^T, F_ij = 1 / (w_j - w_i) off the diagonal,
// symmetrised (a is read as symmetric). slogdet: log|det a|: g inv(a)^T; the sign has none.
std::vector<Tensor> vjp_factors(const Op& op, const VjpCtx& c) {
  const Tensor& a = c.x[0];
  const std::vector<Tensor> y = outputs_of(op, c);
  const Tensor &g0 = part_grad(c, 0), &g1 = part_grad(c, 1);
  if (op.code == kSlogdet) {
    if (!g1) return {none};
    return {expand_dims(expand_dims(g1, -1), -1) * swap_last(linalg::inv(a))};
  }
  if (op.code == kEigh) {
    const Tensor &w = y[0], &V = y[1];
    Tensor ga;
    if (g0) ga = matmul(V * expand_dims(g0, -2), swap_last(V));
    if (g1) {
      const Tensor E = expand_dims(w, -2) - expand_dims(w, -1) + identity_like(V);  // 1 on the diagonal: no division by 0
      const Tensor M = matmul(swap_last(V), g1) / E;
      const Tensor inner = tri_mask(M, true, 0.0) + tri_mask(M, false, 0.0);
      const Tensor gv = matmul(V, matmul(inner, swap_last(V)));
      ga = plus(ga, (gv + swap_last(gv)) * 0.5);
    }
    return {ga};
  }
  const Shape& as = node_of(a, op.name).shape;
  if (op.code == kQR) {
    const std::int64_t m = as[as.size() - 2], n = as.back();
    const Tensor &Q = y[0], &R = y[1];
    if (m >= 0 && n >= 0 && m >= n) {
      Tensor M;
      if (g1) M = matmul(R, swap_last(g1));
      if (g0) M = M ? M - matmul(swap_last(g0), Q) : -matmul(swap_last(g0), Q);
      return {times_inv_rt(plus(g0, matmul(Q, copyltu(M))), R)};
    }
    // wide, or sizes open until it runs (PyTorch's rule, without slicing by sizes unknown
    // here): with k = min(m, n), A = [X | Y] and R = [U | V], X = Q U square, Y = Q V:
    // the square rule on (Q, U) with gQ + Y gV^T, and gY = Q gV. Pk (n, k) is I's first
    // k columns, c (n) marks the columns past k; for a tall matrix Pk = I and c = 0.
    const Tensor Pk = identity_like(swap_last(R));
    const Tensor U = matmul(R, Pk);
    const Tensor c_row = expand_dims(1.0 - sum(Pk, Axes{-1}), -2);
    Tensor gQ = g0, M;
    if (g1) {
      gQ = plus(gQ, matmul(a * c_row, swap_last(g1)));
      M = matmul(U, swap_last(matmul(g1, Pk)));
    }
    M = M ? M - matmul(swap_last(gQ), Q) : -matmul(swap_last(gQ), Q);
    Tensor ga = matmul(times_inv_rt(gQ + matmul(Q, copyltu(M)), U), swap_last(Pk));
    if (g1) ga = ga + matmul(Q, g1 * c_row);
    return {ga};
  }
  const Tensor &U = y[0], &S = y[1], &Vt = y[2];
  const Tensor& g2 = part_grad(c, 2);
  Tensor ga;
  if (g1) ga = matmul(U * expand_dims(g1, -2), Vt);
  if (!g0 && !g2) return {ga};
  const Tensor S2 = S * S;
  const Tensor E = expand_dims(S2, -2) - expand_dims(S2, -1);
  const Tensor Ed = E + identity_like(E);  // 1 on the diagonal: no division by 0
  if (g0) {
    const Tensor J = matmul(swap_last(U), g0);
    const Tensor inner = (J - swap_last(J)) / Ed * expand_dims(S, -2);
    ga = plus(ga, matmul(matmul(U, inner), Vt) + matmul((g0 - matmul(U, J)) / expand_dims(S, -2), Vt));
  }
  if (g2) {
    const Tensor gV = swap_last(g2), V = swap_last(Vt);
    const Tensor K = matmul(Vt, gV);
    const Tensor inner = expand_dims(S, -1) * ((K - swap_last(K)) / Ed);
    ga = plus(ga, matmul(matmul(U, inner), Vt) + matmul(U, swap_last((gV - matmul(V, K)) / expand_dims(S, -2))));
  }
  return {ga};
}

const Op op_qr{"qr", {1, 1}, kQR, &infer_tuple, &forward_factors, &vjp_factors, 0, false, "linalg.qr", &factor_parts};
const Op op_svd{"svd", {1, 1}, kSVD, &infer_tuple, &forward_factors, &vjp_factors, 0, false, "linalg.svd", &factor_parts};
const Op op_eigh{"eigh", {1, 1}, kEigh, &infer_tuple, &forward_factors, &vjp_factors, 0, false, "linalg.eigh", &factor_parts};
const Op op_slogdet{"slogdet", {1, 1}, kSlogdet, &infer_tuple, &forward_factors, &vjp_factors, 0, false,
                    "linalg.slogdet", &factor_parts};

// ---- the one-factor ops of format versions 1 and 2 ------------------------------------------------
// Saved functions written before multi-output steps name one op per factor, each computing
// the whole factorization; they still load and run (no gradient: they are never recorded).
struct Legacy {
  const Op* of;
  std::size_t part;
};
const Legacy kLegacy[] = {{&op_qr, 0},  {&op_qr, 1},   {&op_svd, 0},     {&op_svd, 1},    {&op_svd, 2},
                          {&op_eigh, 0}, {&op_eigh, 1}, {&op_slogdet, 1}, {&op_slogdet, 0}};

Meta infer_legacy(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Legacy& l = kLegacy[op.code];
  return factor_parts(*l.of, in, a)[l.part];
}

Storage forward_legacy(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Legacy& l = kLegacy[op.code];
  return tuple_part(op, forward_factors(*l.of, in, a, out), l.part);
}

const Op legacy_ops[] = {{"qr", {1, 1}, 0, &infer_legacy, &forward_legacy, nullptr},
                         {"qr_r", {1, 1}, 1, &infer_legacy, &forward_legacy, nullptr},
                         {"svd", {1, 1}, 2, &infer_legacy, &forward_legacy, nullptr},
                         {"svd_s", {1, 1}, 3, &infer_legacy, &forward_legacy, nullptr},
                         {"svd_vt", {1, 1}, 4, &infer_legacy, &forward_legacy, nullptr},
                         {"eigh", {1, 1}, 5, &infer_legacy, &forward_legacy, nullptr},
                         {"eigh_vectors", {1, 1}, 6, &infer_legacy, &forward_legacy, nullptr},
                         {"slogdet", {1, 1}, 7, &infer_legacy, &forward_legacy, nullptr},
                         {"det_sign", {1, 1}, 8, &infer_legacy, &forward_legacy, nullptr}};

Tensor tri_mask(const Tensor& x, bool lower, double diag) {
  Attrs a;
  a.axis = lower ? 1 : 0;
  a.scale = diag;
  return apply(tri_mask_op(), {x}, std::move(a));
}


}  // namespace

}  // namespace th::detail

namespace th::linalg {

using detail::to_float;

Tensor solve(const Tensor& a, const Tensor& b) {
  return detail::apply(detail::op_solve, {to_float(a, "solve"), to_float(b, "solve")});
}
Tensor solve_triangular(const Tensor& a, const Tensor& b, bool lower) {
  return detail::solve_tri(to_float(a, "solve_triangular"), to_float(b, "solve_triangular"), lower);
}
Tensor inv(const Tensor& a) { return detail::apply(detail::op_inv, {to_float(a, "inv")}); }
Tensor cholesky(const Tensor& a) { return detail::apply(detail::op_cholesky, {to_float(a, "cholesky")}); }

std::tuple<Tensor, Tensor> qr(const Tensor& a) {
  const auto f = detail::apply_parts(detail::op_qr, {to_float(a, "qr")});
  return {f[0], f[1]};
}

std::tuple<Tensor, Tensor, Tensor> svd(const Tensor& a) {
  const auto f = detail::apply_parts(detail::op_svd, {to_float(a, "svd")});
  return {f[0], f[1], f[2]};
}

// V diag(1/s) U^T over the singular values above rcond * max(s) (numpy's default rcond)
Tensor pinv(const Tensor& a) {
  const auto [u, s, vt] = svd(a);
  const std::size_t nd = detail::node_of(u, "pinv").shape.size();
  const double eps = detail::node_of(s, "pinv").dtype == DType::float32 ? 1.1920929e-07 : 2.220446049250313e-16;
  const Shape& as = detail::node_of(a, "pinv").shape;
  const double k = double(std::max(as[as.size() - 2], as.back()));
  const Tensor cutoff = max(s, -1, true) * (10 * eps * std::max(1.0, k / 10));
  const Tensor inv_s = where(s > cutoff, 1.0 / where(s > cutoff, s, 1.0), 0.0);
  std::vector<std::int64_t> perm(nd);
  for (std::size_t i = 0; i < nd; ++i) perm[i] = std::int64_t(i);
  std::swap(perm[nd - 1], perm[nd - 2]);
  return matmul(transpose(vt, perm) * expand_dims(inv_s, -2), transpose(u, perm));
}

std::pair<Tensor, Tensor> eigh(const Tensor& a) {
  const auto f = detail::apply_parts(detail::op_eigh, {to_float(a, "eigh")});
  return {f[0], f[1]};
}

std::pair<Tensor, Tensor> slogdet(const Tensor& a) {
  const auto f = detail::apply_parts(detail::op_slogdet, {to_float(a, "slogdet")});
  return {f[0], f[1]};
}

// det = sign * exp(log|det|): its gradient det * inv(a)^T comes out of the composition
Tensor det(const Tensor& a) {
  const auto [sign, logabs] = slogdet(a);
  return sign * exp(logabs);
}

Tensor norm(const Tensor& x) {
  const Tensor xf = to_float(x, "norm");
  return sqrt(sum(xf * xf));
}

Tensor norm(const Tensor& x, double ord) {
  const Tensor xf = to_float(x, "norm");
  const std::size_t nd = detail::node_of(x, "norm").shape.size();
  const double inf = std::numeric_limits<double>::infinity();
  if (nd == 1) {
    if (ord == inf) return max(abs(xf));
    if (ord == -inf) return min(abs(xf));
    if (ord == 0) return sum(cast(xf != 0.0, detail::node_of(xf, "norm").dtype));
    if (ord == 1) return sum(abs(xf));
    if (ord == 2) return norm(xf);
    return pow(sum(pow(abs(xf), ord)), 1.0 / ord);
  }
  if (nd == 2) {
    if (ord == 1) return max(sum(abs(xf), 0));
    if (ord == -1) return min(sum(abs(xf), 0));
    if (ord == inf) return max(sum(abs(xf), 1));
    if (ord == -inf) return min(sum(abs(xf), 1));
    if (ord == 2 || ord == -2) {
      const Tensor s = std::get<1>(svd(xf));
      return ord == 2 ? max(s) : min(s);
    }
    throw ValueError("norm: ord=" + std::to_string(ord) + " is not a matrix norm (1, -1, 2, -2, inf, -inf, or no ord): " +
                     detail::describe({detail::meta_of(x)}));
  }
  throw ShapeError("norm: ord needs a vector or a matrix, got " + std::to_string(nd) + "-d (no ord: the flattened 2-norm): " +
                   detail::describe({detail::meta_of(x)}));
}

}  // namespace th::linalg
