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

struct Branches;  // ifelse's two frozen sub-programs (ops/control.cpp)
struct ScanBody;  // scan's body as a frozen sub-program (ops/scan.cpp)
struct ConvChain;  // conv_chain's links (ops/conv_chain.hpp)

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
  std::shared_ptr<const Branches> branches;  // ifelse
  std::shared_ptr<const ScanBody> scan;      // scan and its outputs (part: which one)
  std::shared_ptr<const ConvChain> chain;    // conv_chain: the steps it runs
  /// The public function the user called, where it records another op (th::dot records
  /// matmul): run-time errors of the op, frozen ones too, name it.
  const char* called = nullptr;
};

}  // namespace th::detail
