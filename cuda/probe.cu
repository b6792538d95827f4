// Device discovery for the CUDA backend. NOTE: without a GPU, cudaGetDeviceCount
// returns an error and leaves the count untouched, so it starts at 0.
#include <cuda_runtime.h>

namespace th::detail {
int cuda_device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}
}  // namespace th::detail
