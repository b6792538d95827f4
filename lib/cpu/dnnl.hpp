// oneDNN (Debian's libdnnl, what libtorch's CPU convolutions run on) as theta's float32
// convolution engine (lib/cpu/dnnl.cpp). Built when CMake finds it (THETA_DNNL); without it
// dnnl_conv() declines every convolution and theta's own im2col + GEMM kernels run.
//
// One thread budget: the batch is cut into one chunk per kernel thread (cpu::num_threads(),
// i.e. THETA_NUM_THREADS) and theta's own pool runs the chunks, each a oneDNN primitive
// executed with OpenMP held to one thread; so no OpenMP team is ever started beside theta's
// threads and OpenBLAS's, and the chunks (hence the bits) are the same on every call,
// eager or frozen, whether the pool was free or not.
#pragma once
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace th::detail::cpu {

/// True when theta was built with oneDNN.
bool dnnl_built();

/// Whether the CPU has AVX-512 (oneDNN's avx512_core kernels: F, BW, VL, DQ). Some of the
/// rules below were measured to differ without it (the 2-core Zen 3 VM, AVX2), and oneDNN
/// 2.6 has Winograd kernels only with it.
bool avx512_core();

/// Whether a float32 GEMM of M x N x K multiply-adds runs on oneDNN's sgemm under
/// th::config().gemm (auto: from 32^3 multiply-adds on, OpenBLAS below, where its call is
/// cheaper; on CPUs without AVX-512 only up to 256^3, OpenBLAS's AVX2 kernels above).
/// Measured on the development VM, one thread: with AVX-512 (AMD EPYC, Zen 5) oneDNN 2.6's
/// sgemm 150-180 GFLOP/s on the shapes of a transformer's or an MLP's layers, OpenBLAS
/// 0.3.21 (which takes that CPU for a Haswell) 75-90; with AVX2 (Zen 3) OpenBLAS the faster
/// from 256^3 on (dnnl.cpp).
bool dnnl_gemm_takes(std::int64_t M, std::int64_t N, std::int64_t K);

/// Row-major C := alpha op(A) op(B) + beta C by oneDNN on the calling thread (its OpenMP held
/// to one thread): plain products (alpha 1, beta 0) from 256^3 multiply-adds up to sides of
/// 1024 on its matmul primitive with the thread's scratchpad, the others on its sgemm. Only
/// where dnnl_gemm_takes() said yes.
void dnnl_sgemm_here(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                     std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc);

/// Which engine runs a float32 convolution of this mode (as dnnl_conv's) and geometry under
/// th::config().conv: true for oneDNN (conv=dnnl, or conv=auto and the measured rule in
/// dnnl.cpp).
bool dnnl_takes(int mode, const ConvGeom& g);

/// mode 0: y = conv(a = x, b = w); 1: dx = grad_input(a = gy, b = w); 2: dw = grad_filters(a
/// = x, b = gy); float32, contiguous, in theta's layouts (NCHW, OIHW). False (nothing
/// written) when oneDNN is not built in or does not take the geometry.
bool dnnl_conv(int mode, const ConvGeom& g, const float* a, const float* b, float* y);

/// y = relu?(conv(x, w) + bias[o]) as one primitive (a frozen function's conv2d_fused):
/// float32, theta's layouts, bias one value per output channel. False (nothing written) where
/// oneDNN does not take the convolution.
bool dnnl_conv_epilogue(const ConvGeom& g, const float* x, const float* w, const float* bias, bool relu, float* y);

/// One link of a conv_chain step (ops/conv_chain.hpp) as dnnl_chain runs it.
struct ChainLink {
  int mode = 0;  ///< 0 conv2d, 3 conv + bias, 4 conv + bias + relu (as dnnl_conv_epilogue), 5 max pooling 2 x 2
  ConvGeom g;    ///< a convolution's geometry (g.N the whole batch)
  const float* w = nullptr;     ///< its filters, OIHW (flipped here where g.flip)
  const float* bias = nullptr;  ///< modes 3, 4: one per output channel
  std::int64_t C = 0, H = 0, W = 0, OH = 0, OW = 0;  ///< a pooling's input channels and sizes, output sizes
};

/// Runs the links on N images x (NCHW) into y (NCHW), one chunk of images per kernel thread
/// (the chunks of dnnl_conv), the values between links in the layouts the primitives chose:
/// a reorder only where the next primitive wants another, and one into y. The same bits as
/// the links run one by one. False (nothing written) where oneDNN is not built in or does
/// not take a convolution.
bool dnnl_chain(const std::vector<ChainLink>& links, std::int64_t N, const float* x, float* y);

/// oneDNN's name of the implementation that runs mode `mode` (0-4, as above) of geometry `g`
/// on chunks of `n` images ("jit:avx512_core", "jit_wino_4x3:avx512_core", ...); empty where
/// oneDNN does not take it. For tests and benchmarks.
std::string dnnl_conv_impl(int mode, const ConvGeom& g, std::int64_t n);

}  // namespace th::detail::cpu
