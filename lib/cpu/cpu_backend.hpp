// The CPU backend: xtensor/OpenBLAS-era kernels over strided storage. Its entry points
// are spread over the files of lib/cpu/ by family.
#pragma once
#include "core/backend.hpp"
#include "cpu/gemv_small.hpp"

namespace th::detail::cpu {

struct CpuBackend final : Backend {
  std::shared_ptr<Buffer> alloc(std::size_t bytes) override;
  void refill(Buffer& b, std::size_t bytes) override;
  void copy(const Storage& src, const Storage& dst) override;
  void fill(const Storage& dst, double value) override;
  void unary(UnaryKind k, const Storage& x, const Storage& y) override;
  void binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) override;
  void where(const Storage& c, const Storage& a, const Storage& b, const Storage& y) override;
  void reduce(ReduceKind k, const Storage& x, const Storage& y) override;
  void arg_reduce(bool is_max, const Storage& x, const Storage& y) override;
  void gemm(const Storage& a, const Storage& b, const Storage& y) override;
  void gather(const Storage& x, const Storage& idx, std::int64_t axis, const Storage& y) override;
  void scatter_add(const Storage& g, const Storage& idx, std::int64_t axis, const Storage& y) override;
  void im2col(const Storage& x, const ConvGeom& g, std::int64_t group, const Storage& col) override;
  void col2im(const Storage& col, const ConvGeom& g, std::int64_t group, const Storage& x) override;
};

/// Whether matvec with these arguments runs gemv_small, and with which (`g`): the one
/// place that decides it, for matvec and for the native tier's whole programs
/// (freeze/whole.cpp), which compile the same kernel.
bool matvec_small(DType dtype, std::int64_t M, std::int64_t K, std::int64_t sa0, std::int64_t sa1, std::int64_t sx,
                  SmallGemv& g);
/// y(M) = A x on the CPU without building GEMM views (a frozen matrix-vector step runs it
/// on every call): A read as M x K with element strides (sa0, sa1), x of K elements at
/// stride sx, y contiguous, all of `dtype`. False, computing nothing, when it is not
/// float32/float64, is empty, or BLAS cannot take A's layout or x's stride (the caller
/// then takes the general path).
bool matvec(DType dtype, std::int64_t M, std::int64_t K, const void* a, std::int64_t sa0, std::int64_t sa1,
            const void* x, std::int64_t sx, void* y);

}  // namespace th::detail::cpu
