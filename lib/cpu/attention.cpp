// Blocked attention kernels (cpu/attention.hpp). Each head runs on one of theta's threads
// (OpenBLAS held to one thread for the tiles' GEMMs); the exponentials of float32 tiles use a
// polynomial the compiler vectorises (relative error < 2e-7; the scores' own rounding is
// larger), float64 uses libm's.
#include "cpu/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/blas_call.hpp"
#include "cpu/multiversion.hpp"
#include "cpu/parallel.hpp"

namespace th::detail::cpu {

namespace {

constexpr std::int64_t kBq = 64, kBk = 128;  // a tile of scores: 32 KiB of float32

// e^x for x <= 0 or -inf (scores minus their row maximum): Cephes' expf polynomial on
// x - n ln2, times 2^n from the exponent bits; 0 below -87 (and for -inf).
inline float exp_tile(float x) {
  const float c = x < -87.0f ? -87.0f : x;
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = c - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (std::int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.0f ? 0.0f : p * scale;
}
inline double exp_tile(double x) { return std::exp(x); }

// p[j] = e^(s[j] - m) for a row of n; returns their sum.
template <class T>
THETA_MULTIVERSION T exp_row(const T* s, T m, T* p, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) p[j] = exp_tile(T(s[j] - m));
  T sum = 0;
  for (std::int64_t j = 0; j < n; ++j) sum += p[j];
  return sum;
}

// The tile's scores S (nq x nk) = scale q_i k_j^T, masked: causal (key > query), boolean
// (false: -inf), additive.
template <class T>
void scores(const AttentionGeom& g, const AttentionMask& mask, std::int64_t b, const T* q, const T* k, std::int64_t i0,
            std::int64_t nq, std::int64_t j0, std::int64_t nk, T* S) {
  gemm<T>(false, true, nq, nk, g.d, q + i0 * g.d, g.d, k + j0 * g.d, g.d, T(0), S, nk, T(g.scale));
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  if (mask.data) {
    const std::int64_t base = mask.batch[std::size_t(b)];
    for (std::int64_t r = 0; r < nq; ++r) {
      const std::int64_t at = base + (i0 + r) * mask.row + j0 * mask.col;
      T* s = S + r * nk;
      if (mask.boolean) {
        const bool* m = static_cast<const bool*>(mask.data) + at;
        for (std::int64_t c = 0; c < nk; ++c)
          if (!m[c * mask.col]) s[c] = ninf;
      } else {
        const T* m = static_cast<const T*>(mask.data) + at;
        for (std::int64_t c = 0; c < nk; ++c) s[c] += m[c * mask.col];
      }
    }
  }
  if (g.causal)
    for (std::int64_t r = 0; r < nq; ++r)
      for (std::int64_t c = std::max<std::int64_t>(0, i0 + r + 1 - j0); c < nk; ++c) S[r * nk + c] = ninf;
}

// Whether a causal mask hides the whole tile (every key after every query).
bool hidden(const AttentionGeom& g, std::int64_t i0, std::int64_t nq, std::int64_t j0) {
  return g.causal && j0 > i0 + nq - 1;
}

template <class T>
struct Forward {
  const AttentionGeom& g;
  const T *q, *k, *v;
  const AttentionMask& mask;
  T *out, *lse;
  void head(std::int64_t b) const {
    thread_local std::vector<T> buf;
    buf.resize(std::size_t(kBq * kBk + kBq * 2));
    T *S = buf.data(), *m = S + kBq * kBk, *l = m + kBq;
    const T* qb = q + b * g.Lq * g.d;
    const T* kb = k + b * g.Lk * g.d;
    const T* vb = v + b * g.Lk * g.dv;
    T* ob = out + b * g.Lq * g.dv;
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    for (std::int64_t i0 = 0; i0 < g.Lq; i0 += kBq) {
      const std::int64_t nq = std::min(kBq, g.Lq - i0);
      T* O = ob + i0 * g.dv;  // accumulated in place
      std::fill(O, O + nq * g.dv, T(0));
      std::fill(m, m + nq, ninf);
      std::fill(l, l + nq, T(0));
      for (std::int64_t j0 = 0; j0 < g.Lk && !hidden(g, i0, nq, j0); j0 += kBk) {
        const std::int64_t nk = std::min(kBk, g.Lk - j0);
        scores<T>(g, mask, b, qb, kb, i0, nq, j0, nk, S);
        for (std::int64_t r = 0; r < nq; ++r) {
          T* s = S + r * nk;
          T mx = m[r];
          for (std::int64_t c = 0; c < nk; ++c) mx = s[c] > mx ? s[c] : mx;
          if (mx == ninf) {  // every key so far masked: nothing to add
            std::fill(s, s + nk, T(0));
            continue;
          }
          const T alpha = m[r] == ninf ? T(0) : exp_tile(T(m[r] - mx));
          l[r] = l[r] * alpha + exp_row<T>(s, mx, s, nk);
          m[r] = mx;
          if (alpha != T(1))
            for (std::int64_t c = 0; c < g.dv; ++c) O[r * g.dv + c] *= alpha;
        }
        gemm<T>(false, false, nq, g.dv, nk, S, nk, vb + j0 * g.dv, g.dv, T(1), O, g.dv);
      }
      for (std::int64_t r = 0; r < nq; ++r) {
        const T inv = T(1) / l[r];  // a row with every key masked: 0/0, NaN as softmax's
        for (std::int64_t c = 0; c < g.dv; ++c) O[r * g.dv + c] *= inv;
        lse[b * g.Lq + i0 + r] = m[r] + std::log(l[r]);
      }
    }
  }
};

template <class T>
struct Backward {
  const AttentionGeom& g;
  const T *q, *k, *v;
  const AttentionMask& mask;
  const T *out, *lse, *dout;
  T *dq, *dk, *dv;
  void head(std::int64_t b) const {
    thread_local std::vector<T> buf;
    buf.resize(std::size_t(2 * kBq * kBk + g.Lq));
    T *P = buf.data(), *dP = P + kBq * kBk, *D = dP + kBq * kBk;
    const std::int64_t d = g.d, dvn = g.dv;
    const T* qb = q + b * g.Lq * d;
    const T* kb = k + b * g.Lk * d;
    const T* vb = v + b * g.Lk * dvn;
    const T* ob = out + b * g.Lq * dvn;
    const T* gb = dout + b * g.Lq * dvn;
    const T* Lb = lse + b * g.Lq;
    T* dqb = dq + b * g.Lq * d;
    T* dkb = dk + b * g.Lk * d;
    T* dvb = dv + b * g.Lk * dvn;
    for (std::int64_t i = 0; i < g.Lq; ++i) {  // D_i = dout_i . out_i
      T s = 0;
      for (std::int64_t c = 0; c < dvn; ++c) s += gb[i * dvn + c] * ob[i * dvn + c];
      D[i] = s;
    }
    std::fill(dqb, dqb + g.Lq * d, T(0));
    std::fill(dkb, dkb + g.Lk * d, T(0));
    std::fill(dvb, dvb + g.Lk * dvn, T(0));
    for (std::int64_t j0 = 0; j0 < g.Lk; j0 += kBk) {
      const std::int64_t nk = std::min(kBk, g.Lk - j0);
      for (std::int64_t i0 = 0; i0 < g.Lq; i0 += kBq) {
        const std::int64_t nq = std::min(kBq, g.Lq - i0);
        if (hidden(g, i0, nq, j0)) continue;
        scores<T>(g, mask, b, qb, kb, i0, nq, j0, nk, P);
        for (std::int64_t r = 0; r < nq; ++r) exp_row<T>(P + r * nk, Lb[i0 + r], P + r * nk, nk);  // P = e^(S - lse)
        gemm<T>(true, false, nk, dvn, nq, P, nk, gb + i0 * dvn, dvn, T(1), dvb + j0 * dvn, dvn);   // dv += P^T dout
        gemm<T>(false, true, nq, nk, dvn, gb + i0 * dvn, dvn, vb + j0 * dvn, dvn, T(0), dP, nk);   // dP = dout v^T
        for (std::int64_t r = 0; r < nq; ++r) {  // dS = P (dP - D), in dP
          const T Di = D[i0 + r];
          T *p = P + r * nk, *dp = dP + r * nk;
          for (std::int64_t c = 0; c < nk; ++c) dp[c] = p[c] * (dp[c] - Di);
        }
        const T sc = T(g.scale);
        gemm<T>(false, false, nq, d, nk, dP, nk, kb + j0 * d, d, T(1), dqb + i0 * d, d, sc);  // dq += s dS k
        gemm<T>(true, false, nk, d, nq, dP, nk, qb + i0 * d, d, T(1), dkb + j0 * d, d, sc);   // dk += s dS^T q
      }
    }
  }
};

template <class Job>
void each_head(std::int64_t B, std::int64_t cost, const Job& job) {
  parallel_for(B, cost, [&job](std::int64_t lo, std::int64_t hi) {  // one capture: no heap
    for (std::int64_t b = lo; b < hi; ++b) job.head(b);
  });
}

}  // namespace

template <class T>
void attention_forward(const AttentionGeom& g, const T* q, const T* k, const T* v, const AttentionMask& mask, T* out,
                       T* lse) {
  const Forward<T> job{g, q, k, v, mask, out, lse};
  each_head(g.B, g.Lq * g.Lk * (g.d + g.dv + 8), job);
}

template <class T>
void attention_backward(const AttentionGeom& g, const T* q, const T* k, const T* v, const AttentionMask& mask,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const Backward<T> job{g, q, k, v, mask, out, lse, dout, dq, dk, dv};
  each_head(g.B, g.Lq * g.Lk * (3 * g.d + 2 * g.dv + 8), job);
}

template void attention_forward<float>(const AttentionGeom&, const float*, const float*, const float*,
                                       const AttentionMask&, float*, float*);
template void attention_forward<double>(const AttentionGeom&, const double*, const double*, const double*,
                                        const AttentionMask&, double*, double*);
template void attention_backward<float>(const AttentionGeom&, const float*, const float*, const float*,
                                        const AttentionMask&, const float*, const float*, const float*, float*, float*,
                                        float*);
template void attention_backward<double>(const AttentionGeom&, const double*, const double*, const double*,
                                         const AttentionMask&, const double*, const double*, const double*, double*,
                                         double*, double*);

}  // namespace th::detail::cpu
