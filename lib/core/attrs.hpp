// Attributes of a recorded operation (axes, target shape, slice spec, ...): one plain
// struct so that every op stores, compares and prints them the same way.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "theta/device.hpp"
#include "theta/dtype.hpp"
#include "theta/ops.hpp"

namespace th::detail {

/// What an op carries beyond plain attributes: ifelse's two frozen branches
/// (ops/subprograms.hpp Branches), scan's body (ScanBody) or conv_chain's links
/// (ops/conv_chain.hpp ConvChain). One pointer for the three keeps every recorded node's
/// Attrs small (an eager loop makes a node per op: W5 measures it).
struct SubProgram {
  enum class Kind : unsigned char { branches, scan, chain };
  explicit SubProgram(Kind k) : kind(k) {}
  virtual ~SubProgram() = default;
  const Kind kind;
};

struct Attrs {
  std::vector<std::int64_t> axes;  // reductions, squeeze, transpose's permutation
  Shape shape;                     // reshape's target
  std::vector<Index> index;        // slice
  std::int64_t axis = 0;           // take, concatenate, arg reductions, expand_dims
  std::int64_t part = 0;           // which input of a concatenate a split_part takes
  bool keepdims = false;
  bool all = false;                // arg reductions over the flattened tensor
  DType dtype = DType::float64;    // cast, count
  Device device;                   // to
  unsigned transpose = 0;          // matmul_t: bit 0 operand a, bit 1 operand b read with its last two axes swapped
  double scale = 0;                // matmul_acc: the constant factor of the product
  std::shared_ptr<const SubProgram> sub;     // ifelse, scan and its outputs (part: which one), conv_chain
  /// Unused: keeps Attrs at 152 bytes and a recorded Node at 352. An eager loop allocates a
  /// node per op, and glibc's bins made W5 (recorded add + backward) 1.7 us/op with 352-byte
  /// nodes and 2.6 with 336- or 368-byte ones on the development VM (session 17).
  std::uint64_t reserved_[2] = {0, 0};
  /// The public function the user called, where it records another op (th::dot records
  /// matmul): run-time errors of the op, frozen ones too, name it.
  const char* called = nullptr;
};

/// a.sub as a T (Branches, ScanBody, ConvChain), or nullptr when it holds none or another kind.
template <class T>
const T* sub_as(const Attrs& a) {
  return a.sub && a.sub->kind == T::kKind ? static_cast<const T*>(a.sub.get()) : nullptr;
}

}  // namespace th::detail
