// Numerical stability (Theano's stabilize pass): forms that overflow or lose precision are
// replaced by their stable equivalents.
//   log(1 + x)          -> log1p(x)           accurate for tiny x
//   log(sigmoid(x))     -> -softplus(-x)      finite for x << 0 (log(0) = -inf otherwise)
//   log(1 - sigmoid(x)) -> -softplus(x)       finite for x >> 0
//   log(exp(z) / s)     -> z - log(s)         a softmax written out becomes log_softmax's form
//   log(softmax(x))     -> log_softmax(x)
// The log step is replaced in place by the new steps (inserted where it stood, so the
// order stays topological); what it no longer reads is left to dead code elimination.
#include "freeze/optimize.hpp"

namespace th::detail {

int rewrite_stability(Program& p) {
  const Op &log = unary_op(UnaryKind::log), &log1p = unary_op(UnaryKind::log1p), &exp = unary_op(UnaryKind::exp),
           &sigmoid = unary_op(UnaryKind::sigmoid), &softplus = unary_op(UnaryKind::softplus),
           &neg = unary_op(UnaryKind::neg), &add = binary_op(BinaryKind::add), &sub = binary_op(BinaryKind::sub),
           &div = binary_op(BinaryKind::div);
  const std::vector<long> made_by = producers(p);
  auto step_of = [&](std::size_t slot) -> const Step* {
    return made_by[slot] >= 0 ? &p.steps[std::size_t(made_by[slot])] : nullptr;
  };
  int fired = 0;
  std::vector<Step> out;
  out.reserve(p.steps.size());
  for (const Step& s : p.steps) {
    const Step* in = s.op == &log ? step_of(s.in[0]) : nullptr;
    const DType dt = p.slot_dtype[s.out];
    auto same_type = [&](std::size_t slot) {
      return p.slot_dtype[slot] == dt && p.slot_shape[slot].size() == p.slot_shape[s.out].size();
    };
    auto emit = [&](const Op& op, std::vector<std::size_t> args, std::size_t to) {
      Step n{&op, {}, std::move(args), to, {}};
      n.names.assign(n.in.size(), std::string());  // operand display names are for errors; new slots have none
      out.push_back(std::move(n));
    };
    auto temp = [&] { return new_slot(p, dt, p.slot_shape[s.out]); };
    if (in && (in->op == &add) && same_type(in->in[1]) && is_scalar_constant(p, in->in[0], 1, p.slot_shape[in->in[1]].size())) {
      emit(log1p, {in->in[1]}, s.out);  // log(1 + x)
      ++fired;
      continue;
    }
    if (in && (in->op == &add) && same_type(in->in[0]) && is_scalar_constant(p, in->in[1], 1, p.slot_shape[in->in[0]].size())) {
      emit(log1p, {in->in[0]}, s.out);  // log(x + 1)
      ++fired;
      continue;
    }
    if (in && in->op == &sigmoid && same_type(in->in[0])) {  // log(sigmoid(x)) = -softplus(-x)
      const std::size_t t1 = temp(), t2 = temp();
      emit(neg, {in->in[0]}, t1);
      emit(softplus, {t1}, t2);
      emit(neg, {t2}, s.out);
      ++fired;
      continue;
    }
    const Step* sig = in && in->op == &sub ? step_of(in->in[1]) : nullptr;
    if (sig && sig->op == &sigmoid && same_type(sig->in[0]) && same_type(in->in[1]) &&
        is_scalar_constant(p, in->in[0], 1, p.slot_shape[in->in[1]].size())) {  // log(1 - sigmoid(x)) = -softplus(x)
      const std::size_t t1 = temp();
      emit(softplus, {sig->in[0]}, t1);
      emit(neg, {t1}, s.out);
      ++fired;
      continue;
    }
    if (in && in->op == &softmax_op(false) && same_type(in->in[0])) {  // log(softmax(x)) = log_softmax(x)
      out.push_back(Step{&softmax_op(true), in->attrs, {in->in[0]}, s.out, {in->names.empty() ? std::string() : in->names[0]}});
      ++fired;
      continue;
    }
    const Step* e = in && in->op == &div ? step_of(in->in[0]) : nullptr;
    if (e && e->op == &exp && p.slot_dtype[e->in[0]] == dt && p.slot_dtype[in->in[1]] == dt &&
        p.slot_dtype[in->out] == dt) {  // log(exp(z) / s) = z - log(s)
      const std::size_t t1 = new_slot(p, dt, p.slot_shape[in->in[1]]);
      emit(log, {in->in[1]}, t1);
      emit(sub, {e->in[0], t1}, s.out);
      ++fired;
      continue;
    }
    out.push_back(s);  // NOTE: a copy: later patterns look back at this step through made_by
  }
  p.steps = std::move(out);
  return fired;
}

}  // namespace th::detail
