// conv2d's device-generic path (lib/ops/nn.cpp): the three modes of the conv2d family
// through the backend's entry points (im2col, gemm, copy, col2im), as the GPU runs them;
// the CPU has direct kernels (lib/cpu/conv.cpp), and tests run this path on the CPU too.
// Also the oneDNN forms of conv2d and conv2d_fused steps that conv_chain (ops/conv_chain.hpp)
// runs as its links.
#pragma once
#include <vector>

#include "core/backend.hpp"
#include "ops/op.hpp"

namespace th::detail {

/// mode 0: y = conv(a = x, b = w); 1: dx = grad_input(a = gy, b = w); 2: dw = grad_filters(a
/// = x, b = gy). Operands contiguous in `dtype` on one device; the result there, of `out`'s shape.
Storage conv_through_backend(int mode, const Storage& a, const Storage& b, const ConvGeom& g, DType dtype,
                             const Shape& out);

/// A conv2d_fused step's operands as oneDNN's fused primitive takes them (lib/ops/nn.cpp):
/// its geometry, filters in OIHW with the scale folded in, one bias per output channel.
struct FusedConvOperands {
  ConvGeom g;
  Storage w;
  std::vector<float> scaled, bias;
  const float* filters = nullptr;
  bool relu = false;
};
/// False where the step (input meta `x` on the CPU, operands `in` of which in[0] is not read,
/// result `out`) does not run as one oneDNN primitive (not float32, scale or shift not per
/// channel, a geometry oneDNN declines).
bool fused_conv_operands(const Meta& x, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out,
                         FusedConvOperands& r);

/// A conv2d step's geometry (input meta `x` on the CPU, filters `w`, result `out`), where oneDNN runs it (float32).
bool conv_dnnl_geometry(const Meta& x, const Meta& w, const Attrs& a, const Meta& out, ConvGeom& g);

}  // namespace th::detail
