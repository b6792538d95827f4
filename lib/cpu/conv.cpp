// Convolution as im2col + GEMM (PyTorch's slow_conv2d, Theano's CorrMM): the images of a
// chunk are unfolded into one column matrix by the kernel threads, then one OpenBLAS GEMM
// per group multiplies it with the filters. Pooling walks each window directly.
#include "cpu/conv.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/parallel.hpp"

namespace th::detail::cpu {

namespace {

// C (M x N, ldc) = alpha * op(A) op(B) + beta * C, row-major.
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A, std::int64_t lda, const T* B,
          std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  const auto at = ta ? CblasTrans : CblasNoTrans, bt = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, double>)
    cblas_dgemm(CblasRowMajor, at, bt, int(M), int(N), int(K), 1.0, A, int(lda), B, int(ldb), beta, C, int(ldc));
  else
    cblas_sgemm(CblasRowMajor, at, bt, int(M), int(N), int(K), 1.0f, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// Elements of the column matrix a chunk of images may take (16 MiB of float64).
constexpr std::int64_t kColElems = std::int64_t(1) << 21;

struct Dims {
  std::int64_t Cg, Og, K, P, chw, nb;
};

Dims dims_of(const ConvGeom& g) {
  Dims d;
  d.Cg = g.C / g.G;
  d.Og = g.O / g.G;
  d.K = d.Cg * g.KH * g.KW;
  d.P = g.OH * g.OW;
  d.chw = g.C * g.H * g.W;
  d.nb = std::max<std::int64_t>(1, std::min<std::int64_t>(g.N, kColElems / std::max<std::int64_t>(1, d.K * d.P)));
  return d;
}

// col[row, col0 + p] for the Cg channels at `x` (row = (c, i, j), p = (oh, ow)); rows are ld apart.
template <class T>
void im2col(const ConvGeom& g, std::int64_t Cg, const T* x, T* col, std::int64_t ld, std::int64_t col0) {
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t i = 0; i < g.KH; ++i)
      for (std::int64_t j = 0; j < g.KW; ++j) {
        T* d = col + ((c * g.KH + i) * g.KW + j) * ld + col0;
        for (std::int64_t oh = 0; oh < g.OH; ++oh, d += g.OW) {
          const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(d, d + g.OW, T(0));
            continue;
          }
          const T* xr = x + (c * g.H + ih) * g.W;
          for (std::int64_t ow = 0, iw = j * g.dw - g.pw; ow < g.OW; ++ow, iw += g.sw)
            d[ow] = iw >= 0 && iw < g.W ? xr[iw] : T(0);
        }
      }
}

// x (Cg channels) += the columns of col folded back onto the image (im2col's adjoint).
template <class T>
void col2im(const ConvGeom& g, std::int64_t Cg, const T* col, std::int64_t ld, std::int64_t col0, T* x) {
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t i = 0; i < g.KH; ++i)
      for (std::int64_t j = 0; j < g.KW; ++j) {
        const T* d = col + ((c * g.KH + i) * g.KW + j) * ld + col0;
        for (std::int64_t oh = 0; oh < g.OH; ++oh, d += g.OW) {
          const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          T* xr = x + (c * g.H + ih) * g.W;
          for (std::int64_t ow = 0, iw = j * g.dw - g.pw; ow < g.OW; ++ow, iw += g.sw)
            if (iw >= 0 && iw < g.W) xr[iw] += d[ow];
        }
      }
}

// The filters with both spatial axes reversed (a true convolution's GEMM operand).
template <class T>
std::vector<T> flipped(const ConvGeom& g, const T* w) {
  const std::int64_t k = g.KH * g.KW, blocks = g.O * (g.C / g.G);
  std::vector<T> f(std::size_t(blocks * k));
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t e = 0; e < k; ++e) f[std::size_t(b * k + e)] = w[b * k + (k - 1 - e)];
  return f;
}

// Unfolds images n0 .. n0 + m of group grp into col (K x m * P).
template <class T>
void unfold_chunk(const ConvGeom& g, const Dims& d, const T* x, std::int64_t n0, std::int64_t m, std::int64_t grp,
                  T* col) {
  parallel_for(m, d.K * d.P, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i)
      im2col(g, d.Cg, x + (n0 + i) * d.chw + grp * d.Cg * g.H * g.W, col, m * d.P, i * d.P);
  });
}

// gy's rows of group grp for images n0 .. n0 + m as one (Og x m * P) matrix: a pointer into
// gy when m is 1, else a copy in `buf`. Its leading dimension goes to `ld`.
template <class T>
const T* gather_rows(const ConvGeom& g, const Dims& d, const T* gy, std::int64_t n0, std::int64_t m, std::int64_t grp,
                     std::vector<T>& buf, std::int64_t& ld) {
  const T* base = gy + n0 * g.O * d.P + grp * d.Og * d.P;
  if (m == 1) {
    ld = d.P;
    return base;
  }
  ld = m * d.P;
  buf.resize(std::size_t(d.Og * ld));
  for (std::int64_t o = 0; o < d.Og; ++o)
    for (std::int64_t i = 0; i < m; ++i)
      std::memcpy(&buf[std::size_t(o * ld + i * d.P)], base + i * g.O * d.P + o * d.P, sizeof(T) * std::size_t(d.P));
  return buf.data();
}

template <class T>
void forward_t(const ConvGeom& g, const T* x, const T* w, T* y) {
  const Dims d = dims_of(g);
  std::vector<T> wf;
  if (g.flip) wf = flipped(g, w);
  const T* wm = g.flip ? wf.data() : w;
  std::vector<T> col(std::size_t(d.K * d.nb * d.P)), tmp;
  for (std::int64_t n0 = 0; n0 < g.N; n0 += d.nb) {
    const std::int64_t m = std::min(d.nb, g.N - n0);
    for (std::int64_t grp = 0; grp < g.G; ++grp) {
      unfold_chunk(g, d, x, n0, m, grp, col.data());
      T* out = y + n0 * g.O * d.P + grp * d.Og * d.P;
      if (m == 1) {
        gemm<T>(false, false, d.Og, d.P, d.K, wm + grp * d.Og * d.K, d.K, col.data(), d.P, T(0), out, d.P);
        continue;
      }
      tmp.resize(std::size_t(d.Og * m * d.P));
      gemm<T>(false, false, d.Og, m * d.P, d.K, wm + grp * d.Og * d.K, d.K, col.data(), m * d.P, T(0), tmp.data(),
              m * d.P);
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t o = 0; o < d.Og; ++o)
          std::memcpy(out + i * g.O * d.P + o * d.P, &tmp[std::size_t(o * m * d.P + i * d.P)],
                      sizeof(T) * std::size_t(d.P));
    }
  }
}

template <class T>
void backward_input_t(const ConvGeom& g, const T* gy, const T* w, T* dx) {
  const Dims d = dims_of(g);
  std::vector<T> wf;
  if (g.flip) wf = flipped(g, w);
  const T* wm = g.flip ? wf.data() : w;
  std::fill(dx, dx + g.N * d.chw, T(0));
  std::vector<T> col(std::size_t(d.K * d.nb * d.P)), buf;
  for (std::int64_t n0 = 0; n0 < g.N; n0 += d.nb) {
    const std::int64_t m = std::min(d.nb, g.N - n0);
    for (std::int64_t grp = 0; grp < g.G; ++grp) {
      std::int64_t ld = 0;
      const T* rows = gather_rows(g, d, gy, n0, m, grp, buf, ld);
      // col (K x m P) = Wg^T (K x Og) @ rows (Og x m P)
      gemm<T>(true, false, d.K, m * d.P, d.Og, wm + grp * d.Og * d.K, d.K, rows, ld, T(0), col.data(), m * d.P);
      parallel_for(m, d.K * d.P, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i)
          col2im(g, d.Cg, col.data(), m * d.P, i * d.P, dx + (n0 + i) * d.chw + grp * d.Cg * g.H * g.W);
      });
    }
  }
}

template <class T>
void backward_filters_t(const ConvGeom& g, const T* x, const T* gy, T* dw) {
  const Dims d = dims_of(g);
  std::vector<T> acc;
  T* out = dw;
  if (g.flip) {
    acc.assign(std::size_t(g.O * d.K), T(0));
    out = acc.data();
  } else {
    std::fill(dw, dw + g.O * d.K, T(0));
  }
  std::vector<T> col(std::size_t(d.K * d.nb * d.P)), buf;
  for (std::int64_t n0 = 0; n0 < g.N; n0 += d.nb) {
    const std::int64_t m = std::min(d.nb, g.N - n0);
    for (std::int64_t grp = 0; grp < g.G; ++grp) {
      unfold_chunk(g, d, x, n0, m, grp, col.data());
      std::int64_t ld = 0;
      const T* rows = gather_rows(g, d, gy, n0, m, grp, buf, ld);
      // dWg (Og x K) += rows (Og x m P) @ col^T (m P x K)
      gemm<T>(false, true, d.Og, d.K, m * d.P, rows, ld, col.data(), m * d.P, T(1), out + grp * d.Og * d.K, d.K);
    }
  }
  if (g.flip) {
    const std::vector<T> f = flipped(g, acc.data());
    std::copy(f.begin(), f.end(), dw);
  }
}

// ---- pooling -------------------------------------------------------------------------------
struct Window {
  std::int64_t h0, h1, w0, w1;  // the input cells it covers, [h0, h1) x [w0, w1)
  std::int64_t padded;          // its size in the padded image (average_inc_pad's divisor)
};

Window window(const PoolGeom& g, std::int64_t oh, std::int64_t ow) {
  const std::int64_t hs = oh * g.sh, he = std::min(hs + g.wh, g.H + 2 * g.ph);
  const std::int64_t ws = ow * g.sw, we = std::min(ws + g.ww, g.W + 2 * g.pw);
  Window w;
  w.h0 = std::max(hs, g.ph) - g.ph;
  w.h1 = std::min(he, g.H + g.ph) - g.ph;
  w.w0 = std::max(ws, g.pw) - g.pw;
  w.w1 = std::min(we, g.W + g.pw) - g.pw;
  w.padded = std::max<std::int64_t>(0, he - hs) * std::max<std::int64_t>(0, we - ws);
  return w;
}

// The flat index (h * W + w) of the window's first maximum of x, or -1 when it covers no cell.
template <class T>
std::int64_t first_max(const PoolGeom& g, const Window& w, const T* x) {
  std::int64_t best = -1;
  T v = T(0);
  for (std::int64_t h = w.h0; h < w.h1; ++h)
    for (std::int64_t c = w.w0; c < w.w1; ++c) {
      const T e = x[h * g.W + c];
      if (best < 0 || e > v || (e != e && v == v)) best = h * g.W + c, v = e;  // NaN wins, as numpy's max
    }
  return best;
}

// The divisor of a window's sum: 1 for sum pooling.
double divisor(const PoolGeom& g, const Window& w) {
  if (g.kind == PoolKind::average_inc_pad) return double(w.padded);
  if (g.kind == PoolKind::average_exc_pad) return double(std::max<std::int64_t>(0, (w.h1 - w.h0) * (w.w1 - w.w0)));
  return 1.0;
}

template <class F>
void each_plane(const PoolGeom& g, F f) {
  parallel_for(g.planes, g.OH * g.OW * g.wh * g.ww, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t p = lo; p < hi; ++p) f(p);
  });
}

template <class T>
void pool_forward_t(const PoolGeom& g, const T* x, T* y) {
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    for (std::int64_t oh = 0; oh < g.OH; ++oh)
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        const Window w = window(g, oh, ow);
        T r = T(0);
        if (g.kind == PoolKind::max) {
          const std::int64_t at = first_max(g, w, xp);
          r = at < 0 ? T(0) : xp[at];
        } else {
          for (std::int64_t h = w.h0; h < w.h1; ++h)
            for (std::int64_t c = w.w0; c < w.w1; ++c) r += xp[h * g.W + c];
          const double dv = divisor(g, w);
          if (g.kind != PoolKind::sum) r = dv > 0 ? T(r / T(dv)) : T(0);
        }
        yp[oh * g.OW + ow] = r;
      }
  });
}

template <class T>
void pool_backward_t(const PoolGeom& g, const T* x, const T* gy, T* dx) {
  std::fill(dx, dx + g.planes * g.H * g.W, T(0));
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    const T* gp = gy + p * g.OH * g.OW;
    T* dp = dx + p * g.H * g.W;
    for (std::int64_t oh = 0; oh < g.OH; ++oh)
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        const Window w = window(g, oh, ow);
        const T gv = gp[oh * g.OW + ow];
        if (g.kind == PoolKind::max) {
          const std::int64_t at = first_max(g, w, xp);
          if (at >= 0) dp[at] += gv;
          continue;
        }
        const double dv = divisor(g, w);
        if (dv <= 0) continue;
        const T share = g.kind == PoolKind::sum ? gv : T(gv / T(dv));
        for (std::int64_t h = w.h0; h < w.h1; ++h)
          for (std::int64_t c = w.w0; c < w.w1; ++c) dp[h * g.W + c] += share;
      }
  });
}

template <class T>
void pool_select_t(const PoolGeom& g, const T* x, const T* gx, T* y) {
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    const T* gp = gx + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    for (std::int64_t oh = 0; oh < g.OH; ++oh)
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        const std::int64_t at = first_max(g, window(g, oh, ow), xp);
        yp[oh * g.OW + ow] = at < 0 ? T(0) : gp[at];
      }
  });
}

}  // namespace

#define THETA_CONV_DISPATCH(call_f32, call_f64) \
  if (dtype == DType::float32) call_f32;        \
  else call_f64

void conv_forward(DType dtype, const ConvGeom& g, const void* x, const void* w, void* y) {
  THETA_CONV_DISPATCH(forward_t(g, static_cast<const float*>(x), static_cast<const float*>(w), static_cast<float*>(y)),
                      forward_t(g, static_cast<const double*>(x), static_cast<const double*>(w), static_cast<double*>(y)));
}

void conv_backward_input(DType dtype, const ConvGeom& g, const void* gy, const void* w, void* dx) {
  THETA_CONV_DISPATCH(
      backward_input_t(g, static_cast<const float*>(gy), static_cast<const float*>(w), static_cast<float*>(dx)),
      backward_input_t(g, static_cast<const double*>(gy), static_cast<const double*>(w), static_cast<double*>(dx)));
}

void conv_backward_filters(DType dtype, const ConvGeom& g, const void* x, const void* gy, void* dw) {
  THETA_CONV_DISPATCH(
      backward_filters_t(g, static_cast<const float*>(x), static_cast<const float*>(gy), static_cast<float*>(dw)),
      backward_filters_t(g, static_cast<const double*>(x), static_cast<const double*>(gy), static_cast<double*>(dw)));
}

void pool_forward(DType dtype, const PoolGeom& g, const void* x, void* y) {
  THETA_CONV_DISPATCH(pool_forward_t(g, static_cast<const float*>(x), static_cast<float*>(y)),
                      pool_forward_t(g, static_cast<const double*>(x), static_cast<double*>(y)));
}

void pool_backward(DType dtype, const PoolGeom& g, const void* x, const void* gy, void* dx) {
  THETA_CONV_DISPATCH(
      pool_backward_t(g, static_cast<const float*>(x), static_cast<const float*>(gy), static_cast<float*>(dx)),
      pool_backward_t(g, static_cast<const double*>(x), static_cast<const double*>(gy), static_cast<double*>(dx)));
}

void pool_select(DType dtype, const PoolGeom& g, const void* x, const void* gx, void* y) {
  THETA_CONV_DISPATCH(
      pool_select_t(g, static_cast<const float*>(x), static_cast<const float*>(gx), static_cast<float*>(y)),
      pool_select_t(g, static_cast<const double*>(x), static_cast<const double*>(gx), static_cast<double*>(y)));
}

#undef THETA_CONV_DISPATCH

}  // namespace th::detail::cpu
