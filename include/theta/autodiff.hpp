// Reverse-mode differentiation over the recorded tape.
#pragma once
#include <type_traits>
#include <vector>

#include "tensor.hpp"

namespace th {

/// d cost / d wrt. `cost` must have exactly one element (th::ValueError otherwise).
/// A `wrt` that cost does not depend on gets zeros. The result is itself recorded when
/// its inputs are, so it can be differentiated again.
Tensor grad(const Tensor& cost, const Tensor& wrt);
/// Gradients with respect to several tensors, in order.
std::vector<Tensor> grad(const Tensor& cost, const std::vector<Tensor>& wrt);
/// The same for a list of another kind of tensor, e.g. a model's std::vector<th::Shared>
/// parameters (a template: a braced list still picks the overload above).
template <class S, std::enable_if_t<std::is_base_of_v<Tensor, S> && !std::is_same_v<S, Tensor>, int> = 0>
std::vector<Tensor> grad(const Tensor& cost, const std::vector<S>& wrt) {
  return grad(cost, std::vector<Tensor>(wrt.begin(), wrt.end()));
}
/// Vector-Jacobian product: the gradient of sum(y * v) with respect to x.
Tensor vjp(const Tensor& y, const Tensor& x, const Tensor& v);
/// dy/dx with shape y.shape + x.shape. For a symbolic y whose size is known only when it
/// runs (or is large), one row per element of y by th::scan (Theano's T.jacobian): frozen,
/// one function serves any size.
Tensor jacobian(const Tensor& y, const Tensor& x);
/// d^2 cost / dx^2 with shape x.shape + x.shape.
Tensor hessian(const Tensor& cost, const Tensor& x);
/// Jacobian-vector product (Theano's Rop): dy/dx applied to v (x's shape), of y's shape,
/// without building the Jacobian: the gradient, with respect to a seed u, of the
/// vector-Jacobian product J^T u projected on v (two reverse sweeps).
Tensor jvp(const Tensor& y, const Tensor& x, const Tensor& v);
/// The Hessian of cost (one element) applied to v (x's shape), without building the Hessian.
Tensor hessian_vector_product(const Tensor& cost, const Tensor& x, const Tensor& v);

}  // namespace th
