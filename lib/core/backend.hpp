// A backend is a handful of entry points over Storage. Kernels are instantiated from the
// op lists (ops/elementwise_list.hpp); adding an op never adds an entry point here.
#pragma once
#include "core/storage.hpp"
#include "ops/elementwise_list.hpp"

namespace th::detail {

#define THETA_ENUM_ENTRY(name, ...) name,
enum class UnaryKind : unsigned char { THETA_UNARY_OPS(THETA_ENUM_ENTRY) };
enum class BinaryKind : unsigned char { THETA_BINARY_OPS(THETA_ENUM_ENTRY) };
#undef THETA_ENUM_ENTRY
enum class ReduceKind : unsigned char { sum, prod, max, min };

struct Backend {
  virtual ~Backend() = default;
  virtual std::shared_ptr<Buffer> alloc(std::size_t bytes) = 0;
  /// dst = src converted to dst.dtype; same shape, any strides (dst may be a view).
  virtual void copy(const Storage& src, const Storage& dst) = 0;
  virtual void fill(const Storage& dst, double value) = 0;
  /// y = f(x); x and y have y's dtype and shape (x may be a broadcast view).
  virtual void unary(UnaryKind k, const Storage& x, const Storage& y) = 0;
  /// y = f(a, b); a and b are views of y's shape in one compute dtype (y may be boolean).
  virtual void binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y = c ? a : b; c boolean, a and b of y's dtype, all views of y's shape.
  virtual void where(const Storage& c, const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y (a view of x's shape with stride 0 on reduced axes) accumulates x; y is pre-filled.
  virtual void reduce(ReduceKind k, const Storage& x, const Storage& y) = 0;
  /// y[i] = arg max/min of x[i, :] over x's last axis (x is 2-d, y int64 contiguous).
  virtual void arg_reduce(bool is_max, const Storage& x, const Storage& y) = 0;
  /// y = a @ b over the last two axes; a, b broadcast views of y's batch shape.
  virtual void gemm(const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y = take(x, idx, axis); x contiguous-able, idx int64 contiguous.
  virtual void gather(const Storage& x, const Storage& idx, std::int64_t axis, const Storage& y) = 0;
  /// y (pre-zeroed) += scatter of g at idx along axis.
  virtual void scatter_add(const Storage& g, const Storage& idx, std::int64_t axis, const Storage& y) = 0;
};

Backend& backend_for(Device d);
Backend& cpu_backend();

}  // namespace th::detail
