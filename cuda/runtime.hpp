// What the CUDA files share: error checking that turns every CUDA, cuBLAS and NVRTC
// failure into th::DeviceError naming the call, theta's stream, the device guard and the
// caching allocator. Internal: included only by cuda/*.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace th::detail::cuda {

/// Throws th::DeviceError("CUDA: <call> failed: <message>") unless `e` is cudaSuccess.
void check(cudaError_t e, const char* call);
#define THETA_CUDA_CHECK(call) ::th::detail::cuda::check((call), #call)
/// After a kernel launch: a launch failure (bad configuration, no device) as DeviceError.
#define THETA_CUDA_LAUNCHED(what) ::th::detail::cuda::check(cudaGetLastError(), what)

/// The stream all of theta's work on `device` is queued on, in order: kernels, cuBLAS,
/// copies. One stream per device keeps every value's producer ordered before its readers,
/// so the allocator can hand a freed block to the next allocation without waiting.
cudaStream_t stream(int device);

/// Makes `device` current for the calling thread while it lives.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

/// A library handle (cuBLAS, cuSOLVER) per device, made once by make(handle&, stream) with
/// the device current and bound to its theta stream (one table per call site).
template <class H, class Make>
H per_device_handle(int device, Make&& make) {
  static std::once_flag once[64];
  static H h[64];
  cudaStream_t st = stream(device);  // validates the index
  std::call_once(once[device], [&] {
    DeviceGuard g(device);
    make(h[device], st);
  });
  return h[device];
}

/// Backend::factor on `device` by cuSOLVER (cuda/solver.cu).
bool factor(int device, Factor k, const Storage& a, const Storage& b, std::vector<int>& info);

/// Device memory from the caching allocator (freed blocks of the same rounded size are
/// reused; cudaMalloc only when none is free).
std::shared_ptr<Buffer> alloc(std::size_t bytes, int device);

}  // namespace th::detail::cuda
