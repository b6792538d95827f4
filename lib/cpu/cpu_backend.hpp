// The CPU backend: xtensor/OpenBLAS-era kernels over strided storage. Its entry points
// are spread over the files of lib/cpu/ by family.
#pragma once
#include "core/backend.hpp"

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
};

}  // namespace th::detail::cpu
