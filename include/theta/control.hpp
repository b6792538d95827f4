// Conditionals (API.md section 12, in part).
#pragma once
#include "tensor.hpp"

namespace th {

/// then_value when cond (one boolean element) holds, else else_value; the branches must have
/// the same dtype and rank. In a frozen function only the branch taken is computed (each
/// branch is frozen as its own sub-program; values both branches need are computed in each);
/// eagerly the branch is picked now. Differentiable: the gradient is an ifelse of the
/// branches' gradients, lazy the same way. (th::where computes both sides.)
Tensor ifelse(const Tensor& cond, const Tensor& then_value, const Tensor& else_value);

}  // namespace th
