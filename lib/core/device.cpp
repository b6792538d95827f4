// Device names and discovery.
#include <ostream>

#include "theta/device.hpp"

namespace th {

#ifdef THETA_HAS_CUDA
namespace detail {
int cuda_device_count() noexcept;
}
bool cuda_available() { return detail::cuda_device_count() > 0; }
#else
bool cuda_available() { return false; }
#endif

std::string Device::str() const {
  return type == Type::cpu ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace th
