// Device names and discovery.
#include <ostream>

#include "core/backend.hpp"
#include "theta/device.hpp"
#include "theta/error.hpp"

namespace th {

bool cuda_available() { return detail::cuda_device_count() > 0; }

#ifndef THETA_HAS_CUDA
// A build without the CUDA backend (THETA_CUDA=OFF, or no nvcc): no GPU, and anything that
// asks for one is a DeviceError.
namespace detail {
int cuda_device_count() noexcept { return 0; }
DeviceMemoryStats cuda_memory_stats() { return {}; }
void cuda_synchronize(Device) {}
Storage transfer(const Storage& s, Device device) {
  if (s.device() == device) return s;
  throw DeviceError("cannot move a tensor from " + s.device().str() + " to " + device.str() +
                    ": this build of theta has no CUDA backend (THETA_CUDA=OFF or nvcc not found)");
}
bool cuda_run_fused(const std::vector<FusedInstr>&, DType, const std::vector<const Storage*>&, const std::vector<int>&,
                    const std::vector<const Storage*>&) {
  return false;
}
std::string cuda_fused_source(const std::vector<FusedInstr>&, DType, const std::vector<bool>&, std::vector<int>,
                              const std::vector<std::int64_t>&) {
  throw DeviceError("cuda_fused_source: this build of theta has no CUDA backend");
}
std::string cuda_compile_ptx(const std::string&, int) {
  throw DeviceError("cuda_compile_ptx: this build of theta has no CUDA backend");
}
}  // namespace detail
#endif

std::string Device::str() const {
  return type == Type::cpu ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace th
