// Loops and conditionals (API.md section 12): scan, map, foldl, ifelse.
#pragma once
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace th {

/// then_value when cond (one boolean element) holds, else else_value; the branches must have
/// the same dtype and rank. In a frozen function only the branch taken is computed (each
/// branch is frozen as its own sub-program; values both branches need are computed in each);
/// eagerly the branch is picked now. Differentiable: the gradient is an ifelse of the
/// branches' gradients, lazy the same way. (th::where computes both sides.)
Tensor ifelse(const Tensor& cond, const Tensor& then_value, const Tensor& else_value);

/// The options of th::scan.
struct ScanOptions {
  /// Steps to run: needed without sequences; with sequences, at most this many (-1: all).
  std::int64_t n_steps = -1;
  /// Walk the sequences from their end (the outputs are stacked in the order computed).
  bool go_backwards = false;
};

/// The step function: it receives one slice (along axis 0) of each sequence, then the
/// previous value of each output that has an initial value, then each non-sequence, and
/// returns one tensor per entry of outputs_info.
using StepFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
/// A step function of one output (th::map, th::foldl).
using StepFn1 = std::function<Tensor(const std::vector<Tensor>&)>;

/// Theano's scan. Each entry of outputs_info is an output's initial value (fed back as the
/// previous value) or an empty th::Tensor() for an output that is not fed back; each result
/// is its output stacked over the steps (axis 0). The sequences must have the same length.
/// The step function is called once, on placeholders, and frozen into its own program:
/// eagerly the loop runs now; symbolically the scan is one node and, frozen, one step that
/// runs the body's program in a loop, for any number of steps. Values the body reads but
/// does not compute from the step's inputs (weights, closures, non-sequences) are computed
/// once, before the loop. th::grad goes through it as a reverse scan (back-propagation
/// through time) over what the forward loop saved; random draws in the body advance their
/// stream once per step.
std::vector<Tensor> scan(const StepFn& fn, const std::vector<Tensor>& sequences,
                         const std::vector<Tensor>& outputs_info, const std::vector<Tensor>& non_sequences = {},
                         const ScanOptions& options = {});
/// fn applied to each slice of the sequences (and the non-sequences), stacked.
Tensor map(const StepFn1& fn, const std::vector<Tensor>& sequences, const std::vector<Tensor>& non_sequences = {});
/// The last state of s = fn(slices..., s, non_sequences...) from s = init (init itself after
/// zero steps).
Tensor foldl(const StepFn1& fn, const std::vector<Tensor>& sequences, const Tensor& init,
             const std::vector<Tensor>& non_sequences = {});

namespace detail {
/// The one tensor of a step function written as a scan step (th::ValueError naming `what`
/// when it returned another number of tensors).
Tensor single_step_output(const std::vector<Tensor>& outs, const char* what);

/// A map/foldl step from any callable: one returning th::Tensor, or one returning a
/// std::vector<th::Tensor> of one element (written as a scan step is). Anything else is one
/// short compiler message naming the signature expected.
template <class F>
StepFn1 as_step_fn1(F&& fn, const char* what) {
  using Args = const std::vector<Tensor>&;
  constexpr bool callable = std::is_invocable_v<std::decay_t<F>&, Args>;
  static_assert(callable,
                "th::map / th::foldl: the step function must be callable as fn(const std::vector<th::Tensor>& args) "
                "(the slices of the sequences, [the state,] then the non-sequences)");
  if constexpr (callable) {
    using R = std::invoke_result_t<std::decay_t<F>&, Args>;
    constexpr bool one = std::is_convertible_v<R, Tensor>, list = std::is_convertible_v<R, std::vector<Tensor>>;
    static_assert(one || list,
                  "th::map / th::foldl: the step function must return th::Tensor (or a std::vector<th::Tensor> "
                  "holding one tensor, as a th::scan step does)");
    if constexpr (one) {
      return StepFn1(std::forward<F>(fn));
    } else if constexpr (list) {
      return [f = std::decay_t<F>(std::forward<F>(fn)), what](Args a) { return single_step_output(f(a), what); };
    }
  }
  return {};
}
}  // namespace detail

/// th::map with any step callable: returning th::Tensor, or a std::vector<th::Tensor> of one
/// element as a th::scan step does.
template <class F>
Tensor map(F&& fn, const std::vector<Tensor>& sequences, const std::vector<Tensor>& non_sequences = {}) {
  const StepFn1 step = detail::as_step_fn1(std::forward<F>(fn), "map");  // (an lvalue: the overload above)
  return map(step, sequences, non_sequences);
}
/// th::foldl with any step callable, as th::map's.
template <class F>
Tensor foldl(F&& fn, const std::vector<Tensor>& sequences, const Tensor& init,
             const std::vector<Tensor>& non_sequences = {}) {
  const StepFn1 step = detail::as_step_fn1(std::forward<F>(fn), "foldl");
  return foldl(step, sequences, init, non_sequences);
}

}  // namespace th
