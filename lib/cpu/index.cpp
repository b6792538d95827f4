// Gather (take) and its adjoint scatter-add along one axis of a contiguous tensor.
#include <cstring>

#include "cpu/cpu_backend.hpp"
#include "cpu/strided.hpp"
#include "theta/error.hpp"

namespace th::detail::cpu {

// Operands that are not contiguous (or not y's dtype) are copied into per-thread scratch.
void CpuBackend::gather(const Storage& x, const Storage& idx, std::int64_t axis, const Storage& y) {
  thread_local Storage scratch;
  const ScratchGuard held(scratch);
  const Storage& xc = x.contiguous() ? x : copy_to_scratch(x, x.dtype, scratch);
  AxisSplit sx = split_at(xc.shape, axis);
  const std::int64_t m = idx.size();
  const std::int64_t* ip = idx.data<std::int64_t>();
  const std::size_t es = dtype_size(x.dtype), row = std::size_t(sx.inner) * es;
  const char* src = xc.bytes();
  char* dst = y.bytes();
  for (std::int64_t o = 0; o < sx.outer; ++o)
    for (std::int64_t j = 0; j < m; ++j)
      std::memcpy(dst + std::size_t(o * m + j) * row, src + std::size_t(o * sx.n + ip[j]) * row, row);
}

void CpuBackend::scatter_add(const Storage& g, const Storage& idx, std::int64_t axis, const Storage& y) {
  thread_local Storage scratch;
  const ScratchGuard held(scratch);
  const Storage& gc = g.contiguous() && g.dtype == y.dtype ? g : copy_to_scratch(g, y.dtype, scratch);
  AxisSplit sy = split_at(y.shape, axis);
  const std::int64_t m = idx.size();
  const std::int64_t* ip = idx.data<std::int64_t>();
  THETA_DISPATCH_NUMERIC(y.dtype, T, {
    const T* src = gc.data<T>();
    T* dst = y.data<T>();
    for (std::int64_t o = 0; o < sy.outer; ++o)
      for (std::int64_t j = 0; j < m; ++j) {
        T* d = dst + (o * sy.n + ip[j]) * sy.inner;
        const T* s = src + (o * m + j) * sy.inner;
        for (std::int64_t i = 0; i < sy.inner; ++i) d[i] = T(d[i] + s[i]);
      }
  })
}

}  // namespace th::detail::cpu
