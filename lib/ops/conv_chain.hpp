// conv_chain: consecutive convolutions (conv2d, conv2d_fused) and tiling 2 x 2 max poolings
// of a frozen function, each the only reader of the one before, as one step (made by
// freeze/rewrite_conv_chain.cpp). On the CPU in float32 it runs on oneDNN one chunk of
// images per kernel thread, the values between the links kept in oneDNN's blocked layouts
// (reordered only where the primitives want another layout, and once at the end); anything
// else runs the links one by one with their own ops. Either way the bits are those of the
// links run alone: the same primitives on the same chunks, max pooling exact.
#pragma once
#include <string>
#include <vector>

#include "ops/conv.hpp"
#include "ops/op.hpp"

namespace th::detail {

struct ConvChain : SubProgram {
  static constexpr Kind kKind = Kind::chain;
  ConvChain() : SubProgram(kKind) {}
  /// One link: a step of the program it replaced (its slots: the program's; the links'
  /// outputs but the last are read by the next link only), and where its operands come from:
  /// >= 0 the chain step's operand of that index, -1 the previous link's result.
  struct Link {
    const Op* op;
    Attrs attrs;
    std::vector<std::size_t> in;
    std::size_t out;
    std::vector<std::string> names;
    std::vector<int> from;
  };
  std::vector<Link> links;
};

/// The op of conv_chain steps (never recorded by the user's code; no gradient).
const Op& conv_chain_op();
/// Whether `op` with `a` can be a link (conv2d, conv2d_fused, a 2 x 2 stride-2 unpadded max pooling).
bool conv_chain_link(const Op& op, const Attrs& a);

}  // namespace th::detail
