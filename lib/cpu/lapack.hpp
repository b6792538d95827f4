// LAPACK through OpenBLAS (which carries it): the factorizations behind th::linalg
// (lib/ops/decomp.cpp), on one row-major square matrix at a time. Each returns LAPACK's
// info: 0, or > 0 when the matrix is singular (not positive definite for cholesky).
#pragma once
#include <cstdint>

namespace th::detail::cpu {

/// b (n x k, row-major) := a^-1 b; a (n x n) is overwritten by its LU factors.
template <class T>
int lapack_solve(int n, int k, T* a, T* b);
/// a := a^-1.
template <class T>
int lapack_inverse(int n, T* a);
/// The sign (+1, -1, or 0 when singular) and log|det a| of a; a is overwritten.
template <class T>
void lapack_slogdet(int n, T* a, double& sign, double& logabs);
/// a := its lower Cholesky factor L (a = L L^T), the upper triangle zeroed.
template <class T>
int lapack_cholesky(int n, T* a);
/// Eigenvalues w (ascending) and eigenvectors (a's columns on return) of a symmetric a, of
/// which the lower triangle is read (numpy's UPLO='L'). > 0: no convergence.
template <class T>
int lapack_eigh(int n, T* a, T* w);
/// Reduced QR of a (m x n, k = min(m, n)): q (m x k) with orthonormal columns, r (k x n) upper.
template <class T>
int lapack_qr(int m, int n, const T* a, T* q, T* r);
/// Reduced SVD of a (m x n, k = min(m, n)): u (m x k), s (k, descending), vt (k x n). a is
/// overwritten. > 0: no convergence.
template <class T>
int lapack_svd(int m, int n, T* a, T* u, T* s, T* vt);
/// b (n x k) := a^-1 b for a triangular a (its other triangle ignored).
template <class T>
int lapack_solve_triangular(int n, int k, const T* a, T* b, bool lower);

}  // namespace th::detail::cpu
