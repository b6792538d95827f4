// An ONNX graph as theta's (import.hpp): inputs, initializers, and each node through the
// converter of its op type below. A converter reads its node's attributes through Node,
// which refuses attributes the converter does not know, so an unsupported one is an error
// naming the node, its op type and the attribute instead of a silently different result.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <unordered_map>

#include "core/node.hpp"
#include "onnx/import.hpp"
#include "ops/op.hpp"
#include "theta/autodiff.hpp"
#include "theta/control.hpp"
#include "theta/error.hpp"
#include "theta/linalg.hpp"
#include "theta/nn.hpp"
#include "theta/ops.hpp"

namespace th::onnx::detail {

namespace {

namespace pb = ::onnx;
using Ints = std::vector<std::int64_t>;

// One node being converted: its inputs (empty tensors for omitted optional ones), its
// attributes, the opset of its domain.
// The values visible to a node, by name. An ONNX sequence is a list of tensors known when the
// model loads (its elements may be symbolic): SequenceConstruct, SequenceInsert, SplitToSequence
// and the others only rearrange that list, so theta's graph sees the tensors themselves.
struct Env {
  std::unordered_map<std::string, Tensor> values;
  std::unordered_map<std::string, std::vector<Tensor>> sequences;
  // ONNX element types where the file states them (graph inputs, initializers, Constants):
  // theta widens uint8 and int8 alike to int32, and a quantized zero point's type is its range
  std::unordered_map<std::string, int> types;
};

// t's sizes as the graph knows them now: a value's, or a symbolic tensor's static ones (-1 open).
Shape static_shape_of(const Tensor& t) { return t.is_symbolic() ? th::detail::meta_of(t).shape : t.shape(); }

struct Node {
  const pb::NodeProto& proto;
  std::vector<Tensor> in;
  std::vector<const std::vector<Tensor>*> seq;  // input k's sequence, when it is one (in[k] is empty then)
  std::int64_t opset;
  std::string model_dir;
  const Env* env = nullptr;  // its scope: what a subgraph (If, Loop, Scan) may read from outside
  int depth = 0;             // subgraphs it sits in

  std::string label() const {
    return "onnx::load: node '" + (proto.name().empty() ? (proto.output_size() ? proto.output(0) : std::string("?")) : proto.name()) +
           "' (" + proto.op_type() + ")";
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(label() + ": " + what); }

  // Refuses attributes outside `known` (the converter's): never a silent wrong answer.
  void known(std::initializer_list<const char*> names) const {
    for (const auto& a : proto.attribute()) {
      bool ok = false;
      for (const char* n : names) ok = ok || a.name() == n;
      if (!ok) fail("attribute '" + a.name() + "' is not supported");
    }
  }
  const pb::AttributeProto* attr(const char* name) const {
    for (const auto& a : proto.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  bool has(const char* name) const { return attr(name) != nullptr; }
  std::int64_t i(const char* name, std::int64_t def) const {
    const auto* a = attr(name);
    return a ? a->i() : def;
  }
  double f(const char* name, double def) const {
    const auto* a = attr(name);
    return a ? double(a->f()) : def;
  }
  std::string s(const char* name, const std::string& def) const {
    const auto* a = attr(name);
    return a ? a->s() : def;
  }
  Ints ints(const char* name, Ints def = {}) const {
    const auto* a = attr(name);
    return a ? Ints(a->ints().begin(), a->ints().end()) : def;
  }
  // Input k, which must be there.
  const Tensor& x(std::size_t k) const {
    if (k < seq.size() && seq[k]) fail("input " + std::to_string(k) + " is a sequence; a tensor is expected");
    if (k >= in.size() || !in[k]) fail("input " + std::to_string(k) + " is missing");
    return in[k];
  }
  const std::vector<Tensor>& sequence(std::size_t k) const {
    if (k >= seq.size() || !seq[k]) fail("input " + std::to_string(k) + " is not a sequence");
    return *seq[k];
  }
  bool given(std::size_t k) const { return k < in.size() && in[k]; }
  // Input k's ONNX element type where the file states it, else 0 (UNDEFINED).
  int elem_type(std::size_t k) const {
    if (!env || k >= std::size_t(proto.input_size())) return 0;
    const auto it = env->types.find(proto.input(int(k)));
    return it == env->types.end() ? 0 : it->second;
  }
  // Input k's values, which theta needs when the model loads (a shape, axes, pads).
  Ints values(std::size_t k) const {
    const Tensor& t = x(k);
    if (t.is_symbolic())
      fail("input " + std::to_string(k) + " ('" + proto.input(int(k)) +
           "') must be known when the model loads (a constant or an initializer): theta builds the graph from it");
    return t.to_vector<std::int64_t>();
  }
  // Input k is a list computed in the graph (a Shape's output): symbolic, of a known length.
  bool computed_list(std::size_t k) const {
    if (!given(k) || !in[k].is_symbolic() || in[k].ndim() != 1) return false;
    return th::detail::meta_of(in[k]).shape[0] >= 0;
  }
  double scalar(std::size_t k) const {
    const Tensor& t = x(k);
    if (t.is_symbolic()) fail("input " + std::to_string(k) + " must be known when the model loads");
    return t.to_vector<double>().at(0);
  }
  std::int64_t rank(std::size_t k = 0) const { return x(k).ndim(); }
  std::int64_t axis(std::int64_t a, std::int64_t r) const {
    if (a < -r || a >= std::max<std::int64_t>(r, 1)) fail("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
    return a < 0 ? a + r : a;
  }
  // x's shape when the model loads: a concrete value's, or the sizes a graph input declares
  // (converters whose result needs them).
  Shape shape(std::size_t k, const char* why) const {
    if (const Shape s = static_shape(k); !s.empty() || x(k).ndim() == 0) {
      bool known = true;
      for (auto d : s) known = known && d >= 0;
      if (known) return s;
    }
    fail(std::string("needs the shape of input ") + std::to_string(k) + " when the model loads (" + why + ")");
  }
  Shape static_shape(std::size_t k) const { return static_shape_of(x(k)); }
  // This node (its op, attributes, scope) on other inputs, all tensors: a converter that
  // prepares operands (casts, zero points) and hands them to another converter.
  Node on(std::vector<Tensor> inputs) const {
    Node m = *this;
    m.seq.assign(inputs.size(), nullptr);
    m.in = std::move(inputs);
    return m;
  }
};

// The most elements a tensor that a node makes from values in the file may have (ConstantOfShape,
// Expand, Tile, Range): a hostile file cannot make the loader allocate without bound.
constexpr std::int64_t kMaxMadeElements = std::int64_t(1) << 27;

Shape made_shape(const Node& n, const Ints& s) {
  std::int64_t count = 1;
  for (auto d : s) {
    if (d < 0) n.fail("a negative size " + std::to_string(d) + " in the shape");
    if (d > 0 && count > kMaxMadeElements / d) n.fail("the shape asks for more than 2^27 elements");
    count *= d;
  }
  return Shape(s.begin(), s.end());
}

using Converter = std::function<std::vector<Tensor>(const Node&)>;

void run_nodes(const pb::GraphProto& g, Env& env, std::int64_t opset, const std::string& model_dir, int depth);
// A subgraph (If's branches, Loop's and Scan's bodies) on `inputs`, reading the node's scope:
// its outputs.
std::vector<Tensor> run_body(const Node& n, const pb::GraphProto& body, const std::vector<Tensor>& inputs);
const pb::GraphProto& graph_attr(const Node& n, const char* name) {
  const auto* a = n.attr(name);
  if (!a || !a->has_g()) n.fail("attribute '" + std::string(name) + "' (a graph) is missing");
  return a->g();
}

std::vector<Tensor> one(Tensor t) { return {std::move(t)}; }

// Reduction axes: the attribute (before opset `input_from`), or input 1 after.
Axes reduce_axes(const Node& n, std::int64_t input_from, bool& noop) {
  Ints axes;
  if (n.opset >= input_from) {
    if (n.given(1)) axes = n.values(1);
  } else {
    axes = n.ints("axes");
  }
  noop = axes.empty() && n.i("noop_with_empty_axes", 0) != 0;
  if (axes.empty()) return Axes();
  return Axes(axes);
}

Converter reduction(std::int64_t input_from, std::function<Tensor(const Tensor&, const Axes&, bool)> f) {
  return [input_from, f](const Node& n) {
    n.known({"axes", "keepdims", "noop_with_empty_axes"});
    bool noop = false;
    const Axes ax = reduce_axes(n, input_from, noop);
    if (noop) return one(n.x(0));
    return one(f(n.x(0), ax, n.i("keepdims", 1) != 0));
  };
}

Converter unary(Tensor (*f)(const Tensor&)) {
  return [f](const Node& n) {
    n.known({});
    return one(f(n.x(0)));
  };
}

// Before opset 7, arithmetic broadcast only with broadcast = 1, b's axes placed at `axis` of a
// (default: trailing, numpy's rule).
Converter binary(std::function<Tensor(const Tensor&, const Tensor&)> f) {
  return [f](const Node& n) {
    n.known({"broadcast", "axis"});
    Tensor b = n.x(1);
    if (n.has("axis") && n.i("broadcast", 0) != 0 && b.ndim() < n.rank()) {
      const std::int64_t at = n.axis(n.i("axis", 0), n.rank());
      for (std::int64_t d = at + b.ndim(); d < n.rank(); ++d) b = expand_dims(b, b.ndim());
    }
    return one(f(n.x(0), b));
  };
}

// floor, ceil and round-half-to-even of floats, from the truncation of a cast to int64 (exact
// where |x| < 2^52, and x itself beyond: every float there is an integer; NaN stays NaN).
Tensor integral(const Tensor& x, int mode) {
  const Tensor t = cast(cast(x, DType::int64), x.dtype());  // truncated toward zero
  Tensor r;
  if (mode == 0) r = t - cast(x < t, x.dtype());          // floor
  else if (mode == 1) r = t + cast(x > t, x.dtype());     // ceil
  else {                                                   // round half to even
    const Tensor f = integral(x + 0.5, 0);
    const Tensor tie = (f - x) == 0.5, odd = (f - integral(f * 0.5, 0) * 2.0) != 0.0;
    r = where(tie, where(odd, f - 1.0, f), f);
  }
  return where(abs(x) < 4503599627370496.0, r, x);
}

Converter variadic(std::function<Tensor(const Tensor&, const Tensor&)> f, bool mean = false) {
  return [f, mean](const Node& n) {
    n.known({});
    Tensor acc = n.x(0);
    for (std::size_t k = 1; k < n.in.size(); ++k) acc = f(acc, n.x(k));
    if (mean) acc = acc / double(n.in.size());
    return one(acc);
  };
}

// Softmax-like ops: before opset 13 the input is seen as 2-d, (prod(dims[:axis]), rest).
Converter softmax_like(bool log) {
  return [log](const Node& n) {
    n.known({"axis"});
    const Tensor& x = n.x(0);
    const std::int64_t r = n.rank();
    const std::int64_t a = n.axis(n.i("axis", n.opset >= 13 ? -1 : 1), r);
    auto f = [&](const Tensor& t, std::int64_t ax) { return log ? log_softmax(t, ax) : softmax(t, ax); };
    if (n.opset >= 13 || a == r - 1) return one(f(x, a));
    const Shape s = n.shape(0, "softmax over the trailing axes of an opset < 13 model");
    std::int64_t rows = 1, cols = 1;
    for (std::int64_t d = 0; d < r; ++d) (d < a ? rows : cols) *= s[std::size_t(d)];
    return one(reshape(f(reshape(x, Shape{rows, cols}), 1), s));
  };
}

// Symmetric 2-d padding from ONNX's pads (begin..., end...), or an error.
Padding padding2d(const Node& n, const Ints& pads) {
  if (pads.empty()) return Padding(0, 0);
  if (pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3])
    n.fail("asymmetric pads [" + [&] {
      std::string s;
      for (auto p : pads) s += (s.empty() ? "" : ", ") + std::to_string(p);
      return s;
    }() + "] are not supported");
  return Padding(pads[0], pads[1]);
}

// 1-d convolutions and pooling run as 2-d over a height of 1.
Ints as2d(const Ints& v, std::int64_t fill) {
  if (v.size() == 1) return {fill, v[0]};
  if (v.size() == 2 && fill == 0) return {0, v[0], 0, v[1]};  // pads (begin, end) -> 2-d
  return v;
}

// An attribute list of spatial values: `count` of them (pads: 2 per axis), or absent.
Ints spatial(const Node& n, const char* name, std::size_t count, Ints def) {
  Ints v = n.ints(name, def);
  if (v.empty()) return def;  // (an attribute with no values: as if absent)
  if (v.size() != count)
    n.fail(std::string("attribute '") + name + "' has " + std::to_string(v.size()) + " values, expected " + std::to_string(count));
  return v;
}

void check_auto_pad(const Node& n) {
  const std::string ap = n.s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID") n.fail("auto_pad '" + ap + "' is not supported (give explicit pads)");
}

// x padded along `axis` by `before` and `after` cells, each side one gather (differentiable,
// for symbolic x too): copies of `value` ("constant"), of the edge cells ("edge") or the
// cells mirrored about the edge ("reflect"). Pad's modes, and the zeros or -inf that
// composed convolutions and pooling pad with.
Tensor pad_axis(const Tensor& x, std::int64_t axis, std::int64_t before, std::int64_t after, double value,
                const std::string& mode = "constant") {
  if (axis < 0 || axis >= x.ndim()) throw ShapeError("pad: axis " + std::to_string(axis) + " of a " + std::to_string(x.ndim()) + "-d input");
  if (before == 0 && after == 0) return x;
  Tensor fill;  // constant: one cell's slice of `value` (x's dtype; -inf saturates for integers)
  if (mode == "constant") {
    std::vector<Index> first(std::size_t(axis + 1), all());
    first[std::size_t(axis)] = range(0, 1);
    fill = cast(zeros(shape_of(view(x, first)), DType::float64) + value, x.dtype());
  }
  auto side = [&](std::int64_t k, bool end) {  // the k cells before x (end: after it)
    Ints idx(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < k; ++i)
      idx[std::size_t(i)] = mode == "constant" ? 0 : mode == "edge" ? (end ? -1 : 0) : (end ? -2 - i : k - i);
    return take(fill ? fill : x, tensor(idx, Shape{k}), axis);
  };
  std::vector<Tensor> parts;
  if (before > 0) parts.push_back(side(before, false));
  parts.push_back(x);
  if (after > 0) parts.push_back(side(after, true));
  return concatenate(parts, axis);
}

// A 3-d convolution as 2-d ones over depth slices: for each filter depth tap kd, the input's
// depth positions od * stride + kd * dilation (padded with zeros), batched with N, convolved
// with that tap's 2-d filters, and summed. Needs x's sizes when the model loads.
Tensor conv3d(const Node& n, const Tensor& x, const Tensor& w, const Ints& pads, const Ints& strides, const Ints& dil,
              std::int64_t groups) {
  const Shape xs = n.shape(0, "a 3-d convolution"), ws = n.shape(1, "a 3-d convolution");
  if (ws.size() != 5 || xs.size() != 5) n.fail("a 3-d convolution needs input and filters of rank 5");
  const Ints p = pads.empty() ? Ints(6, 0) : pads;
  for (std::size_t a = 0; a < 3; ++a)
    if (strides[a] <= 0 || dil[a] <= 0) n.fail("strides and dilations must be positive");
  for (auto v : p)
    if (v < 0) n.fail("negative pads are not supported");
  const std::int64_t N = xs[0], C = xs[1], H = xs[3], W = xs[4], KD = ws[2];
  if (KD <= 0) n.fail("the filters have depth 0 (kernel " + shape_str(ws) + ")");
  const Tensor xp = pad_axis(x, 2, p[0], p[3], 0.0);
  const std::int64_t Dp = xs[2] + p[0] + p[3], OD = (Dp - dil[0] * (KD - 1) - 1) / strides[0] + 1;
  if (OD <= 0) n.fail("the filter is deeper than the padded input");
  ConvOptions o;
  o.border_mode = padding2d(n, {p[1], p[2], p[4], p[5]});
  o.subsample = {strides[1], strides[2]};
  o.filter_dilation = {dil[1], dil[2]};
  o.num_groups = groups;
  o.filter_flip = false;
  Tensor acc;
  for (std::int64_t kd = 0; kd < KD; ++kd) {
    const std::int64_t start = kd * dil[0];
    const Tensor slices = view(xp, all(), all(), range(start, start + (OD - 1) * strides[0] + 1, strides[0]));
    const Tensor batch = reshape(transpose(slices, {0, 2, 1, 3, 4}), Shape{N * OD, C, H, W});
    const Tensor y = conv2d(batch, view(w, all(), all(), kd), o);
    acc = acc ? acc + y : y;
  }
  const Shape ys = th::detail::meta_of(acc).shape;  // (known: from x's and w's sizes)
  return transpose(reshape(acc, Shape{N, OD, ys[1], ys[2], ys[3]}), {0, 2, 1, 3, 4});
}

std::vector<Tensor> conv(const Node& n) {
  n.known({"kernel_shape", "pads", "strides", "dilations", "group", "auto_pad"});
  if (n.rank() == 5) check_auto_pad(n);
  Tensor x = n.x(0), w = n.x(1);
  const std::int64_t r = n.rank();
  if (r == 5) {
    spatial(n, "kernel_shape", 3, {});
    Tensor y = conv3d(n, x, w, spatial(n, "pads", 6, {}), spatial(n, "strides", 3, {1, 1, 1}),
                      spatial(n, "dilations", 3, {1, 1, 1}), n.i("group", 1));
    if (n.given(2)) y = y + reshape(n.x(2), Shape{1, -1, 1, 1, 1});
    return one(y);
  }
  if (r != 3 && r != 4) n.fail("only 1-d, 2-d and 3-d convolutions are supported (input of rank " + std::to_string(r) + ")");
  const bool one_d = r == 3;
  if (one_d) x = expand_dims(x, 2), w = expand_dims(w, 2);
  const std::size_t sp = one_d ? 1 : 2;
  spatial(n, "kernel_shape", sp, {});
  Ints pads = spatial(n, "pads", 2 * sp, {}), strides = spatial(n, "strides", sp, Ints(sp, 1)),
       dil = spatial(n, "dilations", sp, Ints(sp, 1));
  const std::string ap = n.s("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {  // the output ceil(in / stride); the odd pad cell at the end or start
    const Shape xs = n.shape(0, "auto_pad SAME's pads"), ws = n.shape(1, "auto_pad SAME's pads");
    pads.assign(2 * sp, 0);
    for (std::size_t i = 0; i < sp; ++i) {
      const std::int64_t in = xs[2 + i], out = (in + strides[i] - 1) / strides[i];
      const std::int64_t total = std::max<std::int64_t>((out - 1) * strides[i] + (ws[2 + i] - 1) * dil[i] + 1 - in, 0);
      pads[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2, pads[sp + i] = total - pads[i];
    }
  }
  if (one_d) pads = pads.empty() ? Ints{} : Ints{0, pads[0], 0, pads[1]}, strides = as2d(strides, 1), dil = as2d(dil, 1);
  if (pads.size() == 4 && (pads[0] != pads[2] || pads[1] != pads[3])) {  // asymmetric: zeros around x first
    for (std::int64_t a = 2; a < 4; ++a) x = pad_axis(x, a, pads[std::size_t(a - 2)], pads[std::size_t(a)], 0.0);
    pads.clear();
  }
  ConvOptions o;
  o.border_mode = padding2d(n, pads);
  o.subsample = {strides[0], strides[1]};
  o.filter_dilation = {dil[0], dil[1]};
  o.num_groups = n.i("group", 1);
  o.filter_flip = false;
  Tensor y = conv2d(x, w, o);
  if (n.given(2)) y = y + reshape(n.x(2), Shape{1, -1, 1, 1});
  if (one_d) y = squeeze(y, Axes(2));
  return one(y);
}

// Transposed convolutions of 1 or 2 spatial axes (1-d as 2-d over a height of 1). Symmetric
// pads go to conv2d_transpose; otherwise (asymmetric pads, output_shape, auto_pad SAME) the
// full output is computed and each spatial axis cut (or zero-padded) to the requested span,
// with ONNX's rule for where the difference goes.
std::vector<Tensor> conv_transpose(const Node& n) {
  n.known({"kernel_shape", "pads", "strides", "dilations", "group", "auto_pad", "output_padding", "output_shape"});
  const std::int64_t r = n.rank();
  if (r != 3 && r != 4)
    n.fail("only 1-d and 2-d transposed convolutions are supported (input of rank " + std::to_string(r) + ")");
  const bool one_d = r == 3;
  const std::size_t sp = one_d ? 1 : 2;
  const std::string ap = n.s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER") n.fail("auto_pad '" + ap + "' is not known");
  Ints k = spatial(n, "kernel_shape", sp, {}), strides = spatial(n, "strides", sp, Ints(sp, 1)),
       dil = spatial(n, "dilations", sp, Ints(sp, 1)), op = spatial(n, "output_padding", sp, Ints(sp, 0)),
       pads = ap == "NOTSET" ? spatial(n, "pads", 2 * sp, Ints(2 * sp, 0)) : Ints(2 * sp, 0);
  const Ints out_shape = spatial(n, "output_shape", sp, {});
  Tensor x = n.x(0), w = n.x(1);
  if (k.empty()) {
    const Shape ws = n.shape(1, "the kernel's sizes");
    k.assign(ws.end() - std::ptrdiff_t(sp), ws.end());
  }
  if (!out_shape.empty() || ap == "SAME_UPPER" || ap == "SAME_LOWER") {  // pads from the output's sizes
    const Shape xs = n.shape(0, "pads that follow from the output's sizes");
    for (std::size_t i = 0; i < sp; ++i) {
      const std::int64_t in = xs[2 + i], full = strides[i] * (in - 1) + op[i] + (k[i] - 1) * dil[i] + 1;
      const std::int64_t want = out_shape.empty() ? in * strides[i] : out_shape[i], total = full - want;
      const std::int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor(total / 2)
      const bool upper = ap == "SAME_UPPER";
      pads[i] = upper ? half : total - half, pads[sp + i] = upper ? total - half : half;
    }
  }
  if (one_d) {
    x = expand_dims(x, 2), w = expand_dims(w, 2);
    strides = as2d(strides, 1), dil = as2d(dil, 1), op = as2d(op, 0), pads = as2d(pads, 0);
  }
  const bool symmetric = pads[0] == pads[2] && pads[1] == pads[3] && pads[0] >= 0 && pads[1] >= 0;
  ConvOptions o;
  o.border_mode = symmetric ? Padding(pads[0], pads[1]) : Padding(0, 0);
  o.subsample = {strides[0], strides[1]};
  o.filter_dilation = {dil[0], dil[1]};
  o.num_groups = n.i("group", 1);
  o.filter_flip = false;
  Tensor y = conv2d_transpose(x, w, o, {op[0], op[1]});
  if (!symmetric)
    for (std::int64_t a = 2; a < 4; ++a) {  // cut the pads (or add zeros where a pad is negative)
      const std::int64_t b = pads[std::size_t(a - 2)], e = pads[std::size_t(a)];
      const std::int64_t len = static_shape_of(y)[std::size_t(a)];
      if (b > 0 || e > 0) {
        if (len < 0) n.fail("needs the output's sizes when the model loads (asymmetric pads)");
        if (std::max<std::int64_t>(b, 0) + std::max<std::int64_t>(e, 0) >= len) n.fail("the pads leave no output");
        std::vector<Index> idx(4, all());
        idx[std::size_t(a)] = range(std::max<std::int64_t>(b, 0), len - std::max<std::int64_t>(e, 0));
        y = view(y, idx);
      }
      y = pad_axis(y, a, std::max<std::int64_t>(-b, 0), std::max<std::int64_t>(-e, 0), 0.0);
    }
  if (n.given(2)) y = y + reshape(n.x(2), Shape{1, -1, 1, 1});
  if (one_d) y = squeeze(y, Axes(2));
  return one(y);
}

// Pooling of any spatial rank and dilation, window tap by window tap: each tap a strided view
// of the padded input (-inf for max, 0 for averages), combined by max or summed; an average
// without the padding divides by the taps that fell inside. Needs x's sizes when it loads.
Tensor pool_by_taps(const Node& n, bool max, const Ints& k, const Ints& pads, const Ints& strides, const Ints& dil) {
  const Shape xs = n.shape(0, "pooling of this rank or dilation");
  const std::size_t sp = k.size();
  for (std::size_t a = 0; a < sp; ++a)
    if (strides[a] <= 0 || dil[a] <= 0) n.fail("strides and dilations must be positive");
  const double inf = std::numeric_limits<double>::infinity();
  Tensor xp = n.x(0), inside = ones(xs, n.x(0).dtype());
  Ints out(sp);
  for (std::size_t a = 0; a < sp; ++a) {
    const std::int64_t ax = std::int64_t(a) + 2, b = pads.empty() ? 0 : pads[a], e = pads.empty() ? 0 : pads[a + sp];
    xp = pad_axis(xp, ax, b, e, max ? -inf : 0.0);
    inside = pad_axis(inside, ax, b, e, 0.0);
    out[a] = (xs[a + 2] + b + e - dil[a] * (k[a] - 1) - 1) / strides[a] + 1;
    if (out[a] <= 0) n.fail("the window is larger than the padded input");
  }
  std::int64_t taps = 1, cells = xs[0] * xs[1];
  for (auto v : k) taps *= v;
  for (auto o : out) cells *= o;
  if (taps * cells > (std::int64_t(1) << 28)) n.fail("the window taps times the output cells exceed 2^28");
  Tensor acc, count;
  for (std::int64_t t = 0; t < taps; ++t) {
    std::vector<Index> idx{all(), all()};
    std::int64_t rest = t;  // the tap's position in the window, the last axis fastest
    std::vector<std::int64_t> pos(sp);
    for (std::size_t a = sp; a-- > 0;) pos[a] = rest % k[a], rest /= k[a];
    for (std::size_t a = 0; a < sp; ++a) {
      const std::int64_t start = pos[a] * dil[a];
      idx.push_back(range(start, start + (out[a] - 1) * strides[a] + 1, strides[a]));
    }
    const Tensor v = view(xp, idx);
    if (max) {
      acc = acc ? maximum(acc, v) : v;
    } else {
      acc = acc ? acc + v : v;
      const Tensor c = view(inside, idx);
      count = count ? count + c : c;
    }
  }
  if (max) return acc;
  return n.i("count_include_pad", 0) ? acc / double(taps) : acc / count;
}

// ---- Resize / Upsample: separable along each resized axis, as ONNX's reference computes it --
// Each output position o of an axis of n inputs maps to a source coordinate (the coordinate
// transformation mode), which gives the taps (nearest: 1, linear: 2, cubic: 4; indices clamped
// to the edge, as the reference pads) and their weights; the axis is then a sum of gathers
// (take) times weights, which differentiates as any other theta expression. Needs the input's
// sizes when the model loads (declared or known).
struct ResizeAxis {
  std::vector<Ints> taps;                    // per tap: the source index of every output position
  std::vector<std::vector<double>> weights;  // per tap: its weight at every output position
  std::vector<char> outside;                 // tf_crop_and_resize: the position is extrapolated
};

ResizeAxis resize_axis(const Node& n, std::int64_t in, std::int64_t out, double scale, double roi_start, double roi_end,
                       const std::string& mode, const std::string& ctm, const std::string& nearest, double A,
                       bool exclude_outside) {
  ResizeAxis r;
  const int taps = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4;
  r.taps.assign(std::size_t(taps), Ints(std::size_t(out)));
  r.weights.assign(std::size_t(taps), std::vector<double>(std::size_t(out)));
  r.outside.assign(std::size_t(out), 0);
  const double out_w = scale * double(in);  // (the reference's output width: fractional for scales)
  for (std::int64_t o = 0; o < out; ++o) {
    const double x = double(o);
    double s;
    if (ctm == "half_pixel") s = (x + 0.5) / scale - 0.5;
    else if (ctm == "pytorch_half_pixel") s = out_w > 1 ? (x + 0.5) / scale - 0.5 : -0.5;
    else if (ctm == "align_corners") s = out_w == 1 ? 0 : x * double(in - 1) / (out_w - 1);
    else if (ctm == "asymmetric") s = x / scale;
    else if (ctm == "tf_half_pixel_for_nn") s = (x + 0.5) / scale;
    else if (ctm == "tf_crop_and_resize") {
      s = out_w == 1 ? (roi_end - roi_start) * double(in - 1) / 2 : x * (roi_end - roi_start) * double(in - 1) / (out_w - 1);
      s += roi_start * double(in - 1);
      r.outside[std::size_t(o)] = s < 0 || s > double(in - 1);
    } else {
      n.fail("coordinate_transformation_mode '" + ctm + "' is not supported");
    }
    const double base = std::floor(s), ratio = s - base;
    const auto clamp = [&](double i) { return std::int64_t(std::min(std::max(i, 0.0), double(in - 1))); };
    if (mode == "nearest") {
      bool up = false;  // the tap after base, else base itself
      if (ratio != 0) {
        if (nearest == "round_prefer_floor") up = ratio > 0.5;
        else if (nearest == "round_prefer_ceil") up = ratio >= 0.5;
        else if (nearest == "floor") up = false;
        else if (nearest == "ceil") up = true;
        else n.fail("nearest_mode '" + nearest + "' is not supported");
      }
      r.taps[0][std::size_t(o)] = clamp(base + (up ? 1 : 0));
      r.weights[0][std::size_t(o)] = 1;
      continue;
    }
    std::vector<double> c;
    if (mode == "linear") {
      c = {1 - ratio, ratio};
    } else {
      const double t = ratio, u = 1 - ratio;
      c = {((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A, ((A + 2) * t - (A + 3)) * t * t + 1,
           ((A + 2) * u - (A + 3)) * u * u + 1, ((A * (u + 1) - 5 * A) * (u + 1) + 8 * A) * (u + 1) - 4 * A};
    }
    const double first = mode == "linear" ? base : base - 1;
    if (exclude_outside) {  // taps outside the input get no weight; the others share it all
      double sum = 0;
      for (int k = 0; k < taps; ++k) {
        const double i = first + k;
        if (i < 0 || i > double(in - 1)) c[std::size_t(k)] = 0;
        sum += c[std::size_t(k)];
      }
      for (double& v : c) v = sum != 0 ? v / sum : v;
    }
    for (int k = 0; k < taps; ++k) {
      r.taps[std::size_t(k)][std::size_t(o)] = clamp(first + k);
      r.weights[std::size_t(k)][std::size_t(o)] = c[std::size_t(k)];
    }
  }
  return r;
}

Tensor resize(const Node& n, const Tensor& x, const std::vector<double>& scales_in, Ints sizes, const std::vector<double>& roi,
              const std::string& mode, const std::string& ctm, const std::string& nearest, double A, bool exclude_outside,
              double extrapolation) {
  if (mode != "nearest" && mode != "linear" && mode != "cubic") n.fail("mode '" + mode + "' is not supported");
  const Shape xs = n.shape(0, "Resize computes its taps from the input's sizes");
  const std::size_t r = xs.size();
  std::vector<double> scales = scales_in;
  if (!sizes.empty()) {
    if (sizes.size() != r) n.fail("sizes must have one value per input axis");
    scales.assign(r, 1.0);
    for (std::size_t a = 0; a < r; ++a) scales[a] = xs[a] ? double(sizes[a]) / double(xs[a]) : 1.0;
  } else {
    if (scales.size() != r) n.fail("scales must have one value per input axis (or give sizes)");
    sizes.assign(r, 0);
    for (std::size_t a = 0; a < r; ++a) {
      if (!(scales[a] > 0) || scales[a] > 1e6) n.fail("scales must be positive");
      sizes[a] = std::int64_t(scales[a] * double(xs[a]));
    }
  }
  double total = 1;
  for (auto v : sizes) {
    if (v < 0 || v > kMaxMadeElements) n.fail("an output size of " + std::to_string(v) + " is out of range");
    total *= double(v);
  }
  if (total > double(kMaxMadeElements)) n.fail("the output would have more than 2^27 elements");
  if (ctm == "tf_crop_and_resize" && roi.size() != 2 * r) n.fail("tf_crop_and_resize needs roi with 2 values per axis");
  Tensor y = x;
  Tensor outside;  // tf_crop_and_resize: positions to extrapolate
  for (std::size_t a = 0; a < r; ++a) {
    const double rs = roi.size() == 2 * r ? roi[a] : 0, re = roi.size() == 2 * r ? roi[a + r] : 1;
    if (sizes[a] == xs[a] && scales[a] == 1 && (ctm != "tf_crop_and_resize" || (rs == 0 && re == 1))) continue;
    if (xs[a] == 0) n.fail("cannot resize an axis of size 0");
    const ResizeAxis ax = resize_axis(n, xs[a], sizes[a], scales[a], rs, re, mode, ctm, nearest, A, exclude_outside);
    Shape wshape(r, 1);
    wshape[a] = sizes[a];
    Tensor acc;
    for (std::size_t k = 0; k < ax.taps.size(); ++k) {
      const Tensor g = take(y, tensor(ax.taps[k], Shape{sizes[a]}), std::int64_t(a));
      const Tensor t = mode == "nearest" ? g : g * tensor(ax.weights[k], wshape, x.dtype());
      acc = acc ? acc + t : t;
    }
    y = acc;
    if (ctm == "tf_crop_and_resize") {
      std::vector<double> m(ax.outside.begin(), ax.outside.end());
      const Tensor mask = tensor(m, wshape, DType::float32) > 0.0;
      outside = outside ? where(outside, outside, mask) : mask;
    }
  }
  if (outside) y = where(outside, tensor(extrapolation, x.dtype()), y);
  return y;
}

// GatherND's and ScatterND's positions: for indices of shape is (last axis: k-tuples into
// data's axes b..b+k-1, negatives counted from the end), the position of each tuple along
// data's first b + k axes flattened (the batch position included), shaped is[:-1].
Tensor nd_positions(const Node& n, const Shape& ds, const Shape& is, std::int64_t b, std::int64_t k) {
  Tensor idx = cast(n.x(1), DType::int64);
  Tensor pos;
  for (std::int64_t j = 0; j < k; ++j) {
    const std::int64_t size = ds[std::size_t(b + j)];
    std::vector<Index> at(is.size() - 1, all());
    at.push_back(Index(j));
    Tensor t = view(idx, at);
    t = where(t < 0.0, t + double(size), t);
    pos = pos ? pos * double(size) + t : t;
  }
  if (b > 0) {  // the batch positions, each times the tuples' span
    std::int64_t span = 1;
    for (std::int64_t j = 0; j < k; ++j) span *= ds[std::size_t(b + j)];
    Tensor batch;
    for (std::int64_t d = 0; d < b; ++d) {
      Shape sh(is.size() - 1, 1);
      sh[std::size_t(d)] = is[std::size_t(d)];
      const Tensor r = reshape(arange(double(is[std::size_t(d)]), DType::int64), sh);
      batch = batch ? batch * double(ds[std::size_t(d)]) + r : r;
    }
    pos = pos + batch * double(span);
  }
  return cast(pos, DType::int64);
}

// ---- RNN / GRU / LSTM: unrolled over the sequence (its length known when the model loads) ---
// ONNX's equations with its default activations (sigmoid for gates, tanh otherwise); gates
// in ONNX's order (GRU: z, r, h; LSTM: i, o, f, c); directions forward, reverse and
// bidirectional; layout 0 (sequence first) or 1 (batch first). The input's projection for
// every step is one matrix product; each step adds the recurrent one.
std::vector<Tensor> recurrent(const Node& n, int kind) {  // 0 RNN, 1 GRU, 2 LSTM
  n.known({"activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "layout",
           "linear_before_reset", "input_forget"});
  const int gates = kind == 0 ? 1 : kind == 1 ? 3 : 4;
  if (n.has("activation_alpha") || n.has("activation_beta") || n.has("clip"))
    n.fail("activation_alpha, activation_beta and clip are not supported");
  if (n.has("activations")) {
    const std::vector<std::string> def = kind == 0 ? std::vector<std::string>{"Tanh"}
                                         : kind == 1 ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                     : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    const auto& acts = n.attr("activations")->strings();
    for (int k = 0; k < acts.size(); ++k)
      if (acts[k] != def[std::size_t(k) % def.size()]) n.fail("activation '" + acts[k] + "' is not supported (only the defaults)");
  }
  if (n.i("input_forget", 0) != 0) n.fail("input_forget = 1 is not supported");

  const std::string direction = n.s("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
    n.fail("direction '" + direction + "' is not supported");
  const int D = direction == "bidirectional" ? 2 : 1;
  const bool batch_first = n.i("layout", 0) != 0;
  const bool before_reset = n.i("linear_before_reset", 0) != 0;
  const Shape xs = n.shape(0, "the recurrence is unrolled over the sequence");
  if (xs.size() != 3) n.fail("X must have rank 3");
  const std::int64_t T = batch_first ? xs[1] : xs[0], B = batch_first ? xs[0] : xs[1];
  if (T > 4096) n.fail("sequences longer than 4096 steps are not unrolled (got " + std::to_string(T) + ")");
  const Tensor X = batch_first ? transpose(n.x(0), {1, 0, 2}) : n.x(0);  // (T, B, I)
  if (n.given(4))  // sequence_lens: only every sequence's full length
    for (auto len : n.values(4))
      if (len != T) n.fail("sequence_lens other than the full length " + std::to_string(T) + " is not supported");
  for (std::size_t k : {1, 2})
    if (th::detail::meta_of(n.x(k)).shape.size() != 3) n.fail(std::string(k == 1 ? "W" : "R") + " must have rank 3");
  const std::int64_t H = n.i("hidden_size", th::detail::meta_of(n.x(2)).shape.back());
  if (H <= 0) n.fail("hidden_size must be positive");
  const DType dt = n.x(0).dtype();
  auto gate = [&](const Tensor& t, int k) { return view(t, all(), range(k * H, (k + 1) * H)); };  // (B, gates H)
  auto initial = [&](std::size_t k, std::int64_t d) {  // initial_h / initial_c of direction d, (B, H)
    if (!n.given(k)) return zeros(Shape{B, H}, dt);
    const Tensor t = batch_first ? transpose(n.x(k), {1, 0, 2}) : n.x(k);
    return view(t, d);
  };
  std::vector<Tensor> ys, hs, cs;
  for (std::int64_t d = 0; d < D; ++d) {
    const bool reverse = direction == "reverse" || d == 1;
    const Tensor W = view(n.x(1), d), R = view(n.x(2), d);  // (gates H, I), (gates H, H)
    Tensor xw = matmul(X, transpose(W));                    // (T, B, gates H)
    Tensor wb, rb;
    if (n.given(3)) {
      const Tensor b = view(n.x(3), d);
      wb = view(b, range(0, gates * H)), rb = view(b, range(gates * H, 2 * gates * H));
      xw = xw + wb;
    }
    Tensor P;
    if (kind == 2 && n.given(7)) P = view(n.x(7), d);  // peepholes (3 H): i, o, f
    Tensor h = initial(5, d), c = kind == 2 ? initial(6, d) : Tensor();
    std::vector<Tensor> steps(static_cast<std::size_t>(T));
    for (std::int64_t s = 0; s < T; ++s) {
      const std::int64_t t = reverse ? T - 1 - s : s;
      const Tensor x_t = view(xw, t);  // (B, gates H)
      if (kind == 0) {
        Tensor a = x_t + dot(h, transpose(R));
        if (rb) a = a + rb;
        h = tanh(a);
      } else if (kind == 1) {
        Tensor hr = dot(h, transpose(R));  // (B, 3H)
        if (rb) hr = hr + rb;
        const Tensor z = sigmoid(gate(x_t, 0) + gate(hr, 0)), r = sigmoid(gate(x_t, 1) + gate(hr, 1));
        Tensor cand;
        if (before_reset) {
          cand = tanh(gate(x_t, 2) + r * gate(hr, 2));
        } else {
          Tensor rh = dot(r * h, transpose(view(R, range(2 * H, 3 * H))));
          if (rb) rh = rh + view(rb, range(2 * H, 3 * H));
          cand = tanh(gate(x_t, 2) + rh);
        }
        h = (1.0 - z) * cand + z * h;
      } else {
        Tensor a = x_t + dot(h, transpose(R));
        if (rb) a = a + rb;
        Tensor ig = gate(a, 0), og = gate(a, 1), fg = gate(a, 2);
        if (P) ig = ig + view(P, range(0, H)) * c, fg = fg + view(P, range(2 * H, 3 * H)) * c;
        const Tensor i = sigmoid(ig), f = sigmoid(fg), cand = tanh(gate(a, 3));
        c = f * c + i * cand;
        if (P) og = og + view(P, range(H, 2 * H)) * c;
        h = sigmoid(og) * tanh(c);
      }
      steps[std::size_t(t)] = h;
    }
    ys.push_back(stack(steps, 0));  // (T, B, H)
    hs.push_back(h);
    if (kind == 2) cs.push_back(c);
  }
  Tensor Y = stack(ys, 1), Yh = stack(hs, 0);  // (T, D, B, H), (D, B, H)
  Tensor Yc = kind == 2 ? stack(cs, 0) : Tensor();
  if (batch_first) {
    Y = transpose(Y, {2, 0, 1, 3});  // (B, T, D, H)
    Yh = transpose(Yh, {1, 0, 2});
    if (Yc) Yc = transpose(Yc, {1, 0, 2});
  }
  if (kind == 2) return {Y, Yh, Yc};
  return {Y, Yh};
}

Converter pool(bool max) {
  return [max](const Node& n) {
    n.known({"kernel_shape", "pads", "strides", "auto_pad", "ceil_mode", "count_include_pad", "dilations", "storage_order"});
    const std::string auto_pad = n.s("auto_pad", "NOTSET");
    if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") check_auto_pad(n);
    if (n.proto.output_size() > 1 && !n.proto.output(1).empty()) n.fail("the Indices output is not supported");
    const bool ceil_mode = n.i("ceil_mode", 0) != 0;
    if (n.i("storage_order", 0) != 0) n.fail("attribute 'storage_order' = 1 is not supported");
    const std::int64_t r = n.rank();
    if (r < 3) n.fail("needs an input of rank 3 or more (N, C, spatial...)");
    bool dilated = false;
    for (auto d : n.ints("dilations")) dilated = dilated || d != 1;
    const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (r > 4 || dilated || same) {
      if (ceil_mode) n.fail("attribute 'ceil_mode' = 1 is not supported with dilations, auto_pad SAME or rank > 4");
      const std::size_t sp = std::size_t(r - 2);
      const Ints k = spatial(n, "kernel_shape", sp, {});
      const Ints strides = spatial(n, "strides", sp, Ints(sp, 1)), dil = spatial(n, "dilations", sp, Ints(sp, 1));
      Ints pads = spatial(n, "pads", 2 * sp, {});
      if (k.size() != sp) n.fail("kernel_shape must have one value per spatial axis");
      if (same) {  // the output ceil(in / stride); the odd cell of padding at the end (UPPER) or start
        const Shape xs = n.shape(0, "auto_pad SAME");
        pads.assign(2 * sp, 0);
        for (std::size_t a = 0; a < sp; ++a) {
          if (strides[a] <= 0) n.fail("strides must be positive");
          const std::int64_t in = xs[a + 2], out = (in + strides[a] - 1) / strides[a];
          const std::int64_t total = std::max<std::int64_t>((out - 1) * strides[a] + (k[a] - 1) * dil[a] + 1 - in, 0);
          pads[a] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
          pads[a + sp] = total - pads[a];
        }
      }
      std::int64_t taps = 1;
      for (auto v : k) {
        if (v <= 0) n.fail("kernel_shape values must be positive");
        taps *= std::min<std::int64_t>(v, 1 << 13);
      }
      if (taps > 65536) n.fail("windows of more than 65536 cells are not supported at this rank or dilation");
      return one(pool_by_taps(n, max, k, pads, strides, dil));
    }
    const bool one_d = r == 3;
    Tensor x = one_d ? expand_dims(n.x(0), 2) : n.x(0);
    const std::size_t sp = one_d ? 1 : 2;
    Ints k = spatial(n, "kernel_shape", sp, {}), pads = spatial(n, "pads", 2 * sp, {}), strides = spatial(n, "strides", sp, {});
    spatial(n, "dilations", sp, {});
    if (one_d) k = as2d(k, 1), strides = strides.empty() ? Ints{} : as2d(strides, 1), pads = pads.empty() ? Ints{} : Ints{0, pads[0], 0, pads[1]};
    if (k.size() != 2) n.fail("kernel_shape must have 2 values");
    const Padding p = padding2d(n, pads);
    PoolOptions o;
    o.ignore_border = true;
    o.stride = strides.empty() ? std::array<std::int64_t, 2>{1, 1} : std::array<std::int64_t, 2>{strides[0], strides[1]};
    o.pad = {p.rows, p.cols};
    if (ceil_mode) {  // the last windows cut at the border: theta's ignore_border = false, whose
                      // output size is ONNX's ceil((n - k) / s) + 1 when s <= k and nothing is padded
      if (p.rows != 0 || p.cols != 0 || (*o.stride)[0] > k[0] || (*o.stride)[1] > k[1])
        n.fail("attribute 'ceil_mode' = 1 is supported without padding and with strides no larger than the kernel");
      o.ignore_border = false;
    }
    o.mode = max ? PoolMode::max : n.i("count_include_pad", 0) ? PoolMode::average_inc_pad : PoolMode::average_exc_pad;
    Tensor y = pool_2d(x, {k[0], k[1]}, o);
    return one(one_d ? squeeze(y, Axes(2)) : y);
  };
}

Ints spatial_axes(std::int64_t r) {
  Ints a;
  for (std::int64_t d = 2; d < r; ++d) a.push_back(d);
  return a;
}

DType onnx_dtype(const Node& n, std::int64_t t) { return dtype_of_onnx(int(t), n.label()); }

Tensor constant_from_attr(const Node& n) {
  if (const auto* a = n.attr("value")) return tensor_of(a->t(), n.label(), n.model_dir);
  if (const auto* a = n.attr("value_float")) return tensor(double(a->f()), DType::float32);
  if (const auto* a = n.attr("value_int")) return tensor(double(a->i()), DType::int64);
  if (const auto* a = n.attr("value_floats")) {
    std::vector<float> v(a->floats().begin(), a->floats().end());
    return tensor(v, Shape{std::int64_t(v.size())});
  }
  if (const auto* a = n.attr("value_ints")) {
    std::vector<std::int64_t> v(a->ints().begin(), a->ints().end());
    return tensor(v, Shape{std::int64_t(v.size())});
  }
  n.fail("needs one of value, value_float(s), value_int(s) (strings and sparse tensors are not supported)");
}

// Slice's (start, end, step) on an axis of size `dim` as a th::range (ONNX clamps like numpy).
Index slice_range(std::int64_t start, std::int64_t end, std::int64_t step) {
  const std::int64_t big = std::int64_t(1) << 62;
  start = std::clamp(start, -big, big), end = std::clamp(end, -big, big);
  return range(start, end, step);
}

// ---- Quantized (8-bit) operators: theta holds uint8/int8 values widened to int32 --------------

// The range of the 8-bit type of zero point input k (uint8 when it is absent, as ONNX says).
std::pair<double, double> quant_range(const Node& n, std::size_t k) {
  const int t = n.given(k) ? n.elem_type(k) : int(pb::TensorProto::UINT8);
  if (t == pb::TensorProto::UINT8) return {0.0, 255.0};
  if (t == pb::TensorProto::INT8) return {-128.0, 127.0};
  if (t == 0) n.fail("the zero point's element type (uint8 or int8) must be stated in the file (an initializer, a Constant or a graph input)");
  n.fail("a zero point of ONNX element type " + std::to_string(t) + ": only uint8 and int8 are supported");
}
// The axis of a per-axis scale (attribute 'axis', default 1); unused (0) for a per-tensor one.
std::int64_t quant_axis(const Node& n, const Tensor& scale) {
  return scale.ndim() == 1 ? n.axis(n.i("axis", 1), n.rank()) : 0;
}
// A per-axis (1-d) scale or zero point shaped to broadcast along `axis` of a rank-r value.
Tensor along(const Tensor& v, std::int64_t axis, std::int64_t r) {
  if (v.ndim() != 1 || r <= 1) return v;
  Shape s(std::size_t(r), 1);
  s[std::size_t(axis)] = -1;
  return reshape(v, s);
}
// v (floating) rounded half to even, shifted by the zero point, saturated to [lo, hi], as int32.
Tensor saturate(const Tensor& v, const Tensor& zp, std::pair<double, double> range) {
  Tensor q = integral(v, 2);
  if (zp) q = q + cast(zp, q.dtype());
  return cast(clip(q, range.first, range.second), DType::int32);
}
// x - zero point, as float64 (exact for 8-bit and int32 values).
Tensor shifted(const Tensor& x, const Tensor& zp) {
  const Tensor xf = cast(x, DType::float64);
  return zp ? xf - cast(zp, DType::float64) : xf;
}

// Whether k is x's size along axis as the graph computes it, Gather(Shape(x), [axis]) (what
// th::onnx::save writes for a sort over an axis of open size).
bool is_axis_size(const Tensor& k, const Tensor& x, std::int64_t axis) {
  const th::detail::Node& kn = th::detail::node_of(k, "TopK");
  if (!kn.op || std::string(kn.op->key) != "take" || kn.inputs.size() != 2) return false;
  const th::detail::Node& sn = th::detail::node_of(kn.inputs[0], "TopK");
  if (!sn.op || std::string(sn.op->key) != "shape_of" || sn.inputs.size() != 1 || sn.inputs[0].node() != x.node()) return false;
  const Tensor& at = kn.inputs[1];
  if (at.is_symbolic() || at.size() != 1) return false;
  const std::int64_t v = at.to_vector<std::int64_t>()[0];
  return v == axis || v == axis - x.ndim();
}

// A sequence position (input k, a scalar known at load, or `def`), checked against the
// sequence's length: -n..n-1, or -n..n where a SequenceInsert may append.
std::int64_t sequence_position(const Node& n, std::size_t k, std::int64_t length, bool insert, std::int64_t def) {
  if (!n.given(k)) return def;
  const Ints v = n.values(k);
  if (v.size() != 1) n.fail("the position (input " + std::to_string(k) + ") must be one integer, got " + std::to_string(v.size()));
  const std::int64_t hi = insert ? length : length - 1;
  if (v[0] < -length || v[0] > hi)
    n.fail("position " + std::to_string(v[0]) + " is out of range for a sequence of " + std::to_string(length) + " tensors");
  return v[0] < 0 ? v[0] + length : v[0];
}

std::unordered_map<std::string, Converter> converters() {
  std::unordered_map<std::string, Converter> c;
  c["Abs"] = unary(abs);
  c["Neg"] = unary(neg);
  c["Exp"] = unary(exp);
  c["Log"] = unary(log);
  c["Sqrt"] = unary(sqrt);
  c["Relu"] = unary(relu);
  c["Sigmoid"] = unary(sigmoid);
  c["Tanh"] = unary(tanh);
  c["Sin"] = unary(sin);
  c["Cos"] = unary(cos);
  c["Erf"] = unary(erf);
  c["Asin"] = unary(arcsin);
  c["Acos"] = unary(arccos);
  c["Atan"] = unary(arctan);
  c["Sign"] = unary(sign);
  c["Softplus"] = unary(softplus);
  c["Softsign"] = unary(softsign);
  c["Reciprocal"] = [](const Node& n) { n.known({}); return one(1.0 / n.x(0)); };
  c["Identity"] = [](const Node& n) { n.known({}); return one(n.x(0)); };
  c["Add"] = binary([](const Tensor& a, const Tensor& b) { return a + b; });
  c["Sub"] = binary([](const Tensor& a, const Tensor& b) { return a - b; });
  c["Mul"] = binary([](const Tensor& a, const Tensor& b) { return a * b; });
  c["Div"] = binary([](const Tensor& a, const Tensor& b) {  // integers: the quotient truncated, as ONNX's
    const bool ints = a.dtype() != DType::float32 && a.dtype() != DType::float64;
    return ints ? cast(a / b, a.dtype()) : a / b;
  });
  c["Pow"] = binary([](const Tensor& a, const Tensor& b) { return cast(pow(a, b), a.dtype()); });
  c["Equal"] = binary([](const Tensor& a, const Tensor& b) { return a == b; });
  c["Less"] = binary([](const Tensor& a, const Tensor& b) { return a < b; });
  c["Greater"] = binary([](const Tensor& a, const Tensor& b) { return a > b; });
  c["LessOrEqual"] = binary([](const Tensor& a, const Tensor& b) { return a <= b; });
  c["GreaterOrEqual"] = binary([](const Tensor& a, const Tensor& b) { return a >= b; });
  c["Not"] = [](const Node& n) { n.known({}); return one(n.x(0) == 0.0); };
  c["IsNaN"] = [](const Node& n) { n.known({}); return one(n.x(0) != n.x(0)); };
  c["Sum"] = variadic([](const Tensor& a, const Tensor& b) { return a + b; });
  c["Mean"] = variadic([](const Tensor& a, const Tensor& b) { return a + b; }, true);
  c["Max"] = variadic([](const Tensor& a, const Tensor& b) { return maximum(a, b); });
  c["Min"] = variadic([](const Tensor& a, const Tensor& b) { return minimum(a, b); });
  c["Where"] = [](const Node& n) { n.known({}); return one(where(n.x(0), n.x(1), n.x(2))); };
  c["PRelu"] = [](const Node& n) {
    n.known({});
    const Tensor& x = n.x(0);
    Tensor slope = n.x(1);
    if (n.opset < 7 && slope.ndim() == 1 && x.ndim() > 2) {  // before opset 7: one slope per channel
      Shape s(std::size_t(x.ndim() - 1), 1);
      s[0] = -1;
      slope = reshape(slope, s);
    }
    return one(where(x < 0.0, x * slope, x));
  };
  c["LeakyRelu"] = [](const Node& n) { n.known({"alpha"}); return one(leaky_relu(n.x(0), n.f("alpha", 0.01))); };
  c["Elu"] = [](const Node& n) { n.known({"alpha"}); return one(elu(n.x(0), n.f("alpha", 1.0))); };
  c["Selu"] = [](const Node& n) {
    n.known({"alpha", "gamma"});
    const double alpha = n.f("alpha", 1.67326319217681884765625), gamma = n.f("gamma", 1.05070102214813232421875);
    const Tensor& x = n.x(0);
    return one(gamma * where(x > 0.0, x, alpha * expm1(x)));
  };
  c["Celu"] = [](const Node& n) {  // max(0, x) + min(0, alpha (e^(x/alpha) - 1))
    n.known({"alpha"});
    const double alpha = n.f("alpha", 1.0);
    if (alpha == 0.0) n.fail("alpha must not be 0");
    const Tensor& x = n.x(0);
    return one(where(x > 0.0, x, alpha * expm1(x / alpha)));
  };
  c["HardSwish"] = [](const Node& n) {  // x * max(0, min(1, x/6 + 1/2))
    n.known({});
    const Tensor& x = n.x(0);
    return one(x * clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0));
  };
  c["MeanVarianceNormalization"] = [](const Node& n) {  // (x - mean) / sqrt(var + 1e-9) over axes
    n.known({"axes"});
    const Tensor& x = n.x(0);
    Ints list;
    for (auto a : n.ints("axes", {0, 2, 3})) list.push_back(n.axis(a, n.rank()));
    const Axes axes(list);
    const Tensor centred = x - mean(x, axes, true);
    return one(centred / sqrt(mean(centred * centred, axes, true) + 1e-9));
  };
  c["HardSigmoid"] = [](const Node& n) {
    n.known({"alpha", "beta"});
    return one(clip(n.x(0) * n.f("alpha", 0.2) + n.f("beta", 0.5), 0.0, 1.0));
  };
  c["Clip"] = [](const Node& n) {
    const double inf = std::numeric_limits<double>::infinity();
    if (n.opset < 11) {
      n.known({"min", "max"});
      return one(clip(n.x(0), n.f("min", -inf), n.f("max", inf)));
    }
    n.known({});
    Tensor y = n.x(0);
    if (n.given(1)) y = maximum(y, n.x(1));
    if (n.given(2)) y = minimum(y, n.x(2));
    return one(y);
  };
  c["Softmax"] = softmax_like(false);
  c["LogSoftmax"] = softmax_like(true);
  c["MatMul"] = binary([](const Tensor& a, const Tensor& b) { return matmul(a, b); });
  c["Gemm"] = [](const Node& n) {
    n.known({"alpha", "beta", "transA", "transB", "broadcast"});
    Tensor a = n.i("transA", 0) ? transpose(n.x(0)) : n.x(0), b = n.i("transB", 0) ? transpose(n.x(1)) : n.x(1);
    Tensor y = matmul(a, b);
    const double alpha = n.f("alpha", 1.0), beta = n.f("beta", 1.0);
    if (alpha != 1.0) y = y * alpha;
    if (n.given(2)) y = beta != 1.0 ? y + n.x(2) * beta : y + n.x(2);
    return one(y);
  };
  c["ReduceSum"] = reduction(13, [](const Tensor& x, const Axes& a, bool k) { return sum(x, a, k); });
  c["ReduceMean"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return mean(x, a, k); });
  c["ReduceMax"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return max(x, a, k); });
  c["ReduceMin"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return min(x, a, k); });
  c["ReduceProd"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return prod(x, a, k); });
  c["ReduceSumSquare"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return sum(x * x, a, k); });
  c["ReduceLogSumExp"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return logsumexp(x, a, k); });
  c["ReduceLogSum"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return log(sum(x, a, k)); });
  c["ReduceL1"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) { return sum(abs(x), a, k); });
  c["ReduceL2"] = reduction(18, [](const Tensor& x, const Axes& a, bool k) {
    return cast(sqrt(sum(x * x, a, k)), x.dtype());
  });
  for (const char* name : {"ArgMax", "ArgMin"}) {
    const bool is_max = std::string(name) == "ArgMax";
    c[name] = [is_max](const Node& n) {
      n.known({"axis", "keepdims", "select_last_index"});
      const std::int64_t a = n.axis(n.i("axis", 0), n.rank());
      const bool keep = n.i("keepdims", 1) != 0;
      if (n.i("select_last_index", 0) == 0) return one(is_max ? argmax(n.x(0), a, keep) : argmin(n.x(0), a, keep));
      // the last of equal extremes: the first in the reversed axis, counted from the end
      std::vector<Index> flip(std::size_t(a + 1), all());
      flip[std::size_t(a)] = range(std::nullopt, std::nullopt, -1);
      const Tensor xr = view(n.x(0), flip);
      const Tensor i = is_max ? argmax(xr, a, keep) : argmin(xr, a, keep);
      return one(th::detail::count(n.x(0), Axes(a), DType::int64) - 1 - i);
    };
  }
  c["Reshape"] = [](const Node& n) {
    n.known({"allowzero"});
    // a shape computed in the graph: read when the function runs (a 0 in it is then a size
    // of 0, as allowzero = 1 has it; with allowzero = 0 the element count then disagrees: an
    // error, not a silently different result)
    if (n.opset >= 5 && n.computed_list(1)) {
      Tensor s = cast(n.x(1), DType::int64);
      if (!n.i("allowzero", 0)) {  // a 0 copies the input's size at that position
        const std::int64_t len = th::detail::meta_of(s).shape[0], r = n.rank(0);
        Tensor xs = shape_of(n.x(0));
        xs = len <= r ? view(xs, range(0, len)) : concatenate({xs, tensor(Ints(std::size_t(len - r), 0), Shape{len - r})});
        s = where(s == 0.0, xs, s);
      }
      return one(reshape(n.x(0), s));
    }
    Ints s = n.opset >= 5 ? n.values(1) : n.ints("shape");
    const bool allow_zero = n.i("allowzero", 0) != 0;
    if (!allow_zero && std::find(s.begin(), s.end(), 0) != s.end()) {
      const Shape xs = n.shape(0, "a 0 in Reshape's shape copies the input's size");
      for (std::size_t d = 0; d < s.size(); ++d)
        if (s[d] == 0) {
          if (d >= xs.size()) n.fail("shape has a 0 at position " + std::to_string(d) + " beyond the input's rank");
          s[d] = xs[d];
        }
    }
    return one(reshape(n.x(0), Shape(s.begin(), s.end())));
  };
  c["Flatten"] = [](const Node& n) {
    n.known({"axis"});
    const std::int64_t r = n.rank(), a = n.i("axis", 1) < 0 ? n.i("axis", 1) + r : n.i("axis", 1);
    if (a < 0 || a > r) n.fail("axis " + std::to_string(n.i("axis", 1)) + " is out of range for rank " + std::to_string(r));
    if (a == 0) return one(reshape(n.x(0), Shape{1, -1}));
    if (a == 1 && !n.x(0).is_symbolic()) return one(reshape(n.x(0), Shape{n.x(0).shape()[0], -1}));
    if (n.x(0).is_symbolic()) {  // (product of the leading sizes, -1), computed when the function runs
      const Tensor lead = prod(view(shape_of(n.x(0)), range(0, a)), Axes(0), true);
      return one(reshape(n.x(0), concatenate({lead, tensor(Ints{-1}, Shape{1})})));
    }
    const Shape s = n.shape(0, "Flatten's leading size");
    std::int64_t rows = 1;
    for (std::int64_t d = 0; d < a; ++d) rows *= s[std::size_t(d)];
    return one(reshape(n.x(0), Shape{rows, -1}));
  };
  c["Transpose"] = [](const Node& n) {
    n.known({"perm"});
    Ints perm = n.ints("perm");
    if (perm.empty())
      for (std::int64_t d = n.rank(); d-- > 0;) perm.push_back(d);
    return one(transpose(n.x(0), perm));
  };
  c["Squeeze"] = [](const Node& n) {
    n.known({"axes"});
    const Ints axes = n.opset >= 13 ? (n.given(1) ? n.values(1) : Ints{}) : n.ints("axes");
    if (axes.empty()) return one(squeeze(n.x(0)));
    return one(squeeze(n.x(0), Axes(axes)));
  };
  c["Unsqueeze"] = [](const Node& n) {
    n.known({"axes"});
    Ints axes = n.opset >= 13 ? n.values(1) : n.ints("axes");
    const std::int64_t out_rank = n.rank() + std::int64_t(axes.size());
    for (auto& a : axes) a = n.axis(a, out_rank);
    std::sort(axes.begin(), axes.end());
    Tensor y = n.x(0);
    for (auto a : axes) y = expand_dims(y, a);
    return one(y);
  };
  c["Concat"] = [](const Node& n) {
    n.known({"axis"});
    std::vector<Tensor> xs;
    for (std::size_t k = 0; k < n.in.size(); ++k) xs.push_back(n.x(k));
    return one(concatenate(xs, n.axis(n.i("axis", 0), n.rank())));
  };
  c["Split"] = [](const Node& n) {
    n.known({"axis", "split", "num_outputs"});
    const std::int64_t a = n.axis(n.i("axis", 0), n.rank());
    const Ints sizes = n.opset >= 13 ? (n.given(1) ? n.values(1) : Ints{}) : n.ints("split");
    if (!sizes.empty()) return split(n.x(0), sizes, int(a));
    return chunk(n.x(0), n.proto.output_size(), int(a));
  };
  c["Slice"] = [](const Node& n) {
    n.known({"starts", "ends", "axes"});
    const std::int64_t r = n.rank();
    Ints starts, ends, axes, steps;
    if (n.opset < 10) {
      starts = n.ints("starts"), ends = n.ints("ends"), axes = n.ints("axes");
    } else {
      starts = n.values(1), ends = n.values(2);
      if (n.given(3)) axes = n.values(3);
      if (n.given(4)) steps = n.values(4);
    }
    if (axes.empty())
      for (std::size_t d = 0; d < starts.size(); ++d) axes.push_back(std::int64_t(d));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      n.fail("starts, ends, axes and steps must have one value each per sliced axis");
    std::vector<Index> idx(std::size_t(r), all());
    for (std::size_t d = 0; d < starts.size(); ++d) {
      if (steps[d] == 0) n.fail("a step of 0");
      idx[std::size_t(n.axis(axes[d], r))] = slice_range(starts[d], ends[d], steps[d]);
    }
    return one(view(n.x(0), idx));
  };
  c["Gather"] = [](const Node& n) {
    n.known({"axis"});
    return one(take(n.x(0), n.x(1), n.axis(n.i("axis", 0), n.rank())));
  };
  c["Expand"] = [](const Node& n) {
    n.known({});
    const Tensor& x = n.x(0);
    if (n.computed_list(1)) {  // sizes computed in the graph: broadcast when the function runs
      const Tensor z = zeros(cast(n.x(1), DType::int64), x.dtype() == DType::boolean ? DType::int32 : x.dtype());
      return one(x.dtype() == DType::boolean ? where(cast(z, DType::boolean), x, x) : x + z);
    }
    const Shape s = made_shape(n, n.values(1));
    if (x.dtype() == DType::boolean) return one(where(x, ones(s, DType::boolean), zeros(s, DType::boolean)));
    return one(x + zeros(s, x.dtype()));
  };
  c["Resize"] = [](const Node& n) {
    n.known({"coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value", "mode",
             "nearest_mode"});
    auto floats = [&](std::size_t k) {
      std::vector<double> v;
      if (!n.given(k)) return v;
      if (n.x(k).is_symbolic()) n.fail("input " + std::to_string(k) + " must be known when the model loads");
      return n.x(k).to_vector<double>();
    };
    // opset 10: (X, scales); 11 on: (X, roi, scales, sizes)
    const bool v10 = n.opset < 11;
    const std::vector<double> scales = floats(v10 ? 1 : 2), roi = v10 ? std::vector<double>{} : floats(1);
    const Ints sizes = !v10 && n.given(3) ? n.values(3) : Ints{};
    return one(resize(n, n.x(0), scales, sizes, roi, n.s("mode", "nearest"),
                      v10 ? std::string("asymmetric") : n.s("coordinate_transformation_mode", "half_pixel"),
                      n.s("nearest_mode", "round_prefer_floor"), n.f("cubic_coeff_a", -0.75), n.i("exclude_outside", 0) != 0,
                      n.f("extrapolation_value", 0.0)));
  };
  c["Upsample"] = [](const Node& n) {  // (opsets 7-9) Resize with asymmetric coordinates
    n.known({"mode", "scales"});
    std::vector<double> scales;
    if (n.has("scales")) {
      for (float v : n.attr("scales")->floats()) scales.push_back(double(v));
    } else {
      if (n.x(1).is_symbolic()) n.fail("input 1 (scales) must be known when the model loads");
      scales = n.x(1).to_vector<double>();
    }
    return one(resize(n, n.x(0), scales, {}, {}, n.s("mode", "nearest"), "asymmetric", "floor", -0.75, false, 0.0));
  };
  // Control flow (API.md section 17): If is ifelse (only the branch taken runs, frozen), Scan
  // and Loop are th::scan over the body converted once on the step's placeholders.
  c["If"] = [](const Node& n) {
    n.known({"then_branch", "else_branch"});
    const std::vector<Tensor> t = run_body(n, graph_attr(n, "then_branch"), {}), e = run_body(n, graph_attr(n, "else_branch"), {});
    if (t.size() != e.size()) n.fail("its branches have different numbers of outputs");
    const Tensor cond = reshape(cast(n.x(0), DType::boolean), Shape{});
    std::vector<Tensor> outs;
    for (std::size_t k = 0; k < t.size(); ++k) outs.push_back(ifelse(cond, t[k], e[k]));
    return outs;
  };
  c["Scan"] = [](const Node& n) {
    n.known({"body", "num_scan_inputs", "scan_input_axes", "scan_input_directions", "scan_output_axes",
             "scan_output_directions"});
    if (n.opset < 9) n.fail("Scan of opset 8 (a batch axis and sequence_lens) is not supported");
    for (const char* a : {"scan_input_axes", "scan_output_axes", "scan_output_directions"})
      for (auto v : n.ints(a))
        if (v != 0) n.fail(std::string("attribute '") + a + "' other than 0 is not supported");
    const Ints dirs = n.ints("scan_input_directions");
    const bool backwards = !dirs.empty() && dirs[0] == 1;
    for (auto v : dirs)
      if (v != dirs[0]) n.fail("scan inputs in different directions are not supported");
    const pb::GraphProto& body = graph_attr(n, "body");
    const std::int64_t M = n.i("num_scan_inputs", 0), N = std::int64_t(n.in.size()) - M;
    if (M < 1 || N < 0) n.fail("num_scan_inputs must be between 1 and the number of inputs");
    const std::int64_t K = body.output_size() - N;
    if (K < 0) n.fail("its body has fewer outputs than states");
    std::vector<Tensor> sequences, info;
    for (std::int64_t k = 0; k < N; ++k) info.push_back(n.x(std::size_t(k)));
    for (std::int64_t k = 0; k < M; ++k) sequences.push_back(n.x(std::size_t(N + k)));
    info.resize(std::size_t(N + K));
    const StepFn fn = [&](const std::vector<Tensor>& a) {  // slices (M), then states (N)
      std::vector<Tensor> in(a.begin() + M, a.begin() + M + N);
      in.insert(in.end(), a.begin(), a.begin() + M);  // the body reads states first
      return run_body(n, body, in);
    };
    ScanOptions o;
    o.go_backwards = backwards;
    std::vector<Tensor> r = scan(fn, sequences, info, {}, o);
    for (std::int64_t k = 0; k < N; ++k) r[std::size_t(k)] = view(r[std::size_t(k)], -1);  // final states
    return r;
  };
  c["Loop"] = [](const Node& n) {
    n.known({"body"});
    if (!n.given(0)) n.fail("a loop without a trip count is not supported");
    const Ints trip = n.values(0);
    if (trip.size() != 1 || trip[0] < 1 || trip[0] > (1 << 20)) n.fail("the trip count must be between 1 and 2^20");
    if (n.given(1) && (n.x(1).is_symbolic() || !n.x(1).to_vector<bool>().at(0)))
      n.fail("an initial condition that is not known to be true when the model loads is not supported");
    const pb::GraphProto& body = graph_attr(n, "body");
    const std::size_t C = n.in.size() - 2;  // loop-carried values
    if (body.output_size() < int(C) + 1) n.fail("its body has fewer outputs than loop-carried values");
    const std::size_t K = std::size_t(body.output_size()) - 1 - C;
    std::vector<Tensor> info;
    for (std::size_t k = 0; k < C; ++k) info.push_back(n.x(2 + k));
    info.resize(C + K);
    const StepFn fn = [&](const std::vector<Tensor>& a) {  // the iteration number, then the carried values
      std::vector<Tensor> in{a[0], tensor(1.0, DType::boolean)};
      in.insert(in.end(), a.begin() + 1, a.end());
      std::vector<Tensor> outs = run_body(n, body, in);
      if (outs[0].is_symbolic() || !outs[0].to_vector<bool>().at(0))
        n.fail("a body that computes its own condition (a loop that may stop early) is not supported");
      return std::vector<Tensor>(outs.begin() + 1, outs.end());
    };
    std::vector<Tensor> r = scan(fn, {arange(double(trip[0]), DType::int64)}, info);
    for (std::size_t k = 0; k < C; ++k) r[k] = view(r[k], -1);  // final values
    return r;
  };
  c["RNN"] = [](const Node& n) { return recurrent(n, 0); };
  c["GRU"] = [](const Node& n) { return recurrent(n, 1); };
  c["LSTM"] = [](const Node& n) { return recurrent(n, 2); };
  c["Tile"] = [](const Node& n) {
    n.known({});
    const Ints reps = n.values(1);
    Tensor y = n.x(0);
    if (std::int64_t(reps.size()) != n.rank()) n.fail("repeats must have one value per axis");
    for (auto r : reps)
      if (r > 65536) n.fail("repeats above 65536 are not supported");
    if (!y.is_symbolic()) {
      Ints out;
      for (std::size_t d = 0; d < reps.size(); ++d) out.push_back(y.shape()[d] * std::max<std::int64_t>(reps[d], 0));
      made_shape(n, out);
    } else {
      made_shape(n, reps);
    }
    for (std::size_t d = 0; d < reps.size(); ++d)
      if (reps[d] != 1) y = concatenate(std::vector<Tensor>(std::size_t(std::max<std::int64_t>(reps[d], 0)), y), std::int64_t(d));
    return one(y);
  };
  c["Constant"] = [](const Node& n) {
    n.known({"value", "value_float", "value_floats", "value_int", "value_ints"});
    return one(constant_from_attr(n));
  };
  c["ConstantOfShape"] = [](const Node& n) {
    n.known({"value"});
    Tensor v = n.has("value") ? tensor_of(n.attr("value")->t(), n.label(), n.model_dir) : tensor(0.0, DType::float32);
    if (v.size() != 1) n.fail("value must have one element");
    if (n.computed_list(0)) {  // sizes computed in the graph
      const Tensor z = zeros(cast(n.x(0), DType::int64), v.dtype() == DType::boolean ? DType::int32 : v.dtype());
      const Tensor one_value = reshape(v, Shape{});
      return one(v.dtype() == DType::boolean ? where(cast(z, DType::boolean), one_value, one_value) : z + one_value);
    }
    const Shape s = made_shape(n, n.values(0));
    return one(full(s, v.to_vector<double>().at(0), v.dtype()));
  };
  c["Shape"] = [](const Node& n) {
    n.known({"start", "end"});
    const Tensor& x = n.x(0);
    const Shape st = n.static_shape(0);
    const bool known = std::all_of(st.begin(), st.end(), [](std::int64_t d) { return d >= 0; });
    Tensor s = x.is_symbolic() && !known ? shape_of(x) : [&] {  // sizes known at load: a constant
      const Shape xs = st;
      Ints v(xs.begin(), xs.end());
      return tensor(v, Shape{std::int64_t(v.size())});
    }();
    if (n.has("start") || n.has("end")) s = view(s, range(n.i("start", 0), n.has("end") ? std::optional<std::int64_t>(n.i("end", 0)) : std::nullopt));
    return one(s);
  };
  c["Size"] = [](const Node& n) {
    n.known({});
    const Shape st = n.static_shape(0);
    if (std::all_of(st.begin(), st.end(), [](std::int64_t d) { return d >= 0; })) {
      std::int64_t size = 1;
      for (auto d : st) size *= d;
      return one(tensor(double(size), DType::int64));
    }
    return one(th::detail::count(n.x(0), Axes(), DType::int64));  // counted when the function runs
  };
  c["Cast"] = [](const Node& n) {
    n.known({"to", "saturate"});
    return one(cast(n.x(0), onnx_dtype(n, n.i("to", 1))));
  };
  c["StringNormalizer"] = [](const Node& n) {
    n.known({"case_change_action", "is_case_sensitive", "locale", "stopwords"});
    const std::string how = n.s("case_change_action", "NONE"), locale = n.s("locale", "");
    if (how != "NONE" && how != "LOWER" && how != "UPPER") n.fail("case_change_action '" + how + "' is not NONE, LOWER or UPPER");
    if (!locale.empty() && locale.rfind("en", 0) != 0 && locale != "C")
      n.fail("locale '" + locale + "' is not supported (theta changes ASCII case only)");
    std::vector<std::string> stop;
    if (const auto* a = n.attr("stopwords")) stop.assign(a->strings().begin(), a->strings().end());
    const int change = how == "LOWER" ? 1 : how == "UPPER" ? 2 : 0;
    return one(th::detail::string_normalize(n.x(0), tensor(stop, {std::int64_t(stop.size())}), change,
                                            n.i("is_case_sensitive", 0) != 0));
  };
  c["CastLike"] = [](const Node& n) { n.known({"saturate"}); return one(cast(n.x(0), n.x(1).dtype())); };
  c["Range"] = [](const Node& n) {
    n.known({});
    const double start = n.scalar(0), limit = n.scalar(1), delta = n.scalar(2);
    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta)) n.fail("start, limit and delta must be finite, delta non-zero");
    const double count = std::ceil((limit - start) / delta);
    if (count > double(kMaxMadeElements)) n.fail("the range has more than 2^27 elements");
    return one(arange(start, limit, delta, n.x(0).dtype()));
  };
  c["Dropout"] = [](const Node& n) {
    n.known({"ratio", "seed", "is_test"});
    if (n.opset >= 12 && n.given(2) && n.scalar(2) != 0 && (n.given(1) ? n.scalar(1) : 0.5) != 0)
      n.fail("training mode is not supported (inference only; a ratio of 0 is the identity)");
    std::vector<Tensor> r{n.x(0)};
    if (n.proto.output_size() > 1 && !n.proto.output(1).empty()) r.push_back(n.x(0) == n.x(0));  // mask: all kept
    return r;
  };
  c["Conv"] = conv;
  c["ConvTranspose"] = conv_transpose;
  c["MaxPool"] = [max_pool = pool(true)](const Node& n) {  // integers (uint8, int8) through float64: exact
    if (is_floating(n.x(0).dtype())) return max_pool(n);
    std::vector<Tensor> r = max_pool(n.on({cast(n.x(0), DType::float64)}));
    r[0] = cast(r[0], n.x(0).dtype());
    return r;
  };
  c["AveragePool"] = pool(false);
  c["GlobalAveragePool"] = [](const Node& n) { n.known({}); return one(mean(n.x(0), Axes(spatial_axes(n.rank())), true)); };
  c["GlobalMaxPool"] = [](const Node& n) { n.known({}); return one(max(n.x(0), Axes(spatial_axes(n.rank())), true)); };
  c["BatchNormalization"] = [](const Node& n) {
    n.known({"epsilon", "momentum", "spatial", "is_test", "training_mode", "consumed_inputs"});
    if (n.i("spatial", 1) != 1) n.fail("attribute 'spatial' = 0 is not supported");
    if (n.i("training_mode", 0) != 0) {  // the batch's statistics; the running ones moved towards them
      const Tensor& x = n.x(0);
      Ints all_but_channels = spatial_axes(n.rank());
      all_but_channels.insert(all_but_channels.begin(), 0);
      const Axes ax(all_but_channels);
      Shape cs(std::size_t(n.rank()), 1);
      cs[1] = -1;
      const Tensor mu = mean(x, ax, true), d = x - mu, v = mean(d * d, ax, true);  // (biased, as ONNX's)
      const double eps = n.f("epsilon", 1e-5), m = n.f("momentum", 0.9);
      const Tensor y = d / sqrt(v + eps) * reshape(n.x(1), cs) + reshape(n.x(2), cs);
      return std::vector<Tensor>{y, n.x(3) * m + reshape(mu, Shape{-1}) * (1.0 - m), n.x(4) * m + reshape(v, Shape{-1}) * (1.0 - m)};
    }
    for (int k = 1; k < n.proto.output_size(); ++k)
      if (!n.proto.output(k).empty()) n.fail("the training outputs (running statistics) are not supported");
    return one(batch_normalization_test(n.x(0), n.x(1), n.x(2), n.x(3), n.x(4), {}, n.f("epsilon", 1e-5)));
  };
  c["InstanceNormalization"] = [](const Node& n) {
    n.known({"epsilon"});
    const Tensor& x = n.x(0);
    const Axes ax(spatial_axes(n.rank()));
    const Tensor mu = mean(x, ax, true), d = x - mu;
    Shape cs(std::size_t(n.rank()), 1);
    cs[1] = -1;
    return one(d / sqrt(mean(d * d, ax, true) + n.f("epsilon", 1e-5)) * reshape(n.x(1), cs) + reshape(n.x(2), cs));
  };
  c["LayerNormalization"] = [](const Node& n) {
    n.known({"axis", "epsilon", "stash_type"});
    const Tensor& x = n.x(0);
    const std::int64_t r = n.rank(), a = n.axis(n.i("axis", -1), r);
    Ints axes;
    for (std::int64_t d = a; d < r; ++d) axes.push_back(d);
    const Tensor mu = mean(x, Axes(axes), true), d = x - mu;
    const Tensor invstd = 1.0 / sqrt(mean(d * d, Axes(axes), true) + n.f("epsilon", 1e-5));
    Tensor y = d * invstd * n.x(1);
    if (n.given(2)) y = y + n.x(2);
    return std::vector<Tensor>{y, mu, invstd};
  };
  c["Einsum"] = [](const Node& n) {
    n.known({"equation"});
    std::vector<Tensor> xs;
    for (std::size_t k = 0; k < n.in.size(); ++k) xs.push_back(n.x(k));
    std::string eq = n.s("equation", "");
    eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
    return one(einsum(eq, xs));
  };
  c["TopK"] = [](const Node& n) {
    n.known({"axis", "largest", "sorted", "k"});
    if (n.i("sorted", 1) == 0) n.fail("attribute 'sorted' = 0 is not supported");
    const std::int64_t a = n.axis(n.i("axis", -1), n.rank());
    const bool largest = n.i("largest", 1) != 0;
    if (n.opset >= 10 && n.x(1).is_symbolic() && is_axis_size(n.x(1), n.x(0), a))  // all of the axis: a sort
      return std::vector<Tensor>{sort(n.x(0), int(a), largest), argsort(n.x(0), int(a), largest)};
    const std::int64_t k = n.opset >= 10 ? n.values(1).at(0) : n.i("k", 0);
    auto [v, i] = topk(n.x(0), k, int(a), largest);
    return std::vector<Tensor>{v, i};
  };
  c["CumSum"] = [](const Node& n) {
    n.known({"exclusive", "reverse"});
    const std::int64_t a = n.axis(n.values(1).at(0), n.rank());
    const bool rev = n.i("reverse", 0) != 0;
    std::vector<Index> flip(std::size_t(a + 1), all());
    flip[std::size_t(a)] = range(std::nullopt, std::nullopt, -1);
    Tensor x = rev ? view(n.x(0), flip) : n.x(0);
    Tensor y = cumsum(x, int(a));
    if (n.i("exclusive", 0) != 0) y = y - x;
    return one(rev ? view(y, flip) : y);
  };
  c["Trilu"] = [](const Node& n) {
    n.known({"upper"});
    const std::int64_t k = n.given(1) ? n.values(1).at(0) : 0;
    return one(n.i("upper", 1) ? triu(n.x(0), k) : tril(n.x(0), k));
  };
  c["And"] = binary([](const Tensor& a, const Tensor& b) { return where(a, b, a); });
  c["Or"] = binary([](const Tensor& a, const Tensor& b) { return where(a, a, b); });
  c["Xor"] = binary([](const Tensor& a, const Tensor& b) { return a != b; });
  c["ThresholdedRelu"] = [](const Node& n) {
    n.known({"alpha"});
    const Tensor& x = n.x(0);
    return one(where(x > n.f("alpha", 1.0), x, x * 0.0));
  };
  c["Shrink"] = [](const Node& n) {
    n.known({"lambd", "bias"});
    const Tensor& x = n.x(0);
    const double l = n.f("lambd", 0.5), b = n.f("bias", 0.0);
    return one(cast(where(x < -l, x + b, where(x > l, x - b, x * 0.0)), x.dtype()));
  };
  c["IsInf"] = [](const Node& n) {
    n.known({"detect_positive", "detect_negative"});
    const Tensor& x = n.x(0);
    const double inf = std::numeric_limits<double>::infinity();
    const bool pos = n.i("detect_positive", 1) != 0, neg = n.i("detect_negative", 1) != 0;
    if (pos && neg) return one(abs(x) == inf);
    if (pos) return one(x == inf);
    if (neg) return one(x == -inf);
    return one(where(x != x, x == x, x != x));  // neither: all false
  };
  // GatherND / ScatterND: data's first (batch_dims +) k axes flattened into one, the index
  // tuples (last axis of indices, k long) turned into positions along it, then take /
  // put_along_axis. Needs data's sizes when the model loads.
  c["GatherND"] = [](const Node& n) {
    n.known({"batch_dims"});
    const Shape ds = n.shape(0, "GatherND flattens data's leading axes"), is = n.shape(1, "GatherND's index tuples");
    const std::int64_t b = n.i("batch_dims", 0);
    if (is.empty() || b < 0 || b >= std::int64_t(is.size()) || b > std::int64_t(ds.size())) n.fail("bad indices or batch_dims");
    const std::int64_t k = is.back();
    if (k < 1 || b + k > std::int64_t(ds.size())) n.fail("index tuples of length " + std::to_string(k) + " do not fit data");
    const Tensor flat = nd_positions(n, ds, is, b, k);  // (indices' shape but its last axis) positions
    Shape rows{-1};
    for (std::size_t d = std::size_t(b + k); d < ds.size(); ++d) rows.push_back(ds[d]);
    Shape out(is.begin(), is.end() - 1);
    for (std::size_t d = std::size_t(b + k); d < ds.size(); ++d) out.push_back(ds[d]);
    return one(reshape(take(reshape(n.x(0), rows), reshape(flat, Shape{-1}), 0), out));
  };
  c["ScatterND"] = [](const Node& n) {
    n.known({"reduction"});
    const std::string red = n.s("reduction", "none");
    if (red != "none" && red != "add") n.fail("reduction '" + red + "' is not supported");
    const Shape ds = n.shape(0, "ScatterND flattens data's leading axes"), is = n.shape(1, "ScatterND's index tuples");
    if (is.empty()) n.fail("indices must have at least one axis");
    const std::int64_t k = is.back();
    if (k < 1 || k > std::int64_t(ds.size())) n.fail("index tuples of length " + std::to_string(k) + " do not fit data");
    Shape rows{-1};
    std::int64_t inner = 1;
    for (std::size_t d = std::size_t(k); d < ds.size(); ++d) rows.push_back(ds[d]), inner *= ds[d];
    const Tensor data = reshape(n.x(0), rows);
    const std::int64_t m = th::detail::shape_size(Shape(is.begin(), is.end() - 1));
    Shape lead{m};
    for (std::size_t d = 1; d < rows.size(); ++d) lead.push_back(rows[d]);
    const Tensor u = reshape(n.x(2), lead);
    Shape col{m};
    col.resize(rows.size(), 1);
    const Tensor pos = broadcast_to(reshape(nd_positions(n, ds, is, 0, k), col), lead);
    const Tensor added = th::detail::put_along_axis(u, pos, data, 0);
    if (red == "add") return one(reshape(data + added, ds));
    const Tensor hits = th::detail::put_along_axis(cast(u == u, DType::float32) + cast(u != u, DType::float32), pos,
                                                   cast(data, DType::float32), 0) > 0.0;
    return one(reshape(where(hits, added, data), ds));  // (an index given twice would add: ONNX leaves it undefined)
  };
  c["GatherElements"] = [](const Node& n) {
    n.known({"axis"});
    const std::int64_t a = n.axis(n.i("axis", 0), n.rank());
    Tensor x = n.x(0), idx = n.x(1);
    if (!x.is_symbolic() && !idx.is_symbolic()) {  // indices may be shorter than x off the axis
      const Shape xs = x.shape(), is = idx.shape();
      std::vector<Index> cut(xs.size(), all());
      for (std::size_t d = 0; d < xs.size(); ++d)
        if (std::int64_t(d) != a && is[d] < xs[d]) cut[d] = range(0, is[d]);
      x = view(x, cut);
    }
    // negative indices count from the end of the axis
    idx = cast(where(idx < 0.0, idx + th::detail::count(x, Axes(a), DType::int64), idx), DType::int64);
    return one(th::detail::take_along_axis(x, idx, a));
  };
  // NegativeLogLikelihoodLoss(input (N, C, d...), target (N, d...), [weight (C)]): -input at
  // each target class, weighted, ignore_index left out; reduction none, sum or mean (over the
  // weights of the targets counted).
  auto nll = [](const Node& n, const Tensor& input, const Tensor& target, const Tensor& weight) {
    const std::string red = n.s("reduction", "mean");
    if (red != "none" && red != "sum" && red != "mean") n.fail("reduction '" + red + "' is not supported");
    Tensor keep = target == target;  // all true
    Tensor t = target;
    if (n.has("ignore_index")) {
      keep = target != double(n.i("ignore_index", 0));
      t = where(keep, target, target * 0);
    }
    t = cast(t, DType::int64);
    const Tensor picked = squeeze(th::detail::take_along_axis(input, expand_dims(t, 1), 1), Axes(1));
    Tensor w = cast(keep, input.dtype());
    if (weight) w = w * take(weight, t, 0);
    const Tensor loss = -picked * w;
    if (red == "none") return loss;
    if (red == "sum") return sum(loss);
    return sum(loss) / sum(w);
  };
  c["NegativeLogLikelihoodLoss"] = [nll](const Node& n) {
    n.known({"reduction", "ignore_index"});
    return one(nll(n, n.x(0), n.x(1), n.given(2) ? n.x(2) : Tensor()));
  };
  c["SoftmaxCrossEntropyLoss"] = [nll](const Node& n) {
    n.known({"reduction", "ignore_index"});
    const Tensor lp = log_softmax(n.x(0), 1);
    return std::vector<Tensor>{nll(n, lp, n.x(1), n.given(2) ? n.x(2) : Tensor()), lp};
  };
  c["Pad"] = [](const Node& n) {
    n.known({"mode", "pads", "value"});
    const std::string mode = n.s("mode", "constant");
    if (mode != "constant" && mode != "reflect" && mode != "edge") n.fail("mode '" + mode + "' is not supported");
    const Ints pads = n.opset >= 11 ? n.values(1) : n.ints("pads");
    const double value = n.opset >= 11 ? (n.given(2) ? n.scalar(2) : 0.0) : n.f("value", 0.0);
    Tensor y = n.x(0);
    const std::int64_t r = n.rank();
    if (std::int64_t(pads.size()) != 2 * r) n.fail("pads must have 2 values per axis");
    for (std::int64_t d = 0; d < r; ++d) {
      const std::int64_t before = pads[std::size_t(d)], after = pads[std::size_t(d + r)];
      if (before < 0 || after < 0) n.fail("negative pads are not supported");
      if (before > 65536 || after > 65536) n.fail("pads above 65536 are not supported");
      y = pad_axis(y, d, before, after, value, mode);
    }
    return one(y);
  };
  c["Floor"] = [](const Node& n) { n.known({}); return one(integral(n.x(0), 0)); };
  c["Ceil"] = [](const Node& n) { n.known({}); return one(integral(n.x(0), 1)); };
  c["Round"] = [](const Node& n) { n.known({}); return one(integral(n.x(0), 2)); };
  c["Mod"] = [](const Node& n) {  // fmod = 1: C's fmod (the dividend's sign); 0: the divisor's
    n.known({"fmod"});
    const Tensor &a = n.x(0), &b = n.x(1);
    const bool ints = a.dtype() != DType::float32 && a.dtype() != DType::float64;
    const Tensor af = ints ? cast(a, DType::float64) : a, bf = ints ? cast(b, DType::float64) : b;
    const Tensor q = af / bf;
    const Tensor r = af - (n.i("fmod", 0) ? cast(cast(q, DType::int64), q.dtype()) : integral(q, 0)) * bf;
    return one(ints ? cast(r, a.dtype()) : r);
  };
  c["Cosh"] = [](const Node& n) { n.known({}); return one((exp(n.x(0)) + exp(-n.x(0))) * 0.5); };
  c["Sinh"] = [](const Node& n) { n.known({}); return one((exp(n.x(0)) - exp(-n.x(0))) * 0.5); };
  c["Tan"] = [](const Node& n) { n.known({}); return one(sin(n.x(0)) / cos(n.x(0))); };
  c["Asinh"] = [](const Node& n) {  // odd: computed on |x| (no cancellation for negative x)
    n.known({});
    const Tensor& x = n.x(0);
    const Tensor ax = abs(x);
    return one(sign(x) * log(ax + sqrt(ax * ax + 1.0)));
  };
  c["Acosh"] = [](const Node& n) { n.known({}); const Tensor& x = n.x(0); return one(log(x + sqrt(x * x - 1.0))); };
  c["Atanh"] = [](const Node& n) { n.known({}); const Tensor& x = n.x(0); return one(0.5 * (log1p(x) - log1p(-x))); };
  c["Hardmax"] = [](const Node& n) {
    n.known({"axis"});
    const Tensor& x = n.x(0);
    const std::int64_t r = n.rank(), a = n.axis(n.i("axis", n.opset >= 13 ? -1 : 1), r);
    if (n.opset < 13 && a != r - 1) n.fail("axis other than the last is not supported before opset 13");
    const Shape s = n.shape(0, "Hardmax's number of classes");
    Tensor y = cast(one_hot(argmax(x, a), s[std::size_t(a)]), x.dtype());  // (the classes last)
    if (a != r - 1) {
      Ints perm;
      for (std::int64_t d = 0; d < r - 1; ++d) perm.push_back(d);
      perm.insert(perm.begin() + a, r - 1);
      y = transpose(y, perm);
    }
    return one(y);
  };
  c["OneHot"] = [](const Node& n) {
    n.known({"axis"});
    const std::int64_t depth = std::int64_t(n.scalar(1));
    if (depth <= 0 || depth > (std::int64_t(1) << 24)) n.fail("depth must be in 1..2^24");
    const Tensor& v = n.x(2);
    const Tensor off = view(v, 0), on = view(v, 1);
    Tensor idx = cast(n.x(0), DType::int64);
    idx = where(idx < 0.0, idx + double(depth), idx);
    const Tensor h = one_hot(idx, depth, v.dtype());
    Tensor y = off + (on - off) * h;
    const std::int64_t r = y.ndim(), a = n.axis(n.i("axis", -1), r);
    if (a != r - 1) {
      std::vector<std::int64_t> perm;
      for (std::int64_t d = 0; d < r - 1; ++d) perm.push_back(d);
      perm.insert(perm.begin() + a, r - 1);
      y = transpose(y, perm);
    }
    return one(y);
  };
  c["EyeLike"] = [](const Node& n) {
    n.known({"k", "dtype"});
    const Tensor& x = n.x(0);
    const std::int64_t k = n.i("k", 0);
    const DType dt = n.has("dtype") ? onnx_dtype(n, n.i("dtype", 1)) : x.dtype();
    const Tensor o = ones(n.shape(0, "EyeLike"), DType::float64);
    return one(cast(triu(tril(o, k), k), dt));
  };
  for (const char* name : {"DepthToSpace", "SpaceToDepth"}) {
    const bool to_space = std::string(name) == "DepthToSpace";
    c[name] = [to_space](const Node& n) {
      n.known({"blocksize", "mode"});
      const std::int64_t b = n.i("blocksize", 0);
      const Shape s = n.shape(0, "the block rearrangement");
      if (s.size() != 4 || b <= 0) n.fail("needs an (N, C, H, W) input and a positive blocksize");
      const std::int64_t N = s[0], C = s[1], H = s[2], W = s[3];
      const Tensor& x = n.x(0);
      if (!to_space) {
        if (H % b || W % b) n.fail("H and W must be multiples of blocksize");
        const Tensor t = transpose(reshape(x, Shape{N, C, H / b, b, W / b, b}), {0, 3, 5, 1, 2, 4});
        return one(reshape(t, Shape{N, C * b * b, H / b, W / b}));
      }
      if (C % (b * b)) n.fail("C must be a multiple of blocksize^2");
      const bool crd = n.s("mode", "DCR") == "CRD";
      const Tensor t = crd ? transpose(reshape(x, Shape{N, C / (b * b), b, b, H, W}), {0, 1, 4, 2, 5, 3})
                           : transpose(reshape(x, Shape{N, b, b, C / (b * b), H, W}), {0, 3, 4, 1, 5, 2});
      return one(reshape(t, Shape{N, C / (b * b), H * b, W * b}));
    };
  }
  c["ScatterElements"] = [](const Node& n) {  // data with updates written at the indices along axis
    n.known({"axis", "reduction"});
    if (n.proto.op_type() == "Scatter" && n.opset >= 11) n.fail("Scatter was removed in opset 11 (use ScatterElements)");
    const std::string red = n.s("reduction", "none");
    if (red != "none" && red != "add") n.fail("reduction '" + red + "' is not supported");
    const Tensor &x = n.x(0), &u = n.x(2);
    const std::int64_t a = n.axis(n.i("axis", 0), n.rank());
    const Tensor idx = cast(where(n.x(1) < 0.0, n.x(1) + th::detail::count(x, Axes(a), DType::int64), n.x(1)), DType::int64);
    const Tensor added = th::detail::put_along_axis(u, idx, x, a);
    if (red == "add") return one(x + added);
    const Tensor hit = th::detail::put_along_axis(cast(u == u, x.dtype()) + cast(u != u, x.dtype()), idx, x, a) > 0.0;
    return one(where(hit, added, x));  // (an index given twice would add: ONNX leaves it undefined)
  };
  c["LRN"] = [](const Node& n) {  // x / (bias + alpha / size * sum of squares over `size` channels)^beta
    n.known({"alpha", "beta", "bias", "size"});
    const Tensor& x = n.x(0);
    const std::int64_t size = n.i("size", 0);
    if (size <= 0 || size > 1024) n.fail("size must be in 1..1024");
    const Shape xs = n.shape(0, "LRN's channel window");
    if (xs.size() < 2) n.fail("needs an input of rank 2 or more (N, C, ...)");
    const Tensor sq = pad_axis(x * x, 1, (size - 1) / 2, size / 2, 0.0);
    Tensor acc;
    for (std::int64_t k = 0; k < size; ++k) {
      const Tensor v = view(sq, all(), range(k, k + xs[1]));
      acc = acc ? acc + v : v;
    }
    return one(x / pow(acc * (n.f("alpha", 1e-4) / double(size)) + n.f("bias", 1.0), n.f("beta", 0.75)));
  };
  // Hann, Hamming and Blackman windows of a length known at load: sums of cosines of 2 pi k n / D,
  // D the length (periodic, the default) or the length - 1 (symmetric)
  const auto window = [](std::vector<double> coefficients) {
    return [coefficients](const Node& n) {
      n.known({"output_datatype", "periodic"});
      const Ints size = n.values(0);
      if (size.size() != 1 || size[0] < 0 || size[0] > kMaxMadeElements) n.fail("the size must be one integer in [0, 2^27]");
      const std::int64_t len = size[0];
      const double d = double(n.i("periodic", 1) ? len : len - 1);
      std::vector<double> w(std::size_t(len), 0.0);
      for (std::int64_t i = 0; i < len; ++i)
        for (std::size_t k = 0; k < coefficients.size(); ++k)
          w[std::size_t(i)] += (k % 2 ? -1.0 : 1.0) * coefficients[k] * (k == 0 ? 1.0 : std::cos(2.0 * M_PI * double(k) * double(i) / d));
      return one(tensor(w, Shape{len}, onnx_dtype(n, n.i("output_datatype", 1))));
    };
  };
  c["HannWindow"] = window({0.5, 0.5});
  c["HammingWindow"] = window({25.0 / 46.0, 1.0 - 25.0 / 46.0});
  c["BlackmanWindow"] = window({0.42, 0.5, 0.08});
  // ReverseSequence: the first sequence_lens[b] steps of each batch entry reversed (the lengths
  // known at load), one gather along the time axis
  c["ReverseSequence"] = [](const Node& n) {
    n.known({"batch_axis", "time_axis"});
    if (n.rank() < 2) n.fail("the input needs a batch and a time axis");
    const std::int64_t ba = n.axis(n.i("batch_axis", 1), n.rank()), ta = n.axis(n.i("time_axis", 0), n.rank());
    if (ba == ta || ba > 1 || ta > 1) n.fail("batch_axis and time_axis must be 0 and 1 in some order");
    const Shape xs = made_shape(n, n.shape(0, "the gather's indices"));  // (capped: the indices are made here)
    const Ints lens = n.values(1);
    const std::int64_t B = xs[std::size_t(ba)], T = xs[std::size_t(ta)];
    if (std::int64_t(lens.size()) != B) n.fail("sequence_lens has " + std::to_string(lens.size()) + " entries for a batch of " + std::to_string(B));
    std::int64_t inner = 1;
    for (std::size_t d = 2; d < xs.size(); ++d) inner *= xs[d];
    std::vector<std::int64_t> idx(std::size_t(B * T * inner));
    for (std::int64_t b = 0; b < B; ++b) {
      if (lens[std::size_t(b)] < 0 || lens[std::size_t(b)] > T) n.fail("a sequence length of " + std::to_string(lens[std::size_t(b)]) + " for " + std::to_string(T) + " steps");
      for (std::int64_t t = 0; t < T; ++t) {
        const std::int64_t from = t < lens[std::size_t(b)] ? lens[std::size_t(b)] - 1 - t : t;
        const std::int64_t at = (ta == 0 ? t * B + b : b * T + t) * inner;
        for (std::int64_t i = 0; i < inner; ++i) idx[std::size_t(at + i)] = from;
      }
    }
    return one(th::detail::take_along_axis(n.x(0), tensor(idx, xs, DType::int64), ta));
  };
  // Compress: the slices along axis (or of the flattened input) where condition, known at load, holds
  c["Compress"] = [](const Node& n) {
    n.known({"axis"});
    const Ints cond = n.values(1);
    Tensor x = n.x(0);
    std::int64_t a = 0;
    if (n.has("axis")) {
      a = n.axis(n.i("axis", 0), n.rank());
    } else {
      x = reshape(x, Shape{-1});
    }
    const Shape xs = static_shape_of(x);
    if (xs[std::size_t(a)] >= 0 && std::int64_t(cond.size()) > xs[std::size_t(a)])
      n.fail("the condition has " + std::to_string(cond.size()) + " entries for an axis of " + std::to_string(xs[std::size_t(a)]));
    std::vector<std::int64_t> picked;
    for (std::size_t i = 0; i < cond.size(); ++i)
      if (cond[i]) picked.push_back(std::int64_t(i));
    return one(take(x, tensor(picked, Shape{std::int64_t(picked.size())}, DType::int64), a));
  };
  // NonZero of an input known at load (its result's size depends on the values): a constant
  c["NonZero"] = [](const Node& n) {
    n.known({});
    const Tensor& x = n.x(0);
    if (x.is_symbolic()) n.fail("input 0 must be known when the model loads: NonZero's output size depends on its values");
    const Shape xs = x.shape();
    const std::vector<double> v = x.to_vector<double>();
    std::vector<std::int64_t> at;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i] != 0) at.push_back(std::int64_t(i));
    const std::int64_t r = std::int64_t(xs.size()), count = std::int64_t(at.size());
    std::vector<std::int64_t> out(std::size_t(r * count));
    for (std::int64_t j = 0; j < count; ++j) {
      std::int64_t rest = at[std::size_t(j)];
      for (std::int64_t d = r - 1; d >= 0; --d) {
        out[std::size_t(d * count + j)] = rest % xs[std::size_t(d)];
        rest /= xs[std::size_t(d)];
      }
    }
    return one(tensor(out, Shape{r, count}, DType::int64));
  };
  c["QuantizeLinear"] = [](const Node& n) {  // saturate(round(x / scale) + zero point)
    n.known({"axis"});
    const std::int64_t r = n.rank(), a = quant_axis(n, n.x(1));
    const Tensor& x = n.x(0);
    const Tensor xf = is_floating(x.dtype()) ? x : cast(x, DType::float32);
    return one(saturate(xf / along(n.x(1), a, r), n.given(2) ? along(n.x(2), a, r) : Tensor(), quant_range(n, 2)));
  };
  c["DequantizeLinear"] = [](const Node& n) {  // (x - zero point) * scale
    n.known({"axis"});
    const std::int64_t r = n.rank(), a = quant_axis(n, n.x(1));
    const Tensor& scale = n.x(1);
    Tensor v = cast(n.x(0), scale.dtype());
    if (n.given(2)) v = v - cast(along(n.x(2), a, r), scale.dtype());
    return one(v * along(scale, a, r));
  };
  c["DynamicQuantizeLinear"] = [](const Node& n) {  // uint8 over [min(x, 0), max(x, 0)]
    n.known({});
    const Tensor& x = n.x(0);
    const Tensor lo = minimum(min(x), 0.0), hi = maximum(max(x), 0.0);
    const Tensor scale = (hi - lo) / 255.0;
    const Tensor zp = saturate(-(lo / scale), Tensor(), {0.0, 255.0});
    return std::vector<Tensor>{saturate(x / scale, zp, {0.0, 255.0}), scale, zp};
  };
  c["MatMulInteger"] = [](const Node& n) {  // (A - a_zero_point) (B - b_zero_point) in int32
    n.known({});
    const Tensor a_zp = n.given(2) ? along(n.x(2), n.rank(0) - 2, n.rank(0)) : Tensor();  // (per row of A)
    const Tensor y = matmul(shifted(n.x(0), a_zp), shifted(n.x(1), n.given(3) ? n.x(3) : Tensor()));
    return one(cast(y, DType::int32));
  };
  c["ConvInteger"] = [](const Node& n) {  // the convolution of x - x_zero_point and w - w_zero_point in int32
    const Node m = n.on({shifted(n.x(0), n.given(2) ? n.x(2) : Tensor()), shifted(n.x(1), n.given(3) ? along(n.x(3), 0, n.rank(1)) : Tensor())});
    return one(cast(conv(m)[0], DType::int32));
  };
  c["QLinearMatMul"] = [](const Node& n) {  // the int32 product rescaled by a_scale b_scale / y_scale, requantized
    n.known({});
    const Tensor a_zp = along(n.x(2), n.rank(0) - 2, n.rank(0));
    const Tensor prod = matmul(shifted(n.x(0), a_zp), shifted(n.x(3), n.x(5)));
    const Tensor m = n.x(1) * n.x(4) / n.x(6);  // (float32, as ONNX's reference)
    return one(saturate(prod * cast(m, DType::float64), n.x(7), quant_range(n, 7)));
  };
  c["QLinearConv"] = [](const Node& n) {
    Tensor acc = conv(n.on({shifted(n.x(0), n.x(2)), shifted(n.x(3), along(n.x(5), 0, n.rank(3)))}))[0];
    const std::int64_t r = acc.ndim();
    if (n.given(8)) acc = acc + along(cast(n.x(8), DType::float64), 1, r);
    const Tensor scale = n.x(1) * along(n.x(4), 1, r) / n.x(6);
    return one(saturate(acc * cast(scale, DType::float64), n.x(7), quant_range(n, 7)));
  };
  // GridSample (2-d): X sampled at the grid's normalized (x, y) positions, as PyTorch's
  // grid_sample: each tap one gather of X's flattened image, weighted (differentiable in X
  // and in the grid); padding zeros (taps outside read 0), border (coordinates clamped) or
  // reflection (reflected by the borders, then clamped); bicubic pads each tap instead.
  c["GridSample"] = [](const Node& n) {
    n.known({"align_corners", "mode", "padding_mode"});
    const std::string mode = n.s("mode", "bilinear"), pad = n.s("padding_mode", "zeros");
    if (mode != "bilinear" && mode != "nearest" && mode != "bicubic") n.fail("mode '" + mode + "' is not known");
    if (pad != "zeros" && pad != "border" && pad != "reflection") n.fail("padding_mode '" + pad + "' is not known");
    if (n.rank(0) != 4 || n.rank(1) != 4) n.fail("only 2-d sampling (X and grid of rank 4) is supported");
    const bool corners = n.i("align_corners", 0) != 0;
    const Shape xs = n.shape(0, "X's sizes index its pixels"), gs = n.shape(1, "the grid's sizes shape the output");
    const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], P = gs[1] * gs[2];
    if (gs[0] != N || gs[3] != 2) n.fail("the grid must be (N, H_out, W_out, 2) for X " + shape_str(xs));
    const Tensor& x = n.x(0);
    const Tensor flat = reshape(x, Shape{N, C, H * W});
    const Tensor grid = cast(n.x(1), x.dtype());
    auto coord = [&](std::int64_t k, std::int64_t size) {  // pixel units, (N, 1, P)
      const Tensor g = reshape(view(grid, all(), all(), all(), k), Shape{N, 1, P});
      return corners ? (g + 1.0) * (0.5 * double(size - 1)) : ((g + 1.0) * double(size) - 1.0) * 0.5;
    };
    auto padded = [&](Tensor v, std::int64_t size) {  // border / reflection: into [0, size - 1]
      if (pad == "reflection") {
        const double lo = corners ? 0.0 : -0.5, span = corners ? double(size - 1) : double(size);
        if (span <= 0) return v * 0.0;
        const Tensor d = abs(v - lo), flips = integral(d / span, 0), extra = d - flips * span;
        const Tensor odd = (flips - integral(flips * 0.5, 0) * 2.0) != 0.0;
        v = where(odd, span - extra + lo, extra + lo);
      }
      return pad == "zeros" ? v : clip(v, 0.0, double(size - 1));
    };
    // X at integer positions (ix, iy) (N, 1, P), times weight; 0 outside the image
    auto tap = [&](const Tensor& ix, const Tensor& iy, const Tensor& weight) {
      const Tensor w = where(ix >= 0.0, where(ix <= double(W - 1), where(iy >= 0.0, where(iy <= double(H - 1), weight, 0.0), 0.0), 0.0), 0.0);
      const Tensor at = cast(clip(iy, 0.0, double(H - 1)) * double(W) + clip(ix, 0.0, double(W - 1)), DType::int64);
      return th::detail::take_along_axis(flat, broadcast_to(at, Shape{N, C, P}), 2) * w;
    };
    Tensor fx = coord(0, W), fy = coord(1, H);
    Tensor y;
    if (mode == "nearest") {
      fx = padded(fx, W), fy = padded(fy, H);
      y = tap(integral(fx, 2), integral(fy, 2), tensor(1.0, x.dtype()));
    } else if (mode == "bilinear") {
      fx = padded(fx, W), fy = padded(fy, H);
      const Tensor x0 = integral(fx, 0), y0 = integral(fy, 0), tx = fx - x0, ty = fy - y0;
      y = tap(x0, y0, (1.0 - tx) * (1.0 - ty)) + tap(x0 + 1.0, y0, tx * (1.0 - ty)) + tap(x0, y0 + 1.0, (1.0 - tx) * ty) +
          tap(x0 + 1.0, y0 + 1.0, tx * ty);
    } else {  // bicubic, A = -0.75 (Keys), each tap's position padded on its own
      const Tensor x0 = integral(fx, 0), y0 = integral(fy, 0), tx = fx - x0, ty = fy - y0;
      auto weights = [](const Tensor& t) {
        const double A = -0.75;
        auto near = [&](const Tensor& d) { return ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0; };     // |d| <= 1
        auto far = [&](const Tensor& d) { return ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A; };  // 1 < |d| < 2
        return std::vector<Tensor>{far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)};
      };
      const std::vector<Tensor> wx = weights(tx), wy = weights(ty);
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const Tensor t = tap(padded(x0 + double(i - 1), W), padded(y0 + double(j - 1), H), wx[std::size_t(i)] * wy[std::size_t(j)]);
          y = y ? y + t : t;
        }
    }
    return one(reshape(y, Shape{N, C, gs[1], gs[2]}));
  };
  // DFT (opset 17): along `axis`, as products with the cosine and sine matrices of the length
  // known at load (float64, so near-zero bins stay near zero), the input real ([..., 1]) or
  // complex ([..., 2]), zero-padded or cut to dft_length; one-sided keeps n / 2 + 1 bins.
  c["DFT"] = [](const Node& n) {
    n.known({"axis", "inverse", "onesided"});
    const Tensor& x = n.x(0);
    const std::int64_t r = n.rank();
    const Shape xs = n.shape(0, "the transform's length");
    if (r < 2 || (xs.back() != 1 && xs.back() != 2)) n.fail("the input's last axis must hold 1 (real) or 2 (complex) values");
    const std::int64_t a = n.axis(n.i("axis", 1), r - 1);
    const bool inverse = n.i("inverse", 0) != 0, onesided = n.i("onesided", 0) != 0;
    if (inverse && onesided) n.fail("an inverse one-sided transform is not supported");
    const std::int64_t in_len = xs[std::size_t(a)];
    const std::int64_t L = n.given(1) ? n.values(1).at(0) : in_len;
    if (L < 1 || L > 4096) n.fail("dft_length must be between 1 and 4096 (the transform is a product with L x L matrices), got " + std::to_string(L));
    const std::int64_t bins = onesided ? L / 2 + 1 : L;
    Ints perm;  // the axis moved last (before it, the others in order)
    for (std::int64_t d = 0; d < r - 1; ++d)
      if (d != a) perm.push_back(d);
    perm.push_back(a);
    const Tensor xd = cast(x, DType::float64);
    auto part = [&](std::int64_t k) {
      std::vector<Index> pick(std::size_t(r - 1), all());
      pick.push_back(Index(k));
      Tensor v = transpose(view(xd, pick), perm);
      std::vector<Index> cut(std::size_t(r - 2), all());
      cut.push_back(range(0, L));
      if (L < in_len) v = view(v, cut);
      if (L > in_len) v = pad_axis(v, r - 2, 0, L - in_len, 0.0);
      return v;
    };
    const Tensor re = part(0), im = xs.back() == 2 ? part(1) : Tensor();
    std::vector<double> cs(std::size_t(L * bins)), sn(std::size_t(L * bins));
    for (std::int64_t t = 0; t < L; ++t)
      for (std::int64_t f = 0; f < bins; ++f) {
        const double th = 2.0 * M_PI * double((t * f) % L) / double(L);
        cs[std::size_t(t * bins + f)] = std::cos(th), sn[std::size_t(t * bins + f)] = std::sin(th);
      }
    const Tensor Cm = tensor(cs, Shape{L, bins}), Sm = tensor(sn, Shape{L, bins});
    const double sign = inverse ? 1.0 : -1.0;  // e^(sign i theta)
    Tensor out_re = matmul(re, Cm), out_im = matmul(re, Sm) * sign;
    if (im) out_re = out_re - matmul(im, Sm) * sign, out_im = out_im + matmul(im, Cm);
    if (inverse) out_re = out_re / double(L), out_im = out_im / double(L);
    Ints back(perm.size());  // the inverse permutation
    for (std::size_t i = 0; i < perm.size(); ++i) back[std::size_t(perm[i])] = std::int64_t(i);
    const Tensor y = stack({transpose(out_re, back), transpose(out_im, back)}, r - 1);
    return one(cast(y, x.dtype()));
  };
  c["Scatter"] = c["ScatterElements"];  // (its name before opset 11)
  c["Det"] = [](const Node& n) { n.known({}); return one(linalg::det(n.x(0))); };
  c["SequenceAt"] = [](const Node& n) {
    n.known({});
    const std::vector<Tensor>& list = n.sequence(0);
    n.x(1);  // (the position is required)
    return one(list[std::size_t(sequence_position(n, 1, std::int64_t(list.size()), false, 0))]);
  };
  c["SequenceLength"] = [](const Node& n) {
    n.known({});
    return one(tensor(double(n.sequence(0).size()), DType::int64));
  };
  c["ConcatFromSequence"] = [](const Node& n) {
    n.known({"axis", "new_axis"});
    const std::vector<Tensor>& list = n.sequence(0);
    if (list.empty()) n.fail("concatenating an empty sequence");
    const bool fresh = n.i("new_axis", 0) != 0;
    const std::int64_t r = list.front().ndim() + (fresh ? 1 : 0);
    if (!n.has("axis")) n.fail("attribute 'axis' is required");
    const std::int64_t a = n.axis(n.i("axis", 0), r);
    return one(fresh ? stack(list, a) : concatenate(list, a));
  };
  // ai.onnx.preview.training's optimizers: one step for n tensors, inputs R (the learning
  // rate), T (the step count), then X..., G..., and the state tensors; outputs the new X...
  // and the new states, by the formulas of ONNX's reference
  const auto optimizer = [](std::size_t states, std::function<std::vector<Tensor>(const Node&, const Tensor& r, const Tensor& t,
                                                                                   const Tensor& x, const Tensor& g, const std::vector<Tensor>& s)>
                                                       step) {
    return [states, step](const Node& n) {
      const std::size_t groups = 2 + states;
      if (n.in.size() < 2 + groups || (n.in.size() - 2) % groups != 0)
        n.fail(std::to_string(n.in.size()) + " inputs: expected R, T and " + std::to_string(groups) + " tensors per optimized tensor");
      const std::size_t count = (n.in.size() - 2) / groups;
      std::vector<std::vector<Tensor>> out(1 + states);
      for (std::size_t i = 0; i < count; ++i) {
        const Tensor& x = n.x(2 + i);
        if (!is_floating(x.dtype())) n.fail(std::string("X is ") + dtype_name(x.dtype()) + ": only floating-point tensors are optimized");
        std::vector<Tensor> s;
        for (std::size_t k = 0; k < states; ++k) s.push_back(n.x(2 + (2 + k) * count + i));
        const Tensor r = cast(n.x(0), x.dtype()), t = cast(n.x(1), x.dtype());
        const std::vector<Tensor> r_i = step(n, r, t, x, n.x(2 + count + i), s);
        for (std::size_t k = 0; k <= states; ++k) out[k].push_back(r_i[k]);
      }
      std::vector<Tensor> flat;
      for (auto& o : out) flat.insert(flat.end(), o.begin(), o.end());
      return flat;
    };
  };
  c["Adagrad"] = optimizer(1, [](const Node& n, const Tensor& r, const Tensor& t, const Tensor& x, const Tensor& g, const std::vector<Tensor>& s) {
    n.known({"decay_factor", "epsilon", "norm_coefficient"});
    const Tensor rate = r / (t * n.f("decay_factor", 0.0) + 1.0), gr = x * n.f("norm_coefficient", 0.0) + g;
    const Tensor h = s[0] + gr * gr;
    return std::vector<Tensor>{x - rate * gr / (sqrt(h) + n.f("epsilon", 1e-6)), h};
  });
  c["Momentum"] = optimizer(1, [](const Node& n, const Tensor& r, const Tensor& t, const Tensor& x, const Tensor& g, const std::vector<Tensor>& s) {
    n.known({"alpha", "beta", "mode", "norm_coefficient"});
    if (!n.has("alpha") || !n.has("beta") || !n.has("mode") || !n.has("norm_coefficient"))
      n.fail("attributes 'alpha', 'beta', 'mode' and 'norm_coefficient' are required");
    const std::string mode = n.s("mode", "");
    if (mode != "standard" && mode != "nesterov") n.fail("mode '" + mode + "' is not 'standard' or 'nesterov'");
    const double alpha = n.f("alpha", 0.0);
    const Tensor gr = x * n.f("norm_coefficient", 0.0) + g;
    const Tensor v = s[0] * alpha + where(t > 0.0, n.f("beta", 0.0), 1.0) * gr;
    return std::vector<Tensor>{mode == "standard" ? x - r * v : x - r * (gr + v * alpha), v};
  });
  c["Adam"] = optimizer(2, [](const Node& n, const Tensor& r, const Tensor& t, const Tensor& x, const Tensor& g, const std::vector<Tensor>& s) {
    n.known({"alpha", "beta", "epsilon", "norm_coefficient", "norm_coefficient_post"});
    const double alpha = n.f("alpha", 0.9), beta = n.f("beta", 0.999);
    const Tensor gr = x * n.f("norm_coefficient", 0.0) + g;
    const Tensor v = s[0] * alpha + gr * (1.0 - alpha), h = s[1] * beta + gr * gr * (1.0 - beta);
    const Tensor tc = maximum(t, 1.0);  // (the bias correction applies from T = 1 on)
    const Tensor rate = where(t > 0.0, r * sqrt(1.0 - pow(tensor(beta, x.dtype()), tc)) / (1.0 - pow(tensor(alpha, x.dtype()), tc)), r);
    const Tensor moved = x - rate * (v / (sqrt(h) + n.f("epsilon", 1e-6)));
    return std::vector<Tensor>{moved * (1.0 - n.f("norm_coefficient_post", 0.0)), v, h};
  });
  // ai.onnx.preview.training's Gradient: d(sum of y)/dx for each x named in xs, by th::grad
  c["Gradient"] = [](const Node& n) {
    n.known({"xs", "y"});
    const auto* xs = n.attr("xs");
    if (!xs || !n.has("y")) n.fail("attributes 'xs' and 'y' are required");
    const auto find = [&](const std::string& name) {
      const auto it = n.env->values.find(name);
      if (it == n.env->values.end()) n.fail("'" + name + "' is not a tensor defined before the node");
      return it->second;
    };
    const Tensor y = find(n.s("y", ""));
    if (!is_floating(y.dtype())) n.fail(std::string("y is ") + dtype_name(y.dtype()) + ": only a floating-point y has a gradient");
    const Tensor cost = y.ndim() == 0 ? y : sum(y);
    std::vector<Tensor> out;
    for (const auto& name : xs->strings()) out.push_back(grad(cost, find(name)));
    return out;
  };
  return c;
}

const std::unordered_map<std::string, Converter>& table() {
  static const auto t = converters();
  return t;
}

// ---- Sequences: lists known when the model loads (see Env) ---------------------------------

// The operators whose one output is a sequence.
std::unordered_map<std::string, Converter> sequence_converters() {
  std::unordered_map<std::string, Converter> c;
  c["SequenceEmpty"] = [](const Node& n) {
    n.known({"dtype"});
    return std::vector<Tensor>{};
  };
  c["SequenceConstruct"] = [](const Node& n) {
    n.known({});
    std::vector<Tensor> list;
    for (std::size_t k = 0; k < n.in.size(); ++k) {
      list.push_back(n.x(k));
      if (list.back().dtype() != list.front().dtype())
        n.fail(std::string("its inputs have different element types (") + dtype_name(list.front().dtype()) + ", " +
               dtype_name(list.back().dtype()) + ")");
    }
    return list;
  };
  c["SequenceInsert"] = [](const Node& n) {
    n.known({});
    std::vector<Tensor> list = n.sequence(0);
    const Tensor& t = n.x(1);
    if (!list.empty() && t.dtype() != list.front().dtype())
      n.fail(std::string("inserting a ") + dtype_name(t.dtype()) + " tensor into a sequence of " + dtype_name(list.front().dtype()));
    const std::int64_t at = sequence_position(n, 2, std::int64_t(list.size()), true, std::int64_t(list.size()));
    list.insert(list.begin() + at, t);
    return list;
  };
  c["SequenceErase"] = [](const Node& n) {
    n.known({});
    std::vector<Tensor> list = n.sequence(0);
    if (list.empty()) n.fail("erasing from an empty sequence");
    const std::int64_t at = sequence_position(n, 1, std::int64_t(list.size()), false, std::int64_t(list.size()) - 1);
    list.erase(list.begin() + at);
    return list;
  };
  c["SplitToSequence"] = [](const Node& n) {
    n.known({"axis", "keepdims"});
    const Tensor& x = n.x(0);
    const std::int64_t a = n.axis(n.i("axis", 0), n.rank());
    const Shape xs = n.shape(0, "the sequence's length is the number of pieces");
    if (!n.given(1)) {  // pieces of size 1, the axis kept or dropped
      std::vector<Tensor> list = chunk(x, xs[std::size_t(a)], int(a));
      if (n.i("keepdims", 1) == 0)
        for (auto& t : list) t = squeeze(t, {a});
      return list;
    }
    Ints sizes = n.values(1);
    if (n.x(1).ndim() == 0) {  // one size: equal pieces, the last one shorter
      const std::int64_t each = sizes.at(0);
      if (each <= 0) n.fail("the split size must be positive, got " + std::to_string(each));
      sizes.clear();
      for (std::int64_t left = xs[std::size_t(a)]; left > 0; left -= each) sizes.push_back(std::min(each, left));
    }
    return split(x, sizes, int(a));
  };
  return c;
}

const std::unordered_map<std::string, Converter>& sequence_makers() {
  static const auto t = sequence_converters();
  return t;
}

// Rethrows a theta error of a node's op with the node named, keeping its type.
[[noreturn]] void rethrow_in(const Node& n) {
  const std::string where = n.label() + ": ";
  try {
    throw;
  } catch (const ShapeError& e) {
    throw ShapeError(where + e.what());
  } catch (const TypeError& e) {
    throw TypeError(where + e.what());
  } catch (const ValueError& e) {
    throw ValueError(where + e.what());
  } catch (const IOError& e) {
    throw IOError(where + e.what());
  } catch (const Error& e) {
    const std::string w = e.what();
    if (w.rfind(n.label(), 0) == 0) throw;
    throw Error(where + w);
  } catch (const std::exception& e) {  // (a library's own, e.g. std::length_error)
    throw Error(where + e.what());
  }
}

}  // namespace

Model import_graph(pb::GraphProto& g, const Opsets& opsets, const std::string& model_dir,
                   const std::map<std::string, Tensor>& bound, const std::string& path) {
  Model m;
  Env env;
  if (g.sparse_initializer_size() > 0) throw Error("onnx::load: " + path + ": sparse initializers are not supported");
  for (auto& init : *g.mutable_initializer()) {  // (large raw data is taken over, not copied)
    env.types[init.name()] = init.data_type();
    Shared s = shared(tensor_of(init, "onnx::load: " + path + ": initializer", model_dir, &init), init.name());
    env.values[init.name()] = s;
    m.parameters.push_back(s);
  }
  for (const auto& in : g.input()) {
    if (env.values.count(in.name())) continue;  // (IR < 4: initializers are listed as inputs too)
    const std::string where = "onnx::load: " + path + ": input '" + in.name() + "'";
    if (!in.type().has_tensor_type()) throw Error(where + ": only tensor inputs are supported (not sequences, maps or optionals)");
    const auto& tt = in.type().tensor_type();
    const DType dt = dtype_of_onnx(tt.elem_type(), where);
    env.types[in.name()] = tt.elem_type();
    if (!tt.has_shape()) throw Error(where + ": its rank is unknown (theta's placeholders have a rank)");
    m.input_names.push_back(in.name());
    if (auto b = bound.find(in.name()); b != bound.end()) {
      env.values[in.name()] = b->second.dtype() == dt ? b->second : cast(b->second, dt);
      continue;
    }
    // the sizes the file declares (dim_value) are the placeholder's: the graph is built with
    // them, and a call with other sizes is a th::ShapeError; named or missing ones stay open
    Shape dims;
    for (const auto& d : tt.shape().dim()) dims.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value() : -1);
    for (auto d : dims)
      if (d > (std::int64_t(1) << 40)) throw IOError(where + ": a declared size of " + std::to_string(d) + " is out of range");
    Tensor p = th::detail::make_leaf(th::detail::NodeKind::placeholder, dt, dims, std::nullopt, in.name());
    env.values[in.name()] = p;
    m.inputs.push_back(p);
  }
  const std::int64_t opset = opsets.count("") ? opsets.at("") : 1;
  run_nodes(g, env, opset, model_dir, 0);
  for (const auto& out : g.output()) {
    if (env.sequences.count(out.name()))
      throw Error("onnx::load: " + path + ": output '" + out.name() +
                  "' is a sequence: theta's functions return tensors (read it with SequenceAt or ConcatFromSequence)");
    const auto it = env.values.find(out.name());
    if (it == env.values.end()) throw Error("onnx::load: " + path + ": output '" + out.name() + "' is computed by no node");
    m.outputs.push_back(it->second);
    m.output_names.push_back(out.name());
  }
  return m;
}

namespace {

// The graph's nodes in order, each through its converter, their outputs added to env.
void run_nodes(const pb::GraphProto& g, Env& env, std::int64_t opset, const std::string& model_dir, int depth) {
  for (const auto& node : g.node()) {
    Node n{node, {}, {}, opset, model_dir, &env, depth};
    static const std::set<std::string> training_ops = {"Gradient", "Adagrad", "Momentum", "Adam"};
    const bool training = node.domain() == "ai.onnx.preview.training" && training_ops.count(node.op_type());
    if (!node.domain().empty() && node.domain() != "ai.onnx" && !training)
      n.fail("operator domain '" + node.domain() + "' is not supported (only the default ai.onnx, and ai.onnx.preview.training's Gradient, Adagrad, Momentum, Adam)");
    if (node.domain().empty() && training_ops.count(node.op_type()))
      n.fail("operator " + node.op_type() + " is ai.onnx.preview.training's (the node names no such domain)");
    const auto conv = table().find(node.op_type());
    const auto seq_conv = sequence_makers().find(node.op_type());
    if (conv == table().end() && seq_conv == sequence_makers().end()) n.fail("operator " + node.op_type() + " is not supported");
    for (const auto& name : node.input()) {
      n.seq.push_back(nullptr);
      if (name.empty()) {
        n.in.emplace_back();
        continue;
      }
      if (const auto s = env.sequences.find(name); s != env.sequences.end()) {
        n.in.emplace_back();
        n.seq.back() = &s->second;
        continue;
      }
      const auto it = env.values.find(name);
      if (it == env.values.end())
        n.fail("input '" + name + "' is not defined before the node (the graph is not in topological order, or has a cycle)");
      n.in.push_back(it->second);
    }
    const bool makes_sequence = seq_conv != sequence_makers().end();
    std::vector<Tensor> outs;
    try {
      outs = (makes_sequence ? seq_conv : conv)->second(n);
    } catch (...) {
      rethrow_in(n);
    }
    if (makes_sequence) {  // one output, the list
      if (node.output_size() > 0 && !node.output(0).empty()) {
        env.values.erase(node.output(0));
        env.sequences[node.output(0)] = std::move(outs);
      }
      continue;
    }
    for (int k = 0; k < node.output_size(); ++k) {
      const std::string& name = node.output(k);
      if (name.empty()) continue;
      if (std::size_t(k) >= outs.size() || !outs[std::size_t(k)]) n.fail("output " + std::to_string(k) + " is not supported");
      env.sequences.erase(name);
      env.values[name] = outs[std::size_t(k)];
      env.types.erase(name);
      if (node.op_type() == "Constant" && n.has("value")) env.types[name] = n.attr("value")->t().data_type();
      if (node.op_type() == "Cast") env.types[name] = int(n.i("to", 0));
    }
  }
}

std::vector<Tensor> run_body(const Node& n, const pb::GraphProto& body, const std::vector<Tensor>& inputs) {
  if (n.depth >= 16) n.fail("subgraphs nested more than 16 deep");
  if (body.input_size() != int(inputs.size()))
    n.fail("its body has " + std::to_string(body.input_size()) + " inputs, expected " + std::to_string(inputs.size()));
  Env env = *n.env;  // the outer scope, then the body's own names over it
  for (const auto& init : body.initializer()) {
    env.values[init.name()] = tensor_of(init, n.label() + ": body initializer", n.model_dir);
    env.types[init.name()] = init.data_type();
  }
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    env.sequences.erase(body.input(int(k)).name());
    env.values[body.input(int(k)).name()] = inputs[k];
  }
  run_nodes(body, env, n.opset, n.model_dir, n.depth + 1);
  std::vector<Tensor> outs;
  for (const auto& out : body.output()) {
    if (env.sequences.count(out.name())) n.fail("its body's output '" + out.name() + "' is a sequence, which theta's scan does not carry");
    const auto it = env.values.find(out.name());
    if (it == env.values.end()) n.fail("its body's output '" + out.name() + "' is computed by no node");
    outs.push_back(it->second);
  }
  return outs;
}

}  // namespace

}  // namespace th::onnx::detail
