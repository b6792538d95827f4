// CPU kernels of convolution and pooling (lib/ops/nn.cpp holds the ops): im2col/col2im
// around OpenBLAS GEMMs, and window loops for pooling. Every operand is contiguous
// row-major, float32 or float64; the images of a batch are spread over the kernel threads.
#pragma once
#include <cstdint>

#include "core/backend.hpp"

namespace th::detail::cpu {

/// y = conv(x, w).
void conv_forward(DType dtype, const ConvGeom& g, const void* x, const void* w, void* y);
/// dx = the gradient of sum(conv(x, w) * gy) with respect to x (the transposed convolution).
void conv_backward_input(DType dtype, const ConvGeom& g, const void* gy, const void* w, void* dx);
/// dw = the gradient of sum(conv(x, w) * gy) with respect to w.
void conv_backward_filters(DType dtype, const ConvGeom& g, const void* x, const void* gy, void* dw);

enum class PoolKind : int { max = 0, sum = 1, average_inc_pad = 2, average_exc_pad = 3 };

/// Pooling over the last two axes of `planes` images of H x W: windows of wh x ww at
/// strides (sh, sw) over the image padded by (ph, pw) on each side, OH x OW of them (a
/// window that runs past the padded image is cut there, as Theano's ignore_border=False).
struct PoolGeom {
  std::int64_t planes = 0, H = 0, W = 0, OH = 0, OW = 0;
  std::int64_t wh = 1, ww = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  PoolKind kind = PoolKind::max;
};

/// y = pool(x).
void pool_forward(DType dtype, const PoolGeom& g, const void* x, void* y);
/// Max pooling over 2 x 2 windows that tile the image, on the calling thread, of float32
/// images in channel blocks ((blocks, H, W, lanes): oneDNN's nChw16c / nChw8c, NHWC with
/// lanes = C, NCHW with lanes = 1): the bits of pool_forward (first maximum, NaN wins).
void max_pool_2x2_lanes(const float* x, float* y, std::int64_t blocks, std::int64_t H, std::int64_t W, std::int64_t OH,
                        std::int64_t OW, std::int64_t lanes);
/// dx = the gradient of sum(pool(x) * gy) with respect to x (max: to each window's first maximum).
void pool_backward(DType dtype, const PoolGeom& g, const void* x, const void* gy, void* dx);
/// y[window] = gx at the window's first maximum of x (max pooling's gradient, differentiated again).
void pool_select(DType dtype, const PoolGeom& g, const void* x, const void* gx, void* y);

}  // namespace th::detail::cpu
