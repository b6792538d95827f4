// Fused elementwise execution (the kernel side of lib/freeze/rewrite_fuse.cpp): a chain of
// unary/binary elementwise ops runs as one pass over memory, in cache-sized blocks, split
// over the kernel threads, with no full-size temporaries.
#pragma once
#include <cstdint>
#include <vector>

#include "core/backend.hpp"

namespace th::detail::cpu {

struct NativeKernel;  // cpu/native.hpp

/// What fused_inputs_fit found for a step's inputs, kept by a frozen function's frame for
/// its next call with the same argument layouts (which gives every step the same layouts).
struct FusedFit {
  bool known = false;  // the fields below are this layout's
  bool fits = false;
  Shape shape;  // the outputs' shape
  std::vector<bool> scalar;
  std::vector<std::int64_t> period;
  bool temps_known = false;  // the chain's scratch blocks (they depend on the code and the size)
  bool stream = false;       // outputs streamed out of scratch (large outputs, little scratch)
  std::vector<std::size_t> temp_slot;
  std::size_t temp_blocks = 0;
  bool native_known = false;       // `native` and `written` are this layout's
  NativeKernel* native = nullptr;  // the chain's native-tier record (null: the tier is off)
  std::vector<char> written;       // per instruction: stored (an output written, or summed)
  bool placed_native = false;      // the temps above were placed for a native kernel (its stored values)
};

/// What a fused pass computes after its elementwise work: sums[k] (0-d) gets the sum of
/// instruction sum_instr[k]'s results, in theta's order for whole reductions
/// (cpu/pairwise.hpp: the bits of a separate sum); then each `tail` instruction is computed
/// once, on one-element values (operands >= 0: the sums, then earlier tail results; < 0:
/// the pass's inputs, one element each), into tail_outs[k] (0-d).
struct FusedEpilogue {
  std::vector<int> sum_instr;
  std::vector<const Storage*> sums;
  const std::vector<FusedInstr>* tail = nullptr;
  std::vector<const Storage*> tail_outs;
};

/// Runs `code` over the external inputs, each of `like`'s shape (the outputs' shape) and
/// contiguous (stride 1), a single element, a contiguous row repeated over the leading
/// dimensions (a bias) or a contiguous column repeated along the trailing ones (a row's
/// maximum), all of `dtype` (float32 or float64), writing instruction
/// out_instr[k]'s results to outs[k] (contiguous, of that shape), or only computing them
/// where outs[k] is null, then `epilogue`. Returns false (and computes nothing) when the
/// inputs do not fit (fused_inputs_fit). With `fit`: a known fit is taken as is, else the
/// one found is stored there.
bool run_fused(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
               const std::vector<int>& out_instr, const std::vector<const Storage*>& outs, const Storage& like,
               FusedFit* fit = nullptr, const FusedEpilogue* epilogue = nullptr);

}  // namespace th::detail::cpu
