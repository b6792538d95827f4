// apply(): the one place an operation is run eagerly or recorded; error text and the
// shape helpers every op's rule shares.
#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>

#include "core/backend.hpp"
#include "ops/op.hpp"
#include "theta/config.hpp"

namespace th::detail {

Meta meta_of(const Tensor& t) {
  const Node& n = *t.node();
  return {n.dtype, n.shape, n.name};
}

std::string display_name(const Node& n, int depth) {
  if (!n.name.empty() || !n.op || depth == 0) return n.name;
  std::string r = std::string(n.op->name) + "(";
  for (std::size_t i = 0; i < n.inputs.size(); ++i) {
    std::string in = display_name(*n.inputs[i].node(), depth - 1);
    r += (i ? ", " : "") + (in.empty() ? std::string("?") : in);
  }
  return r + ")";
}

Meta meta_of(const Storage& s, std::string_view name) { return {s.dtype, s.shape, name}; }

Storage run_op(const Op& op, const std::vector<const Storage*>& in, const std::vector<Meta>& metas,
               const Attrs& a, Meta* inferred) {
  // An op runs where its operands live. A 0-d operand on the CPU (a C++ number, a scalar
  // constant) goes with the others, as in PyTorch, and so may the op's any_device operands
  // (indices, shape-only operands); any other mix is an error.
  std::size_t lead = in.size();
  bool on_gpu = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const Device d = in[i]->device();
    on_gpu = on_gpu || d.type != Device::Type::cpu;
    if ((op.any_device >> i & 1u) || (d.type == Device::Type::cpu && in[i]->shape.empty())) continue;
    if (lead == in.size()) lead = i;
    else if (d != in[lead]->device())
      throw DeviceError(message(op, "operands live on different devices, " + in[lead]->device().str() + " and " +
                                        d.str(), metas));
  }
  Meta out;
  try {
    out = op.infer(op, metas, a);
  } catch (const Error&) {
    if (!a.called) throw;
    const Op named{Op::Unlisted{}, a.called, op.infer, op.forward, op.code, op.parts};  // the same rule, the user's name
    named.infer(named, metas, a);
    throw;
  }
  if (inferred) *inferred = out;
  if (!on_gpu || lead == in.size()) return op.forward(op, in, a, out);
  std::vector<Storage> moved(in.size());
  std::vector<const Storage*> here(in);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (!(op.any_device >> i & 1u) && in[i]->device() != in[lead]->device())
      here[i] = &(moved[i] = transfer(*in[i], in[lead]->device()));
  return op.forward(op, here, a, out);
}

struct OperandScratch::Impl {
  std::vector<std::vector<Meta>> metas_of_arity;  // sized once per arity: shapes assigned in place
  std::vector<const Storage*> values;
};

namespace {
thread_local std::deque<OperandScratch::Impl> t_scratch;  // a deque: leased entries never move
thread_local std::size_t t_depth = 0;
}  // namespace

OperandScratch::OperandScratch() {
  if (t_depth == t_scratch.size()) t_scratch.emplace_back();
  s_ = &t_scratch[t_depth++];
  s_->values.clear();
}

OperandScratch::~OperandScratch() { --t_depth; }

std::vector<Meta>& OperandScratch::metas(std::size_t n) {
  if (s_->metas_of_arity.size() <= n) s_->metas_of_arity.resize(n + 1);
  s_->metas_of_arity[n].resize(n);
  return s_->metas_of_arity[n];
}

std::vector<const Storage*>& OperandScratch::values() { return s_->values; }

namespace {
// m := n's meta, its shape assigned into the vector m already has (a reused scratch meta).
void assign_meta(Meta& m, const Node& n) {
  m.dtype = n.dtype;
  m.shape = n.shape;
  m.name = n.name;
}
}  // namespace

std::vector<Meta>& scratch_metas(OperandScratch& scratch, const Op& op,
                                 std::initializer_list<std::reference_wrapper<const Tensor>> ts) {
  std::vector<Meta>& m = scratch.metas(ts.size());
  std::size_t i = 0;
  for (const Tensor& t : ts) assign_meta(m[i++], node_of(t, op.name));
  return m;
}

Tensor apply(const Op& op, std::vector<Tensor> inputs, Attrs attrs) {
  OperandScratch scratch;
  std::vector<Meta>& metas = scratch.metas(inputs.size());
  bool symbolic = false, record = false, text = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Node& n = node_of(inputs[i], op.name);
    assign_meta(metas[i], n);
    symbolic = symbolic || n.symbolic;
    record = record || n.recorded;
    text = text || n.dtype == DType::string;
  }
  if (text && !takes_text(op))
    throw TypeError(message(op, "takes numbers, not text (a string tensor converts with astype)", metas));
  auto node = new_node();
  if (symbolic) {
    Meta m = op.infer(op, metas, attrs);
    node->dtype = m.dtype;
    node->shape = std::move(m.shape);
  } else {
    std::vector<const Storage*>& values = scratch.values();
    // Shared values are copied under their lock (a function call may replace them). Sized
    // up front (pointers into it are kept); empty, and so free, for the usual operands.
    std::vector<Storage> snapshots;
    const auto shared = std::count_if(inputs.begin(), inputs.end(),
                                      [](const Tensor& t) { return t.node()->kind == NodeKind::shared; });
    if (shared) snapshots.reserve(std::size_t(shared));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Node& n = *inputs[i].node();
      if (n.kind == NodeKind::shared) {
        std::lock_guard<std::mutex> lock(shared_values_mutex());
        snapshots.push_back(*n.value);
        values.push_back(&snapshots.back());
      } else {
        values.push_back(&*n.value);
      }
      metas[i].shape = values.back()->shape;  // NOTE: run on the value's shape (a shared's static one is open)
    }
    node->value = run_op(op, values, metas, attrs);
    if (config().mode != Mode::fast) check_finite(op, *node->value, metas);
    node->dtype = node->value->dtype;
    node->shape = node->value->shape;
  }
  if (symbolic || record) {
    node->kind = NodeKind::op;
    node->op = &op;
    node->inputs = std::move(inputs);
    node->attrs = std::move(attrs);
    node->recorded = true;
    node->symbolic = symbolic;
  }
  return Tensor(std::move(node));
}

void check_finite(const Op& op, const Storage& out, const std::vector<Meta>& metas) {
  if (!is_floating(out.dtype)) return;
  const Storage c = contiguous_as(transfer(out, th::cpu()), DType::float64);
  const double* d = c.data<double>();
  for (std::int64_t i = 0; i < c.size(); ++i)
    if (!std::isfinite(d[i]))
      throw ValueError(message(op,
                               std::string("produced ") + (std::isnan(d[i]) ? "NaN" : "Inf") + " at flat index " +
                                   std::to_string(i) + " of output shape " + shape_str(out.shape) + " (nan_guard mode)",
                               metas));
}

Storage on_host(const Storage& s, DType dtype) { return contiguous_as(transfer(s, th::cpu()), dtype); }

Storage to_device(Storage y, Device device) { return device == th::cpu() ? y : transfer(y, device); }

Tensor to_float(const Tensor& x, const char* what) {
  return is_floating(node_of(x, what).dtype) ? x : cast(x, floatX());
}

std::int64_t shape_operand_rank(const Op& op, const Meta& m, const std::vector<Meta>& in) {
  if (m.shape.size() != 1 || m.shape[0] < 0 || is_floating(m.dtype) || m.dtype == DType::boolean)
    throw_shape(op, "a shape operand must be an integer vector of known length (th::shape_of gives one)", in);
  return m.shape[0];
}

Shape shape_operand_values(const Op& op, const Storage& s, const std::vector<Meta>& in) {
  const Storage h = on_host(s, DType::int64);
  Shape v(h.data<std::int64_t>(), h.data<std::int64_t>() + h.size());
  for (auto d : v)
    if (d < -1) throw_shape(op, "negative dimension in the shape " + shape_str(v), in);
  return v;
}

// ---- error text --------------------------------------------------------------------------
std::string describe(const std::vector<Meta>& in) {
  std::string r;
  bool named = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i) r += i + 1 == in.size() ? " and " : ", ";
    r += shape_str(in[i].shape) + " " + dtype_name(in[i].dtype);
    named = named || !in[i].name.empty();
  }
  if (named) {
    r += " [";
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (i) r += ", ";
      r += in[i].name.empty() ? std::string("?") : std::string(in[i].name);
    }
    r += "]";
  }
  return r;
}

std::string message(const Op& op, const std::string& what, const std::vector<Meta>& in) {
  return std::string(op.name) + ": " + what + ": " + describe(in);
}

void throw_shape(const Op& op, const std::string& what, const std::vector<Meta>& in) {
  throw ShapeError(message(op, what, in));
}

void throw_type(const Op& op, const std::string& what, const std::vector<Meta>& in) {
  throw TypeError(message(op, what, in));
}

// ---- shape helpers -----------------------------------------------------------------------
long broadcast_into(Shape& acc, const Shape& s) {
  if (s.size() > acc.size()) acc.insert(acc.begin(), s.size() - acc.size(), 1);
  const std::size_t lead = acc.size() - s.size();
  for (std::size_t i = 0; i < s.size(); ++i) {
    std::int64_t& o = acc[lead + i];
    const std::int64_t d = s[i];
    if (d == 1 || d == o) continue;
    if (o == 1) o = d;
    else if (d == -1 || o == -1) o = (d == -1) ? o : d;  // a known size wins; the run checks the unknown one
    else return long(i);
  }
  return -1;
}

Shape broadcast_shapes(const Op& op, const std::vector<Meta>& in) {
  Shape out;
  for (const Meta& m : in) {
    const long bad = broadcast_into(out, m.shape);
    if (bad >= 0)
      throw_shape(op, "shapes cannot be broadcast together: " +
                          std::to_string(out[out.size() - m.shape.size() + std::size_t(bad)]) + " vs " +
                          std::to_string(m.shape[std::size_t(bad)]) + " (dim " + std::to_string(bad) + " of operand " +
                          std::to_string(&m - in.data()) + ")",
                  in);
  }
  return out;
}

std::int64_t norm_axis(const Op& op, std::int64_t axis, std::int64_t ndim, const std::vector<Meta>& in) {
  if (axis < -ndim || axis >= ndim)
    throw_shape(op, "axis " + std::to_string(axis) + " is out of range for " + std::to_string(ndim) + "-d input", in);
  return axis < 0 ? axis + ndim : axis;
}

std::vector<std::int64_t> norm_axes(const Op& op, const Axes& axes, std::int64_t ndim, const std::vector<Meta>& in) {
  std::vector<std::int64_t> r;
  if (axes.all) {
    for (std::int64_t i = 0; i < ndim; ++i) r.push_back(i);
    return r;
  }
  for (auto a : axes.axes) r.push_back(norm_axis(op, a, ndim, in));
  std::sort(r.begin(), r.end());
  if (std::adjacent_find(r.begin(), r.end()) != r.end()) throw_shape(op, "repeated axis", in);
  return r;
}

}  // namespace th::detail
