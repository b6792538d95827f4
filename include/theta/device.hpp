// Devices a tensor's value can live on.
#pragma once
#include <iosfwd>
#include <string>

namespace th {

/// A device: the CPU or one CUDA GPU.
struct Device {
  enum class Type : unsigned char { cpu, cuda };
  Type type = Type::cpu;
  int index = 0;
  /// "cpu" or "cuda:0".
  std::string str() const;
  friend bool operator==(const Device& a, const Device& b) { return a.type == b.type && a.index == b.index; }
  friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
};

/// The host CPU.
inline Device cpu() { return {Device::Type::cpu, 0}; }
/// CUDA GPU number `index`.
inline Device cuda(int index = 0) { return {Device::Type::cuda, index}; }
/// True when theta was built with CUDA and a GPU is present.
bool cuda_available();
std::ostream& operator<<(std::ostream& os, const Device& d);

}  // namespace th
