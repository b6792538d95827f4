// A convolution's epilogue folded into it: relu?(conv2d(x, w) [* scale] + shift) becomes one
// conv2d_fused step (lib/ops/nn.cpp), which runs as one oneDNN primitive on the CPU in float32
// when scale and shift are per output channel (the bias of a conv layer; an inference batch
// normalization, whose th::batch_normalization_test is x * scale + shift), the relu its
// post-op: no pass over the activations for the bias, the normalization or the relu. The
// convolution, the multiplication and the addition must have no other reader (they are dead
// afterwards): in a training function the backward pass reads the convolution's output (its
// shape, for the bias gradient), so it is inference functions that this rewrite serves.
#include "freeze/optimize.hpp"

namespace th::detail {

int fuse_conv_epilogues(Program& p) {
  const std::vector<long> made_by = producers(p);
  const std::vector<int> uses = reader_counts(p);
  auto made = [&](std::size_t slot, const Op& op) -> const Step* {
    const long k = made_by[slot];
    if (k < 0 || uses[slot] != 1 || p.steps[std::size_t(k)].op != &op) return nullptr;
    return &p.steps[std::size_t(k)];
  };
  auto is_float = [&](std::size_t slot) {
    return p.slot_dtype[slot] == DType::float32 || p.slot_dtype[slot] == DType::float64;
  };
  const Op& add = binary_op(BinaryKind::add);
  const Op& mul = binary_op(BinaryKind::mul);
  const Op& relu = unary_op(UnaryKind::relu);
  // additions whose one reader is a relu: that relu's step fuses them (with its relu)
  std::vector<char> relu_alone(p.slots, 0);
  for (const Step& t : p.steps)
    if (t.op == &relu && uses[t.in[0]] == 1) relu_alone[t.in[0]] = 1;
  int fired = 0;
  for (Step& s : p.steps) {
    // the chain's last step: a relu of the addition, or the addition itself (when no relu takes it)
    const bool with_relu = s.op == &relu;
    const Step* sum = with_relu ? made(s.in[0], add) : s.op == &add ? &s : nullptr;
    if (!sum || !is_float(s.out)) continue;
    if (!with_relu && relu_alone[s.out]) continue;
    for (std::size_t side = 0; side < 2; ++side) {
      const std::size_t shift = sum->in[1 - side];
      const Step* scaled = made(sum->in[side], mul);
      const Step* conv = nullptr;
      std::size_t scale = 0;
      if (scaled) {
        for (std::size_t ms = 0; ms < 2 && !conv; ++ms)
          if ((conv = made(scaled->in[ms], conv_op()))) scale = scaled->in[1 - ms];
      } else {
        conv = made(sum->in[side], conv_op());
      }
      if (!conv || !is_float(shift) || (scaled && !is_float(scale))) continue;
      const DType dt = p.slot_dtype[s.out];
      bool same_type = p.slot_dtype[conv->out] == dt && p.slot_dtype[shift] == dt && (!scaled || p.slot_dtype[scale] == dt);
      if (!same_type) continue;
      Attrs a = conv->attrs;
      a.axes.push_back(with_relu ? 1 : 0);
      std::vector<std::size_t> in{conv->in[0], conv->in[1]};
      std::vector<std::string> names{conv->names[0], conv->names[1]};
      if (scaled) in.push_back(scale), names.push_back("scale");
      in.push_back(shift), names.push_back(sum->names[1 - side]);
      s = Step{&conv_fused_op(), a, std::move(in), s.out, std::move(names)};  // conv, mul, add dead now
      ++fired;
      break;
    }
  }
  return fired;
}

}  // namespace th::detail
