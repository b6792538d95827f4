// Freeze-time rewrites of a Program (Theano's graph optimizations), each in its own file:
//   rewrite_cse.cpp        identical constants and identical steps merged
//   rewrite_algebra.cpp    x*1, 1*x, x+0, 0+x, x-0, x/1, -(-x), stop_gradient(x), cast to
//                          the same dtype: the step is dropped and its uses read x
//   rewrite_stability.cpp  log(1+x) -> log1p(x), log(sigmoid(x)) -> -softplus(-x),
//                          log(1-sigmoid(x)) -> -softplus(x), log(exp(z)/s) -> z - log(s)
//                          (so log(softmax(x)) becomes the stable log_softmax form)
//   rewrite_like_shapes.cpp  broadcast_like/sum_to_like of gradients: dropped where shapes
//                          provably agree; their shape-only operand no longer a forward value
//   rewrite_gemm.cpp       matmul(transpose(x), y) -> matmul_t reading x with a flag
//   rewrite_gemm_acc.cpp   c - k * (a @ b) -> matmul_acc: the update in the GEMM's step
//   rewrite_dce.cpp        steps, constants and shared reads no output or update needs
//   rewrite_conv_chain.cpp  consecutive convolutions and max poolings as one step, the values
//                          between them left in oneDNN's layouts
//   rewrite_fuse.cpp       chains of float elementwise steps become one fused step
//   rewrite_fuse_merge.cpp  fused passes reading the same inputs merged at the earlier one
//   rewrite_fuse_reduce.cpp  a whole sum or count of a fused chain's result folded into it
// A rewrite only fires where dtypes and static shapes prove the result is unchanged.
#pragma once
#include <cstddef>
#include <optional>
#include <vector>

#include "freeze/program.hpp"

namespace th::detail {

/// Runs every pass in order and records in p.rewrites what fired.
void optimize(Program& p);

int rewrite_cse(Program& p);
int rewrite_algebra(Program& p);
int rewrite_stability(Program& p);
int rewrite_like_shapes(Program& p);
int rewrite_gemm_transpose(Program& p);
/// relu?(conv2d [* scale] + shift) as one conv2d_fused step (rewrite_conv_fuse.cpp).
int fuse_conv_epilogues(Program& p);
int rewrite_gemm_acc(Program& p);
/// Consecutive float32 convolutions and 2 x 2 max poolings, each the only reader of the one
/// before, as one conv_chain step (rewrite_conv_chain.cpp; after eliminate_dead).
int chain_convolutions(Program& p);
/// A conv_chain step's links as the steps they were; any other step itself (what th::save
/// and th::onnx::save write).
std::vector<Step> unchained(const Step& s);
int eliminate_dead(Program& p);
/// Scans whose saved values no step reads run without them (after eliminate_dead).
int drop_scan_saves(Program& p);
/// The allreduces of one call packed into one (rewrite_dist_pack.cpp; with several ranks).
int pack_allreduces(Program& p);
int fuse_elementwise(Program& p);
int merge_fused_passes(Program& p);
int fuse_reductions(Program& p);

// ---- helpers the passes share (optimize.cpp) ------------------------------------------------
/// For each slot, the index of the step that writes it (-1 for inputs, shared, constants;
/// a fused step for each of its results).
std::vector<long> producers(const Program& p);
/// For each slot, how many step operands read it; outputs and updates' values count 2 more
/// (read after the steps: a pass that folds a value with one reader away never takes them).
std::vector<int> reader_counts(const Program& p);
/// The constant value held by `slot`, or nullptr.
const Storage* constant_of(const Program& p, std::size_t slot);
/// True when `slot` is a constant of one element, whose value (as a double) goes to `v`.
bool one_value_constant(const Program& p, std::size_t slot, double& v);
/// True when `slot` is a constant whose every element equals `v` and which can never
/// broadcast anything it meets to a larger shape (0-d, or all dims 1 within `ndim`).
bool is_scalar_constant(const Program& p, std::size_t slot, double v, std::size_t ndim);
/// The fused-kernel instruction of a float elementwise step (operands left to the caller),
/// or none (rewrite_fuse.cpp).
std::optional<FusedInstr> fused_instr_of(const Program& p, const Step& s);
/// Whether two static shapes (-1: known at run time) may be equal at run time: one fused
/// pass writes results of one shape, so passes whose shapes never agree do not merge.
bool static_shapes_may_agree(const Shape& a, const Shape& b);
/// Every read of slot `from` (steps, outputs, updates) reads `to` instead.
void replace_uses(Program& p, std::size_t from, std::size_t to);

}  // namespace th::detail
