// Linear algebra (API.md section 13, in part): numpy.linalg's semantics, batched over the
// leading axes, float32/float64 (integers compute in floatX), every function differentiable
// (PyTorch's rules, written with theta's ops, so gradients differentiate again). LAPACK
// through OpenBLAS. A singular matrix, a matrix that is not positive definite for cholesky,
// or a non-square operand gives a th:: error naming the function and the shapes.
#pragma once
#include <tuple>
#include <utility>

#include "tensor.hpp"

namespace th::linalg {

/// x with a @ x = b: a (..., n, n); b (n) (a then 2-d) or (..., n, k) with a's batch dims.
Tensor solve(const Tensor& a, const Tensor& b);
/// x with a @ x = b for a triangular a (only its lower, or upper, triangle is read).
Tensor solve_triangular(const Tensor& a, const Tensor& b, bool lower = false);
/// a^-1.
Tensor inv(const Tensor& a);
/// det(a), over the batch.
Tensor det(const Tensor& a);
/// (sign, log|det a|): sign 0 and log -inf for a singular matrix.
std::pair<Tensor, Tensor> slogdet(const Tensor& a);
/// The lower Cholesky factor L of a symmetric positive definite a (a = L L^T).
Tensor cholesky(const Tensor& a);
/// (w, v): the eigenvalues (ascending) and eigenvectors (v's columns) of symmetric matrices,
/// of which the lower triangle is read (numpy's UPLO='L'); a = v diag(w) v^T. The gradient
/// treats a as symmetric and is infinite where eigenvalues repeat (as PyTorch's).
std::pair<Tensor, Tensor> eigh(const Tensor& a);
/// (q, r), the reduced QR factorization: q (..., m, k) with orthonormal columns, r (..., k, n)
/// upper triangular, k = min(m, n). Differentiable for m >= n.
std::tuple<Tensor, Tensor> qr(const Tensor& a);
/// (u, s, vt), the reduced SVD: u (..., m, k), s (..., k) descending, vt (..., k, n).
/// The gradient is infinite where singular values repeat (as PyTorch's).
std::tuple<Tensor, Tensor, Tensor> svd(const Tensor& a);
/// The pseudo-inverse from the SVD (singular values below numpy's default cutoff dropped).
Tensor pinv(const Tensor& a);
/// The 2-norm of the flattened x (Frobenius for a matrix).
Tensor norm(const Tensor& x);
/// numpy.linalg.norm(x, ord): a vector's p-norm (inf, -inf, 0 and any p); a matrix's 1, -1,
/// 2, -2 (largest, smallest singular value), inf, -inf norms.
Tensor norm(const Tensor& x, double ord);

}  // namespace th::linalg
