// Elementwise primitives: unary and binary ops from elementwise_list.hpp, plus where,
// cast and stop_gradient. Shape rule: numpy broadcasting; dtype rules named in the list.
#include <cmath>
#include <cstring>

#include "core/backend.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

enum class Rule { keep, to_float, arith, divide, compare };
const Tensor none{};  // "no gradient" in the VJP columns of the lists

DType result_dtype(Rule r, DType in) {
  switch (r) {
    case Rule::keep:
    case Rule::arith: return in == DType::boolean ? DType::int64 : in;
    case Rule::to_float:
    case Rule::divide: return is_floating(in) ? in : floatX();
    case Rule::compare: return DType::boolean;
  }
  return in;
}
// The dtype the kernel computes in (inputs are converted to it).
DType compute_dtype(Rule r, DType promoted) {
  if (r == Rule::compare) return promoted == DType::boolean ? DType::int32 : promoted;
  return result_dtype(r, promoted);
}

#define THETA_RULE_ENTRY(name, rule, ...) Rule::rule,
const Rule unary_rules[] = {THETA_UNARY_OPS(THETA_RULE_ENTRY)};
const Rule binary_rules[] = {THETA_BINARY_OPS(THETA_RULE_ENTRY)};
#undef THETA_RULE_ENTRY

Meta infer_unary(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  return {result_dtype(unary_rules[op.code], in[0].dtype), in[0].shape};
}

Storage forward_unary(const Op& op, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  const Storage& x0 = *in[0];
  Storage y = alloc_storage(out.dtype, out.shape, x0.device());
  if (x0.dtype == out.dtype && (x0.device() == th::cpu() || x0.contiguous())) {  // the CPU walks any strides
    backend_for(y.device()).unary(UnaryKind(op.code), x0, y);
  } else {
    backend_for(y.device()).unary(UnaryKind(op.code), contiguous_as(x0, out.dtype), y);
  }
  return y;
}

Meta infer_binary(const Op& op, const std::vector<Meta>& in, const Attrs&) {
  Shape s = broadcast_shapes(op, in);
  return {result_dtype(binary_rules[op.code], promote_types(in[0].dtype, in[1].dtype)), std::move(s)};
}

// Operand k of an elementwise op converted to `dtype` (copied only if its dtype differs) and
// broadcast to `shape`, in this thread's view k (its vectors reused: no allocation when no
// conversion is needed). The views hold no buffer once the op is done (Operands' destructor).
struct Operands {
  static constexpr std::size_t kMax = 3;
  std::size_t used = 0;
  const Storage& operator()(const Storage& s, DType dtype, const Shape& shape) {
    Storage& v = views()[used++];
    if (s.dtype == dtype) broadcast_view_into(s, shape, v);
    else v = broadcast_view(contiguous_as(s, dtype), shape);  // owns its converted copy
    return v;
  }
  ~Operands() {
    for (std::size_t k = 0; k < used; ++k) views()[k].buf.reset();
  }
  static Storage* views() {
    thread_local Storage v[kMax];
    return v;
  }
};

Storage forward_binary(const Op& op, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  const Storage &a = *in[0], &b = *in[1];
  DType ct = compute_dtype(binary_rules[op.code], promote_types(a.dtype, b.dtype));
  Storage y = alloc_storage(out.dtype, out.shape, a.device());
  // Operands already of the computing dtype and the result's shape go to the kernel as
  // they are (the common case, and all of a tiny op's cost otherwise: two views).
  if (a.dtype == ct && b.dtype == ct && a.shape == out.shape && b.shape == out.shape)
    backend_for(y.device()).binary(BinaryKind(op.code), a, b, y);
  else {
    Operands operand;
    backend_for(y.device()).binary(BinaryKind(op.code), operand(a, ct, out.shape), operand(b, ct, out.shape), y);
  }
  return y;
}

// ---- VJPs, generated from the lists -----------------------------------------------------------
#define THETA_UNARY_VJP(name, rule, formula, vjp)                          \
  std::vector<Tensor> vjp_##name(const Op&, const VjpCtx& c) {             \
    [[maybe_unused]] const Tensor& x = c.x[0];                             \
    [[maybe_unused]] const Tensor& y = c.y;                                \
    [[maybe_unused]] const Tensor& g = c.g;                                \
    return {vjp};                                                          \
  }
THETA_UNARY_OPS(THETA_UNARY_VJP)
#undef THETA_UNARY_VJP

#define THETA_BINARY_VJP(name, rule, formula, vjp_a, vjp_b)                \
  std::vector<Tensor> vjp_##name(const Op&, const VjpCtx& c) {             \
    [[maybe_unused]] const Tensor& a = c.x[0];                             \
    [[maybe_unused]] const Tensor& b = c.x[1];                             \
    [[maybe_unused]] const Tensor& y = c.y;                                \
    [[maybe_unused]] const Tensor& g = c.g;                                \
    return {c.needs[0] ? Tensor(vjp_a) : none, c.needs[1] ? Tensor(vjp_b) : none}; \
  }
THETA_BINARY_OPS(THETA_BINARY_VJP)
#undef THETA_BINARY_VJP

#define THETA_UNARY_DEF(name, ...) \
  const Op op_##name{#name, {1, 1}, int(UnaryKind::name), &infer_unary, &forward_unary, &vjp_##name};
THETA_UNARY_OPS(THETA_UNARY_DEF)
#undef THETA_UNARY_DEF
#define THETA_BINARY_DEF(name, ...) \
  const Op op_##name{#name, {2, 2}, int(BinaryKind::name), &infer_binary, &forward_binary, &vjp_##name};
THETA_BINARY_OPS(THETA_BINARY_DEF)
#undef THETA_BINARY_DEF

// where(c, a, b) = c ? a : b
const Op op_where{
    "where", {3, 3}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs&) {
      return Meta{promote_types(in[1].dtype, in[2].dtype), broadcast_shapes(op, in)};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
      Storage y = alloc_storage(out.dtype, out.shape, in[0]->device());
      Operands operand;
      backend_for(y.device()).where(operand(*in[0], DType::boolean, out.shape), operand(*in[1], out.dtype, out.shape),
                                    operand(*in[2], out.dtype, out.shape), y);
      return y;
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      return {none, c.needs[1] ? where(c.x[0], c.g, 0.0) : none, c.needs[2] ? where(c.x[0], 0.0, c.g) : none};
    }};

// y = x converted to attrs.dtype; gradients flow back between float types only.
const Op op_cast{
    "cast", {1, 1}, 0, [](const Op&, const std::vector<Meta>& in, const Attrs& a) { return Meta{a.dtype, in[0].shape}; },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
      return in[0]->dtype == a.dtype ? *in[0] : contiguous_as(*in[0], a.dtype);
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> {
      DType d = c.x[0].dtype();
      return {is_floating(d) && is_floating(c.g.dtype()) ? cast(c.g, d) : none};
    }};

// y = x, with no gradient
const Op op_stop_gradient{
    "stop_gradient", {1, 1}, 0, [](const Op&, const std::vector<Meta>& in, const Attrs&) { return in[0]; },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta&) { return *in[0]; }, nullptr};

// y = x on attrs.device. NOTE: the gradient goes back to the device x had when recorded
// (the CPU for a placeholder).
const Op op_to{
    "to", {1, 1}, 0, [](const Op&, const std::vector<Meta>& in, const Attrs&) { return in[0]; },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
      return transfer(*in[0], a.device);
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {c.g.to(c.x[0].device())}; }};

}  // namespace

const Op& to_op() { return op_to; }
const Op& where_op() { return op_where; }

const Op& unary_op(UnaryKind k) {
  static const Op* const table[] = {
#define THETA_PTR(name, ...) &op_##name,
      THETA_UNARY_OPS(THETA_PTR)
#undef THETA_PTR
  };
  return *table[int(k)];
}

const Op& binary_op(BinaryKind k) {
  static const Op* const table[] = {
#define THETA_PTR(name, ...) &op_##name,
      THETA_BINARY_OPS(THETA_PTR)
#undef THETA_PTR
  };
  return *table[int(k)];
}

const Op& stop_gradient_op() { return op_stop_gradient; }
const Op& cast_op() { return op_cast; }

Tensor unary(UnaryKind k, const Tensor& x) { return apply(unary_op(k), {x}); }

Tensor binary(BinaryKind k, const Tensor& a, const Tensor& b) { return apply(binary_op(k), {a, b}); }

namespace {
// A small direct-mapped cache of values made from a C++ number and a dtype, kept per thread
// (`y = y + 1.0` in a loop makes its 1.0 once).
template <class V, std::size_t Size>
class NumberCache {
 public:
  template <class Make>
  const V& get(double v, DType dtype, Make make) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    Entry& e = entries_[((bits ^ (bits >> 29) ^ std::uint64_t(dtype)) * 0x9E3779B97F4A7C15ull >> 32) % Size];
    if (!e.set || e.bits != bits || e.dtype != dtype) e = {bits, dtype, make(), true};
    return e.value;
  }

 private:
  struct Entry {
    std::uint64_t bits = 0;
    DType dtype = DType::boolean;
    V value{};
    bool set = false;
  };
  Entry entries_[Size];
};
}  // namespace

Tensor scalar_const(double v, DType dtype) {
  // The values of 0-d constants (immutable, so new nodes may share one).
  thread_local NumberCache<Storage, 32> values;
  return make_constant(values.get(v, dtype, [&] {
    Storage s = alloc_storage(dtype, {}, th::cpu());
    cpu_backend().fill(s, v);
    return s;
  }));
}

Tensor weak_scalar(double v, const Tensor& t) {
  DType d = node_of(t, "scalar").dtype;
  // (an integer value keeps an integer tensor's dtype; NaN, infinities and values beyond int64
  // are not integers, and converting them to one would be undefined)
  const bool integral = std::isfinite(v) && std::fabs(v) < 9.2e18 && v == std::trunc(v);
  if (!is_floating(d)) d = integral ? (d == DType::boolean ? DType::int64 : d) : floatX();
  // The constant nodes themselves: a weak scalar is only ever an operand (never handed to
  // the user, so never renamed or marked for recording), and one node may serve any number
  // of graphs.
  thread_local NumberCache<Tensor, 16> nodes;
  return nodes.get(v, d, [&] { return scalar_const(v, d); });
}

}  // namespace th::detail

namespace th {

using detail::binary;
using detail::BinaryKind;
using detail::unary;
using detail::UnaryKind;
using detail::weak_scalar;

#define THETA_UNARY_PUBLIC(name, ...) \
  Tensor name(const Tensor& x) { return unary(UnaryKind::name, x); }
THETA_UNARY_OPS(THETA_UNARY_PUBLIC)
#undef THETA_UNARY_PUBLIC

Tensor operator-(const Tensor& a) { return neg(a); }

#define THETA_BINARY_PUBLIC(sym, kind)                                                           \
  Tensor sym(const Tensor& a, const Tensor& b) { return binary(BinaryKind::kind, a, b); }        \
  Tensor sym(const Tensor& a, double b) { return binary(BinaryKind::kind, a, weak_scalar(b, a)); } \
  Tensor sym(double a, const Tensor& b) { return binary(BinaryKind::kind, weak_scalar(a, b), b); }
THETA_BINARY_PUBLIC(operator+, add)
THETA_BINARY_PUBLIC(operator-, sub)
THETA_BINARY_PUBLIC(operator*, mul)
THETA_BINARY_PUBLIC(operator/, div)
THETA_BINARY_PUBLIC(pow, pow)
THETA_BINARY_PUBLIC(maximum, maximum)
THETA_BINARY_PUBLIC(minimum, minimum)
THETA_BINARY_PUBLIC(operator<, lt)
THETA_BINARY_PUBLIC(operator<=, le)
THETA_BINARY_PUBLIC(operator>, gt)
THETA_BINARY_PUBLIC(operator>=, ge)
THETA_BINARY_PUBLIC(operator==, eq)
THETA_BINARY_PUBLIC(operator!=, ne)
#undef THETA_BINARY_PUBLIC

Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) { return detail::apply(detail::op_where, {c, a, b}); }
Tensor where(const Tensor& c, const Tensor& a, double b) { return where(c, a, weak_scalar(b, a)); }
Tensor where(const Tensor& c, double a, const Tensor& b) { return where(c, weak_scalar(a, b), b); }
Tensor where(const Tensor& c, double a, double b) {
  return where(c, detail::scalar_const(a, floatX()), detail::scalar_const(b, floatX()));
}

Tensor cast(const Tensor& x, DType dtype) {
  detail::Attrs a;
  a.dtype = dtype;
  return detail::apply(detail::op_cast, {x}, std::move(a));
}

Tensor stop_gradient(const Tensor& x) { return detail::apply(detail::op_stop_gradient, {x}); }

}  // namespace th

namespace th {

// Tensor::to applies the `to` op (a transfer on the tape), so it lives with the op.
Tensor Tensor::to(Device device) const {
  const detail::Node& n = detail::node_of(*this, "to");
  if (n.value && n.value->device() == device) return *this;
  const std::string from = n.value ? n.value->device().str() : std::string("its device");
  if (device.type == Device::Type::cuda && (device.index < 0 || device.index >= detail::cuda_device_count()))
    throw DeviceError("to: cannot move a tensor" + (n.name.empty() ? std::string() : " '" + n.name + "'") + " from " +
                      from + " to " + device.str() +
                      (cuda_available() ? " (" + std::to_string(detail::cuda_device_count()) + " CUDA devices present)"
                                        : " (no CUDA device is available)"));
  detail::Attrs a;
  a.device = device;
  return detail::apply(detail::to_op(), {*this}, std::move(a));
}

}  // namespace th
