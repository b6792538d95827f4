// Convolution as im2col + GEMM (PyTorch's slow_conv2d, Theano's CorrMM): the images of a
// chunk are unfolded into one column matrix, then one OpenBLAS GEMM per group multiplies it
// with the filters; the kernel threads each take a share of the batch (see per_image).
// Pooling walks whole windows along output rows.
#include "cpu/conv.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "core/dispatch.hpp"
#include "cpu/blas_call.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/dnnl.hpp"
#include "cpu/multiversion.hpp"
#include "cpu/parallel.hpp"

namespace th::detail::cpu {

namespace {

// Elements of the column matrix a chunk of images may take on one thread running OpenBLAS's
// own threads (16 MiB of float64).
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

// The output columns [lo, hi) whose input column ow * sw + off lies inside [0, W).
inline void valid_cols(const ConvGeom& g, std::int64_t off, std::int64_t& lo, std::int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
  hi = g.W - off <= 0 ? 0 : (g.W - off - 1) / g.sw + 1;
  lo = std::min(lo, g.OW);
  hi = std::max(lo, std::min(hi, g.OW));
}

// The row of the column matrix that tap (i, j) of channel c fills: (c, i, j), or (c, KH-1-i,
// KW-1-j) for a true convolution, so that the filters multiply it as stored (no flipped copy).
inline std::int64_t row_of(const ConvGeom& g, std::int64_t c, std::int64_t i, std::int64_t j) {
  return g.flip ? (c * g.KH + g.KH - 1 - i) * g.KW + g.KW - 1 - j : (c * g.KH + i) * g.KW + j;
}

// col[row, col0 + p] for the Cg channels at `x` (row: row_of(c, i, j), p = (oh, ow)); rows are
// ld apart. Each output row is a zero margin, a (strided) copy of an input row, a zero margin.
template <class T>
void im2col(const ConvGeom& g, std::int64_t Cg, const T* x, T* col, std::int64_t ld, std::int64_t col0) {
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t i = 0; i < g.KH; ++i)
      for (std::int64_t j = 0; j < g.KW; ++j) {
        T* d = col + row_of(g, c, i, j) * ld + col0;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        valid_cols(g, off, lo, hi);
        for (std::int64_t oh = 0; oh < g.OH; ++oh, d += g.OW) {
          const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(d, d + g.OW, T(0));
            continue;
          }
          const T* xr = x + (c * g.H + ih) * g.W + off;
          std::fill(d, d + lo, T(0));
          if (g.sw == 1) std::memcpy(d + lo, xr + lo, sizeof(T) * std::size_t(hi - lo));
          else
            for (std::int64_t ow = lo; ow < hi; ++ow) d[ow] = xr[ow * g.sw];
          std::fill(d + hi, d + g.OW, T(0));
        }
      }
}

// x (Cg channels) += the columns of col folded back onto the image (im2col's adjoint).
template <class T>
void col2im(const ConvGeom& g, std::int64_t Cg, const T* col, std::int64_t ld, std::int64_t col0, T* x) {
  for (std::int64_t c = 0; c < Cg; ++c)
    for (std::int64_t i = 0; i < g.KH; ++i)
      for (std::int64_t j = 0; j < g.KW; ++j) {
        const T* d = col + row_of(g, c, i, j) * ld + col0;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        valid_cols(g, off, lo, hi);
        for (std::int64_t oh = 0; oh < g.OH; ++oh, d += g.OW) {
          const std::int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          T* xr = x + (c * g.H + ih) * g.W + off;
          if (g.sw == 1)
            for (std::int64_t ow = lo; ow < hi; ++ow) xr[ow] += d[ow];
          else
            for (std::int64_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += d[ow];
        }
      }
}

// Work buffers, kept per thread from call to call: a training step's megabytes of columns
// would otherwise be mapped and faulted in by the kernel on every call.
template <class T>
struct Scratch {
  std::vector<T> col, tmp, rows;
};
template <class T>
Scratch<T>& scratch() {
  thread_local Scratch<T> s;
  return s;
}

// Unfolds images n0 .. n0 + m of group grp into col (K x m * P).
template <class T>
void unfold_chunk(const ConvGeom& g, const Dims& d, const T* x, std::int64_t n0, std::int64_t m, std::int64_t grp,
                  T* col) {
  for (std::int64_t i = 0; i < m; ++i)
    im2col(g, d.Cg, x + (n0 + i) * d.chw + grp * d.Cg * g.H * g.W, col, m * d.P, i * d.P);
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

// How the batch is spread over the cores: theta's kernel threads take the images, each
// unfolding its own and calling single-threaded GEMMs (OpenBLAS's own threads are turned off
// for the region: its workers keep spinning for a while after each call and would fight
// ours for the cores; measured on 2 cores, conv 16 ms this way against 28-33 ms as chunks of
// one large threaded GEMM with the unfolding between). One thread: chunks of images, one
// GEMM each, which keeps BLAS's blocks large.
bool per_image(const ConvGeom& g) { return g.N > 1 && num_threads() > 1; }

// f(n0, m, grp, col) for each group of each chunk of images [lo, hi) (m images from n0),
// col this thread's scratch for the chunk's (K x m*P) patch matrix.
template <class T, class F>
void each_chunk(const ConvGeom& g, const Dims& d, std::int64_t lo, std::int64_t hi, std::int64_t nb, F f) {
  std::vector<T>& col = scratch<T>().col;
  col.resize(std::size_t(d.K * nb * d.P));
  for (std::int64_t n0 = lo; n0 < hi; n0 += nb)
    for (std::int64_t grp = 0; grp < g.G; ++grp) f(n0, std::min(nb, hi - n0), grp, col.data());
}

// Images [lo, hi) on this thread, in chunks of nb: each chunk's patches unfolded into one
// (K x nb*P) matrix, one GEMM per group, the result copied out of the GEMM's layout.
template <class T>
void forward_range(const ConvGeom& g, const Dims& d, const T* x, const T* w, T* y, std::int64_t lo, std::int64_t hi,
                   std::int64_t nb) {
  std::vector<T>& tmp = scratch<T>().tmp;
  each_chunk<T>(g, d, lo, hi, nb, [&](std::int64_t n0, std::int64_t m, std::int64_t grp, T* col) {
    unfold_chunk(g, d, x, n0, m, grp, col);
    T* out = y + n0 * g.O * d.P + grp * d.Og * d.P;
    if (m == 1) {  // straight into y
      gemm<T>(false, false, d.Og, d.P, d.K, w + grp * d.Og * d.K, d.K, col, d.P, T(0), out, d.P);
      return;
    }
    tmp.resize(std::size_t(d.Og * m * d.P));
    gemm<T>(false, false, d.Og, m * d.P, d.K, w + grp * d.Og * d.K, d.K, col, m * d.P, T(0), tmp.data(), m * d.P);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t o = 0; o < d.Og; ++o)
        std::memcpy(out + i * g.O * d.P + o * d.P, &tmp[std::size_t(o * m * d.P + i * d.P)], sizeof(T) * std::size_t(d.P));
  });
}

// dx (zeroed) += the folded W_g^T @ gy of images [lo, hi), in chunks of nb.
template <class T>
void backward_input_range(const ConvGeom& g, const Dims& d, const T* gy, const T* w, T* dx, std::int64_t lo,
                          std::int64_t hi, std::int64_t nb) {
  std::vector<T>& buf = scratch<T>().rows;
  each_chunk<T>(g, d, lo, hi, nb, [&](std::int64_t n0, std::int64_t m, std::int64_t grp, T* col) {
    std::int64_t ld = 0;
    const T* rows = gather_rows(g, d, gy, n0, m, grp, buf, ld);
    // col (K x m P) = Wg^T (K x Og) @ rows (Og x m P)
    gemm<T>(true, false, d.K, m * d.P, d.Og, w + grp * d.Og * d.K, d.K, rows, ld, T(0), col, m * d.P);
    for (std::int64_t i = 0; i < m; ++i)
      col2im(g, d.Cg, col, m * d.P, i * d.P, dx + (n0 + i) * d.chw + grp * d.Cg * g.H * g.W);
  });
}

// dw += gy @ patches^T over images [lo, hi), in chunks of nb.
template <class T>
void backward_filters_range(const ConvGeom& g, const Dims& d, const T* x, const T* gy, T* dw, std::int64_t lo,
                            std::int64_t hi, std::int64_t nb) {
  std::vector<T>& buf = scratch<T>().rows;
  each_chunk<T>(g, d, lo, hi, nb, [&](std::int64_t n0, std::int64_t m, std::int64_t grp, T* col) {
    unfold_chunk(g, d, x, n0, m, grp, col);
    std::int64_t ld = 0;
    const T* rows = gather_rows(g, d, gy, n0, m, grp, buf, ld);
    // dWg (Og x K) += rows (Og x m P) @ col^T (m P x K)
    gemm<T>(false, true, d.Og, d.K, m * d.P, rows, ld, col, m * d.P, T(1), dw + grp * d.Og * d.K, d.K);
  });
}

// Images per chunk on a kernel thread: a few, so that each GEMM's inner or outer dimension
// is several images' patches wide (small layers' GEMMs run far below BLAS's speed otherwise),
// while the thread's patch matrix stays a few MiB.
std::int64_t thread_chunk(const ConvGeom& g, const Dims& d) {
  const std::int64_t budget = std::int64_t(1) << 18;  // elements (measured: 2^17-2^19 alike, 2^21 40% slower)
  return std::max<std::int64_t>(1, std::min<std::int64_t>((g.N + 1) / 2, budget / std::max<std::int64_t>(1, d.K * d.P)));
}

template <class T>
void forward_t(const ConvGeom& g, const T* x, const T* w, T* y) {  // w as stored: im2col places flipped taps
  const Dims d = dims_of(g);
  if (!per_image(g)) return forward_range(g, d, x, w, y, 0, g.N, d.nb);
  const std::int64_t nb = thread_chunk(g, d);
  parallel_for(g.N, d.K * d.P * d.Og, [&](std::int64_t lo, std::int64_t hi) { forward_range(g, d, x, w, y, lo, hi, nb); });
}

template <class T>
void backward_input_t(const ConvGeom& g, const T* gy, const T* w, T* dx) {
  const Dims d = dims_of(g);
  std::fill(dx, dx + g.N * d.chw, T(0));
  if (!per_image(g)) return backward_input_range(g, d, gy, w, dx, 0, g.N, d.nb);
  const std::int64_t nb = thread_chunk(g, d);
  parallel_for(g.N, d.K * d.P * d.Og,
               [&](std::int64_t lo, std::int64_t hi) { backward_input_range(g, d, gy, w, dx, lo, hi, nb); });
}

template <class T>
void backward_filters_t(const ConvGeom& g, const T* x, const T* gy, T* dw) {  // in the filters' own layout
  const Dims d = dims_of(g);
  std::fill(dw, dw + g.O * d.K, T(0));
  if (!per_image(g)) return backward_filters_range(g, d, x, gy, dw, 0, g.N, d.nb);
  // each thread sums its images' gradients; the partial sums are added in image order
  std::mutex m;
  std::vector<std::pair<std::int64_t, std::vector<T>>> parts;
  const std::int64_t nb = thread_chunk(g, d);
  parallel_for(g.N, d.K * d.P * d.Og, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<T> part(std::size_t(g.O * d.K), T(0));
    backward_filters_range(g, d, x, gy, part.data(), lo, hi, nb);
    const std::lock_guard<std::mutex> lock(m);
    parts.emplace_back(lo, std::move(part));
  });
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [lo, part] : parts)
    for (std::size_t i = 0; i < part.size(); ++i) dw[i] += part[i];
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

// Calls f(oh, ow, w) for every window; `w.inside` marks whole windows (no padding cut),
// which take the tight loops below (most of them: measured 4x faster than the general walk).
struct Windows {
  const PoolGeom& g;
  std::int64_t ow_lo, ow_hi;  // the output columns whose windows lie inside the image's columns
  explicit Windows(const PoolGeom& p) : g(p) {
    ow_lo = g.pw == 0 ? 0 : (g.pw + g.sw - 1) / g.sw;
    ow_hi = g.W - g.ww + g.pw < 0 ? 0 : (g.W - g.ww + g.pw) / g.sw + 1;
    ow_hi = std::max(ow_lo, std::min(ow_hi, g.OW));
    ow_lo = std::min(ow_lo, g.OW);
  }
  bool row_inside(std::int64_t oh) const { return oh * g.sh >= g.ph && oh * g.sh - g.ph + g.wh <= g.H; }
};

// The whole windows of output row oh (an interior row, columns [lo, hi)), walked one
// window element at a time across the row: the inner loops run along ow, which the
// compiler vectorises (a window at a time costs ~100 instructions for 2 x 2).
//   max:  v[ow] = the window's first maximum, at[ow] its flat index (when `at`)
//   else: v[ow] = the window's sum
template <class T>
void row_windows(const PoolGeom& g, const T* xp, std::int64_t oh, std::int64_t lo, std::int64_t hi, T* v,
                 std::int64_t* at) {
  const std::int64_t r0 = oh * g.sh - g.ph;
  for (std::int64_t i = 0; i < g.wh; ++i)
    for (std::int64_t j = 0; j < g.ww; ++j) {
      const std::int64_t base = (r0 + i) * g.W + j - g.pw;
      const T* r = xp + base;
      if (i == 0 && j == 0) {
        for (std::int64_t ow = lo; ow < hi; ++ow) v[ow] = r[ow * g.sw];
        if (at)
          for (std::int64_t ow = lo; ow < hi; ++ow) at[ow] = base + ow * g.sw;
        continue;
      }
      if (g.kind != PoolKind::max) {
        for (std::int64_t ow = lo; ow < hi; ++ow) v[ow] += r[ow * g.sw];
      } else if (!at) {
        for (std::int64_t ow = lo; ow < hi; ++ow) {
          const T e = r[ow * g.sw];
          v[ow] = (e > v[ow] || e != e) ? e : v[ow];  // NaN wins, as numpy's max
        }
      } else {
        for (std::int64_t ow = lo; ow < hi; ++ow) {
          const T e = r[ow * g.sw];
          const bool take = e > v[ow] || (e != e && v[ow] == v[ow]);
          v[ow] = take ? e : v[ow];
          at[ow] = take ? base + ow * g.sw : at[ow];
        }
      }
    }
}

template <class T>
struct RowScratch {
  std::vector<T> v;
  std::vector<std::int64_t> at;
};
template <class T>
RowScratch<T>& row_scratch(std::int64_t n) {
  thread_local RowScratch<T> s;
  if (std::int64_t(s.v.size()) < n) s.v.resize(std::size_t(n)), s.at.resize(std::size_t(n));
  return s;
}

// Max pooling's 2 x 2 windows that tile the image (stride 2, no padding: the common case),
// a pair of input rows at a time, branch-free so that the compiler vectorises them (built per
// CPU level). The first maximum in window order (a, b / c, d) wins; NaN wins, as numpy's max.
// (Bitwise | and & on the comparisons, not || and &&: no branches, so the loops vectorise.)
template <class T>
inline bool takes(T e, T v) {
  return (e > v) | ((e != e) & (v == v));
}
// Its gradient: gy to each window's first maximum, 0 to the window's other cells. Blocks of
// 16 bytes of windows in vector registers (GCC/Clang vector extensions, SSE2 in the baseline
// build, VEX in the CPU levels'); the rest one window at a time.
#define THETA_INLINE inline __attribute__((always_inline))
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  typedef float V __attribute__((vector_size(16)));
  typedef std::int32_t M __attribute__((vector_size(16)));
};
template <>
struct Lanes<double> {
  typedef double V __attribute__((vector_size(16)));
  typedef std::int64_t M __attribute__((vector_size(16)));
};
template <class V>
THETA_INLINE V load_v(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V, class M>
THETA_INLINE M takes_v(V e, V v) {
  return (e > v) | ((e != e) & (v == v));
}
template <class V, class M>
THETA_INLINE V pick_v(M m, V x, V y) {
  return V((M(x) & m) | (M(y) & ~m));
}
template <class T, std::size_t... I>
THETA_INLINE void max2x2_grad_block(const T* x0, const T* x1, const T* gy, T* d0, T* d1, std::index_sequence<I...>) {
  using V = typename Lanes<T>::V;
  using M = typename Lanes<T>::M;
  constexpr std::size_t L = sizeof...(I);
  const V p0 = load_v<V>(x0), p1 = load_v<V>(x0 + L), q0 = load_v<V>(x1), q1 = load_v<V>(x1 + L), g = load_v<V>(gy);
  const V a = __builtin_shufflevector(p0, p1, (2 * I)...), b = __builtin_shufflevector(p0, p1, (2 * I + 1)...);
  const V c = __builtin_shufflevector(q0, q1, (2 * I)...), d = __builtin_shufflevector(q0, q1, (2 * I + 1)...);
  const M tb = takes_v<V, M>(b, a);
  const V v1 = pick_v<V, M>(tb, b, a);
  const M tc = takes_v<V, M>(c, v1);
  const V v2 = pick_v<V, M>(tc, c, v1);
  const M td = takes_v<V, M>(d, v2);
  const M gi = M(g);
  const V oa = V(gi & ~(tb | tc | td)), ob = V(gi & tb & ~tc & ~td), oc = V(gi & tc & ~td), od = V(gi & td);
  const V r0 = __builtin_shufflevector(oa, ob, (I % 2 == 0 ? I / 2 : L + I / 2)...);
  const V r1 = __builtin_shufflevector(oa, ob, (I % 2 == 0 ? L / 2 + I / 2 : L + L / 2 + I / 2)...);
  const V s0 = __builtin_shufflevector(oc, od, (I % 2 == 0 ? I / 2 : L + I / 2)...);
  const V s1 = __builtin_shufflevector(oc, od, (I % 2 == 0 ? L / 2 + I / 2 : L + L / 2 + I / 2)...);
  std::memcpy(d0, &r0, sizeof r0), std::memcpy(d0 + L, &r1, sizeof r1);
  std::memcpy(d1, &s0, sizeof s0), std::memcpy(d1 + L, &s1, sizeof s1);
}
template <class T>
THETA_INLINE void max2x2_grad_row(const T* __restrict x0, const T* __restrict x1, const T* __restrict gy, T* __restrict d0,
                            T* __restrict d1, std::int64_t n) {
  constexpr std::int64_t L = 16 / sizeof(T);
  std::int64_t i = 0;
  for (; i + L <= n; i += L)
    max2x2_grad_block(x0 + 2 * i, x1 + 2 * i, gy + i, d0 + 2 * i, d1 + 2 * i, std::make_index_sequence<L>());
  for (; i < n; ++i) {
    const T a = x0[2 * i], b = x0[2 * i + 1], c = x1[2 * i], d = x1[2 * i + 1];
    const bool tb = takes(b, a);
    const T v1 = tb ? b : a;
    const bool tc = takes(c, v1);
    const T v2 = tc ? c : v1;
    const bool td = takes(d, v2);
    const T g = gy[i], z = T(0);
    d1[2 * i + 1] = td ? g : z;
    d1[2 * i] = (tc & !td) ? g : z;
    d0[2 * i + 1] = (tb & !tc & !td) ? g : z;
    d0[2 * i] = (tb | tc | td) ? z : g;
  }
}
template <class T, std::size_t... I>
THETA_INLINE void max2x2_block(const T* x0, const T* x1, T* y, std::index_sequence<I...>) {
  using V = typename Lanes<T>::V;
  using M = typename Lanes<T>::M;
  constexpr std::size_t L = sizeof...(I);
  const V p0 = load_v<V>(x0), p1 = load_v<V>(x0 + L), q0 = load_v<V>(x1), q1 = load_v<V>(x1 + L);
  const V a = __builtin_shufflevector(p0, p1, (2 * I)...), b = __builtin_shufflevector(p0, p1, (2 * I + 1)...);
  const V c = __builtin_shufflevector(q0, q1, (2 * I)...), d = __builtin_shufflevector(q0, q1, (2 * I + 1)...);
  const V v1 = pick_v<V, M>(takes_v<V, M>(b, a), b, a);
  const V v2 = pick_v<V, M>(takes_v<V, M>(c, v1), c, v1);
  const V v3 = pick_v<V, M>(takes_v<V, M>(d, v2), d, v2);
  std::memcpy(y, &v3, sizeof v3);
}
template <class T>
THETA_INLINE void max2x2_row(const T* __restrict x0, const T* __restrict x1, T* __restrict y, std::int64_t n) {
  constexpr std::int64_t L = 16 / sizeof(T);
  std::int64_t i = 0;
  for (; i + L <= n; i += L) max2x2_block(x0 + 2 * i, x1 + 2 * i, y + i, std::make_index_sequence<L>());
  for (; i < n; ++i) {
    const T a = x0[2 * i], b = x0[2 * i + 1], c = x1[2 * i], d = x1[2 * i + 1];
    const T v1 = takes(b, a) ? b : a;
    const T v2 = takes(c, v1) ? c : v1;
    y[i] = takes(d, v2) ? d : v2;
  }
}
THETA_MULTIVERSION void max2x2_row_f32(const float* x0, const float* x1, float* y, std::int64_t n) {
  max2x2_row(x0, x1, y, n);
}
THETA_MULTIVERSION void max2x2_row_f64(const double* x0, const double* x1, double* y, std::int64_t n) {
  max2x2_row(x0, x1, y, n);
}
THETA_MULTIVERSION void max2x2_grad_row_f32(const float* x0, const float* x1, const float* gy, float* d0, float* d1,
                                            std::int64_t n) {
  max2x2_grad_row(x0, x1, gy, d0, d1, n);
}
THETA_MULTIVERSION void max2x2_grad_row_f64(const double* x0, const double* x1, const double* gy, double* d0,
                                            double* d1, std::int64_t n) {
  max2x2_grad_row(x0, x1, gy, d0, d1, n);
}
inline void max2x2_rows(const float* x0, const float* x1, float* y, std::int64_t n) { max2x2_row_f32(x0, x1, y, n); }
inline void max2x2_rows(const double* x0, const double* x1, double* y, std::int64_t n) { max2x2_row_f64(x0, x1, y, n); }
inline void max2x2_grad_rows(const float* x0, const float* x1, const float* gy, float* d0, float* d1, std::int64_t n) {
  max2x2_grad_row_f32(x0, x1, gy, d0, d1, n);
}
inline void max2x2_grad_rows(const double* x0, const double* x1, const double* gy, double* d0, double* d1,
                             std::int64_t n) {
  max2x2_grad_row_f64(x0, x1, gy, d0, d1, n);
}

// Channel-blocked images ((blocks, H, W, lanes): oneDNN's nChw16c, nChw8c, or NHWC with
// lanes = C) through the same windows: 8 lanes of a window side by side in a vector.
typedef float V8 __attribute__((vector_size(32)));
typedef std::int32_t M8 __attribute__((vector_size(32)));
THETA_MULTIVERSION void max2x2_lanes_f32(const float* x, float* y, std::int64_t blocks, std::int64_t H, std::int64_t W,
                                         std::int64_t OH, std::int64_t OW, std::int64_t L) {
  const std::int64_t vec = L % 8 == 0 ? L : 0;
  for (std::int64_t i = 0; i < blocks; ++i)
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        const float* a = x + ((i * H + 2 * oh) * W + 2 * ow) * L;
        const float* b = a + L;
        const float* c = a + W * L;
        const float* d = c + L;
        float* out = y + ((i * OH + oh) * OW + ow) * L;
        for (std::int64_t l = 0; l < vec; l += 8) {  // (no vector-returning helpers: their ABI differs per clone)
          V8 va, vb, vc, vd;
          std::memcpy(&va, a + l, sizeof va), std::memcpy(&vb, b + l, sizeof vb);
          std::memcpy(&vc, c + l, sizeof vc), std::memcpy(&vd, d + l, sizeof vd);
          const M8 t1 = (vb > va) | ((vb != vb) & (va == va));
          const V8 v1 = V8((M8(vb) & t1) | (M8(va) & ~t1));
          const M8 t2 = (vc > v1) | ((vc != vc) & (v1 == v1));
          const V8 v2 = V8((M8(vc) & t2) | (M8(v1) & ~t2));
          const M8 t3 = (vd > v2) | ((vd != vd) & (v2 == v2));
          const V8 v3 = V8((M8(vd) & t3) | (M8(v2) & ~t3));
          std::memcpy(out + l, &v3, sizeof v3);
        }
        for (std::int64_t l = vec; l < L; ++l) {
          const float v1 = takes(b[l], a[l]) ? b[l] : a[l];
          const float v2 = takes(c[l], v1) ? c[l] : v1;
          out[l] = takes(d[l], v2) ? d[l] : v2;
        }
      }
}

bool tiled_max2x2(const PoolGeom& g) {
  return g.kind == PoolKind::max && g.wh == 2 && g.ww == 2 && g.sh == 2 && g.sw == 2 && !g.ph && !g.pw &&
         2 * g.OH <= g.H && 2 * g.OW <= g.W;
}

// Max pooling's gradient over tiling 2 x 2 windows: each input cell written once (no zeroing
// pass, no scatter); issue 27 measured the general walk at 27x a copy of the input on a LeNet
// layer's gradient.
template <class T>
bool pool_backward_tiled(const PoolGeom& g, const T* x, const T* gy, T* dx) {
  if (!tiled_max2x2(g)) return false;
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    const T* gp = gy + p * g.OH * g.OW;
    T* dp = dx + p * g.H * g.W;
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const std::int64_t r = 2 * oh * g.W;
      max2x2_grad_rows(xp + r, xp + r + g.W, gp + oh * g.OW, dp + r, dp + r + g.W, g.OW);
      if (2 * g.OW < g.W)  // columns past the last window
        for (std::int64_t i = 0; i < 2; ++i) std::fill(dp + r + i * g.W + 2 * g.OW, dp + r + (i + 1) * g.W, T(0));
    }
    std::fill(dp + 2 * g.OH * g.W, dp + g.H * g.W, T(0));  // rows past the last window
  });
  return true;
}

template <class T>
bool pool_forward_tiled(const PoolGeom& g, const T* x, T* y) {
  if (!tiled_max2x2(g)) return false;
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    for (std::int64_t oh = 0; oh < g.OH; ++oh)
      max2x2_rows(xp + 2 * oh * g.W, xp + (2 * oh + 1) * g.W, y + (p * g.OH + oh) * g.OW, g.OW);
  });
  return true;
}

template <class T>
void pool_forward_t(const PoolGeom& g, const T* x, T* y) {
  if (pool_forward_tiled(g, x, y)) return;
  const Windows ws(g);
  const T area = T(g.wh * g.ww);
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      T* yr = yp + oh * g.OW;
      const bool row = ws.row_inside(oh);
      if (row) {
        row_windows(g, xp, oh, ws.ow_lo, ws.ow_hi, yr, static_cast<std::int64_t*>(nullptr));
        if (g.kind == PoolKind::average_inc_pad || g.kind == PoolKind::average_exc_pad)
          for (std::int64_t ow = ws.ow_lo; ow < ws.ow_hi; ++ow) yr[ow] = T(yr[ow] / area);
      }
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        if (row && ow == ws.ow_lo) ow = ws.ow_hi;  // done above
        if (ow >= g.OW) break;
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
        yr[ow] = r;
      }
    }
  });
}

template <class T>
void pool_backward_t(const PoolGeom& g, const T* x, const T* gy, T* dx) {
  if (pool_backward_tiled(g, x, gy, dx)) return;
  const Windows ws(g);
  const T area = T(g.wh * g.ww);
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    const T* gp = gy + p * g.OH * g.OW;
    T* dp = dx + p * g.H * g.W;
    std::fill(dp, dp + g.H * g.W, T(0));
    RowScratch<T>& rs = row_scratch<T>(g.OW);
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const T* gr = gp + oh * g.OW;
      const bool row = ws.row_inside(oh);
      if (row && g.kind == PoolKind::max) {  // each gradient to its window's first maximum, in window order
        row_windows(g, xp, oh, ws.ow_lo, ws.ow_hi, rs.v.data(), rs.at.data());
        for (std::int64_t ow = ws.ow_lo; ow < ws.ow_hi; ++ow) dp[rs.at[std::size_t(ow)]] += gr[ow];
      } else if (row) {
        const std::int64_t r0 = oh * g.sh - g.ph;
        for (std::int64_t i = 0; i < g.wh; ++i)
          for (std::int64_t j = 0; j < g.ww; ++j) {
            T* d = dp + (r0 + i) * g.W + j - g.pw;
            if (g.kind == PoolKind::sum)
              for (std::int64_t ow = ws.ow_lo; ow < ws.ow_hi; ++ow) d[ow * g.sw] += gr[ow];
            else
              for (std::int64_t ow = ws.ow_lo; ow < ws.ow_hi; ++ow) d[ow * g.sw] += T(gr[ow] / area);
          }
      }
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        if (row && ow == ws.ow_lo) ow = ws.ow_hi;
        if (ow >= g.OW) break;
        const T gv = gr[ow];
        const Window w = window(g, oh, ow);
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
    }
  });
}

template <class T>
void pool_select_t(const PoolGeom& g, const T* x, const T* gx, T* y) {
  const Windows ws(g);
  each_plane(g, [&](std::int64_t p) {
    const T* xp = x + p * g.H * g.W;
    const T* gp = gx + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    RowScratch<T>& rs = row_scratch<T>(g.OW);
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const bool row = ws.row_inside(oh);
      if (row) {
        row_windows(g, xp, oh, ws.ow_lo, ws.ow_hi, rs.v.data(), rs.at.data());
        for (std::int64_t ow = ws.ow_lo; ow < ws.ow_hi; ++ow) yp[oh * g.OW + ow] = gp[rs.at[std::size_t(ow)]];
      }
      for (std::int64_t ow = 0; ow < g.OW; ++ow) {
        if (row && ow == ws.ow_lo) ow = ws.ow_hi;
        if (ow >= g.OW) break;
        const std::int64_t at = first_max(g, window(g, oh, ow), xp);
        yp[oh * g.OW + ow] = at < 0 ? T(0) : gp[at];
      }
    }
  });
}

}  // namespace

#define THETA_CONV_IN(p) static_cast<const T*>(p)
#define THETA_CONV_OUT(p) static_cast<T*>(p)

// float32: oneDNN where it takes the geometry (cpu/dnnl.hpp), else theta's kernels.
#define THETA_CONV_DNNL(mode, a, b, y)                                                                                  \
  if (dtype == DType::float32 &&                                                                                      \
      dnnl_conv(mode, g, static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(y)))         \
    return;

void conv_forward(DType dtype, const ConvGeom& g, const void* x, const void* w, void* y) {
  THETA_CONV_DNNL(0, x, w, y)
  THETA_DISPATCH_FLOAT(dtype, T, forward_t(g, THETA_CONV_IN(x), THETA_CONV_IN(w), THETA_CONV_OUT(y)));
}
void conv_backward_input(DType dtype, const ConvGeom& g, const void* gy, const void* w, void* dx) {
  THETA_CONV_DNNL(1, gy, w, dx)
  THETA_DISPATCH_FLOAT(dtype, T, backward_input_t(g, THETA_CONV_IN(gy), THETA_CONV_IN(w), THETA_CONV_OUT(dx)));
}
void conv_backward_filters(DType dtype, const ConvGeom& g, const void* x, const void* gy, void* dw) {
  THETA_CONV_DNNL(2, x, gy, dw)
  THETA_DISPATCH_FLOAT(dtype, T, backward_filters_t(g, THETA_CONV_IN(x), THETA_CONV_IN(gy), THETA_CONV_OUT(dw)));
}
void max_pool_2x2_lanes(const float* x, float* y, std::int64_t blocks, std::int64_t H, std::int64_t W, std::int64_t OH,
                        std::int64_t OW, std::int64_t lanes) {
  if (lanes > 1) return max2x2_lanes_f32(x, y, blocks, H, W, OH, OW, lanes);
  for (std::int64_t p = 0; p < blocks; ++p)  // NCHW: theta's rows
    for (std::int64_t oh = 0; oh < OH; ++oh)
      max2x2_rows(x + (p * H + 2 * oh) * W, x + (p * H + 2 * oh + 1) * W, y + (p * OH + oh) * OW, OW);
}
void pool_forward(DType dtype, const PoolGeom& g, const void* x, void* y) {
  THETA_DISPATCH_FLOAT(dtype, T, pool_forward_t(g, THETA_CONV_IN(x), THETA_CONV_OUT(y)));
}
void pool_backward(DType dtype, const PoolGeom& g, const void* x, const void* gy, void* dx) {
  THETA_DISPATCH_FLOAT(dtype, T, pool_backward_t(g, THETA_CONV_IN(x), THETA_CONV_IN(gy), THETA_CONV_OUT(dx)));
}
void pool_select(DType dtype, const PoolGeom& g, const void* x, const void* gx, void* y) {
  THETA_DISPATCH_FLOAT(dtype, T, pool_select_t(g, THETA_CONV_IN(x), THETA_CONV_IN(gx), THETA_CONV_OUT(y)));
}

#undef THETA_CONV_IN
#undef THETA_CONV_OUT
#undef THETA_CONV_DNNL

namespace {
// The backend entry points: every image's patches (fold: folded back), images over the threads.
void unfold_all(const Storage& x, const ConvGeom& g, std::int64_t group, const Storage& col, bool fold) {
  const Dims d = dims_of(g);
  THETA_DISPATCH_FLOAT(x.dtype, T, {
    parallel_for(g.N, d.K * d.P, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t n = lo; n < hi; ++n) {
        T* xi = x.data<T>() + n * d.chw + group * d.Cg * g.H * g.W;
        if (fold) col2im(g, d.Cg, col.data<T>(), g.N * d.P, n * d.P, xi);
        else im2col(g, d.Cg, static_cast<const T*>(xi), col.data<T>(), g.N * d.P, n * d.P);
      }
    });
  })
}
}  // namespace

void CpuBackend::im2col(const Storage& x, const ConvGeom& g, std::int64_t group, const Storage& col) {
  unfold_all(x, g, group, col, false);
}
void CpuBackend::col2im(const Storage& col, const ConvGeom& g, std::int64_t group, const Storage& x) {
  unfold_all(x, g, group, col, true);
}

}  // namespace th::detail::cpu
