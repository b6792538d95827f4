// float32 convolutions on oneDNN (see cpu/dnnl.hpp): primitives created once per geometry
// and chunk size and kept for the process, run chunk by chunk on theta's kernel threads.
#include "cpu/dnnl.hpp"

#include "theta/config.hpp"
#include "theta/error.hpp"

#ifdef THETA_HAS_DNNL
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/conv.hpp"
#include "cpu/parallel.hpp"
#endif

namespace th::detail::cpu {

bool avx512_core() {
  static const bool on = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"));
  return on;
}

#ifndef THETA_HAS_DNNL

bool dnnl_built() { return false; }
bool dnnl_gemm_takes(std::int64_t, std::int64_t, std::int64_t) { return false; }
void dnnl_sgemm_here(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, std::int64_t,
                     const float*, std::int64_t, float, float*, std::int64_t) {}
bool dnnl_takes(int, const ConvGeom&) { return false; }
bool dnnl_conv(int, const ConvGeom&, const float*, const float*, float*) { return false; }
bool dnnl_conv_epilogue(const ConvGeom&, const float*, const float*, const float*, bool, float*) { return false; }
std::string dnnl_conv_impl(int, const ConvGeom&, std::int64_t) { return ""; }
bool dnnl_chain(const std::vector<ChainLink>&, std::int64_t, const float*, float*) { return false; }

#else

bool dnnl_built() { return true; }

namespace {

using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& engine() {
  static dnnl::engine* e = new dnnl::engine(dnnl::engine::kind::cpu, 0);  // leaked: primitives outlive statics
  return *e;
}

// The right padding that makes oneDNN's output size theta's (negative when the last window
// ends before the padded edge: stride not dividing the extent).
std::int64_t pad_right(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t s, std::int64_t d,
                       std::int64_t pl) {
  return (out - 1) * s + (k - 1) * d + 1 - in - pl;
}

// One primitive for one mode, geometry and chunk size, and the reorders between theta's
// layouts and the ones oneDNN chose (null where they are the same). Roles: 0 (x, w) -> y;
// 1 (gy, w) -> dx; 2 (x, gy) -> dw; 3 (x, w, bias) -> y; 4 the same with a relu post-op.
struct Prim {
  dnnl::primitive prim;
  int arg_in0 = 0, arg_in1 = 0, arg_out = 0;
  memory::desc user_in0, user_in1, user_out, in0, in1, out, scratch, bias;
  std::unique_ptr<dnnl::reorder> to_in0, to_in1, from_out;
  std::string impl;  // oneDNN's name of the implementation it chose ("jit_wino_4x3:avx512_core", ...)
};

memory::dims act_dims(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) { return {n, c, h, w}; }

// The reorders between theta's layouts and the primitive's (null where they are the same).
std::unique_ptr<Prim> with_reorders(std::unique_ptr<Prim> p) {
  auto reorder = [&](const memory::desc& from, const memory::desc& to) {
    return from == to ? nullptr : std::make_unique<dnnl::reorder>(dnnl::reorder::primitive_desc(engine(), from, engine(), to));
  };
  p->to_in0 = reorder(p->user_in0, p->in0);
  p->to_in1 = reorder(p->user_in1, p->in1);
  p->from_out = reorder(p->out, p->user_out);
  return p;
}

std::unique_ptr<Prim> make_prim(int mode, const ConvGeom& g, std::int64_t n) {
  const memory::dims x = act_dims(n, g.C, g.H, g.W), y = act_dims(n, g.O, g.OH, g.OW);
  const memory::dims w = g.G > 1 ? memory::dims{g.G, g.O / g.G, g.C / g.G, g.KH, g.KW} : memory::dims{g.O, g.C, g.KH, g.KW};
  const tag wtag = g.G > 1 ? tag::goihw : tag::oihw;
  const memory::dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pl{g.ph, g.pw},
      pr{pad_right(g.H, g.OH, g.KH, g.sh, g.dh, g.ph), pad_right(g.W, g.OW, g.KW, g.sw, g.dw, g.pw)};
  const auto f32 = memory::data_type::f32;
  // convolution_auto: oneDNN picks Winograd's algorithm where its rule finds it faster (3x3,
  // stride 1, enough channels and images: the bncnn layers, 1.5x on 32x64x28x28 with 64 3x3
  // filters), else the direct one
  const auto algo = th::config().winograd ? dnnl::algorithm::convolution_auto : dnnl::algorithm::convolution_direct;
  auto any = [&](const memory::dims& d) { return memory::desc(d, f32, tag::any); };
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // each thread's own scratchpad: chunks run concurrently
  auto p = std::make_unique<Prim>();
  const memory::desc ux(x, f32, tag::nchw), uy(y, f32, tag::nchw), uw(w, f32, wtag);
  if (mode >= 3) {  // a frozen function's conv2d_fused: the bias and the relu inside the primitive
    if (mode == 4) {
      dnnl::post_ops po;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    const dnnl::convolution_forward::desc bd(dnnl::prop_kind::forward_inference, algo,
                                             any(x), any(w), memory::desc({g.O}, f32, tag::x), any(y), strides, dil, pl,
                                             pr);
    const dnnl::convolution_forward::primitive_desc pd(bd, attr, engine());
    p->prim = dnnl::convolution_forward(pd);
    p->impl = pd.impl_info_str();
    p->user_in0 = ux, p->user_in1 = uw, p->user_out = uy, p->bias = pd.bias_desc();
    p->in0 = pd.src_desc(), p->in1 = pd.weights_desc(), p->out = pd.dst_desc(), p->scratch = pd.scratchpad_desc();
    p->arg_in0 = DNNL_ARG_SRC, p->arg_in1 = DNNL_ARG_WEIGHTS, p->arg_out = DNNL_ARG_DST;
    return with_reorders(std::move(p));
  }
  const dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, algo,
                                           any(x), any(w), any(y), strides, dil, pl, pr);
  const dnnl::convolution_forward::primitive_desc fpd(fd, attr, engine());
  if (mode == 0) {
    p->prim = dnnl::convolution_forward(fpd);
    p->impl = fpd.impl_info_str();
    p->user_in0 = ux, p->user_in1 = uw, p->user_out = uy;
    p->in0 = fpd.src_desc(), p->in1 = fpd.weights_desc(), p->out = fpd.dst_desc(), p->scratch = fpd.scratchpad_desc();
    p->arg_in0 = DNNL_ARG_SRC, p->arg_in1 = DNNL_ARG_WEIGHTS, p->arg_out = DNNL_ARG_DST;
  } else if (mode == 1) {
    const dnnl::convolution_backward_data::desc bd(algo, any(x), any(w), any(y), strides,
                                                   dil, pl, pr);
    const dnnl::convolution_backward_data::primitive_desc pd(bd, attr, engine(), fpd);
    p->prim = dnnl::convolution_backward_data(pd);
    p->impl = pd.impl_info_str();
    p->user_in0 = uy, p->user_in1 = uw, p->user_out = ux;
    p->in0 = pd.diff_dst_desc(), p->in1 = pd.weights_desc(), p->out = pd.diff_src_desc(), p->scratch = pd.scratchpad_desc();
    p->arg_in0 = DNNL_ARG_DIFF_DST, p->arg_in1 = DNNL_ARG_WEIGHTS, p->arg_out = DNNL_ARG_DIFF_SRC;
  } else {
    const dnnl::convolution_backward_weights::desc bd(algo, any(x), any(w), any(y),
                                                      strides, dil, pl, pr);
    const dnnl::convolution_backward_weights::primitive_desc pd(bd, attr, engine(), fpd);
    p->prim = dnnl::convolution_backward_weights(pd);
    p->impl = pd.impl_info_str();
    p->user_in0 = ux, p->user_in1 = uy, p->user_out = uw;
    p->in0 = pd.src_desc(), p->in1 = pd.diff_dst_desc(), p->out = pd.diff_weights_desc(), p->scratch = pd.scratchpad_desc();
    p->arg_in0 = DNNL_ARG_SRC, p->arg_in1 = DNNL_ARG_DIFF_DST, p->arg_out = DNNL_ARG_DIFF_WEIGHTS;
  }
  return with_reorders(std::move(p));
}

// Objects made once per key by `make` (under the caller's one-thread OpenMP setting) and
// kept for the process: threads hold plain references. One cache per call site.
template <class T, class Make>
const T& kept(const std::string& key, Make make) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, std::unique_ptr<T>>;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<T>& slot = (*cache)[key];
  if (!slot) slot = make();
  return *slot;
}
// A cache key of integers, byte by byte.
std::string key_of(std::initializer_list<std::int64_t> values) {
  std::string key;
  for (std::int64_t v : values) key.append(reinterpret_cast<const char*>(&v), sizeof v);
  return key;
}

// The primitives by (mode, geometry, chunk size). (Field by field: the struct's padding bytes
// are not part of the key; flip is not either, flipping is done on theta's side.)
const Prim& prim(int mode, const ConvGeom& g, std::int64_t n) {
  const std::string key = key_of({mode, th::config().winograd, n, g.C, g.H, g.W, g.O, g.KH, g.KW, g.OH, g.OW, g.ph, g.pw,
                                  g.sh, g.sw, g.dh, g.dw, g.G});
  return kept<Prim>(key, [&] { return make_prim(mode, g, n); });
}

// 64-byte aligned scratch memory, kept per thread from call to call.
struct Buffer {
  std::unique_ptr<void, void (*)(void*)> p{nullptr, std::free};
  std::size_t bytes = 0;
  void* get(std::size_t n) {
    if (n > bytes) {
      const std::size_t rounded = (n + 63) / 64 * 64;
      p.reset(std::aligned_alloc(64, rounded));
      if (!p) throw std::bad_alloc();
      bytes = rounded;
    }
    return p.get();
  }
};
struct ThreadBuffers {
  Buffer in0, in1, out, scratch;
};
ThreadBuffers& buffers() {
  thread_local ThreadBuffers b;
  return b;
}

// OpenMP held to one thread while it lives, in this thread only (restored after: the
// caller's own OpenMP code keeps its setting).
struct OneOmpThread {
  int saved = omp_get_max_threads();
  OneOmpThread() {
    if (saved != 1) omp_set_num_threads(1);
  }
  ~OneOmpThread() {
    if (saved != 1) omp_set_num_threads(saved);
  }
};

// `data` (in layout `user`) as the primitive wants it: itself, or reordered into `buf`.
memory in_layout(dnnl::stream& s, const memory::desc& user, const memory::desc& want, const dnnl::reorder* r,
                 const float* data, Buffer& buf) {
  const memory u(user, engine(), const_cast<float*>(data));
  if (!r) return u;
  const memory m(want, engine(), buf.get(want.get_size()));
  r->execute(s, {{DNNL_ARG_FROM, u}, {DNNL_ARG_TO, m}});
  return m;
}

// The primitive on operands already in its layouts (bias: modes 3 and 4), with the thread's scratchpad.
void run_prim(const Prim& p, dnnl::stream& s, const memory& m0, const memory& m1, const memory& mo, const float* bias,
             Buffer& scratch) {
  const memory sp(p.scratch, engine(), scratch.get(std::max<std::size_t>(p.scratch.get_size(), 1)));
  std::unordered_map<int, memory> args{{p.arg_in0, m0}, {p.arg_in1, m1}, {p.arg_out, mo}, {DNNL_ARG_SCRATCHPAD, sp}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(p.bias, engine(), const_cast<float*>(bias)));
  p.prim.execute(s, args);
}

// Runs the primitive of `n` images: in0/in1/out in theta's layouts (bias: modes 3 and 4).
void run(int mode, const ConvGeom& g, std::int64_t n, const float* in0, const float* in1, float* out,
         const float* bias = nullptr) {
  const OneOmpThread one;
  const Prim& p = prim(mode, g, n);
  dnnl::stream s(engine());
  ThreadBuffers& b = buffers();
  const memory m0 = in_layout(s, p.user_in0, p.in0, p.to_in0.get(), in0, b.in0);
  const memory m1 = in_layout(s, p.user_in1, p.in1, p.to_in1.get(), in1, b.in1);
  const memory uo(p.user_out, engine(), out);
  const memory mo = p.from_out ? memory(p.out, engine(), b.out.get(p.out.get_size())) : uo;
  run_prim(p, s, m0, m1, mo, bias, b.scratch);
  if (p.from_out) p.from_out->execute(s, {{DNNL_ARG_FROM, mo}, {DNNL_ARG_TO, uo}});
  s.wait();
}

// The filters reversed along both spatial axes (a true convolution as oneDNN's correlation).
void flip_filters(const ConvGeom& g, const float* w, float* out) {
  const std::int64_t k = g.KH * g.KW, n = g.O * (g.C / g.G);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j) out[i * k + j] = w[i * k + (k - 1 - j)];
}

}  // namespace

// The rule of conv=auto, measured (docs/benchmarks.md, "oneDNN convolutions"; 2-core AMD
// EPYC, AVX-512): oneDNN runs the forward convolution and the filter gradient 2-3x faster
// than theta's im2col + GEMM on every layer of W7 and W7L (1, 16, 32 and 64 input channels),
// and the input gradient 2.6-2.8x faster from 16 channels on; but its input gradient with one
// input channel (a first layer's, which training never needs) is 2.1-2.2x slower, so that one
// stays theta's below 4 channels per group. Without AVX-512 (2-core Zen 3 VM, AVX2) the
// filter gradient of those layers is theta's too: oneDNN's took 6.2-9.5 ms against 1.95 on
// W7's first layer (100 x 1 x 28 x 28, 32 5x5 filters), 2.5 against 0.88 on W7L's, 3.1
// against 1.5 on W7B's, where its other passes and layers still won. oneDNN also declines a
// right padding below zero (a window that ends before the padded edge): theta's kernels take
// those geometries.
bool dnnl_takes(int mode, const ConvGeom& g) {
  const ConvEngine e = th::config().conv;
  if (e == ConvEngine::theta) return false;
  if (e == ConvEngine::automatic && g.C / g.G < 4 && (mode == 1 || (mode == 2 && !avx512_core()))) return false;
  return pad_right(g.H, g.OH, g.KH, g.sh, g.dh, g.ph) >= 0 && pad_right(g.W, g.OW, g.KW, g.sw, g.dw, g.pw) >= 0;
}

namespace {
// Modes 0-4 (see make_prim) over one chunk of images per kernel thread, the same chunks
// whether the pool runs them or not.
void run_chunks(int mode, const ConvGeom& g, const float* a, const float* b, const float* bias, float* y) {
  std::vector<float> flipped;
  const float* w = mode == 2 ? nullptr : b;
  if (g.flip && w) {
    flipped.resize(std::size_t(g.O * (g.C / g.G) * g.KH * g.KW));
    flip_filters(g, w, flipped.data());
    w = flipped.data();
  }
  const std::int64_t parts = std::min<std::int64_t>(g.N, num_threads());
  auto lo_of = [&](std::int64_t i) { return g.N * i / parts; };
  const std::int64_t xs = g.C * g.H * g.W, ys = g.O * g.OH * g.OW, wsz = g.O * (g.C / g.G) * g.KH * g.KW;
  std::vector<float> partial;
  if (mode == 2 && parts > 1) partial.resize(std::size_t((parts - 1) * wsz));
  const std::int64_t cost = std::int64_t(1) << 30;  // (always worth a thread each)
  parallel_for(parts, cost, [&](std::int64_t plo, std::int64_t phi) {
    for (std::int64_t i = plo; i < phi; ++i) {
      const std::int64_t n0 = lo_of(i), n = lo_of(i + 1) - n0;
      if (mode == 1) run(1, g, n, a + n0 * ys, w, y + n0 * xs);
      else if (mode == 2) run(2, g, n, a + n0 * xs, b + n0 * ys, i == 0 ? y : partial.data() + (i - 1) * wsz);
      else run(mode, g, n, a + n0 * xs, w, y + n0 * ys, bias);
    }
  });
  if (mode == 2) {
    for (std::int64_t i = 1; i < parts; ++i) {  // the chunks' sums, added in chunk order
      const float* part = partial.data() + (i - 1) * wsz;
      for (std::int64_t j = 0; j < wsz; ++j) y[j] += part[j];
    }
    if (g.flip) {
      std::vector<float> t(y, y + wsz);
      flip_filters(g, t.data(), y);
    }
  }
}
}  // namespace

bool dnnl_conv(int mode, const ConvGeom& g, const float* a, const float* b, float* y) {
  if (!dnnl_takes(mode, g) || g.N <= 0) return false;
  run_chunks(mode, g, a, b, nullptr, y);
  return true;
}

bool dnnl_conv_epilogue(const ConvGeom& g, const float* x, const float* w, const float* bias, bool relu, float* y) {
  if (!dnnl_takes(0, g) || g.N <= 0) return false;
  run_chunks(relu ? 4 : 3, g, x, w, bias, y);
  return true;
}

namespace {

// A reorder between two layouts, made once per thread (a primitive made per call costs more
// than a small reorder itself).
const dnnl::reorder& reorder_of(const memory::desc& from, const memory::desc& to) {
  struct Known {
    memory::desc from, to;
    dnnl::reorder r;
  };
  thread_local std::vector<Known> known;
  for (const Known& k : known)
    if (k.from == from && k.to == to) return k.r;
  if (known.size() >= 256) known.clear();
  known.push_back({from, to, dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to))});
  return known.back().r;
}

// The links on images [n0, n0 + n) of x into y.
void chain_chunk(const std::vector<ChainLink>& links, const std::vector<const float*>& filters, std::int64_t n0,
                 std::int64_t n, const float* x, float* y) {
  const OneOmpThread one;
  ThreadBuffers& b = buffers();  // (in0: a staged input, in1: filters; out and `vals` hold the links' values)
  thread_local Buffer vals;
  Buffer* const val[2] = {&b.out, &vals};
  dnnl::stream s(engine());
  const auto f32 = memory::data_type::f32;
  const ChainLink& first = links.front();
  const std::int64_t C0 = first.mode == 5 ? first.C : first.g.C, H0 = first.mode == 5 ? first.H : first.g.H,
                     W0 = first.mode == 5 ? first.W : first.g.W;
  memory cur(memory::desc({n, C0, H0, W0}, f32, tag::nchw), engine(), const_cast<float*>(x + n0 * C0 * H0 * W0));
  int k = 0;  // cur lives in *val[k] (after the first link)
  auto as = [&](const memory::desc& want) {  // cur in layout `want` (reordered into stage where it is not)
    if (cur.get_desc() == want) return cur;
    memory m(want, engine(), b.in0.get(want.get_size()));
    reorder_of(cur.get_desc(), want).execute(s, cur, m);
    return m;
  };
  std::int64_t C = C0, H = H0, W = W0;
  for (std::size_t i = 0; i < links.size(); ++i) {
    const ChainLink& l = links[i];
    if (l.mode == 5) {
      const memory::dims d{n, C, H, W}, od{n, C, l.OH, l.OW};
      std::int64_t lanes = 1;
      tag t = tag::nchw;
      for (auto [tg, bl] : {std::pair<tag, std::int64_t>{tag::aBcd16b, 16}, {tag::aBcd8b, 8}, {tag::nhwc, C}})
        if (lanes == 1 && cur.get_desc() == memory::desc(d, f32, tg)) t = tg, lanes = bl;
      const memory in = as(memory::desc(d, f32, t));
      const memory::desc out_d(od, f32, t);
      const memory out(out_d, engine(), val[k ^ 1]->get(out_d.get_size()));
      const std::int64_t blocks = t == tag::nhwc ? n : n * ((C + lanes - 1) / lanes);
      max_pool_2x2_lanes(static_cast<const float*>(in.get_data_handle()), static_cast<float*>(out.get_data_handle()), blocks,
                         H, W, l.OH, l.OW, lanes);
      cur = out, k ^= 1, H = l.OH, W = l.OW;
      continue;
    }
    const Prim& p = prim(l.mode, l.g, n);
    const memory src = as(p.in0);
    const memory out(p.out, engine(), val[k ^ 1]->get(p.out.get_size()));
    run_prim(p, s, src, in_layout(s, p.user_in1, p.in1, p.to_in1.get(), filters[i], b.in1), out, l.mode != 0 ? l.bias : nullptr,
            b.scratch);
    cur = out, k ^= 1, C = l.g.O, H = l.g.OH, W = l.g.OW;
  }
  memory uy(memory::desc({n, C, H, W}, f32, tag::nchw), engine(), y + n0 * C * H * W);
  reorder_of(cur.get_desc(), uy.get_desc()).execute(s, cur, uy);
  s.wait();
}

}  // namespace

bool dnnl_chain(const std::vector<ChainLink>& links, std::int64_t N, const float* x, float* y) {
  if (links.empty() || N <= 0) return false;
  for (const ChainLink& l : links)
    if (l.mode != 5 && !dnnl_takes(0, l.g)) return false;
  std::vector<std::vector<float>> flipped(links.size());
  std::vector<const float*> filters(links.size(), nullptr);
  for (std::size_t i = 0; i < links.size(); ++i) {
    const ChainLink& l = links[i];
    if (l.mode == 5) continue;
    filters[i] = l.w;
    if (l.g.flip) {
      flipped[i].resize(std::size_t(l.g.O * (l.g.C / l.g.G) * l.g.KH * l.g.KW));
      flip_filters(l.g, l.w, flipped[i].data());
      filters[i] = flipped[i].data();
    }
  }
  const std::int64_t parts = std::min<std::int64_t>(N, num_threads());  // (dnnl_conv's chunks)
  auto lo_of = [&](std::int64_t i) { return N * i / parts; };
  parallel_for(parts, std::int64_t(1) << 30, [&](std::int64_t plo, std::int64_t phi) {
    for (std::int64_t i = plo; i < phi; ++i) chain_chunk(links, filters, lo_of(i), lo_of(i + 1) - lo_of(i), x, y);
  });
  return true;
}

std::string dnnl_conv_impl(int mode, const ConvGeom& g, std::int64_t n) {
  if (!dnnl_takes(mode == 2 ? 2 : mode == 1 ? 1 : 0, g)) return "";
  const OneOmpThread one;
  return prim(mode, g, n).impl;
}

bool dnnl_gemm_takes(std::int64_t M, std::int64_t N, std::int64_t K) {
  switch (th::config().gemm) {
    case GemmEngine::blas: return false;
    case GemmEngine::dnnl: return true;
    case GemmEngine::automatic: break;
  }
  // From 256^3 multiply-adds on, oneDNN's kernels win only with AVX-512 (OpenBLAS 0.3.21 has
  // none for AMD's Zen 4/5 and runs its Haswell kernels there); on an AVX2 CPU both run AVX2
  // kernels, and OpenBLAS's were faster from there on (2-core Zen 3 VM, two threads:
  // 512^3 1.57 ms against 2.19, 256 x 512 x 512 0.81-1.09 against 1.22-1.26; oneDNN kept
  // the small ones: 64^3 7.3 us against 11.3).
  const std::int64_t macs = M * N * K;
  return macs >= 32 * 32 * 32 && (avx512_core() || macs < 256 * 256 * 256);
}

namespace {
// A matmul primitive for one row-major product shape and its leading dimensions, with a user
// scratchpad (the thread's, kept from call to call): made once per shape, kept for the process.
struct MatmulPrim {
  dnnl::matmul prim;
  memory::desc a, b, c, scratch;
};
const MatmulPrim& matmul_prim(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t lda,
                              std::int64_t ldb, std::int64_t ldc) {
  return kept<MatmulPrim>(key_of({ta, tb, M, N, K, lda, ldb, ldc}), [&] {
    auto p = std::make_unique<MatmulPrim>();
    const auto f32 = memory::data_type::f32;
    p->a = memory::desc({M, K}, f32, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
    p->b = memory::desc({K, N}, f32, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
    p->c = memory::desc({M, N}, f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p->a, p->b, p->c), attr, engine());
    p->prim = dnnl::matmul(pd);
    p->scratch = pd.scratchpad_desc();
    return p;
  });
}
}  // namespace

void dnnl_sgemm_here(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                     std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  const OneOmpThread one;
  // From 256^3 multiply-adds up to sides of 1024: oneDNN's matmul primitive on the thread's
  // scratchpad. sgemm allocates its packing buffers per call, and until glibc's heap settles
  // (4-6 calls of a shape) each call faults ~2 MB of fresh pages in (11.4 ms instead of 5.1 for
  // 512 x 1024 x 1024 here); the primitive equals sgemm's warm speed on these shapes but is
  // 10-35 % slower on larger ones (docs/benchmarks.md, session 18), which keep sgemm.
  if (alpha == 1.0f && beta == 0.0f && M * N * K >= 256 * 256 * 256 && std::max({M, N, K}) <= 1024) {
    const MatmulPrim& p = matmul_prim(ta, tb, M, N, K, lda, ldb, ldc);
    dnnl::stream s(engine());
    const memory ma(p.a, engine(), const_cast<float*>(A)), mb(p.b, engine(), const_cast<float*>(B)), mc(p.c, engine(), C);
    const memory sp(p.scratch, engine(), buffers().scratch.get(std::max<std::size_t>(p.scratch.get_size(), 1)));
    p.prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, sp}});
    s.wait();
    return;
  }
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (st != dnnl_success)
    throw Error("oneDNN sgemm failed (status " + std::to_string(int(st)) + ") on " + std::to_string(M) + " x " +
                std::to_string(N) + " x " + std::to_string(K));
}

#endif

}  // namespace th::detail::cpu
