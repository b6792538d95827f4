// th::onnx::save (API.md section 17): a frozen function's program as an ONNX model. Each step
// becomes the ONNX nodes of its op; a fused step is written as the steps it replaced (its
// members, folded sums and tail), so the file holds plain ONNX operators. Graph inputs are
// the function's inputs (their sizes symbolic), initializers its constants and the current
// values of its shared variables (named as the variables), outputs `output_0`, ... An op
// without an ONNX counterpart is a th::Error naming it and the step; nothing is written then.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <set>
#include <tuple>

#include "core/node.hpp"
#include "core/text.hpp"
#include "freeze/optimize.hpp"
#include "freeze/program.hpp"
#include "ops/conv_chain.hpp"
#include "ops/subprograms.hpp"
#include "theta/error.hpp"
#include "theta/nn.hpp"
#include "theta/onnx.hpp"

namespace th::onnx {

namespace {

namespace pb = ::onnx;
using th::detail::Program;
using th::detail::Step;
using Ints = std::vector<std::int64_t>;

constexpr std::int64_t kMinOpset = 14, kMaxOpset = 17;  // Trilu and integer Relu are opset 14
constexpr std::int64_t kOpen = std::numeric_limits<std::int64_t>::max();

int onnx_type(DType d) {
  switch (d) {
    case DType::boolean: return pb::TensorProto::BOOL;
    case DType::int32: return pb::TensorProto::INT32;
    case DType::int64: return pb::TensorProto::INT64;
    case DType::float32: return pb::TensorProto::FLOAT;
    case DType::float64: return pb::TensorProto::DOUBLE;
    case DType::string: return pb::TensorProto::STRING;
  }
  return pb::TensorProto::UNDEFINED;
}

// A host value as a TensorProto named `name` (raw little-endian data, as ONNX stores it).
void fill_tensor(pb::TensorProto& t, const std::string& name, const th::detail::Storage& value) {
  th::detail::Storage s = value.device() == th::cpu() ? value : th::detail::transfer(value, th::cpu());
  s = th::detail::contiguous_as(s, s.dtype);
  t.set_name(name);
  t.set_data_type(onnx_type(s.dtype));
  for (auto d : s.shape) t.add_dims(d);
  if (s.dtype == DType::string) {  // text goes in string_data
    for (std::int64_t i = 0; i < s.size(); ++i) t.add_string_data(std::string(th::detail::text_of(s.data<th::detail::Text>()[i])));
    return;
  }
  t.set_raw_data(std::string(s.bytes(), std::size_t(s.size()) * dtype_size(s.dtype)));
}

// A value's declared type: dtype and sizes (named dimensions where the size is open).
void value_info(pb::ValueInfoProto& v, const std::string& name, DType d, const Shape& s) {
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx_type(d));
  auto* sh = t->mutable_shape();
  for (std::size_t k = 0; k < s.size(); ++k) {
    auto* dim = sh->add_dim();
    if (s[k] >= 0) dim->set_dim_value(s[k]);
    else dim->set_dim_param(name + "_" + std::to_string(k));
  }
}

// Writes one program into one graph: the model's, or a subgraph (If's branches, Loop's body)
// whose writer shares the model's names (unique across all graphs, as ONNX wants) and its
// shared variables (initializers of the model's graph).
struct Writer {
  const Program& p;
  pb::GraphProto& g;
  int opset;
  Writer* root = this;
  std::vector<std::string> slot_name;           // given names: inputs, constants, shared variables
  std::vector<const th::detail::Node*> shared;  // per slot: its shared variable, if any
  std::set<std::string> used;                                   // (the root's: every name of the model)
  std::int64_t counter = 0;                                     // (the root's)
  std::map<const th::detail::Node*, std::string> shared_names;  // (the root's: initializers by variable)
  std::vector<char> written;                                  // per slot: a node computes it already
  std::map<std::size_t, std::vector<std::string>> tuples;    // a tuple's slot: its parts' names

  Writer(const Program& prog, pb::GraphProto& graph, int opset_)
      : p(prog), g(graph), opset(opset_), slot_name(prog.slots), shared(prog.slots, nullptr), written(prog.slots, 0) {}

  // A name no other value has: `base`, else base_1, base_2, ...
  std::string unique(std::string base) {
    std::set<std::string>& u = root->used;
    if (base.empty()) base = "v";
    std::string n = base;
    for (std::int64_t k = 1; u.count(n); ++k) n = base + "_" + std::to_string(k);
    u.insert(n);
    return n;
  }
  std::string fresh(const std::string& base) { return unique(base + "_" + std::to_string(root->counter++)); }

  // The initializer of shared variable n (added to the model's graph the first time).
  std::string shared_variable(const th::detail::Node* n) {
    const auto it = root->shared_names.find(n);
    if (it != root->shared_names.end()) return it->second;
    const std::string nm = unique(n->name.empty() ? "shared" : n->name);
    th::detail::Storage v;
    {
      std::lock_guard<std::mutex> lock(th::detail::shared_values_mutex());
      v = *n->value;
    }
    fill_tensor(*root->g.add_initializer(), nm, v);
    return root->shared_names[n] = nm;
  }
  // Names the program's shared variables and constants, then writes its steps.
  void body() {
    for (const auto& [slot, n] : p.shared) {
      shared[slot] = n.get();
      slot_name[slot] = shared_variable(n.get());
    }
    for (const auto& c : p.constants) {
      const th::detail::Storage& value = c.second;  // (lambdas capture no structured bindings before C++20)
      slot_name[c.first] = constant("const", [&](pb::TensorProto& t) { fill_tensor(t, "", value); });
    }
    for (const Step& s : p.steps) step(s);
  }
  // A writer of program q into subgraph sg (named after `base`), sharing this model's names
  // and initializers. The caller names q's inputs, then writes its body and outputs.
  Writer sub(const Program& q, pb::GraphProto& sg, const std::string& base) {
    Writer w(q, sg, opset);
    w.root = root;
    sg.set_name(unique(base));
    return w;
  }
  // A declared input of this (sub)graph.
  std::string input(const std::string& base, DType d, const Shape& shape) {
    const std::string nm = unique(g.name() + "_" + base);
    value_info(*g.add_input(), nm, d, shape);
    return nm;
  }
  // A declared output of this (sub)graph: an Identity of `value`.
  std::string output(const std::string& base, const std::string& value, DType d, const Shape& shape) {
    const std::string nm = unique(g.name() + "_" + base);
    node("Identity", {value}, nm);
    value_info(*g.add_output(), nm, d, shape);
    return nm;
  }

  const std::string& name(std::size_t slot) {
    if (slot_name[slot].empty()) slot_name[slot] = unique("t" + std::to_string(slot));
    return slot_name[slot];
  }
  DType dt(std::size_t slot) const { return p.slot_dtype[slot]; }
  std::size_t rank(std::size_t slot) const { return p.slot_shape[slot].size(); }
  // The slot's static shape; a shared variable's from its current value.
  Shape shape(std::size_t slot) const {
    if (shared[slot]) {
      std::lock_guard<std::mutex> lock(th::detail::shared_values_mutex());
      return shared[slot]->value->shape;
    }
    return p.slot_shape[slot];
  }

  // The slot's shape as an int64 list: constant when the program knows it, else Shape().
  std::string shape_list(std::size_t slot) {
    const Shape& st = p.slot_shape[slot];
    if (!shared[slot] && std::find(st.begin(), st.end(), -1) == st.end()) return ints(st);
    return temp("Shape", {name(slot)});
  }

  [[noreturn]] void refuse(const Step& s, const std::string& why) const {
    throw Error("onnx::save: step %" + std::to_string(s.out) + " = " + th::detail::step_name(s) + ": " + why);
  }

  pb::NodeProto& node(const std::string& type, const std::vector<std::string>& in, const std::string& out) {
    pb::NodeProto& n = *g.add_node();
    n.set_op_type(type);
    n.set_name(fresh(type));
    for (const auto& i : in) n.add_input(i);
    n.add_output(out);
    return n;
  }
  // One node whose output gets a fresh name, returned.
  std::string temp(const std::string& type, const std::vector<std::string>& in) {
    const std::string out = fresh(type.empty() ? "t" : type);
    node(type, in, out);
    return out;
  }
  static void attr(pb::NodeProto& n, const char* key, std::int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(pb::NodeProto& n, const char* key, const std::string& v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr(pb::NodeProto& n, const char* key, const std::vector<std::string>& v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::STRINGS);
    for (const auto& x : v) a->add_strings(x);
  }
  static void attr(pb::NodeProto& n, const char* key, const Ints& v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::INTS);
    for (auto x : v) a->add_ints(x);
  }
  static void attr_dtype_zero(pb::NodeProto& n, DType d) {  // ConstantOfShape's value
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(pb::AttributeProto::TENSOR);
    th::detail::Storage z = th::detail::alloc_storage(d, {1}, th::cpu());
    std::memset(z.bytes(), 0, dtype_size(d));
    fill_tensor(*a->mutable_t(), "zero", z);
  }

  // A Constant node holding t's value (filled by `fill`), named `base`_N: theta's constants and
  // the lists ONNX ops take as inputs are nodes, not initializers, so that a loader sees
  // them as fixed (initializers are the shared variables, which a loader may let change).
  template <class Fill>
  std::string constant(const std::string& base, Fill fill) {
    const std::string out = fresh(base);
    pb::NodeProto& n = node("Constant", {}, out);
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(pb::AttributeProto::TENSOR);
    fill(*a->mutable_t());
    a->mutable_t()->set_name(out);
    return out;
  }
  // int64 values (a 1-d list, or a 0-d scalar when `scalar`).
  std::string ints(const Ints& v, bool scalar = false) {
    return constant("c", [&](pb::TensorProto& t) {
      t.set_data_type(pb::TensorProto::INT64);
      if (!scalar) t.add_dims(std::int64_t(v.size()));
      for (auto x : v) t.add_int64_data(x);
    });
  }
  // A 0-d value of dtype d holding v.
  std::string scalar(DType d, double v) {
    return constant("c", [&](pb::TensorProto& t) {
      t.set_data_type(onnx_type(d));
      switch (d) {
        case DType::float32: t.add_float_data(float(v)); break;
        case DType::float64: t.add_double_data(v); break;
        case DType::int64: t.add_int64_data(std::int64_t(v)); break;
        default: t.add_int32_data(std::int32_t(v)); break;
      }
    });
  }

  // 1-d lists joined end to end.
  std::string concat(const std::vector<std::string>& in) {
    pb::NodeProto& n = node("Concat", in, fresh("concat"));
    attr(n, "axis", std::int64_t(0));
    return n.output(0);
  }

  // `in` (of dtype from) as dtype to: itself, or a Cast's output.
  std::string cast(const std::string& in, DType from, DType to) {
    if (from == to) return in;
    pb::NodeProto& n = node("Cast", {in}, fresh("cast"));
    attr(n, "to", std::int64_t(onnx_type(to)));
    return n.output(0);
  }
  std::string operand(const Step& s, std::size_t k, DType to) { return cast(name(s.in[k]), dt(s.in[k]), to); }
  // The last node of a step: computes `value` (of dtype `from`) into the step's output.
  void finish(const Step& s, const std::string& value, DType from) {
    const std::string out = name(s.out);
    if (from == dt(s.out)) {
      node("Identity", {value}, out);
    } else {
      pb::NodeProto& n = node("Cast", {value}, out);
      attr(n, "to", std::int64_t(onnx_type(dt(s.out))));
    }
  }
  // One node of `type` on operands already converted, written straight to the step's output.
  pb::NodeProto& last(const Step& s, const std::string& type, const std::vector<std::string>& in) {
    return node(type, in, name(s.out));
  }

  void step(const Step& s);
  void elementwise(const Step& s, const std::string& key);
  void reduction(const Step& s, const std::string& key);
  std::string conv_common(const Step& s, pb::NodeProto*& n, const std::string& type, DType cd, const std::string& out);
  void conv(const Step& s, bool fused);
  void conv_transpose(const Step& s);
  void pool(const Step& s);
  void view(const Step& s);
  void ifelse(const Step& s);
  void scan(const Step& s);
};

// Transposes of the last two axes of a rank-r value.
Ints swap_last(std::size_t r) {
  Ints perm(r);
  for (std::size_t i = 0; i < r; ++i) perm[i] = std::int64_t(i);
  std::swap(perm[r - 2], perm[r - 1]);
  return perm;
}

void Writer::elementwise(const Step& s, const std::string& key) {
  static const std::map<std::string, const char*> unary = {
      {"neg", "Neg"},   {"abs", "Abs"},   {"sign", "Sign"}, {"exp", "Exp"},         {"log", "Log"},
      {"erf", "Erf"},   {"sqrt", "Sqrt"}, {"sin", "Sin"},   {"cos", "Cos"},         {"tanh", "Tanh"},
      {"sigmoid", "Sigmoid"}, {"softplus", "Softplus"}, {"relu", "Relu"}, {"arcsin", "Asin"}, {"arccos", "Acos"},
      {"arctan", "Atan"}};
  static const std::map<std::string, const char*> binary = {
      {"add", "Add"}, {"sub", "Sub"}, {"mul", "Mul"}, {"div", "Div"}, {"pow", "Pow"}, {"maximum", "Max"}, {"minimum", "Min"}};
  static const std::map<std::string, const char*> compare = {
      {"lt", "Less"}, {"le", "LessOrEqual"}, {"gt", "Greater"}, {"ge", "GreaterOrEqual"}, {"eq", "Equal"}, {"ne", "Equal"}};
  const DType od = dt(s.out);
  if (auto u = unary.find(key); u != unary.end()) {
    last(s, u->second, {operand(s, 0, od)});
  } else if (key == "log1p") {
    const std::string x = operand(s, 0, od);
    last(s, "Log", {temp("Add", {x, scalar(od, 1)})});
  } else if (key == "expm1") {
    const std::string x = operand(s, 0, od);
    last(s, "Sub", {temp("Exp", {x}), scalar(od, 1)});
  } else if (auto b = binary.find(key); b != binary.end()) {
    last(s, b->second, {operand(s, 0, od), operand(s, 1, od)});
  } else if (auto c = compare.find(key); c != compare.end()) {
    DType common = promote_types(dt(s.in[0]), dt(s.in[1]));
    if (common == DType::boolean && key != "eq" && key != "ne") common = DType::int32;
    const std::vector<std::string> in{operand(s, 0, common), operand(s, 1, common)};
    if (key == "ne") last(s, "Not", {temp("Equal", in)});
    else last(s, c->second, in);
  } else if (key == "where") {
    last(s, "Where", {operand(s, 0, DType::boolean), operand(s, 1, od), operand(s, 2, od)});
  }
}

void Writer::reduction(const Step& s, const std::string& key) {
  const std::size_t r = rank(s.in[0]);
  const Ints& axes = s.attrs.axes;
  if (key == "sum" || key == "prod") {
    const std::string x = operand(s, 0, dt(s.out));
    if (axes.empty() || r == 0) return finish(s, x, dt(s.out));
    if (key == "sum") {
      attr(last(s, "ReduceSum", {x, ints(axes)}), "keepdims", std::int64_t(s.attrs.keepdims));
    } else {
      pb::NodeProto& n = last(s, "ReduceProd", {x});
      attr(n, "axes", axes);
      attr(n, "keepdims", std::int64_t(s.attrs.keepdims));
    }
    return;
  }
  // max, min: booleans through int32 (ReduceMax takes no bool)
  const DType d = dt(s.in[0]) == DType::boolean ? DType::int32 : dt(s.in[0]);
  const std::string x = operand(s, 0, d);
  if (axes.empty() || r == 0) return finish(s, x, d);
  const std::string y = fresh("reduce");
  pb::NodeProto& n = node(key == "max" ? "ReduceMax" : "ReduceMin", {x}, y);
  attr(n, "axes", axes);
  attr(n, "keepdims", std::int64_t(s.attrs.keepdims));
  finish(s, y, d);
}

// A convolution step's pads (begin, end per axis), strides, dilations and group; its filters
// (operand 1) as ONNX wants them, of dtype cd: flipped where Theano's flip is on (ONNX's
// Conv is a correlation).
std::string Writer::conv_common(const Step& s, pb::NodeProto*& n, const std::string& type, DType cd, const std::string& out) {
  const Ints& a = s.attrs.axes;
  if (rank(s.in[0]) != 4 || rank(s.in[1]) != 4) refuse(s, "ONNX's " + type + " here takes 4-d inputs and filters");
  const Shape w = shape(s.in[1]);
  Ints pads(4);
  for (std::size_t k = 0; k < 2; ++k) {
    std::int64_t pad = a[k];
    if (pad < 0) {  // full or half: from the filter's size
      const std::int64_t size = w[2 + k];
      if (size < 0) refuse(s, "'full' or 'half' padding needs the filters' size, which is known only at run time");
      const std::int64_t dk = (size - 1) * a[4 + k] + 1;
      pad = pad == Padding::kFull ? dk - 1 : dk / 2;
    }
    pads[k] = pads[k + 2] = pad;
  }
  std::string filters = operand(s, 1, cd);
  if (a[7] != 0)
    filters = temp("Slice", {filters, ints({-1, -1}), ints({std::numeric_limits<std::int64_t>::min() + 1,
                                                            std::numeric_limits<std::int64_t>::min() + 1}),
                             ints({2, 3}), ints({-1, -1})});
  n = &node(type, {operand(s, 0, cd), filters}, out);
  attr(*n, "pads", pads);
  attr(*n, "strides", Ints{a[2], a[3]});
  attr(*n, "dilations", Ints{a[4], a[5]});
  attr(*n, "group", a[6]);
  return out;
}

// conv2d_transpose (conv2d_grad_input without a shape operand): PyTorch's ConvTranspose2d,
// its output padding in attrs.axes[8], [9].
void Writer::conv_transpose(const Step& s) {
  const DType cd = dt(s.out);
  pb::NodeProto* n = nullptr;
  conv_common(s, n, "ConvTranspose", cd, name(s.out));
  const Ints& a = s.attrs.axes;
  if (a.size() > 9 && (a[8] != 0 || a[9] != 0)) attr(*n, "output_padding", Ints{a[8], a[9]});
}

void Writer::conv(const Step& s, bool fused) {
  const Ints& a = s.attrs.axes;
  // the convolution's own dtype (an epilogue may promote further)
  const DType cd = promote_types(dt(s.in[0]), dt(s.in[1]));
  const std::string y = fused ? fresh("conv") : name(s.out);
  pb::NodeProto* n = nullptr;
  conv_common(s, n, "Conv", cd, y);
  if (!fused) {
    if (cd != dt(s.out)) refuse(s, "unexpected result type");
    return;
  }
  const DType od = dt(s.out);
  std::string z = cast(y, cd, od);
  if (s.in.size() == 4) z = temp("Mul", {z, operand(s, 2, od)});
  const bool relu = a.size() > 8 && a[8] != 0;
  if (!relu) return void(last(s, "Add", {z, operand(s, s.in.size() - 1, od)}));
  last(s, "Relu", {temp("Add", {z, operand(s, s.in.size() - 1, od)})});
}

void Writer::pool(const Step& s) {
  const Ints& a = s.attrs.axes;
  const bool ignore_border = a[6] != 0;
  const auto mode = a[7];  // 0 max, 1 sum, 2 average including padding, 3 average excluding it
  if (!ignore_border && (a[2] > a[0] || a[3] > a[1]))
    refuse(s, "windows cut at the border (ignore_border = false) with a stride larger than the window");
  if (!ignore_border && mode == 1) refuse(s, "sum pooling with ignore_border = false");
  const std::size_t r = rank(s.in[0]);
  std::string x = name(s.in[0]);
  std::string shape_in;
  if (r != 4) {  // ONNX pools (N, C, H, W): other ranks as (rest, 1, H, W)
    shape_in = temp("Shape", {x});
    const std::string hw = temp("Slice", {shape_in, ints({-2}), ints({kOpen})});
    x = temp("Reshape", {x, concat({ints({-1, 1}), hw})});
  }
  const std::string y = r != 4 || mode == 1 ? fresh("pool") : name(s.out);
  pb::NodeProto& n = node(mode == 0 ? "MaxPool" : "AveragePool", {x}, y);
  attr(n, "kernel_shape", Ints{a[0], a[1]});
  attr(n, "strides", Ints{a[2], a[3]});
  attr(n, "pads", Ints{a[4], a[5], a[4], a[5]});
  if (!ignore_border) attr(n, "ceil_mode", std::int64_t(1));
  // average_inc_pad over windows cut at the border (no padding then) divides by the cells
  // inside, as count_include_pad = 0 does
  if (mode != 0) attr(n, "count_include_pad", std::int64_t(ignore_border && (mode == 1 || mode == 2)));
  std::string v = y;
  if (mode == 1) {  // a sum: the average over whole windows times their size
    const std::string size = scalar(dt(s.out), double(a[0] * a[1]));
    if (r == 4) return void(last(s, "Mul", {y, size}));
    v = temp("Mul", {y, size});
  }
  if (r == 4) return;
  const std::string lead = temp("Slice", {shape_in, ints({0}), ints({-2})});
  const std::string hw = temp("Slice", {temp("Shape", {v}), ints({2}), ints({4})});
  last(s, "Reshape", {v, concat({lead, hw})});
}

void Writer::view(const Step& s) {
  const auto& index = s.attrs.index;
  Ints starts, ends, axes, steps, drop;
  for (std::size_t i = 0; i < index.size(); ++i) {
    const Index& ix = index[i];
    if (ix.kind == Index::Kind::all) continue;
    axes.push_back(std::int64_t(i));
    if (ix.kind == Index::Kind::integer) {
      starts.push_back(ix.i);
      ends.push_back(ix.i == -1 ? kOpen : ix.i + 1);
      steps.push_back(1);
      drop.push_back(std::int64_t(i));
      continue;
    }
    steps.push_back(ix.step);
    starts.push_back(ix.start ? *ix.start : ix.step > 0 ? 0 : kOpen);
    // an open end backwards: ONNX clamps ends below -dim to -1 (before the first element)
    ends.push_back(ix.stop ? *ix.stop : ix.step > 0 ? kOpen : std::numeric_limits<std::int64_t>::min() + 1);
  }
  std::string x = name(s.in[0]);
  if (axes.empty()) return finish(s, x, dt(s.out));
  if (drop.empty()) return void(last(s, "Slice", {x, ints(starts), ints(ends), ints(axes), ints(steps)}));
  last(s, "Squeeze", {temp("Slice", {x, ints(starts), ints(ends), ints(axes), ints(steps)}), ints(drop)});
}

void Writer::step(const Step& s) {
  if (th::detail::sub_as<th::detail::ConvChain>(s.attrs)) {  // a conv_chain: its links
    for (const Step& l : th::detail::unchained(s)) step(l);
    return;
  }
  if (const th::detail::Op* origin = th::detail::twin_origin(*s.op)) {  // read for its shape only: the op itself
    th::detail::Step o = s;
    o.op = origin;
    return step(o);
  }
  if (s.fused) {  // the steps it replaced, as its fallback runs them
    for (const Step& m : s.fused->members) step(m);
    for (const auto& r : s.fused->reductions) step(r.step);
    for (const Step& t : s.fused->tail_steps) step(t);
    return;
  }
  // fused chains that share an intermediate each recompute it: ONNX names a value once
  if (written[s.out]) return;
  written[s.out] = 1;
  const std::string key = s.op->key;
  const DType od = dt(s.out);
  static const std::set<std::string> elementwise_keys = {
      "neg", "abs", "sign", "exp", "log", "log1p", "expm1", "erf", "sqrt", "sin", "cos", "tanh", "sigmoid", "softplus",
      "relu", "arcsin", "arccos", "arctan", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "lt", "le", "gt", "ge", "eq", "ne", "where"};
  if (elementwise_keys.count(key)) return elementwise(s, key);
  if (key == "sum" || key == "prod" || key == "max" || key == "min") return reduction(s, key);
  if (key == "cast" || key == "stop_gradient" || key == "to") return finish(s, name(s.in[0]), dt(s.in[0]));
  if (key == "string_normalize") {  // its stopwords are an attribute in ONNX: a constant here
    const th::detail::Storage* words = nullptr;
    for (const auto& c : p.constants)
      if (c.first == s.in[1]) words = &c.second;
    if (!words) throw Error("onnx::save: StringNormalizer's stopwords must be a constant");
    pb::NodeProto& n = node("StringNormalizer", {name(s.in[0])}, fresh("text"));
    attr(n, "case_change_action", std::string(s.attrs.axis == 1 ? "LOWER" : s.attrs.axis == 2 ? "UPPER" : "NONE"));
    attr(n, "is_case_sensitive", std::int64_t(s.attrs.keepdims));
    const th::detail::Storage w = th::detail::contiguous_as(*words, DType::string);
    std::vector<std::string> stop;
    for (std::int64_t i = 0; i < w.size(); ++i) stop.emplace_back(th::detail::text_of(w.data<th::detail::Text>()[i]));
    if (!stop.empty()) attr(n, "stopwords", stop);
    return finish(s, n.output(0), DType::string);
  }
  if (key == "argmax" || key == "argmin") {
    std::string x = operand(s, 0, dt(s.in[0]) == DType::boolean ? DType::int32 : dt(s.in[0]));
    if (s.attrs.all) x = temp("Reshape", {x, ints({-1})});
    const std::string y = fresh("arg");
    pb::NodeProto& n = node(key == "argmax" ? "ArgMax" : "ArgMin", {x}, y);
    attr(n, "axis", s.attrs.all ? std::int64_t(0) : s.attrs.axis);
    attr(n, "keepdims", std::int64_t(s.attrs.keepdims));
    std::string v = y;
    if (s.attrs.all && s.attrs.keepdims) v = temp("Reshape", {y, ints(Ints(rank(s.in[0]), 1))});
    return finish(s, v, DType::int64);
  }
  if (key == "count") {  // the product of the operand's sizes over attrs.axes
    if (s.attrs.axes.empty()) return finish(s, scalar(DType::int64, 1), DType::int64);
    const std::string sizes = temp("Gather", {temp("Shape", {name(s.in[0])}), ints(s.attrs.axes)});
    pb::NodeProto& n = node("ReduceProd", {sizes}, fresh("count"));
    attr(n, "keepdims", std::int64_t(0));
    return finish(s, n.output(0), DType::int64);
  }
  if (key == "broadcast_shape") {  // zeros of the operands' broadcast shape, padded to attrs.axis dims
    std::string z = scalar(od, 0);
    for (std::size_t k = 0; k < s.in.size(); ++k) z = temp("Expand", {z, shape_list(s.in[k])});
    std::size_t r = 0;
    for (std::size_t k = 0; k < s.in.size(); ++k) r = std::max(r, rank(s.in[k]));
    if (std::size_t(s.attrs.axis) > r) {
      Ints lead;
      for (std::size_t k = 0; k < std::size_t(s.attrs.axis) - r; ++k) lead.push_back(std::int64_t(k));
      z = temp("Unsqueeze", {z, ints(lead)});
    }
    return finish(s, z, od);
  }
  if (key == "shape_of") return finish(s, temp("Shape", {name(s.in[0])}), DType::int64);
  if (key == "matmul" || key == "matmul_t" || key == "matmul_acc") {
    const DType pd = promote_types(dt(s.in[0]), dt(s.in[1]));
    std::string a = operand(s, 0, pd), b = operand(s, 1, pd);
    for (unsigned k = 0; k < 2; ++k) {
      if (!(s.attrs.transpose >> k & 1u)) continue;
      if (rank(s.in[k]) < 2) refuse(s, "a transposed operand of rank < 2");
      pb::NodeProto& t = node("Transpose", {k ? b : a}, fresh("transpose"));
      attr(t, "perm", swap_last(rank(s.in[k])));
      (k ? b : a) = t.output(0);
    }
    if (key != "matmul_acc") return finish(s, temp("MatMul", {a, b}), pd);
    if (s.attrs.all) refuse(s, "a product summed to the accumulator's shape");
    const std::string t = cast(temp("Mul", {temp("MatMul", {a, b}), scalar(pd, s.attrs.scale)}), pd, od);
    const std::string c = operand(s, 2, od);
    if (s.attrs.axis == 0) return void(last(s, "Sub", {c, t}));
    return void(last(s, "Add", s.attrs.axis == 2 ? std::vector<std::string>{t, c} : std::vector<std::string>{c, t}));
  }
  if (key == "conv2d" || key == "conv2d_fused") return conv(s, key == "conv2d_fused");
  if (key == "conv2d_grad_input" && s.in.size() == 2) return conv_transpose(s);
  if (key == "split") {  // the parts as Split's outputs; `part` steps name them
    std::vector<std::string>& parts = tuples[s.out];
    const std::string sizes = ints(s.attrs.axes);  // (its Constant node first)
    pb::NodeProto& n = *g.add_node();
    n.set_op_type("Split");
    n.set_name(fresh("Split"));
    n.add_input(name(s.in[0]));
    n.add_input(sizes);
    for (std::size_t k = 0; k < s.attrs.axes.size(); ++k) {
      parts.push_back(fresh(name(s.out) + "_part"));
      n.add_output(parts.back());
    }
    attr(n, "axis", s.attrs.axis);
    return;
  }
  if (key == "part" || key == "scan_part") {
    const auto t = tuples.find(s.in[0]);
    if (t == tuples.end() || std::size_t(s.attrs.part) >= t->second.size())
      refuse(s, "a part of an op whose ONNX counterpart theta does not write");
    return finish(s, t->second[std::size_t(s.attrs.part)], dt(s.out));
  }
  if (key == "pool_2d") return pool(s);
  if (key == "softmax" || key == "log_softmax") {
    attr(last(s, key == "softmax" ? "Softmax" : "LogSoftmax", {name(s.in[0])}), "axis", s.attrs.axis);
    return;
  }
  if (key == "reshape") {
    bool zero = false, open = false;
    for (auto d : s.attrs.shape) zero = zero || d == 0, open = open || d < 0;
    if (zero && open) refuse(s, "a target shape with both a 0 and a -1");
    pb::NodeProto& n = last(s, "Reshape", {name(s.in[0]), ints(s.attrs.shape)});
    if (zero) attr(n, "allowzero", std::int64_t(1));
    return;
  }
  if (key == "reshape_like" || key == "reshape_by") {  // sizes from a value: a 0 is a size of 0
    const std::string shape = key == "reshape_like" ? shape_list(s.in[1]) : operand(s, 1, DType::int64);
    attr(last(s, "Reshape", {name(s.in[0]), shape}), "allowzero", std::int64_t(1));
    return;
  }
  if (key == "zeros") {
    attr_dtype_zero(last(s, "ConstantOfShape", {operand(s, 0, DType::int64)}), od);
    return;
  }
  if (key == "expand_dims") return void(last(s, "Unsqueeze", {name(s.in[0]), ints({s.attrs.axis})}));
  if (key == "squeeze") {
    if (s.attrs.axes.empty()) return finish(s, name(s.in[0]), dt(s.in[0]));
    return void(last(s, "Squeeze", {name(s.in[0]), ints(s.attrs.axes)}));
  }
  if (key == "transpose") {
    Ints perm = s.attrs.axes;
    if (perm.empty())  // reversed axes
      for (std::size_t i = 0; i < rank(s.in[0]); ++i) perm.insert(perm.begin(), std::int64_t(i));
    attr(last(s, "Transpose", {name(s.in[0])}), "perm", perm);
    return;
  }
  if (key == "broadcast_to") return void(last(s, "Expand", {name(s.in[0]), ints(s.attrs.shape)}));
  if (key == "broadcast_like") return void(last(s, "Expand", {name(s.in[0]), shape_list(s.in[1])}));
  if (key == "view") return view(s);
  if (key == "take") {
    attr(last(s, "Gather", {name(s.in[0]), name(s.in[1])}), "axis", s.attrs.axis);
    return;
  }
  if (key == "put_along_axis") {  // zeros of operand 2's shape, operand 0's values added at the indices
    if (opset < 16) refuse(s, "ScatterElements adds (reduction 'add') from opset 16 on");
    pb::NodeProto& zeros = node("ConstantOfShape", {shape_list(s.in[2])}, fresh("zeros"));
    attr_dtype_zero(zeros, od);
    pb::NodeProto& n = last(s, "ScatterElements", {zeros.output(0), operand(s, 1, DType::int64), operand(s, 0, od)});
    attr(n, "axis", s.attrs.axis);
    attr(n, "reduction", std::string("add"));
    return;
  }
  if (key == "take_along_axis") {
    attr(last(s, "GatherElements", {name(s.in[0]), operand(s, 1, DType::int64)}), "axis", s.attrs.axis);
    return;
  }
  if (key == "concatenate") {
    std::vector<std::string> in;
    for (std::size_t k = 0; k < s.in.size(); ++k) in.push_back(operand(s, k, od));
    attr(last(s, "Concat", in), "axis", s.attrs.axis);
    return;
  }
  if (key == "cumsum") return void(last(s, "CumSum", {operand(s, 0, od), ints({s.attrs.axis}, true)}));
  if (key == "tril" || key == "triu") {
    attr(last(s, "Trilu", {name(s.in[0]), ints({s.attrs.axis}, true)}), "upper", std::int64_t(key == "triu"));
    return;
  }
  if (key == "one_hot") {
    const std::string depth =
        s.in.size() == 1 ? ints({s.attrs.axis}) : temp("Gather", {temp("Shape", {name(s.in[1])}), ints({-1})});
    const std::string values = concat({temp("Reshape", {scalar(od, 0), ints({1})}), temp("Reshape", {scalar(od, 1), ints({1})})});
    attr(last(s, "OneHot", {name(s.in[0]), depth, values}), "axis", std::int64_t(-1));
    return;
  }
  if (key == "ifelse") return ifelse(s);
  if (key == "scan") return scan(s);
  if (key == "sort") {  // TopK over the whole axis (or k): values and int64 indices, ties in index order
    if (dt(s.in[0]) == DType::boolean) refuse(s, "sorting booleans (ONNX's TopK takes numbers)");
    std::vector<std::string>& parts = tuples[s.out];
    const std::int64_t k = s.attrs.axes.empty() ? -1 : s.attrs.axes[0];
    const std::string count = k >= 0 ? ints({k}) : temp("Gather", {temp("Shape", {name(s.in[0])}), ints({s.attrs.axis})});
    pb::NodeProto& n = *g.add_node();
    n.set_op_type("TopK");
    n.set_name(fresh("TopK"));
    n.add_input(name(s.in[0]));
    n.add_input(count);
    for (const char* part : {"_values", "_indices"}) {
      parts.push_back(fresh(name(s.out) + part));
      n.add_output(parts.back());
    }
    attr(n, "axis", s.attrs.axis);
    attr(n, "largest", std::int64_t(s.attrs.all));
    attr(n, "sorted", std::int64_t(1));
    return;
  }
  refuse(s, std::string("theta's op '") + s.op->name + "' has no ONNX counterpart");
}

// th::scan as Scan (over sequences: their rows are the body's inputs after the states) or, with
// no sequences, as Loop with its trip count. The body is the scan's frozen body; its outputs
// that feed states are the carried values, the others stacked per step; an output kept only
// at its last step is its state's final value.
void Writer::scan(const Step& s) {
  using th::detail::ScanBody;
  const ScanBody& b = *th::detail::sub_as<ScanBody>(s.attrs);
  const Program& q = *b.body(s.attrs.all).program();
  const std::size_t ns = b.n_seq, nst = b.n_state, nc = b.n_const, n_out = q.outputs.size();
  if (q.input_slots.size() != ns + nst + nc || b.feed.size() < n_out) refuse(s, "a body whose inputs do not match its operands");
  std::vector<int> feeder(nst, -1);
  for (std::size_t o = 0; o < n_out; ++o) {
    const int j = b.feed[o];
    if (j < 0) continue;
    if (feeder[std::size_t(j)] >= 0) refuse(s, "two outputs feed state " + std::to_string(j));
    feeder[std::size_t(j)] = int(o);
  }
  const bool loop = ns == 0;
  if (loop && (b.n_steps < 1 || b.n_steps > (1 << 20)))
    refuse(s, "a scan without sequences needs 1 to 2^20 steps known when it is saved (ONNX's Loop), got " + std::to_string(b.n_steps));
  std::vector<std::string> in;
  if (loop) in = {ints({b.n_steps}, true), ""};
  for (std::size_t j = 0; j < nst; ++j) in.push_back(name(s.in[ns + j]));
  if (!loop)
    for (std::size_t i = 0; i < ns; ++i) in.push_back(name(s.in[i]));
  pb::NodeProto& n = *g.add_node();
  n.set_op_type(loop ? "Loop" : "Scan");
  n.set_name(fresh(loop ? "Loop" : "Scan"));
  for (const auto& i : in) n.add_input(i);
  auto* a = n.add_attribute();
  a->set_name("body");
  a->set_type(pb::AttributeProto::GRAPH);
  Writer w = sub(q, *a->mutable_g(), "scan_body");
  std::string cond;
  if (loop) w.input("iteration", DType::int64, {}), cond = w.input("cond", DType::boolean, {});
  for (std::size_t j = 0; j < nst; ++j)
    w.slot_name[q.input_slots[ns + j]] = w.input("state", q.input_meta[ns + j].dtype, q.input_meta[ns + j].shape);
  for (std::size_t i = 0; i < ns; ++i)  // (a row of sequence i)
    w.slot_name[q.input_slots[i]] = w.input("row", q.input_meta[i].dtype, q.input_meta[i].shape);
  for (std::size_t m = 0; m < nc; ++m) w.slot_name[q.input_slots[ns + nst + m]] = name(s.in[ns + nst + m]);
  w.body();
  if (loop) w.output("cond_out", cond, DType::boolean, {});
  for (std::size_t j = 0; j < nst; ++j) {
    const std::size_t slot = feeder[j] >= 0 ? q.outputs[std::size_t(feeder[j])] : q.input_slots[ns + j];
    w.output("state_out", w.name(slot), q.slot_dtype[slot], q.slot_shape[slot]);
  }
  std::vector<std::string>& parts = tuples[s.out];
  parts.assign(n_out, "");
  std::vector<std::string> finals(nst);
  for (std::size_t j = 0; j < nst; ++j) finals[j] = fresh(name(s.out) + "_final"), n.add_output(finals[j]);
  for (std::size_t o = 0; o < n_out; ++o) {
    if (b.last_only[o]) {
      parts[o] = finals[std::size_t(b.feed[o])];
      continue;
    }
    w.output("stacked", w.name(q.outputs[o]), q.slot_dtype[q.outputs[o]], q.slot_shape[q.outputs[o]]);
    parts[o] = fresh(name(s.out) + "_stacked");
    n.add_output(parts[o]);
  }
  if (!loop) {  // (without sequences, the direction changes nothing)
    attr(n, "num_scan_inputs", std::int64_t(ns));
    if (b.backwards) attr(n, "scan_input_directions", Ints(ns, 1));
  }
}

// th::ifelse as If: each branch a subgraph reading the outer values it takes by name.
void Writer::ifelse(const Step& s) {
  const th::detail::Branches& b = *th::detail::sub_as<th::detail::Branches>(s.attrs);
  if (!b.then_f.program() || !b.else_f.program()) refuse(s, "a branch without its program");
  const std::string cond = temp("Reshape", {operand(s, 0, DType::boolean), ints({})});
  pb::NodeProto& n = *g.add_node();  // (the branches' own nodes go to their subgraphs)
  n.set_op_type("If");
  n.set_name(fresh("If"));
  n.add_input(cond);
  n.add_output(name(s.out));
  for (const auto& [key, f, args] : {std::tuple{"then_branch", &b.then_f, &b.then_args}, {"else_branch", &b.else_f, &b.else_args}}) {
    const Program& q = *f->program();
    if (q.outputs.size() != 1 || q.input_slots.size() != args->size()) refuse(s, "a branch that is not one value of its operands");
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::GRAPH);
    Writer w = sub(q, *a->mutable_g(), key);
    for (std::size_t i = 0; i < args->size(); ++i) w.slot_name[q.input_slots[i]] = name(s.in[1 + (*args)[i]]);  // outer values
    w.body();
    w.output("out", w.name(q.outputs[0]), q.slot_dtype[q.outputs[0]], q.slot_shape[q.outputs[0]]);
  }
}

}  // namespace

void save(const std::string& path, const Function& f, int opset) {
  if (opset < kMinOpset || opset > kMaxOpset)
    throw ValueError("onnx::save: opset " + std::to_string(opset) + " is not supported: theta writes opsets " +
                     std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset));
  const Program& p = *f.program();
  pb::ModelProto m;
  m.set_ir_version(8);  // onnx 1.12's checker takes IR versions <= 8 (opset 17's)
  m.set_producer_name("theta");
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  pb::GraphProto& g = *m.mutable_graph();
  g.set_name("theta");
  Writer w(p, g, opset);

  for (std::size_t i = 0; i < p.input_slots.size(); ++i) {
    const std::size_t slot = p.input_slots[i];
    const std::string& given = p.input_names[i];
    if (!w.slot_name[slot].empty()) throw Error("onnx::save: input " + std::to_string(i) + " repeats an earlier input");
    w.slot_name[slot] = w.unique(given.empty() ? "input_" + std::to_string(i) : given);
    value_info(*g.add_input(), w.slot_name[slot], p.input_meta[i].dtype, p.input_meta[i].shape);
  }
  w.body();
  for (std::size_t k = 0; k < p.outputs.size(); ++k) {
    const std::size_t slot = p.outputs[k];
    const std::string out = w.unique("output_" + std::to_string(k));
    w.node("Identity", {w.name(slot)}, out);
    value_info(*g.add_output(), out, p.slot_dtype[slot], p.slot_shape[slot]);
  }
  try {
    ::onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    throw Error(std::string("onnx::save: the model theta made fails ONNX's checker (a bug in theta; please report "
                            "it): ") + e.what());
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) throw IOError("onnx::save: '" + path + "': the model does not serialize (over 2 GB?)");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IOError("onnx::save: cannot write '" + path + "': check that the folder exists and is writable");
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  if (!out) throw IOError("onnx::save: writing '" + path + "' failed (disk full?)");
}

}  // namespace th::onnx
