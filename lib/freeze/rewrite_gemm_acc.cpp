// A gradient step folded into the GEMM's output pass: c - k * (a @ b) (or c + k * ..., with
// a gradient's sum_to_like between) becomes one matmul_acc step, which writes the product
// and combines c into it while it is in cache, with the formulas of the ops it replaces
// (lib/ops/linalg.cpp). The SGD update w - lr * x^T g of a linear model is then one step
// after the GEMV instead of a GEMV and a fused pass. The product, the sum_to_like and the
// multiplication must have no other reader (they are dead afterwards); k is a one-element
// constant.
#include "freeze/optimize.hpp"

namespace th::detail {

int rewrite_gemm_acc(Program& p) {
  const std::vector<long> made_by = producers(p);
  const std::vector<int> uses = reader_counts(p);
  auto made = [&](std::size_t slot) -> const Step* {
    const long k = made_by[slot];
    return k < 0 || uses[slot] != 1 ? nullptr : &p.steps[std::size_t(k)];
  };
  int fired = 0;
  for (Step& s : p.steps) {
    const bool sub = s.op == &binary_op(BinaryKind::sub), add = s.op == &binary_op(BinaryKind::add);
    const DType dt = p.slot_dtype[s.out];
    if ((!sub && !add) || (dt != DType::float32 && dt != DType::float64)) continue;
    for (std::size_t side = sub ? 1 : 0; side < 2; ++side) {  // the product's side: sub(c, t); add(c, t) or add(t, c)
      const Step* t = made(s.in[side]);
      if (!t || t->op != &binary_op(BinaryKind::mul)) continue;
      double k = 0;  // converted to the float dtype of the step when used, as the mul converts it
      std::size_t mi = 0;
      if (one_value_constant(p, t->in[1], k)) mi = 0;
      else if (one_value_constant(p, t->in[0], k)) mi = 1;
      else continue;
      const Step* u = made(t->in[mi]);
      const bool summed = u && u->op == &sum_to_like_op() && u->in[1] == s.in[1 - side];
      const Step* m = summed ? made(u->in[0]) : u;
      if (!m || (m->op != &matmul_op() && m->op != &matmul_t_op())) continue;
      const std::size_t c = s.in[1 - side];
      bool same_type = p.slot_dtype[c] == dt && p.slot_dtype[t->out] == dt && p.slot_dtype[m->out] == dt;
      for (std::size_t i : m->in) same_type = same_type && p.slot_dtype[i] == dt;
      if (!same_type) continue;
      Attrs a;
      a.transpose = m->attrs.transpose;
      a.scale = k;
      a.axis = sub ? 0 : side == 1 ? 1 : 2;
      a.all = summed;
      Step acc{&matmul_acc_op(), a, {m->in[0], m->in[1], c}, s.out, {m->names[0], m->names[1], s.names[1 - side]}};
      s = std::move(acc);  // the product, sum_to_like and multiplication are dead now
      ++fired;
      break;
    }
  }
  return fired;
}

}  // namespace th::detail
