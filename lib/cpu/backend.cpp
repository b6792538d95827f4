// CPU memory, copies with dtype conversion, fill and where; backend lookup by device.
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/text.hpp"
#include "cpu/allocator.hpp"
#include "cpu/cpu_backend.hpp"
#include "cpu/strided.hpp"
#include "theta/error.hpp"

namespace th::detail {

namespace cpu {

std::shared_ptr<Buffer> CpuBackend::alloc(std::size_t bytes) {
  auto b = std::make_shared<Buffer>();
  b->data = cached_alloc(bytes);
  b->bytes = bytes;
  b->device = th::cpu();
  b->free_fn = &cached_free;
  return b;
}

void CpuBackend::refill(Buffer& b, std::size_t bytes) {
  b.data = cached_alloc(bytes);
  b.bytes = bytes;
  b.free_fn = &cached_free;
}

// One element converted: floats to integers truncate toward zero, saturate outside the
// integer's range and turn NaN into 0 (a plain cast is undefined behaviour there).
template <class D, class S>
inline D convert(S v) {
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D> && !std::is_same_v<D, bool>) {
    if (v != v) return D(0);
    constexpr S hi = -S(std::numeric_limits<D>::min());  // 2^(bits-1), exact in S
    if (v >= hi) return std::numeric_limits<D>::max();
    if (v < -hi) return std::numeric_limits<D>::min();
  }
  return static_cast<D>(v);
}

template <class S, class D>
static void copy_typed(const Storage& src, const Storage& dst) {
  for_each_strided<2>(dst.shape, {&dst, &src}, [](char** p, const std::int64_t* s, std::int64_t n) {
    if constexpr (std::is_same_v<S, D>) {
      if (s[0] == sizeof(D) && s[1] == sizeof(S)) {
        std::memcpy(p[0], p[1], std::size_t(n) * sizeof(D));
        return;
      }
    }
    char* d = p[0];
    const char* q = p[1];
    for (std::int64_t i = 0; i < n; ++i, d += s[0], q += s[1])
      *reinterpret_cast<D*>(d) = convert<D>(*reinterpret_cast<const S*>(q));
  }, 1);
}

void CpuBackend::copy(const Storage& src, const Storage& dst) {
  if (src.dtype == DType::string || dst.dtype == DType::string) return copy_text(src, dst);
  THETA_DISPATCH_ALL(src.dtype, S, THETA_DISPATCH_ALL(dst.dtype, D, copy_typed<S, D>(src, dst)))
}

void CpuBackend::fill(const Storage& dst, double value) {
  if (dst.dtype == DType::string) {  // text: "" for 0 (numpy's zeros), else the number's
    const double v[1] = {value};
    const Text t = value == 0 ? nullptr : intern(number_text(reinterpret_cast<const char*>(v), DType::float64));
    for_each_strided<1>(dst.shape, {&dst}, [t](char** p, const std::int64_t* s, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) *reinterpret_cast<Text*>(p[0] + i * s[0]) = t;
    });
    return;
  }
  THETA_DISPATCH_ALL(dst.dtype, T, {
    const T v = convert<T>(value);  // (an integer filled with -inf or NaN saturates, as a copy does)
    for_each_strided<1>(dst.shape, {&dst}, [v](char** p, const std::int64_t* s, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
    }, 1);
  })
}

void CpuBackend::where(const Storage& c, const Storage& a, const Storage& b, const Storage& y) {
  THETA_DISPATCH_ALL(y.dtype, T, {
    for_each_strided<4>(y.shape, {&y, &c, &a, &b}, [](char** p, const std::int64_t* s, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) {
        bool ci = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            ci ? *reinterpret_cast<const T*>(p[2] + i * s[2]) : *reinterpret_cast<const T*>(p[3] + i * s[3]);
      }
    }, 1);
  })
}

}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend b;
  return b;
}

#ifdef THETA_HAS_CUDA
namespace cuda {
Backend& backend(int device);  // cuda/backend.cu
}
#endif

Backend& backend_for(Device d) {
  if (d.type == Device::Type::cpu) return cpu_backend();
#ifdef THETA_HAS_CUDA
  return cuda::backend(d.index);
#else
  throw DeviceError("device " + d.str() + ": this build of theta has no CUDA backend (THETA_CUDA=OFF or nvcc not found)");
#endif
}

}  // namespace th::detail
