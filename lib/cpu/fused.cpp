// Fused elementwise chains: blocks of kBlock elements; each instruction runs over the block
// with the same scalar formulas as the ordinary kernels (core/elementwise_list.hpp).
#include "cpu/fused.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/scalar_math.hpp"
#include "core/stack_or_heap.hpp"
#include "cpu/multiversion.hpp"
#include "cpu/native.hpp"
#include "cpu/pairwise.hpp"
#include "cpu/parallel.hpp"
#include "core/elementwise_list.hpp"

namespace th::detail::cpu {

namespace {

// Blocks of the whole-reduction order's size: a folded sum reduces each block as it is made.
constexpr std::int64_t kBlock = kPairwiseBlock;
// Outputs from this size on are written with non-temporal stores (stream_block), when the
// chain's scratch blocks then take at most kStreamScratchBytes.
constexpr std::int64_t kStreamBytes = 8 << 20;
constexpr std::size_t kStreamScratchBytes = 16 << 10;

// y[i] = f(x[i]) for a block, or f of one broadcast element (sx == 0): each case its own
// plain loop, so that the compiler vectorises it.
#define THETA_FUSED_UNARY(name, rule, formula, vjp)     \
  case UnaryKind::name: {                                \
    auto f = [](T x) { return static_cast<T>(formula); }; \
    if (sx) {                                            \
      for (std::int64_t i = 0; i < n; ++i) y[i] = f(xp[i]); \
    } else {                                             \
      const T v = f(xp[0]);                              \
      for (std::int64_t i = 0; i < n; ++i) y[i] = v;     \
    }                                                    \
  } break;
template <class T>
__attribute__((always_inline)) inline void unary_block(UnaryKind k, const T* xp, std::int64_t sx, T* y, std::int64_t n) {
  switch (k) { THETA_UNARY_OPS(THETA_FUSED_UNARY) }
}
#undef THETA_FUSED_UNARY

#define THETA_FUSED_BINARY(name, rule, formula, vjp_a, vjp_b)             \
  case BinaryKind::name: {                                                 \
    auto f = [](T a, T b) { return static_cast<T>(formula); };             \
    if (sa && sb) {                                                        \
      for (std::int64_t i = 0; i < n; ++i) y[i] = f(ap[i], bp[i]);         \
    } else if (sa) {                                                       \
      const T bv = bp[0];                                                  \
      for (std::int64_t i = 0; i < n; ++i) y[i] = f(ap[i], bv);            \
    } else if (sb) {                                                       \
      const T av = ap[0];                                                  \
      for (std::int64_t i = 0; i < n; ++i) y[i] = f(av, bp[i]);            \
    } else {                                                               \
      const T v = f(ap[0], bp[0]);                                         \
      for (std::int64_t i = 0; i < n; ++i) y[i] = v;                       \
    }                                                                      \
  } break;
template <class T>
__attribute__((always_inline)) inline void binary_block(BinaryKind k, const T* ap, std::int64_t sa, const T* bp, std::int64_t sb, T* y,
                         std::int64_t n) {
  switch (k) { THETA_BINARY_OPS(THETA_FUSED_BINARY) }
}
#undef THETA_FUSED_BINARY

struct Chain {
  const std::vector<FusedInstr>& code;
  const std::vector<const void*>& base;
  const std::vector<std::int64_t>& step;      // 1: full size, 0: broadcast scalar
  const std::vector<std::int64_t>& period;    // > 0: a row repeated over the output (a bias), its size;
                                              // < 0: a column, minus each value's repeat count
  const std::vector<std::int64_t>& count;     // per input: its elements (a column's values cycle through them)
  const std::vector<std::size_t>& row_slot;   // per input with a period: its scratch block
  const std::vector<void*>& y;                // per instruction: its output buffer, or null (a temporary)
  const std::vector<std::size_t>& temp_slot;  // per instruction: its scratch block, when a temporary
  const std::vector<void*>& out_to;          // per instruction: an output its block is streamed to, or null
  const std::vector<int>& sum_instr;         // instructions whose results are summed
  const std::vector<void*>& partial;         // per sum: each block's sum (an array of T)
  std::int64_t total;
  std::int64_t width;  // elements per scratch block: kBlock, or the whole (smaller) total
  const std::vector<char>& written;  // per instruction: stored (y, out_to or summed; the native tier's outputs)
};

// Part k of m of the next block (from element `next`): its lines of every streamed input
// (for reading) and of every output (for writing), into L2. Spread over the instructions of
// the current block, so that memory works while the chain computes: otherwise the first
// instructions wait on the loads, the arithmetic after them leaves memory idle, and the
// stores wait for their lines (the hardware prefetcher stops at each 4 KiB page).
inline void prefetch_part(const Chain& c, std::int64_t next, std::size_t elem, std::size_t k, std::size_t m) {
  if (next >= c.total) return;
  const std::size_t lines = std::size_t(std::min(kBlock, c.total - next)) * elem / 64;
  const std::size_t from = lines * k / m, to = lines * (k + 1) / m;
  for (std::size_t e = 0; e < c.base.size(); ++e) {
    if (!c.step[e] || c.period[e]) continue;
    const char* p = static_cast<const char*>(c.base[e]) + std::size_t(next) * elem;
    for (std::size_t l = from; l < to; ++l) __builtin_prefetch(p + l * 64, 0, 1);
  }
  for (void* y : c.y) {
    if (!y) continue;
    const char* p = static_cast<const char*>(y) + std::size_t(next) * elem;
    for (std::size_t l = from; l < to; ++l) __builtin_prefetch(p + l * 64, 1, 1);
  }
}

// A block's results copied to a large output with non-temporal stores: the output's lines
// are written whole without being read first (no read-for-ownership), halving the traffic
// of an output that is not read again soon. One build per vector width, picked once.
template <class T>
void stream_plain(const T* src, T* dst, std::int64_t n) {
  std::copy(src, src + n, dst);
}
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(THETA_ONE_VERSION)
__attribute__((target("avx512f"))) void stream_avx512(const float* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
__attribute__((target("avx512f"))) void stream_avx512(const double* src, double* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_stream_pd(dst + i, _mm512_loadu_pd(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
void stream_sse(const float* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
void stream_sse(const double* src, double* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 2 <= n; i += 2) _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
template <class T>
void stream_block(const T* src, T* dst, std::int64_t n) {
  static const bool wide = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
  if ((reinterpret_cast<std::uintptr_t>(dst) & 63) != 0) return stream_plain(src, dst, n);
  if (wide) stream_avx512(src, dst, n);
  else stream_sse(src, dst, n);
}
constexpr bool kCanStream = true;
inline void store_fence() { _mm_sfence(); }
#else
template <class T>
void stream_block(const T* src, T* dst, std::int64_t n) {
  stream_plain(src, dst, n);
}
constexpr bool kCanStream = false;
inline void store_fence() {}
#endif

// Rows repeated over the output, and columns' values each repeated along a row: block
// [off, off + n)'s elements, copied out in runs into their scratch blocks.
template <class T>
__attribute__((always_inline)) inline void fill_rows(const Chain& c, T* temps, std::int64_t off, std::int64_t n) {
  for (std::size_t e = 0; e < c.period.size(); ++e) {
    const std::int64_t p = c.period[e];
    if (!p) continue;
    T* dst = temps + c.row_slot[e] * std::size_t(c.width);
    const T* src = static_cast<const T*>(c.base[e]);
    if (p > 0) {
      for (std::int64_t i = 0, at = off % p; i < n; at = 0) {
        const std::int64_t run = std::min(n - i, p - at);
        std::copy(src + at, src + at + run, dst + i);
        i += run;
      }
    } else {
      const std::int64_t cnt = c.count[e];  // values cycle: a (C, 1, 1) bias over (N, C, H, W)
      for (std::int64_t i = 0, j = (off / -p) % cnt, at = off % -p; i < n; j = j + 1 == cnt ? 0 : j + 1, at = 0) {
        const std::int64_t run = std::min(n - i, -p - at);
        std::fill(dst + i, dst + i + run, src[j]);
        i += run;
      }
    }
  }
}

// After a block's instructions: the streamed outputs' values copied out of scratch, and the
// folded sums' values reduced while still in cache, in the whole-reduction order.
template <class T>
__attribute__((always_inline)) inline void finish_block(const Chain& c, const T* const* at, const std::int64_t* stride,
                                                        std::int64_t blk, std::int64_t off, std::int64_t n) {
  const std::size_t m = c.code.size();
  // Streamed outputs: this block's results, from their scratch blocks.
  for (std::size_t k = 0; k < m && !c.out_to.empty(); ++k) {
    if (!c.out_to[k]) continue;
    T* dst = static_cast<T*>(c.out_to[k]) + off;
    if (stride[k]) stream_block(at[k], dst, n);
    else std::fill(dst, dst + n, at[k][0]);
  }
  // Folded sums: this block's values, still in cache, reduced in the whole-reduction order.
  for (std::size_t j = 0; j < c.sum_instr.size(); ++j) {
    const std::size_t k = std::size_t(c.sum_instr[j]);
    const T* v = at[k];
    StackOrHeap<T, 1> spread(stride[k] ? 0 : std::size_t(n));  // one value standing for the block
    if (!stride[k]) {
      std::fill(spread.data(), spread.data() + n, v[0]);
      v = spread.data();
    }
    static_cast<T*>(c.partial[j])[blk] = pairwise(v, n, [](T x, T y) { return T(x + y); });
  }
}

// Blocks [lo, hi) of the chain, each instruction over a block at a time (a temporary's
// result in its scratch block, temp_slot). An identity (a gradient's no-op
// broadcast_like/sum_to_like) computes nothing: its result is its operand's block.
template <class T>
__attribute__((always_inline)) inline void run_blocks(const Chain& c, T* temps, std::int64_t lo, std::int64_t hi) {
  const std::size_t m = c.code.size();
  // Each instruction's result in this block, and its stride (1, or 0 for one broadcast
  // value): on the stack for the chains fusion makes (at most 64 instructions).
  StackOrHeap<const T*, 64> results(m);
  StackOrHeap<std::int64_t, 64> strides(m);
  const T** at = results.data();
  std::int64_t* stride = strides.data();
  for (std::int64_t blk = lo; blk < hi; ++blk) {
    const std::int64_t off = blk * kBlock, n = std::min(kBlock, c.total - off);
    fill_rows(c, temps, off, n);
    auto operand = [&](int o, std::int64_t& st) -> const T* {
      if (o < 0) {
        const std::size_t e = std::size_t(-1 - o);
        st = c.step[e];
        if (c.period[e]) return temps + c.row_slot[e] * std::size_t(c.width);
        return static_cast<const T*>(c.base[e]) + off * c.step[e];
      }
      st = stride[std::size_t(o)];
      return at[std::size_t(o)];
    };
    for (std::size_t k = 0; k < m; ++k) {
      prefetch_part(c, off + kBlock, sizeof(T), k, m);
      const FusedInstr& in = c.code[k];
      const bool written = c.y[k] != nullptr;  // an output of the step
      T* dst = written ? static_cast<T*>(c.y[k]) + off : temps + c.temp_slot[k] * std::size_t(c.width);
      std::int64_t sa = 0, sb = 0;
      const T* a = operand(in.a, sa);
      at[k] = dst;
      stride[k] = 1;
      if (in.identity()) {
        if (!written) {
          at[k] = a;
          stride[k] = sa;
        } else if (sa) {
          std::copy(a, a + n, dst);
        } else {
          std::fill(dst, dst + n, a[0]);
        }
      } else if (in.unary) {
        // of one broadcast value, and read only inside the chain: one value, not a block
        const std::int64_t len = !written && !sa ? 1 : n;
        if (len == 1) stride[k] = 0;
        unary_block<T>(UnaryKind(in.code), a, sa, dst, len);
      } else {
        const T* b = operand(in.b, sb);
        const std::int64_t len = !written && !sa && !sb ? 1 : n;
        if (len == 1) stride[k] = 0;
        binary_block<T>(BinaryKind(in.code), a, sa, b, sb, dst, len);
      }
    }
    finish_block(c, at, stride, blk, off, n);
  }
}

// A native block loop (cpu/native.hpp) over blocks [lo, hi): per block, the rows, then the
// compiled chain writing every stored instruction (outputs into place, summed and streamed
// values into scratch: temp_slot), then the same streams and sums as run_blocks.
template <class T>
void native_blocks(const Chain& c, NativeFn fn, T* temps, std::int64_t lo, std::int64_t hi) {
  const std::size_t m = c.code.size(), ins = c.base.size();
  StackOrHeap<const void*, 32> in(ins);
  StackOrHeap<void*, 64> out(m);
  StackOrHeap<const T*, 64> results(m);
  StackOrHeap<std::int64_t, 64> strides(m);
  const T** at = results.data();
  std::int64_t* stride = strides.data();
  for (std::size_t k = 0; k < m; ++k) stride[k] = 1;
  for (std::int64_t blk = lo; blk < hi; ++blk) {
    const std::int64_t off = blk * kBlock, n = std::min(kBlock, c.total - off);
    fill_rows(c, temps, off, n);
    for (std::size_t e = 0; e < ins; ++e)
      in.data()[e] = c.period[e] ? temps + c.row_slot[e] * std::size_t(c.width)
                                 : static_cast<const T*>(c.base[e]) + off * c.step[e];
    std::size_t j = 0;
    for (std::size_t k = 0; k < m; ++k) {
      if (!c.written[k]) continue;
      T* dst = c.y[k] ? static_cast<T*>(c.y[k]) + off : temps + c.temp_slot[k] * std::size_t(c.width);
      out.data()[j++] = dst;
      at[k] = dst;
    }
    fn(in.data(), out.data(), n);
    finish_block(c, at, stride, blk, off, n);
  }
}

// The block loops, built per CPU level (cpu/multiversion.hpp).
THETA_MULTIVERSION void blocks_f32(const Chain& c, float* temps, std::int64_t lo, std::int64_t hi) {
  run_blocks<float>(c, temps, lo, hi);
}
THETA_MULTIVERSION void blocks_f64(const Chain& c, double* temps, std::int64_t lo, std::int64_t hi) {
  run_blocks<double>(c, temps, lo, hi);
}
THETA_MULTIVERSION void native_f32(const Chain& c, NativeFn fn, float* temps, std::int64_t lo, std::int64_t hi) {
  native_blocks<float>(c, fn, temps, lo, hi);
}
THETA_MULTIVERSION void native_f64(const Chain& c, NativeFn fn, double* temps, std::int64_t lo, std::int64_t hi) {
  native_blocks<double>(c, fn, temps, lo, hi);
}

// Scratch blocks for the chain's temporaries (instructions whose result is not a step
// output), each reused once every instruction reading it has run: the block's working set
// is the largest number of values live at once, not the chain's length, and stays in L1.
// An unwritten identity computes nothing and reads its operand's block, so it extends that
// block's life. Returns the number of blocks; temp_slot[k] is instruction k's.
std::size_t assign_temps(const std::vector<FusedInstr>& code, const std::vector<void*>& y,
                         const std::vector<int>& sum_instr, const std::vector<void*>& out_to,
                         std::vector<std::size_t>& temp_slot) {
  const std::size_t m = code.size();
  thread_local std::vector<long> owner, last;  // owner: the instruction whose block a value is in
  owner.resize(m);
  last.assign(m, -1);
  for (std::size_t k = 0; k < m; ++k) {
    const FusedInstr& in = code[k];
    owner[k] = in.identity() && !y[k] && in.a >= 0 ? owner[std::size_t(in.a)] : long(k);
    if (in.a >= 0) last[std::size_t(owner[std::size_t(in.a)])] = long(k);
    if (!in.unary && in.b >= 0 && !in.identity()) last[std::size_t(owner[std::size_t(in.b)])] = long(k);
  }
  for (int k : sum_instr) last[std::size_t(owner[std::size_t(k)])] = long(m);  // read after the block's last instruction
  for (std::size_t k = 0; k < out_to.size(); ++k)
    if (out_to[k]) last[std::size_t(owner[k])] = long(m);  // streamed out after it
  temp_slot.assign(m, 0);
  thread_local std::vector<std::size_t> free_blocks;
  thread_local std::vector<std::pair<long, std::size_t>> busy;  // (last reader, block)
  free_blocks.clear();
  busy.clear();
  std::size_t blocks = 0;
  for (std::size_t k = 0; k < m; ++k) {
    // blocks whose last reader ran before k are free again (not k's own operands: no
    // instruction writes the block it reads)
    for (std::size_t i = 0; i < busy.size();)
      if (busy[i].first < long(k)) {
        free_blocks.push_back(busy[i].second);
        busy[i] = busy.back();
        busy.pop_back();
      } else {
        ++i;
      }
    if (y[k] || code[k].identity()) continue;  // an output, or its operand's block (or input) itself
    std::size_t b;
    if (free_blocks.empty()) b = blocks++;
    else b = free_blocks.back(), free_blocks.pop_back();
    temp_slot[k] = b;
    busy.push_back({last[k], b});
  }
  return blocks;
}

// The epilogue's scalar instructions (FusedEpilogue::tail) over the sums `v` (v has room for
// the tail's results after them) and the pass's one-element inputs, with the formulas the
// eager kernels use, built per CPU level as they are (the same contraction, the same bits).
template <class T>
__attribute__((always_inline)) inline void run_tail(const std::vector<FusedInstr>& tail, const std::vector<const void*>& base,
                                                    std::size_t sums, T* v) {
  for (std::size_t k = 0; k < tail.size(); ++k) {
    const FusedInstr& in = tail[k];
    auto operand = [&](int o) { return o < 0 ? static_cast<const T*>(base[std::size_t(-1 - o)]) : v + o; };
    if (in.unary) unary_block<T>(UnaryKind(in.code), operand(in.a), 0, v + sums + k, 1);
    else binary_block<T>(BinaryKind(in.code), operand(in.a), 0, operand(in.b), 0, v + sums + k, 1);
  }
}
THETA_MULTIVERSION void tail_f32(const std::vector<FusedInstr>& tail, const std::vector<const void*>& base,
                                 std::size_t sums, float* v) {
  run_tail<float>(tail, base, sums, v);
}
THETA_MULTIVERSION void tail_f64(const std::vector<FusedInstr>& tail, const std::vector<const void*>& base,
                                 std::size_t sums, double* v) {
  run_tail<double>(tail, base, sums, v);
}

template <class T>
void run_typed(const std::vector<FusedInstr>& code, const std::vector<const Storage*>& inputs, FusedFit& fit,
               const std::vector<int>& out_instr, const std::vector<const Storage*>& outs, std::int64_t total,
               const FusedEpilogue& epi) {
  const std::vector<int>& sum_instr = epi.sum_instr;
  const std::vector<bool>& scalar = fit.scalar;
  const std::vector<std::int64_t>& period = fit.period;
  // The chain's tables, in per-thread vectors reused from call to call (no allocation in
  // steady state); the kernel threads read them while this thread waits in parallel_for.
  thread_local std::vector<const void*> base;
  thread_local std::vector<std::int64_t> step;
  thread_local std::vector<std::size_t> row_slot;
  thread_local std::vector<std::int64_t> count;
  thread_local std::vector<void*> y, out_to;
  count.clear();
  base.clear();
  step.clear();
  row_slot.clear();
  y.assign(code.size(), nullptr);
  out_to.clear();
  auto place_outputs = [&](bool stream) {
    std::fill(y.begin(), y.end(), nullptr);
    out_to.assign(stream ? code.size() : 0, nullptr);
    for (std::size_t k = 0; k < outs.size(); ++k)
      if (outs[k]) (stream ? out_to : y)[std::size_t(out_instr[k])] = outs[k]->data<T>();
  };
  if (!fit.native_known) {
    // The stored instructions (the outputs written, the summed values): what a native
    // kernel writes (cpu/native.hpp).
    fit.written.assign(code.size(), 0);
    for (std::size_t k = 0; k < outs.size(); ++k)
      if (outs[k]) fit.written[std::size_t(out_instr[k])] = 1;
    for (int k : sum_instr) fit.written[std::size_t(k)] = 1;
    fit.native = native_kernel(code, std::is_same_v<T, float> ? DType::float32 : DType::float64, scalar, fit.written);
    fit.native_known = true;
  }
  const NativeFn native = fit.native ? fit.native->fn.load(std::memory_order_acquire) : nullptr;
  if (!fit.temps_known || fit.placed_native != (native != nullptr)) {
    fit.stream = false;
    if (native) {
      // A native kernel writes its outputs in place (one pass with every value in registers
      // streams better through the cache than through scratch: W3 3.8 against 4.9-6.1 ms),
      // and each summed value that is no output into a scratch block of its own.
      place_outputs(false);
      fit.temp_slot.assign(code.size(), 0);
      fit.temp_blocks = 0;
      for (std::size_t k = 0; k < code.size(); ++k)
        if (fit.written[k] && !y[k]) fit.temp_slot[k] = fit.temp_blocks++;
    } else {
      // Interpreted, outputs too large to stay in cache are computed in scratch and
      // streamed out, when the scratch that takes stays well inside L1 (else the writes are
      // left to the cache).
      if (kCanStream && total * std::int64_t(sizeof(T)) >= kStreamBytes) {
        place_outputs(true);
        fit.temp_blocks = assign_temps(code, y, sum_instr, out_to, fit.temp_slot);
        fit.stream = fit.temp_blocks * std::size_t(kBlock) * sizeof(T) <= kStreamScratchBytes;
      }
      if (!fit.stream) {
        place_outputs(false);
        fit.temp_blocks = assign_temps(code, y, sum_instr, out_to, fit.temp_slot);
      }
    }
    fit.temps_known = true;
    fit.placed_native = native != nullptr;
  }
  place_outputs(fit.stream);
  const bool stream = fit.stream;
  const std::vector<std::size_t>& temp_slot = fit.temp_slot;
  std::size_t slots = fit.temp_blocks;  // scratch blocks: the temporaries', then rows'
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    base.push_back(inputs[k]->data<T>());  // NOTE: a shape-only input is never read
    step.push_back(scalar[k] ? 0 : 1);
    row_slot.push_back(period[k] ? slots++ : 0);
    count.push_back(std::max<std::int64_t>(1, inputs[k]->size()));
  }
  const std::int64_t blocks = (total + kBlock - 1) / kBlock;
  thread_local std::vector<std::vector<T>> partials;  // per sum, per block
  thread_local std::vector<void*> partial;
  if (partials.size() < sum_instr.size()) partials.resize(sum_instr.size());
  partial.clear();
  for (std::size_t j = 0; j < sum_instr.size(); ++j) {
    partials[j].resize(std::size_t(blocks));
    partial.push_back(partials[j].data());
  }
  const Chain c{code,   base,      step,    period, count, row_slot, y, temp_slot, out_to, sum_instr,
                partial, total, std::min(kBlock, total), fit.written};
  const std::size_t temp_size = slots * std::size_t(c.width);
  // One reference captured: the closure fits std::function's inline buffer (no allocation).
  const struct {
    const Chain& c;
    std::size_t temp_size;
    bool stream;
    NativeFn native;
  } job{c, temp_size, stream, native};
  parallel_for(blocks, kBlock * std::int64_t(code.size()), [&job](std::int64_t lo, std::int64_t hi) {
    // Per-thread scratch, kept between calls (not zeroed: every element is written first).
    thread_local std::unique_ptr<T[]> keep;
    thread_local std::size_t kept = 0;
    if (kept < job.temp_size) {
      keep.reset(new T[job.temp_size]);
      kept = job.temp_size;
    }
    T* temps = keep.get();
    if (job.native) {
      if constexpr (std::is_same_v<T, float>) native_f32(job.c, job.native, temps, lo, hi);
      else native_f64(job.c, job.native, temps, lo, hi);
    } else if constexpr (std::is_same_v<T, float>) {
      blocks_f32(job.c, temps, lo, hi);
    } else {
      blocks_f64(job.c, temps, lo, hi);
    }
    if (job.stream) store_fence();  // the streamed stores visible before the pass is over
  });
  if (!native && fit.native) native_heat(*fit.native, total * std::int64_t(code.size()));
  const std::size_t tail = epi.tail ? epi.tail->size() : 0;
  StackOrHeap<T, 16> scalars(sum_instr.size() + tail);
  T* v = scalars.data();
  for (std::size_t j = 0; j < sum_instr.size(); ++j) {  // into 0, as the eager sum does
    v[j] = blocks ? T(T(0) + combine_blocks(partials[j].data(), partials[j].size(), [](T x, T y) { return T(x + y); })) : T(0);
    *epi.sums[j]->data<T>() = v[j];
  }
  if (!tail) return;
  if constexpr (std::is_same_v<T, float>) tail_f32(*epi.tail, base, sum_instr.size(), v);
  else tail_f64(*epi.tail, base, sum_instr.size(), v);
  for (std::size_t k = 0; k < tail; ++k) *epi.tail_outs[k]->data<T>() = v[sum_instr.size() + k];
}

}  // namespace

bool run_fused(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
               const std::vector<int>& out_instr, const std::vector<const Storage*>& outs, const Storage& like,
               FusedFit* fit, const FusedEpilogue* epilogue) {
  if (dtype != DType::float32 && dtype != DType::float64) return false;
  const std::int64_t total = like.size();
  thread_local FusedFit scratch;  // without a caller's fit: found anew on every call
  FusedFit& f = fit ? *fit : scratch;
  if (!fit || !f.known) {
    f.fits = fused_inputs_fit(code, dtype, inputs, out_instr, like, f.scalar, &f.period, true);
    f.known = true;
    f.temps_known = false;
    f.native_known = false;  // the native record depends on which inputs are broadcast
  }
  if (!f.fits) return false;
  static const FusedEpilogue none;
  const FusedEpilogue& epi = epilogue ? *epilogue : none;
  if (dtype == DType::float32) run_typed<float>(code, inputs, f, out_instr, outs, total, epi);
  else run_typed<double>(code, inputs, f, out_instr, outs, total, epi);
  return true;
}

}  // namespace th::detail::cpu
