// Operations with several outputs (qr, svd, eigh, slogdet, topk, split, batch normalization's
// training step, scan): one step computes all of them into a tuple, and each output is a
// `part` step reading it (a view, no copy). th::grad gathers the gradients of a tuple's parts
// and hands them to its op's VJP at once, so the op's backward rule also runs once.
#include "ops/op.hpp"

namespace th::detail {

namespace {

void free_tuple(void* p, std::size_t) { delete static_cast<std::vector<Storage>*>(p); }

Meta infer_part(const Op&, const std::vector<Meta>&, const Attrs& a) { return {a.dtype, a.shape}; }

Storage forward_part(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  const Storage& s = tuple_part(op, *in[0], std::size_t(a.part));
  if (s.dtype != a.dtype || s.shape.size() != a.shape.size())  // (a hostile saved file)
    throw ValueError(std::string(op.name) + ": output " + std::to_string(a.part) + " is " + dtype_name(s.dtype) + " " +
                     shape_str(s.shape) + ", the step says " + dtype_name(a.dtype) + " " + shape_str(a.shape));
  return s;
}

// (a part's gradient is gathered by th::grad and given to its tuple's op)
std::vector<Tensor> vjp_part(const Op&, const VjpCtx&) { return {Tensor()}; }

const Op op_part{"part", {1, 1}, 0, &infer_part, &forward_part, &vjp_part, ~0u};

Tensor part(const Tensor& tuple, std::size_t i, const Meta& m) {
  Attrs a;
  a.part = std::int64_t(i);
  a.dtype = m.dtype;
  a.shape = m.shape;
  return apply(op_part, {tuple}, std::move(a));
}

std::vector<Meta> static_metas(const std::vector<Tensor>& ts) {
  std::vector<Meta> m;
  m.reserve(ts.size());
  for (const Tensor& t : ts) m.push_back(meta_of(t));
  return m;
}

}  // namespace

Storage make_tuple(std::vector<Storage> parts) {
  auto b = std::make_shared<Buffer>();
  b->data = new std::vector<Storage>(std::move(parts));
  b->bytes = 0;
  b->device = th::cpu();
  b->free_fn = &free_tuple;
  Storage s;
  s.buf = std::move(b);
  s.dtype = DType::float64;
  s.shape = {0};
  s.strides = {1};
  return s;
}

Meta infer_tuple(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  op.parts(op, in, a);
  return {DType::float64, {0}};
}

bool is_tuple(const Storage& s) { return s.buf && s.buf->free_fn == &free_tuple; }

const Storage& tuple_part(const Op& op, const Storage& t, std::size_t i) {
  if (!is_tuple(t)) throw ValueError(std::string(op.name) + ": the operand is not the result of an op with several outputs");
  const auto& parts = *static_cast<const std::vector<Storage>*>(t.buf->data);
  if (i >= parts.size()) throw ValueError(std::string(op.name) + ": no output " + std::to_string(i));
  return parts[i];
}

const Op& part_op() { return op_part; }

bool is_part(const Op& op) { return &op == &op_part || &op == &scan_part_op(); }

std::vector<Tensor> apply_parts(const Op& op, std::vector<Tensor> inputs, Attrs attrs) {
  std::vector<Meta> outs;
  try {
    outs = op.parts(op, static_metas(inputs), attrs);
  } catch (const Error&) {
    if (!attrs.called) throw;
    const Op named{Op::Unlisted{}, attrs.called, op.infer, op.forward, op.code, op.parts};  // the user's name
    named.parts(named, static_metas(inputs), attrs);
    throw;
  }
  const Tensor tuple = apply(op, std::move(inputs), std::move(attrs));
  std::vector<Tensor> r;
  r.reserve(outs.size());
  for (std::size_t i = 0; i < outs.size(); ++i) r.push_back(part(tuple, i, outs[i]));
  return r;
}

std::vector<Tensor> outputs_of(const Op& op, const VjpCtx& c) {
  const std::vector<Meta> outs = op.parts(op, static_metas(c.x), c.attrs);
  std::vector<Tensor> r;
  r.reserve(outs.size());
  for (std::size_t i = 0; i < outs.size(); ++i) r.push_back(part(c.y, i, outs[i]));
  return r;
}

const Tensor& part_grad(const VjpCtx& c, std::size_t i) {
  static const Tensor none;
  return c.parts && i < c.parts->size() ? (*c.parts)[i] : none;
}

}  // namespace th::detail
