// Row-major matrices through column-major LAPACK: the buffer of a row-major A is the
// column-major A^T, so each routine is called on A^T with the transposes that undo it.
#include "cpu/lapack.hpp"

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <vector>

#include "cpu/parallel.hpp"

extern "C" {
// NOTE: trailing size_t arguments are the hidden lengths of character arguments (gfortran's
// ABI); OpenBLAS's own C implementations of these routines ignore them.
void sgetrf_(const int*, const int*, float*, const int*, int*, int*);
void dgetrf_(const int*, const int*, double*, const int*, int*, int*);
void sgetrs_(const char*, const int*, const int*, const float*, const int*, const int*, float*, const int*, int*, std::size_t);
void dgetrs_(const char*, const int*, const int*, const double*, const int*, const int*, double*, const int*, int*, std::size_t);
void sgetri_(const int*, float*, const int*, const int*, float*, const int*, int*);
void dgetri_(const int*, double*, const int*, const int*, double*, const int*, int*);
void spotrf_(const char*, const int*, float*, const int*, int*, std::size_t);
void dpotrf_(const char*, const int*, double*, const int*, int*, std::size_t);
void ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*, int*, const int*, int*,
             std::size_t, std::size_t);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*, const int*, int*, const int*,
             int*, std::size_t, std::size_t);
void sgeqrf_(const int*, const int*, float*, const int*, float*, float*, const int*, int*);
void dgeqrf_(const int*, const int*, double*, const int*, double*, double*, const int*, int*);
void sorgqr_(const int*, const int*, const int*, float*, const int*, const float*, float*, const int*, int*);
void dorgqr_(const int*, const int*, const int*, double*, const int*, const double*, double*, const int*, int*);
void sgesdd_(const char*, const int*, const int*, float*, const int*, float*, float*, const int*, float*, const int*,
             float*, const int*, int*, int*, std::size_t);
void dgesdd_(const char*, const int*, const int*, double*, const int*, double*, double*, const int*, double*,
             const int*, double*, const int*, int*, int*, std::size_t);
void strtrs_(const char*, const char*, const char*, const int*, const int*, const float*, const int*, float*, const int*,
             int*, std::size_t, std::size_t, std::size_t);
void dtrtrs_(const char*, const char*, const char*, const int*, const int*, const double*, const int*, double*, const int*,
             int*, std::size_t, std::size_t, std::size_t);
}

namespace th::detail::cpu {

namespace {

template <class T>
void getrf(int n, T* a, int* piv, int* info) {
  if constexpr (std::is_same_v<T, float>) sgetrf_(&n, &n, a, &n, piv, info);
  else dgetrf_(&n, &n, a, &n, piv, info);
}

// b (n x k, row-major) <-> its column-major copy bc (what LAPACK's right-hand sides are).
template <class T>
void transpose_into(int rows, int cols, const T* from, T* to) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) to[std::size_t(j) * std::size_t(rows) + std::size_t(i)] = from[std::size_t(i) * std::size_t(cols) + std::size_t(j)];
}

}  // namespace

template <class T>
int lapack_solve(int n, int k, T* a, T* b) {
  if (n == 0) return 0;  // nothing to do (LAPACK refuses a leading dimension of 0)
  std::vector<int> piv(static_cast<std::size_t>(n));
  int info = 0;
  getrf(n, a, piv.data(), &info);  // LU of A^T
  if (info != 0) return info;
  std::vector<T> bc(std::size_t(n) * std::size_t(k));
  transpose_into(n, k, b, bc.data());
  // The right-hand sides in chunks of columns (of 8 or more), one per kernel thread: OpenBLAS
  // runs on one thread (cpu/parallel.hpp), and the triangular solves are most of a
  // many-column solve. Cost: n^2 multiply-adds per column, ~4 to a vectorised operation.
  const char t = 'T';  // (A^T)^T x = b
  parallel_chunks(k, 8, std::int64_t(n) * n * k / 4, [&](std::int64_t j0, std::int64_t j1) {
    int kc = int(j1 - j0), ok = 0;  // (getrs reports bad arguments only; getrf found the factors regular)
    T* x = bc.data() + std::size_t(j0) * std::size_t(n);
    if constexpr (std::is_same_v<T, float>) sgetrs_(&t, &n, &kc, a, &n, piv.data(), x, &n, &ok, 1);
    else dgetrs_(&t, &n, &kc, a, &n, piv.data(), x, &n, &ok, 1);
  });
  transpose_into(k, n, bc.data(), b);
  return 0;
}

template <class T>
int lapack_inverse(int n, T* a) {
  if (n == 0) return 0;  // nothing to do (LAPACK refuses a leading dimension of 0)
  std::vector<int> piv(static_cast<std::size_t>(n));
  int info = 0;
  getrf(n, a, piv.data(), &info);  // (A^T)^-1 column-major is A^-1 row-major
  if (info != 0) return info;
  int lwork = std::max(1, n * 64);
  std::vector<T> work(static_cast<std::size_t>(lwork));
  if constexpr (std::is_same_v<T, float>) sgetri_(&n, a, &n, piv.data(), work.data(), &lwork, &info);
  else dgetri_(&n, a, &n, piv.data(), work.data(), &lwork, &info);
  return info;
}

template <class T>
void lapack_slogdet(int n, T* a, double& sign, double& logabs) {
  if (n == 0) {  // the empty product: det = 1, as numpy
    sign = 1, logabs = 0;
    return;
  }
  std::vector<int> piv(static_cast<std::size_t>(n));
  int info = 0;
  getrf(n, a, piv.data(), &info);  // det A^T = det A
  sign = 1, logabs = 0;
  for (int i = 0; i < n; ++i) {
    const double u = double(a[std::size_t(i) * std::size_t(n) + std::size_t(i)]);
    if (u == 0 || info > 0) {
      sign = 0, logabs = -INFINITY;
      return;
    }
    if (u < 0) sign = -sign;
    if (piv[std::size_t(i)] != i + 1) sign = -sign;
    logabs += std::log(std::fabs(u));
  }
}

template <class T>
int lapack_cholesky(int n, T* a) {
  if (n == 0) return 0;  // nothing to do (LAPACK refuses a leading dimension of 0)
  int info = 0;
  const char u = 'U';  // A^T = A = U^T U column-major: the row-major buffer reads L = U^T
  if constexpr (std::is_same_v<T, float>) spotrf_(&u, &n, a, &n, &info, 1);
  else dpotrf_(&u, &n, a, &n, &info, 1);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) a[std::size_t(i) * std::size_t(n) + std::size_t(j)] = T(0);
  return info;
}

template <class T>
int lapack_eigh(int n, T* a, T* w) {
  if (n == 0) return 0;  // nothing to do (LAPACK refuses a leading dimension of 0)
  // the row-major lower triangle is the column-major upper one
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iq = 0;
  T q = 0;
  auto call = [&](T* work, int* iwork) {
    if constexpr (std::is_same_v<T, float>) ssyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    else dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
  };
  call(&q, &iq);  // workspace query
  lwork = std::max(1, int(q)), liwork = std::max(1, iq);
  std::vector<T> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  call(work.data(), iwork.data());
  // the eigenvectors are the columns of the column-major result: transpose into row-major columns
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) std::swap(a[std::size_t(i) * std::size_t(n) + std::size_t(j)], a[std::size_t(j) * std::size_t(n) + std::size_t(i)]);
  return info;
}

template <class T>
int lapack_qr(int m, int n, const T* a, T* q, T* r) {
  const int k = std::min(m, n);
  std::vector<T> ac(static_cast<std::size_t>(m) * static_cast<std::size_t>(n));
  transpose_into(m, n, a, ac.data());  // column-major a
  std::vector<T> tau(static_cast<std::size_t>(std::max(1, k)));
  int info = 0, lwork = -1;
  T q0 = 0;
  auto geqrf = [&](T* work) {
    if constexpr (std::is_same_v<T, float>) sgeqrf_(&m, &n, ac.data(), &m, tau.data(), work, &lwork, &info);
    else dgeqrf_(&m, &n, ac.data(), &m, tau.data(), work, &lwork, &info);
  };
  geqrf(&q0);
  lwork = std::max({1, int(q0), n * 64});
  std::vector<T> work(static_cast<std::size_t>(lwork));
  geqrf(work.data());
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < n; ++j)
      r[std::size_t(i) * std::size_t(n) + std::size_t(j)] = j >= i ? ac[std::size_t(j) * std::size_t(m) + std::size_t(i)] : T(0);
  if constexpr (std::is_same_v<T, float>) sorgqr_(&m, &k, &k, ac.data(), &m, tau.data(), work.data(), &lwork, &info);
  else dorgqr_(&m, &k, &k, ac.data(), &m, tau.data(), work.data(), &lwork, &info);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j) q[std::size_t(i) * std::size_t(k) + std::size_t(j)] = ac[std::size_t(j) * std::size_t(m) + std::size_t(i)];
  return info;
}

template <class T>
int lapack_svd(int m, int n, T* a, T* u, T* s, T* vt) {
  // the row-major buffer is the column-major a^T = (V S U^T): LAPACK's U of it is our vt,
  // its VT our u, both already in row-major order
  const int k = std::min(m, n);
  const char jobz = 'S';
  int info = 0, lwork = -1;
  std::vector<int> iwork(static_cast<std::size_t>(8 * std::max(1, k)));
  T q0 = 0;
  auto gesdd = [&](T* work) {
    if constexpr (std::is_same_v<T, float>) sgesdd_(&jobz, &n, &m, a, &n, s, vt, &n, u, &k, work, &lwork, iwork.data(), &info, 1);
    else dgesdd_(&jobz, &n, &m, a, &n, s, vt, &n, u, &k, work, &lwork, iwork.data(), &info, 1);
  };
  gesdd(&q0);
  lwork = std::max(1, int(q0));
  std::vector<T> work(static_cast<std::size_t>(lwork));
  gesdd(work.data());
  return info;
}

template <class T>
int lapack_solve_triangular(int n, int k, const T* a, T* b, bool lower) {
  if (n == 0) return 0;  // nothing to do (LAPACK refuses a leading dimension of 0)
  std::vector<T> bc(std::size_t(n) * std::size_t(k));
  transpose_into(n, k, b, bc.data());
  // the buffer is column-major A^T: upper when A is lower; solve (A^T)^T x = b
  const char uplo = lower ? 'U' : 'L', trans = 'T', diag = 'N';
  int info = 0;
  if constexpr (std::is_same_v<T, float>) strtrs_(&uplo, &trans, &diag, &n, &k, a, &n, bc.data(), &n, &info, 1, 1, 1);
  else dtrtrs_(&uplo, &trans, &diag, &n, &k, a, &n, bc.data(), &n, &info, 1, 1, 1);
  transpose_into(k, n, bc.data(), b);
  return info;
}

#define THETA_LAPACK_INSTANTIATE(T)                                       \
  template int lapack_solve<T>(int, int, T*, T*);                          \
  template int lapack_inverse<T>(int, T*);                                 \
  template void lapack_slogdet<T>(int, T*, double&, double&);              \
  template int lapack_cholesky<T>(int, T*);                                \
  template int lapack_eigh<T>(int, T*, T*);                                \
  template int lapack_qr<T>(int, int, const T*, T*, T*);                   \
  template int lapack_svd<T>(int, int, T*, T*, T*, T*);                    \
  template int lapack_solve_triangular<T>(int, int, const T*, T*, bool);
THETA_LAPACK_INSTANTIATE(float)
THETA_LAPACK_INSTANTIATE(double)
#undef THETA_LAPACK_INSTANTIATE

}  // namespace th::detail::cpu
