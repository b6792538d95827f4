// Algebraic identities: a step that returns its operand unchanged is dropped and its uses
// read the operand. x*1, 1*x, x+0, 0+x, x-0, x/1 (the constant must neither change the
// dtype nor broadcast x to a larger shape), -(-x), stop_gradient(x) (gradients are already
// built when freezing), cast to x's own dtype.
#include "freeze/optimize.hpp"

namespace th::detail {

int rewrite_algebra(Program& p) {
  int fired = 0;
  const Op &add = binary_op(BinaryKind::add), &sub = binary_op(BinaryKind::sub), &mul = binary_op(BinaryKind::mul),
           &div = binary_op(BinaryKind::div), &neg = unary_op(UnaryKind::neg);
  std::vector<long> made_by = producers(p);
  for (Step& s : p.steps) {
    const DType out = p.slot_dtype[s.out];
    // `x` stands for the step's output when its dtype and rank are x's own.
    auto keeps = [&](std::size_t x) {
      return p.slot_dtype[x] == out && p.slot_shape[x].size() == p.slot_shape[s.out].size();
    };
    long same = -1;  // the slot the step's output equals
    if (s.in.size() == 2) {
      const std::size_t a = s.in[0], b = s.in[1];
      const std::size_t na = p.slot_shape[a].size(), nb = p.slot_shape[b].size();
      if ((s.op == &mul && is_scalar_constant(p, b, 1, na)) || (s.op == &add && is_scalar_constant(p, b, 0, na)) ||
          (s.op == &sub && is_scalar_constant(p, b, 0, na)) || (s.op == &div && is_scalar_constant(p, b, 1, na)))
        same = long(a);
      else if ((s.op == &mul && is_scalar_constant(p, a, 1, nb)) || (s.op == &add && is_scalar_constant(p, a, 0, nb)))
        same = long(b);
    } else if (s.op == &neg) {
      const long inner = made_by[s.in[0]];
      if (inner >= 0 && p.steps[std::size_t(inner)].op == &neg) same = long(p.steps[std::size_t(inner)].in[0]);
    } else if (s.op == &stop_gradient_op() || (s.op == &cast_op() && p.slot_dtype[s.in[0]] == s.attrs.dtype)) {
      same = long(s.in[0]);
    }
    if (same >= 0 && keeps(std::size_t(same))) {
      replace_uses(p, s.out, std::size_t(same));
      ++fired;
    }
  }
  return fired;
}

}  // namespace th::detail
