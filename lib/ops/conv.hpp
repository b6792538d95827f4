// conv2d's device-generic path (lib/ops/nn.cpp): the three modes of the conv2d family
// through the backend's entry points (im2col, gemm, copy, col2im), as the GPU runs them;
// the CPU has direct kernels (lib/cpu/conv.cpp), and tests run this path on the CPU too.
#pragma once
#include "core/backend.hpp"

namespace th::detail {

/// mode 0: y = conv(a = x, b = w); 1: dx = grad_input(a = gy, b = w); 2: dw = grad_filters(a
/// = x, b = gy). Operands contiguous in `dtype` on one device; the result there, of `out`'s shape.
Storage conv_through_backend(int mode, const Storage& a, const Storage& b, const ConvGeom& g, DType dtype,
                             const Shape& out);

}  // namespace th::detail
