// Devices a tensor's value can live on.
#pragma once
#include <iosfwd>
#include <string>

namespace th {

/// A device: the CPU or one CUDA GPU.
struct Device {
  /// The kind of device.
  enum class Type : unsigned char { cpu, cuda };
  Type type = Type::cpu;  ///< CPU or CUDA GPU
  int index = 0;          ///< the GPU's number (0 for the CPU)
  /// "cpu" or "cuda:0".
  std::string str() const;
  /// The same device (type and index).
  ///@{
  friend bool operator==(const Device& a, const Device& b) { return a.type == b.type && a.index == b.index; }
  friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
  ///@}
};

/// The host CPU.
inline Device cpu() { return {Device::Type::cpu, 0}; }
/// CUDA GPU number `index`.
inline Device cuda(int index = 0) { return {Device::Type::cuda, index}; }
/// True when theta was built with CUDA and a GPU is present.
bool cuda_available();
/// Prints str().
std::ostream& operator<<(std::ostream& os, const Device& d);

}  // namespace th
