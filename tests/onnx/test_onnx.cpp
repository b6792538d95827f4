// th::onnx's importer: models of ONNX's test suite (Debian's libonnx-testdata) load as graphs
// that run frozen, differentiate with respect to their parameters and train; hostile files
// are th::IOError / th::Error naming what is wrong, never a crash.
#define BOOST_TEST_MODULE onnx
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "check.hpp"
#include "onnx/import.hpp"

namespace fs = std::filesystem;
using th::Tensor;

namespace {

const std::string data = THETA_ONNX_DATA;

std::string model_of(const std::string& test) { return data + "/" + test + "/model.onnx"; }
Tensor input_of(const std::string& test, int i) {
  return th::onnx::detail::read_tensor_file(data + "/" + test + "/test_data_set_0/input_" + std::to_string(i) + ".pb");
}
Tensor output_of(const std::string& test, int i) {
  return th::onnx::detail::read_tensor_file(data + "/" + test + "/test_data_set_0/output_" + std::to_string(i) + ".pb");
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  BOOST_REQUIRE(x.size() == y.size());
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// A file in a temporary folder, removed at the end.
struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("theta_onnx_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(dir / "model"); }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& bytes) const {
    const fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
};

// Declares graph input `name` of ONNX element type `type` and sizes `dims` (rank 0 too).
void declare_input(::onnx::GraphProto* g, const std::string& name, int type, const std::vector<std::int64_t>& dims) {
  auto* in = g->add_input();
  in->set_name(name);
  in->mutable_type()->mutable_tensor_type()->set_elem_type(type);
  auto* shape = in->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (auto d : dims) shape->add_dim()->set_dim_value(d);
}

// Model building for the tests below: a model of IR version 8 importing `opset`, its graph
// named `name`; a node op_type(in) -> out; attributes; an int64 scalar initializer.
::onnx::GraphProto* new_graph(::onnx::ModelProto& m, std::int64_t opset, const std::string& name) {
  m.set_ir_version(8);
  m.add_opset_import()->set_version(opset);
  m.mutable_graph()->set_name(name);
  return m.mutable_graph();
}
::onnx::NodeProto* add_node(::onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                            const std::vector<std::string>& out, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? "the_" + op : name);
  for (const auto& i : in) n->add_input(i);
  for (const auto& o : out) n->add_output(o);
  return n;
}
::onnx::AttributeProto* add_attr(::onnx::NodeProto* n, const std::string& name, ::onnx::AttributeProto::AttributeType type) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
void set_int(::onnx::NodeProto* n, const std::string& name, std::int64_t v) { add_attr(n, name, ::onnx::AttributeProto::INT)->set_i(v); }
void set_ints(::onnx::NodeProto* n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = add_attr(n, name, ::onnx::AttributeProto::INTS);
  for (auto i : v) a->add_ints(i);
}
void set_string(::onnx::NodeProto* n, const std::string& name, const std::string& v) { add_attr(n, name, ::onnx::AttributeProto::STRING)->set_s(v); }
// A subgraph attribute (If's branches, Scan's body), named `name`.
::onnx::GraphProto* set_graph(::onnx::NodeProto* n, const std::string& name) {
  auto* g = add_attr(n, name, ::onnx::AttributeProto::GRAPH)->mutable_g();
  g->set_name(name);
  return g;
}
void int64_initializer(::onnx::GraphProto* g, const std::string& name, std::int64_t v) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::INT64);
  t->add_int64_data(v);
}

// A model of one node, op_type(x) -> y, with an initializer w of `dims` holding `values`.
::onnx::ModelProto tiny(const std::string& op_type, std::vector<std::int64_t> dims = {3}, std::vector<float> values = {1, 2, 3}) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  declare_input(g, "x", ::onnx::TensorProto::FLOAT, {3});
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(::onnx::TensorProto::FLOAT);
  for (auto d : dims) w->add_dims(d);
  for (float v : values) w->add_float_data(v);
  auto* n = g->add_node();
  n->set_op_type(op_type);
  n->set_name("the_node");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_pytorch_conv2d_runs_frozen_and_matches_its_reference) {
  const std::string t = "pytorch-converted/test_Conv2d";
  th::onnx::Model m = th::onnx::load(model_of(t));
  BOOST_TEST(m.inputs.size() == 1u);
  BOOST_TEST(m.parameters.size() >= 1u);
  const th::Function f = th::function(m.inputs, m.outputs);
  BOOST_TEST(max_abs_diff(f(input_of(t, 0))[0], output_of(t, 0)) < 1e-4);
  // load_function gives the same
  BOOST_TEST(max_abs_diff(th::onnx::load_function(model_of(t))(input_of(t, 0))[0], output_of(t, 0)) < 1e-4);
}

// An imported model differentiates with respect to its parameters (the initializers, shared
// variables named as in the file): the gradient of a linear layer's summed output is known
// in closed form, and SGD on a loss of a conv model's output lowers it.
BOOST_AUTO_TEST_CASE(imported_parameters_differentiate_and_train) {
  const std::string lin = "pytorch-converted/test_Linear";
  th::onnx::Model m = th::onnx::load(model_of(lin));
  BOOST_REQUIRE(m.parameters.size() == 2u);
  const Tensor x = input_of(lin, 0);
  const Tensor cost = th::sum(m.outputs[0]);
  // y = x W^T + b: d sum(y) / dW[o][i] = sum over the batch of x[:, i]; d / db = batch size
  const th::Function g = th::function(m.inputs, th::grad(cost, {m.parameters[0], m.parameters[1]}));
  const th::Result r = g(x);
  const Tensor W = m.parameters[0].get_value();
  const bool w_first = W.ndim() == 2;
  const Tensor gw = w_first ? r[0] : r[1], gb = w_first ? r[1] : r[0];
  const Tensor colsum = th::sum(x, 0);
  const auto gwv = gw.to_vector<double>(), cs = colsum.to_vector<double>();
  const std::int64_t in = x.shape()[1];
  for (std::size_t k = 0; k < gwv.size(); ++k) BOOST_TEST(std::fabs(gwv[k] - cs[k % std::size_t(in)]) < 1e-4);
  for (double v : gb.to_vector<double>()) BOOST_TEST(v == double(x.shape()[0]));

  const std::string conv = "pytorch-converted/test_Conv2d";
  th::onnx::Model c = th::onnx::load(model_of(conv));
  const Tensor target = output_of(conv, 0) * 0.5;
  const Tensor loss = th::mean(th::sqr(c.outputs[0] - target));
  th::Updates ups;
  for (const th::Shared& p : c.parameters) ups.push_back({p, p - 0.05 * th::grad(loss, p)});
  const th::Function step = th::function(c.inputs, loss, ups);
  const double first = step(input_of(conv, 0)).item();
  double last = first;
  for (int i = 0; i < 20; ++i) last = step(input_of(conv, 0)).item();
  BOOST_TEST(last < 0.5 * first, "loss " << first << " -> " << last);
}

BOOST_AUTO_TEST_CASE(corrupt_and_truncated_files_are_io_errors) {
  TempDir tmp;
  std::ifstream in(model_of("pytorch-converted/test_Conv2d"), std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), {});
  const std::string half = tmp.write("half.onnx", whole.substr(0, whole.size() / 2));
  std::string m = check::message_of<th::IOError>([&] { th::onnx::load(half); });
  BOOST_TEST(check::has(m, "half.onnx"), m);
  const std::string noise = tmp.write("noise.onnx", std::string(1000, '\xff'));
  m = check::message_of<th::IOError>([&] { th::onnx::load(noise); });
  BOOST_TEST(check::has(m, "not an ONNX model"), m);
  m = check::message_of<th::IOError>([&] { th::onnx::load((tmp.dir / "missing.onnx").string()); });
  BOOST_TEST(check::has(m, "cannot read"), m);
}

BOOST_AUTO_TEST_CASE(hostile_models_are_errors_naming_what_is_wrong) {
  TempDir tmp;
  auto save = [&](const ::onnx::ModelProto& m, const std::string& name) { return tmp.write(name, m.SerializeAsString()); };
  // a tensor declaring more elements than it holds (no allocation from the declared size)
  std::string m = check::message_of<th::IOError>([&] { th::onnx::load(save(tiny("Add", {1000000000}), "big.onnx")); });
  BOOST_TEST(check::has(m, "declares 1000000000 elements but float_data holds 3"), m);
  m = check::message_of<th::IOError>([&] { th::onnx::load(save(tiny("Add", {-3}), "neg.onnx")); });
  BOOST_TEST(check::has(m, "negative dimension"), m);
  // an operator theta does not have, an unknown domain, an unsupported attribute
  m = check::message_of<th::Error>([&] { th::onnx::load(save(tiny("NoSuchOp"), "op.onnx")); });
  BOOST_TEST(check::has(m, "node 'the_node' (NoSuchOp): operator NoSuchOp is not supported"), m);
  ::onnx::ModelProto d = tiny("Add");
  d.mutable_graph()->mutable_node(0)->set_domain("com.example");
  m = check::message_of<th::Error>([&] { th::onnx::load(save(d, "domain.onnx")); });
  BOOST_TEST(check::has(m, "operator domain 'com.example' is not supported"), m);
  ::onnx::ModelProto a = tiny("Add");
  auto* attr = a.mutable_graph()->mutable_node(0)->add_attribute();
  attr->set_name("frobnicate");
  attr->set_type(::onnx::AttributeProto::INT);
  attr->set_i(1);
  m = check::message_of<th::Error>([&] { th::onnx::load(save(a, "attr.onnx")); });
  BOOST_TEST(check::has(m, "node 'the_node' (Add): attribute 'frobnicate' is not supported"), m);
  // a node reading a value no earlier node made (a cycle, or nodes out of order)
  ::onnx::ModelProto cyc = tiny("Add");
  cyc.mutable_graph()->mutable_node(0)->set_input(1, "y");
  m = check::message_of<th::Error>([&] { th::onnx::load(save(cyc, "cycle.onnx")); });
  BOOST_TEST(check::has(m, "input 'y' is not defined before the node"), m);
  // external data that escapes the model's folder
  ::onnx::ModelProto ext = tiny("Add");
  auto* w = ext.mutable_graph()->mutable_initializer(0);
  w->clear_float_data();
  w->set_data_location(::onnx::TensorProto::EXTERNAL);
  auto* kv = w->add_external_data();
  kv->set_key("location");
  kv->set_value("../../../../etc/passwd");
  const std::string p = (tmp.dir / "model" / "ext.onnx").string();
  std::ofstream(p, std::ios::binary) << ext.SerializeAsString();
  m = check::message_of<th::IOError>([&] { th::onnx::load(p); });
  BOOST_TEST(check::has(m, "lies outside the model's folder"), m);
  // a wrong shape inside the graph names the node
  ::onnx::ModelProto mm = tiny("MatMul", {2, 3}, {1, 2, 3, 4, 5, 6});
  mm.mutable_graph()->mutable_node(0)->set_input(0, "w");  // (2, 3) @ (2, 3)
  m = check::message_of<th::ShapeError>([&] { th::onnx::load(save(mm, "shape.onnx")); });
  BOOST_TEST(check::has(m, "node 'the_node' (MatMul)"), m);
}

// ---- th::onnx::save ---------------------------------------------------------------------------

namespace {

// f's outputs on `args` against g's, output by output (same dtype and shape, values within tol).
void same_outputs(const th::Function& f, const th::Function& g, const std::vector<Tensor>& args, double tol) {
  const th::Result a = f.call(args), b = g.call(args);
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST_CONTEXT("output " << i) {
      BOOST_TEST(th::dtype_name(a[i].dtype()) == th::dtype_name(b[i].dtype()));
      BOOST_TEST(th::shape_str(a[i].shape()) == th::shape_str(b[i].shape()));
      if (a[i].shape() == b[i].shape()) BOOST_TEST(max_abs_diff(a[i], b[i]) <= tol);
    }
  }
}

// The op types of a saved model's main graph among If, Loop, Scan, TopK and StringNormalizer,
// sorted, space-separated.
std::string op_types(const std::string& path) {
  ::onnx::ModelProto m;
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE(m.ParseFromIstream(&in));
  std::vector<std::string> types;
  for (const auto& n : m.graph().node())
    if (n.op_type() == "If" || n.op_type() == "Loop" || n.op_type() == "Scan" || n.op_type() == "TopK" ||
        n.op_type() == "StringNormalizer")
      types.push_back(n.op_type());
  std::sort(types.begin(), types.end());
  std::string r;
  for (const auto& t : types) r += (r.empty() ? "" : " ") + t;
  return r;
}

Tensor uniform(const th::Shape& s, std::uint64_t seed) { return th::init::he_uniform(s, seed, 1.0, th::DType::float32); }

}  // namespace

BOOST_AUTO_TEST_CASE(functions_saved_as_onnx_load_back_to_the_same_outputs) {
  TempDir tmp;
  const auto f32 = th::DType::float32;
  // a small CNN: Theano's flipped convolution with half padding, its bias and relu fused at
  // freeze time, max / average / sum pooling, a strided unflipped convolution, a dense layer
  const Tensor x = th::ftensor4("images");
  const Tensor labels = th::ivector("labels");
  th::Shared c1 = th::shared(uniform({4, 2, 3, 3}, 1), "conv1.w");
  const th::Shared cb1 = th::shared(uniform({4, 1, 1}, 2), "conv1.b");
  const th::Shared c2 = th::shared(uniform({3, 4, 3, 2}, 3), "conv2.w");
  const th::Shared w = th::shared(uniform({3, 5}, 4), "dense.w"), b = th::shared(uniform({5}, 5), "dense.b");
  th::ConvOptions half;
  half.border_mode = th::Padding::half();
  th::ConvOptions strided;
  strided.subsample = {2, 1};
  strided.filter_flip = false;
  strided.border_mode = th::Padding(1, 0);
  const Tensor h = th::relu(th::conv2d(x, c1, half) + cb1);
  th::PoolOptions avg, sum, cut;
  avg.mode = th::PoolMode::average_exc_pad, avg.pad = {1, 1}, avg.stride = std::array<std::int64_t, 2>{2, 1};
  sum.mode = th::PoolMode::sum;
  cut.ignore_border = false, cut.stride = std::array<std::int64_t, 2>{2, 2};
  const Tensor pooled = th::pool_2d(h, {2, 2});
  const Tensor features = th::sum(th::conv2d(pooled, c2, strided), {2, 3});  // (n, 3)
  const Tensor logits = th::dot(features, w) + b;                             // (n, 5)
  const Tensor gamma = th::ones({5}, f32), beta = th::zeros({5}, f32);
  const std::vector<Tensor> outs = {
      th::softmax(logits),
      th::argmax(logits, 1),
      th::log_softmax(logits),
      th::layer_norm(logits, gamma, beta),
      th::log1p(th::abs(logits)) + th::expm1(logits * 0.1f) - th::sigmoid(logits) * th::tanh(logits),
      th::where(logits > 0.0f, th::sqrt(th::abs(logits)), th::maximum(logits, -0.5f)),
      th::cumsum(logits, 1),
      th::concatenate({logits, features}, 1),
      th::view(logits, th::range(std::nullopt, std::nullopt, -1), 2),
      th::transpose(logits),
      th::mean(th::pool_2d(h, {3, 3}, avg), {1}),
      th::pool_2d(h, {2, 3}, sum),
      th::pool_2d(h, {3, 3}, cut),
      th::max(logits),
      th::take(logits, labels, 1),
      th::one_hot(labels, 5) * logits,
      th::reshape(th::pool_2d(th::reshape(h, {-1, 4, 4}), {2, 2}), {-1}),
  };
  const th::Function f = th::function({x, labels}, outs);
  const std::string path = (tmp.dir / "cnn.onnx").string();
  th::onnx::save(path, f);
  BOOST_CHECK_NO_THROW(::onnx::checker::check_model(path));
  const th::Function g = th::onnx::load_function(path);
  // sizes are symbolic in the file: two batch and image sizes
  same_outputs(f, g, {uniform({2, 2, 8, 8}, 6), th::tensor(std::vector<std::int32_t>{0, 4}, {2})}, 1e-5);
  same_outputs(f, g, {uniform({3, 2, 12, 8}, 7), th::tensor(std::vector<std::int32_t>{1, 2, 3}, {3})}, 1e-5);
  // the shared variables are initializers named as the variables, holding their values now
  c1.set_value(uniform({4, 2, 3, 3}, 8));
  th::onnx::save(path, f);
  const th::onnx::Model m = th::onnx::load(path);
  bool found = false;
  for (const th::Shared& p : m.parameters)
    if (p.name() == "conv1.w") {
      found = true;
      BOOST_TEST(max_abs_diff(p.get_value(), c1.get_value()) == 0.0);
    }
  BOOST_TEST(found);
  BOOST_TEST(m.input_names == (std::vector<std::string>{"images", "labels"}), boost::test_tools::per_element());
  same_outputs(f, th::onnx::load_function(path), {uniform({1, 2, 6, 6}, 9), th::tensor(std::vector<std::int32_t>{3}, {1})}, 1e-5);
}

BOOST_AUTO_TEST_CASE(an_imported_model_saves_after_fine_tuning) {
  TempDir tmp;
  // PyTorch's Conv2d test model: one SGD step changes its weights; the saved file has them
  const std::string test = "pytorch-converted/test_Conv2d";
  th::onnx::Model m = th::onnx::load(model_of(test));
  const Tensor x = input_of(test, 0);
  const Tensor loss = th::mean(th::sqr(m.outputs[0]));
  th::Updates ups;
  for (const th::Shared& p : m.parameters) ups.push_back({p, p - 0.1 * th::grad(loss, p)});
  th::function(m.inputs, loss, ups)(x);
  const th::Function tuned = th::function(m.inputs, m.outputs);
  const std::string path = (tmp.dir / "tuned.onnx").string();
  th::onnx::save(path, tuned);
  same_outputs(tuned, th::onnx::load_function(path), {x}, 1e-6);
  BOOST_TEST(max_abs_diff(th::onnx::load_function(path)(x)[0], output_of(test, 0)) > 1e-4);  // no longer the original
}

// th::ifelse is saved as If (each branch a subgraph reading outer values and initializers by
// name) and sort/argsort as TopK: loaded back, both branches and the tie order are as before.
BOOST_AUTO_TEST_CASE(ifelse_and_sort_save_as_if_and_topk) {
  TempDir tmp;
  const Tensor c = th::dscalar("c"), x = th::dvector("x"), m = th::dmatrix("m");
  th::Shared w = th::shared(th::tensor({0.5, -1.0, 2.0}), "w");
  const Tensor picked = th::ifelse(th::sum(x) > c, th::sin(x) * w + 1.0, x * x - th::sum(m));
  const th::Function f = th::function({c, x, m}, {picked, th::sort(m, 1), th::argsort(m, 0, true), th::sort(x, 0, true)});
  const std::string path = (tmp.dir / "if.onnx").string();
  th::onnx::save(path, f);
  BOOST_CHECK_NO_THROW(::onnx::checker::check_model(path));
  BOOST_TEST(op_types(path) == "If TopK TopK TopK");
  const th::Function g = th::onnx::load_function(path);
  const Tensor xv = th::tensor({1.0, 2.0, 2.0}), mv = th::tensor({{3.0, 1.0, 3.0}, {3.0, -2.0, 0.5}});
  for (const double cv : {0.0, 10.0}) same_outputs(f, g, {th::tensor(cv), xv, mv}, 1e-12);
  BOOST_TEST(check::vals(g(th::tensor(0.0), xv, mv)[2]) == (std::vector<double>{0, 0, 0, 1, 1, 1}), boost::test_tools::per_element());
  // the initializer is the variable's value now, and the loaded branch reads it
  w.set_value(th::tensor({1.0, 1.0, 1.0}));
  th::onnx::save(path, f);
  BOOST_TEST(check::vals(th::onnx::load_function(path)(th::tensor(0.0), xv, mv)[0]) ==
                 (std::vector<double>{std::sin(1.0) + 1, std::sin(2.0) + 1, std::sin(2.0) + 1}),
             boost::test_tools::per_element());
}

// th::scan is saved as Scan over its sequences (any length: the file's sizes stay open) or as
// Loop when it has none; states, stacked outputs, non-sequences, shared weights in the body,
// backwards, and foldl's last state come back the same.
BOOST_AUTO_TEST_CASE(scans_save_as_scan_and_loop) {
  TempDir tmp;
  const Tensor xs = th::dmatrix("xs"), h0 = th::dvector("h0"), k = th::dscalar("k");
  const th::Shared w = th::shared(th::tensor({{0.5, -0.25}, {0.125, 0.75}}), "rnn.w");
  using V = std::vector<Tensor>;
  // an RNN over xs's rows: h = tanh(x + h W) * k, and x k (not fed back), stacked
  const V rnn = th::scan([&](const V& v) { return V{th::tanh(v[0] + th::dot(v[1], w)) * v[2], v[0] * v[2]}; }, {xs},
                         {h0, th::Tensor()}, {k});
  th::ScanOptions back;
  back.go_backwards = true;
  const V rev = th::scan([&](const V& v) { return V{v[0] * 2.0 + v[1]}; }, {xs}, {h0}, {}, back);
  const Tensor last = th::foldl([](const V& v) { return v[0] + v[1] * 0.5; }, {xs}, h0);
  th::ScanOptions three;
  three.n_steps = 3;
  const V powers = th::scan([](const V& v) { return V{v[0] * v[1]}; }, {}, {h0}, {k}, three);
  const th::Function f = th::function({xs, h0, k}, {rnn[0], rnn[1] - xs, rev[0], last, powers[0]});
  const std::string path = (tmp.dir / "scan.onnx").string();
  th::onnx::save(path, f);
  BOOST_CHECK_NO_THROW(::onnx::checker::check_model(path));
  BOOST_TEST(op_types(path) == "Loop Scan Scan Scan");
  const th::Function g = th::onnx::load_function(path);
  for (const std::int64_t steps : {1, 4}) {
    const Tensor x = check::input({steps, 2}, std::uint64_t(steps), -1, 1);
    same_outputs(f, g, {x, th::tensor({0.5, -1.0}), th::tensor(1.5)}, 1e-12);
  }
  // the loaded RNN differentiates like the original (BPTT through the imported Scan)
  const th::onnx::Model m = th::onnx::load(path);
  const Tensor x = check::input({3, 2}, 9, -1, 1);
  const th::Shared& loaded_w = m.parameters.at(0);
  BOOST_TEST(loaded_w.name() == "rnn.w");
  const Tensor ga = th::function({xs, h0, k}, th::grad(th::sum(rnn[0]), w))(x, th::tensor({0.5, -1.0}), th::tensor(1.5))[0];
  const Tensor gb = th::function(m.inputs, th::grad(th::sum(m.outputs[0]), loaded_w))(x, th::tensor({0.5, -1.0}), th::tensor(1.5))[0];
  BOOST_TEST(max_abs_diff(ga, gb) < 1e-12);
}

BOOST_AUTO_TEST_CASE(what_onnx_cannot_express_is_an_error_naming_it) {
  TempDir tmp;
  const std::string path = (tmp.dir / "bad.onnx").string();
  const Tensor a = th::dmatrix("a");
  std::string m = check::message_of<th::Error>([&] { th::onnx::save(path, th::function({a}, th::linalg::cholesky(a))); });
  BOOST_TEST(check::has(m, "onnx::save"), m);
  BOOST_TEST(check::has(m, "'cholesky' has no ONNX counterpart"), m);
  BOOST_TEST(!fs::exists(path));  // nothing written
  m = check::message_of<th::Error>([&] { th::onnx::save(path, th::function({a}, th::sort(a > 0.0))); });
  BOOST_TEST(check::has(m, "sorting booleans"), m);
  m = check::message_of<th::ValueError>([&] { th::onnx::save(path, th::function({a}, a * 2.0), 11); });
  BOOST_TEST(check::has(m, "opset 11 is not supported: theta writes opsets 14 to 17"), m);
  m = check::message_of<th::IOError>([&] { th::onnx::save((tmp.dir / "no" / "such" / "x.onnx").string(), th::function({a}, a * 2.0)); });
  BOOST_TEST(check::has(m, "cannot write"), m);
}

// samples/data/fashion_cnn.onnx came from torch.onnx.export (samples/data/fashion_cnn.py), which
// wrote PyTorch's own logits, loss and parameter gradients on 8 test images beside it: theta's
// gradients of the imported graph must be PyTorch's.
BOOST_AUTO_TEST_CASE(gradients_of_a_pytorch_export_equal_pytorchs) {
  const std::string dir = THETA_SAMPLES_DATA;
  const std::map<std::string, Tensor> ref = th::load_npz(dir + "/fashion_cnn_reference.npz");
  th::onnx::Model m = th::onnx::load(dir + "/fashion_cnn.onnx");
  BOOST_REQUIRE_EQUAL(m.parameters.size(), 6u);
  const Tensor y = th::lvector("labels");
  const Tensor loss = th::mean(th::categorical_crossentropy(th::softmax(m.outputs[0]), y));
  std::vector<Tensor> outs{m.outputs[0], loss};
  for (const Tensor& g : th::grad(loss, m.parameters)) outs.push_back(g);
  const th::Result r = th::function({m.inputs[0], y}, outs)(ref.at("images"), ref.at("labels"));
  auto close = [](const Tensor& got, const Tensor& want, const std::string& what) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_REQUIRE(got.shape() == want.shape());
      const auto w = want.to_vector<double>();
      double scale = 0;
      for (double v : w) scale = std::max(scale, std::fabs(v));
      // float32 summed in other orders: PyTorch and theta agree to about 1e-7 of the largest value
      BOOST_TEST(max_abs_diff(got, want) <= 1e-7 + 1e-5 * scale, max_abs_diff(got, want) << " of " << scale);
    }
  };
  close(r[0], ref.at("logits"), "logits");
  close(r[1], ref.at("loss"), "loss");
  for (std::size_t i = 0; i < m.parameters.size(); ++i) {
    const std::string key = "grad/" + m.parameters[i].name();
    BOOST_REQUIRE_MESSAGE(ref.count(key), "no PyTorch gradient for " << key);
    close(r[2 + i], ref.at(key), key);
  }
}

// Initializers of 1 MiB and more become their tensors' buffers as parsed (no copy): their
// values, a training step that replaces them, and their release (ASan's stage checks it).
BOOST_AUTO_TEST_CASE(large_initializers_load_as_parsed_and_train) {
  TempDir tmp;
  const Tensor x = th::fmatrix("x");
  const th::Shared w = th::shared(uniform({600, 500}, 11), "big.w");  // 1.2 MB
  const std::string path = (tmp.dir / "big.onnx").string();
  th::onnx::save(path, th::function({x}, th::dot(x, w)));
  th::onnx::Model m = th::onnx::load(path);
  BOOST_REQUIRE_EQUAL(m.parameters.size(), 1u);
  BOOST_TEST(max_abs_diff(m.parameters[0].get_value(), w.get_value()) == 0.0);
  const Tensor xs = uniform({3, 600}, 12);
  const Tensor loss = th::sum(th::sqr(m.outputs[0]));
  const th::Shared& p = m.parameters[0];
  const th::Function step = th::function(m.inputs, loss, {{p, p - 1e-4 * th::grad(loss, p)}});
  const double first = step(xs).item<double>();
  for (int i = 0; i < 3; ++i) step(xs);
  BOOST_TEST(step(xs).item<double>() < first);
  BOOST_TEST(max_abs_diff(p.get_value(), w.get_value()) > 0.0);  // the loaded copy trained, not the original
}

// Sizes a graph input declares are its placeholder's: PyTorch's Conv3d (built over depth slices,
// which needs them) runs frozen; a call with other sizes is a th::ShapeError naming the input.
BOOST_AUTO_TEST_CASE(declared_input_sizes_are_the_placeholders_and_are_checked) {
  const std::string test = "pytorch-converted/test_Conv3d";
  const th::Function f = th::onnx::load_function(model_of(test));
  const Tensor x = input_of(test, 0);
  BOOST_TEST(max_abs_diff(f(x)[0], output_of(test, 0)) <= 1e-4);
  th::Shape other = x.shape();
  other[0] += 1;
  const std::string m = check::message_of<th::ShapeError>([&] { f(th::zeros(other, th::DType::float32)); });
  BOOST_TEST(check::has(m, "has the fixed shape " + th::shape_str(x.shape())), m);
}

// Resize is composed of gathers and weights: its gradient, through the shared checker's
// central differences in float64, for linear and cubic taps (nearest is a gather alone).
BOOST_AUTO_TEST_CASE(resize_differentiates) {
  TempDir tmp;
  for (const std::string mode : {"linear", "cubic"}) {
    ::onnx::ModelProto m;
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("resize");
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {1, 1, 3, 4});
    auto* sc = g->add_initializer();
    sc->set_name("scales");
    sc->set_data_type(::onnx::TensorProto::FLOAT);
    sc->add_dims(4);
    for (float v : {1.0f, 1.0f, 2.0f, 1.5f}) sc->add_float_data(v);
    auto* n = g->add_node();
    n->set_op_type("Resize");
    n->set_name("up");
    for (const char* i : {"x", "", "scales"}) n->add_input(i);
    n->add_output("y");
    auto* a = n->add_attribute();
    a->set_name("mode");
    a->set_type(::onnx::AttributeProto::STRING);
    a->set_s(mode);
    g->add_output()->set_name("y");
    const std::string path = (tmp.dir / (mode + ".onnx")).string();
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    const check::Fn L = [&](const check::Inputs& xs) {
      const th::onnx::Model r = th::onnx::detail::import_model(path, {{"x", xs[0]}});
      BOOST_REQUIRE(r.outputs[0].shape() == (th::Shape{1, 1, 6, 6}));
      return th::sum(th::sqr(r.outputs[0]) * th::reshape(th::arange(36.0, th::DType::float64), {1, 1, 6, 6}));
    };
    check::compare_with_fd("Resize " + mode, L, {check::input({1, 1, 3, 4}, 7, -1, 1)}, {true}, 1e-6, 1e-6);
  }
}

namespace {

// A one-node model op_type(X, W, R, B) -> (Y, Y_h) of ONNX's recurrent family, float64, X of
// (T, batch, input) = (4, 2, 3), hidden 5, the weights given for `dirs` directions.
std::string recurrent_model(const TempDir& tmp, const std::string& op, const std::string& direction,
                            const std::vector<Tensor>& weights) {
  ::onnx::ModelProto m;
  auto* g = new_graph(m, 14, "rnn");
  declare_input(g, "X", ::onnx::TensorProto::DOUBLE, {4, 2, 3});
  const char* names[] = {"W", "R", "B"};
  for (std::size_t k = 0; k < weights.size(); ++k) {
    auto* t = g->add_initializer();
    t->set_name(names[k]);
    t->set_data_type(::onnx::TensorProto::DOUBLE);
    for (auto d : weights[k].shape()) t->add_dims(d);
    for (double v : weights[k].to_vector<double>()) t->add_double_data(v);
  }
  auto* n = add_node(g, op, {"X", "W", "R", "B"}, {"Y", "Y_h"}, "cell");
  set_int(n, "hidden_size", 5);
  set_string(n, "direction", direction);
  g->add_output()->set_name("Y");
  g->add_output()->set_name("Y_h");
  const std::string path = (tmp.dir / (op + "_" + direction + ".onnx")).string();
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
  return path;
}

}  // namespace

// RNN, GRU and LSTM unrolled: the reverse direction is the forward one on the sequence read
// backwards, a bidirectional layer is the two side by side, and the gradient with respect
// to the input matches central differences (float64).
BOOST_AUTO_TEST_CASE(recurrent_layers_run_both_ways_and_differentiate) {
  TempDir tmp;
  for (const auto& cell : std::vector<std::pair<std::string, std::int64_t>>{{"RNN", 1}, {"GRU", 3}, {"LSTM", 4}}) {
    const std::string op = cell.first;
    const std::int64_t gates = cell.second;
    BOOST_TEST_CONTEXT(op) {
      auto w = [&](std::int64_t dirs, std::uint64_t seed) {
        return std::vector<Tensor>{check::input({dirs, gates * 5, 3}, seed, -0.5, 0.5),
                                   check::input({dirs, gates * 5, 5}, seed + 1, -0.5, 0.5),
                                   check::input({dirs, 2 * gates * 5}, seed + 2, -0.5, 0.5)};
      };
      const std::vector<Tensor> both = w(2, 20);
      auto dir = [&](std::int64_t d) {
        std::vector<Tensor> r;
        for (const Tensor& t : both) r.push_back(th::expand_dims(th::view(t, d), 0));
        return r;
      };
      const Tensor x = check::input({4, 2, 3}, 30, -1, 1);
      const Tensor backwards = th::view(x, th::range(std::nullopt, std::nullopt, -1));
      const th::Result fwd = th::onnx::load_function(recurrent_model(tmp, op, "forward", dir(0)))(x);
      const th::Result rev = th::onnx::load_function(recurrent_model(tmp, op, "reverse", dir(1)))(x);
      const th::Result rev_by_fwd = th::onnx::load_function(recurrent_model(tmp, op, "forward", dir(1)))(backwards);
      const th::Result bi = th::onnx::load_function(recurrent_model(tmp, op, "bidirectional", both))(x);
      BOOST_TEST(max_abs_diff(rev[0], th::view(rev_by_fwd[0], th::range(std::nullopt, std::nullopt, -1))) < 1e-12);
      BOOST_TEST(max_abs_diff(rev[1], rev_by_fwd[1]) < 1e-12);
      BOOST_TEST(max_abs_diff(th::view(bi[0], th::all(), th::range(0, 1)), fwd[0]) < 1e-12);
      BOOST_TEST(max_abs_diff(th::view(bi[0], th::all(), th::range(1, 2)), rev[0]) < 1e-12);
      BOOST_TEST(max_abs_diff(bi[1], th::concatenate({fwd[1], rev[1]}, 0)) < 1e-12);
      const std::string path = recurrent_model(tmp, op, "bidirectional", both);
      const check::Fn L = [&](const check::Inputs& xs) {
        const th::onnx::Model r = th::onnx::detail::import_model(path, {{"X", xs[0]}});
        return th::sum(th::sqr(r.outputs[0])) + th::sum(r.outputs[1]);
      };
      check::compare_with_fd(op + " gradient", L, {x}, {true}, 1e-6, 1e-6);
    }
  }
}

// If is ifelse, frozen: the branch taken follows the condition given at each call, each
// branch reading the outer graph's values; Scan is th::scan over its body (here a running
// sum of the rows, and the states' final value).
BOOST_AUTO_TEST_CASE(if_and_scan_become_ifelse_and_scan) {
  TempDir tmp;
  {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 13, "if");
    declare_input(g, "cond", ::onnx::TensorProto::BOOL, {});
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {3});
    auto* n = add_node(g, "If", {"cond"}, {"y"});
    for (const auto& [branch, op] : {std::pair<const char*, const char*>{"then_branch", "Add"}, {"else_branch", "Mul"}}) {
      auto* b = set_graph(n, branch);
      add_node(b, op, {"x", "x"}, {"out"});  // x + x, or x * x: x from the outer graph
      b->add_output()->set_name("out");
    }
    g->add_output()->set_name("y");
    const std::string path = (tmp.dir / "if.onnx").string();
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    const th::Function f = th::onnx::load_function(path);
    const Tensor x = th::tensor({1.0, 2.0, 3.0});
    BOOST_TEST(check::vals(f(th::tensor(1.0, th::DType::boolean), x)[0]) == (std::vector<double>{2, 4, 6}),
               boost::test_tools::per_element());
    BOOST_TEST(check::vals(f(th::tensor(0.0, th::DType::boolean), x)[0]) == (std::vector<double>{1, 4, 9}),
               boost::test_tools::per_element());
  }
  for (const int direction : {0, 1}) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 11, "scan");
    declare_input(g, "init", ::onnx::TensorProto::DOUBLE, {2});
    declare_input(g, "xs", ::onnx::TensorProto::DOUBLE, {3, 2});
    auto* n = add_node(g, "Scan", {"init", "xs"}, {"final", "sums"});
    set_int(n, "num_scan_inputs", 1);
    set_ints(n, "scan_input_directions", {direction});
    auto* body = set_graph(n, "body");
    declare_input(body, "s", ::onnx::TensorProto::DOUBLE, {2});
    declare_input(body, "row", ::onnx::TensorProto::DOUBLE, {2});
    add_node(body, "Add", {"s", "row"}, {"s2"});
    add_node(body, "Identity", {"s2"}, {"out"});
    body->add_output()->set_name("s2");
    body->add_output()->set_name("out");
    g->add_output()->set_name("final");
    g->add_output()->set_name("sums");
    const std::string path = (tmp.dir / "scan.onnx").string();
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    const th::Result r = th::onnx::load_function(path)(th::tensor({10.0, 20.0}), th::tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}));
    BOOST_TEST(check::vals(r[0]) == (std::vector<double>{19, 32}), boost::test_tools::per_element());
    const std::vector<double> want = direction == 0 ? std::vector<double>{11, 22, 14, 26, 19, 32}
                                                    : std::vector<double>{15, 26, 18, 30, 19, 32};
    BOOST_TEST(check::vals(r[1]) == want, boost::test_tools::per_element());
  }
}

// Pad's three modes are one gather per side (pad_axis): a constant pad next to an infinite
// edge stays the constant (a pad made as edge * 0 + value was NaN there), edge and reflect
// copy and mirror the border, frozen on a placeholder.
BOOST_AUTO_TEST_CASE(pad_modes_match_numpy) {
  TempDir tmp;
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = th::tensor({{inf, 1.0, 2.0}, {3.0, 4.0, -inf}});
  const std::vector<std::pair<std::string, std::vector<double>>> cases = {
      // pads: rows (0 before, 1 after), columns (2 before, 1 after); value 7
      {"constant", {7, 7, inf, 1, 2, 7, 7, 7, 3, 4, -inf, 7, 7, 7, 7, 7, 7, 7}},
      {"edge", {inf, inf, inf, 1, 2, 2, 3, 3, 3, 4, -inf, -inf, 3, 3, 3, 4, -inf, -inf}},
      {"reflect", {2, 1, inf, 1, 2, 1, -inf, 4, 3, 4, -inf, 4, 2, 1, inf, 1, 2, 1}}};
  for (const auto& c : cases) {
    ::onnx::ModelProto m;
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("pad");
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {2, 3});
    auto* pads = g->add_initializer();
    pads->set_name("pads");
    pads->set_data_type(::onnx::TensorProto::INT64);
    pads->add_dims(4);
    for (std::int64_t v : {0, 2, 1, 1}) pads->add_int64_data(v);
    auto* value = g->add_initializer();
    value->set_name("value");
    value->set_data_type(::onnx::TensorProto::DOUBLE);
    value->add_double_data(7);
    auto* n = g->add_node();
    n->set_op_type("Pad");
    for (const char* i : {"x", "pads", "value"}) n->add_input(i);
    n->add_output("y");
    auto* a = n->add_attribute();
    a->set_name("mode");
    a->set_type(::onnx::AttributeProto::STRING);
    a->set_s(c.first);
    g->add_output()->set_name("y");
    const std::string path = (tmp.dir / (c.first + ".onnx")).string();
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    const Tensor y = th::onnx::load_function(path)(x)[0];
    BOOST_TEST_CONTEXT(c.first) {
      BOOST_TEST(th::shape_str(y.shape()) == "(3, 6)");
      BOOST_TEST(check::vals(y) == c.second, boost::test_tools::per_element());
    }
  }
}

// ONNX sequences are lists known when the model loads: SplitToSequence, SequenceInsert,
// SequenceErase and SequenceAt rearrange the tensors, and the result differentiates through
// them. ai.onnx.preview.training's Gradient is th::grad of y's sum.
BOOST_AUTO_TEST_CASE(sequences_are_lists_at_load_and_gradient_is_th_grad) {
  TempDir tmp;
  // x (4, 3) split into its rows; row 2 erased; y inserted at the front; element `at` read
  auto model = [&](std::int64_t at, bool sequence_out) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 13, "seq");
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {4, 3});
    declare_input(g, "y", ::onnx::TensorProto::DOUBLE, {3});
    int64_initializer(g, "two", 2);
    int64_initializer(g, "zero", 0);
    int64_initializer(g, "at", at);
    set_int(add_node(g, "SplitToSequence", {"x"}, {"rows"}), "keepdims", 0);
    add_node(g, "SequenceErase", {"rows", "two"}, {"erased"});
    add_node(g, "SequenceInsert", {"erased", "y", "zero"}, {"seq"});
    add_node(g, "SequenceAt", {"seq", "at"}, {"picked"});
    add_node(g, "SequenceLength", {"seq"}, {"len"});
    auto* cat = add_node(g, "ConcatFromSequence", {"seq"}, {"stacked"});
    set_int(cat, "new_axis", 1);
    set_int(cat, "axis", 0);
    for (const char* o : {sequence_out ? "seq" : "picked", "len", "stacked"}) g->add_output()->set_name(o);
    return tmp.write("seq.onnx", m.SerializeAsString());
  };
  const Tensor x = th::tensor(std::vector<double>{0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  const Tensor y = th::tensor(std::vector<double>{-1, -2, -3}, {3});
  th::onnx::Model m = th::onnx::load(model(-1, false));  // the last: x's row 3
  const th::Function f = th::function(m.inputs, m.outputs);
  const th::Result r = f(x, y);
  BOOST_TEST(r[0].to_vector<double>() == (std::vector<double>{30, 31, 32}), boost::test_tools::per_element());
  BOOST_TEST(r[1].to_vector<std::int64_t>() == std::vector<std::int64_t>{4});
  BOOST_TEST(r[2].shape() == (th::Shape{4, 3}));  // y, rows 0, 1, 3
  BOOST_TEST(r[2].to_vector<double>() == (std::vector<double>{-1, -2, -3, 0, 1, 2, 10, 11, 12, 30, 31, 32}),
             boost::test_tools::per_element());
  // the picked element's gradient reaches x's row 3 only
  const Tensor g = th::function(m.inputs, th::grad(th::sum(m.outputs[2] * m.outputs[2]), m.inputs[0]))(x, y)[0];
  BOOST_TEST(g.to_vector<double>() == (std::vector<double>{0, 2, 4, 20, 22, 24, 0, 0, 0, 60, 62, 64}),
             boost::test_tools::per_element());
  std::string e = check::message_of<th::Error>([&] { th::onnx::load(model(4, false)); });
  BOOST_TEST(check::has(e, "node 'the_SequenceAt' (SequenceAt): position 4 is out of range for a sequence of 4 tensors"), e);
  e = check::message_of<th::Error>([&] { th::onnx::load(model(0, true)); });
  BOOST_TEST(check::has(e, "output 'seq' is a sequence"), e);

  // Gradient: d = (a + b) * a, so dd/da = 2a + b and dd/db = a (the suite's own model)
  const std::string t = "simple/test_gradient_of_add_and_mul";
  const th::Function grads = th::onnx::load_function(model_of(t));
  const Tensor a = input_of(t, 0), b = input_of(t, 1);
  const th::Result gr = grads(a, b);
  BOOST_TEST(max_abs_diff(gr[1], 2.0 * a + b) == 0.0);
  BOOST_TEST(max_abs_diff(gr[2], a) == 0.0);
  BOOST_TEST(max_abs_diff(gr[1], output_of(t, 1)) < 1e-6);
}

// ConvTranspose with asymmetric pads or an output_shape (the full output cut, or zero-padded,
// to the span ONNX's rule gives) and BatchNormalization in training mode are composites: both
// differentiate (central differences, float64), and training mode's running statistics follow
// ONNX's formula (biased variance, momentum on the old value).
BOOST_AUTO_TEST_CASE(composed_layers_differentiate) {
  TempDir tmp;
  auto model = [&](const std::string& file, const std::function<void(::onnx::NodeProto*)>& attrs) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 15, "ct");
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {1, 2, 3, 4});
    declare_input(g, "w", ::onnx::TensorProto::DOUBLE, {2, 3, 3, 2});
    attrs(add_node(g, "ConvTranspose", {"x", "w"}, {"y"}, "up"));
    g->add_output()->set_name("y");
    return tmp.write(file, m.SerializeAsString());
  };
  // full output: (3 - 1) * 2 + 3 = 7 rows, (4 - 1) * 1 + 2 = 5 columns
  const std::string asym = model("asym.onnx", [&](auto* n) { set_ints(n, "strides", {2, 1}), set_ints(n, "pads", {0, 1, 2, 0}); });
  const std::string wide = model("wide.onnx", [&](auto* n) { set_ints(n, "strides", {2, 1}), set_ints(n, "output_shape", {8, 4}); });
  for (const auto& [path, shape] : {std::pair{asym, th::Shape{1, 3, 5, 4}}, {wide, th::Shape{1, 3, 8, 4}}}) {
    const check::Fn L = [&, path = path, shape = shape](const check::Inputs& xs) {
      const th::onnx::Model r = th::onnx::detail::import_model(path, {{"x", xs[0]}, {"w", xs[1]}});
      BOOST_REQUIRE(r.outputs[0].shape() == shape);
      std::int64_t count = 1;
      for (auto d : shape) count *= d;
      return th::sum(th::sqr(r.outputs[0]) * th::reshape(th::arange(double(count), th::DType::float64), shape));
    };
    check::compare_with_fd("ConvTranspose " + path, L, {check::input({1, 2, 3, 4}, 3, -1, 1), check::input({2, 3, 3, 2}, 4, -1, 1)},
                           {true, true}, 1e-6, 1e-6);
  }
  // the output_shape (8, 4) is the full (7, 5) with a zero row added at the end and the first
  // column cut (ONNX: pads at the start total - total / 2, rounded down)
  const Tensor x = check::input({1, 2, 3, 4}, 5, -1, 1), w = check::input({2, 3, 3, 2}, 6, -1, 1);
  const Tensor full = th::conv2d_transpose(x, w, [] {
    th::ConvOptions o;
    o.subsample = {2, 1};
    o.filter_flip = false;
    return o;
  }());
  const Tensor y = th::onnx::detail::import_model(wide, {{"x", x}, {"w", w}}).outputs[0];
  BOOST_TEST(max_abs_diff(th::view(y, th::all(), th::all(), th::range(0, 7), th::all()), th::view(full, th::all(), th::all(), th::all(), th::range(1, 5))) == 0.0);
  BOOST_TEST(th::max(th::abs(th::view(y, th::all(), th::all(), th::range(7, 8), th::all()))).item<double>() == 0.0);

  // BatchNormalization, training_mode = 1
  ::onnx::ModelProto m;
  auto* g = new_graph(m, 15, "bn");
  declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {4, 3, 2});
  for (const char* p : {"scale", "bias", "mean", "var"}) declare_input(g, p, ::onnx::TensorProto::DOUBLE, {3});
  set_int(add_node(g, "BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y", "running_mean", "running_var"}, "bn"),
          "training_mode", 1);
  for (const char* o : {"y", "running_mean", "running_var"}) g->add_output()->set_name(o);
  const std::string bn = tmp.write("bn.onnx", m.SerializeAsString());
  const Tensor s = th::tensor({0.5, 1.0, 2.0}), b = th::tensor({0.0, 1.0, -1.0}), mu = th::tensor({0.1, 0.2, 0.3}),
               var = th::tensor({1.0, 2.0, 3.0});
  auto bound = [&](const Tensor& xv) {
    return th::onnx::detail::import_model(bn, {{"x", xv}, {"scale", s}, {"bias", b}, {"mean", mu}, {"var", var}}).outputs;
  };
  const Tensor xb = check::input({4, 3, 2}, 8, -1, 1);
  const std::vector<Tensor> out = bound(xb);
  const Tensor batch_mean = th::mean(xb, {0, 2}), batch_var = th::var(xb, {0, 2});
  BOOST_TEST(max_abs_diff(out[1], mu * 0.9 + batch_mean * 0.1) < 1e-15);
  BOOST_TEST(max_abs_diff(out[2], var * 0.9 + batch_var * 0.1) < 1e-15);
  check::compare_with_fd("BatchNormalization training", [&](const check::Inputs& xs) { return th::sum(th::sqr(bound(xs[0])[0]) * xs[0]); },
                         {xb}, {true}, 1e-6, 1e-6);
}

// ai.onnx.preview.training's Adam, Adagrad and Momentum are one optimizer step by ONNX's
// formulas. The suite's test_adam_multiple reference was made with epsilon 1e-2, which its
// model does not set: with the attribute added, theta's step matches every output.
BOOST_AUTO_TEST_CASE(onnx_training_optimizers_follow_the_reference) {
  TempDir tmp;
  const std::string t = "node/test_adam_multiple";
  ::onnx::ModelProto m;
  {
    std::ifstream in(model_of(t), std::ios::binary);
    BOOST_REQUIRE(m.ParseFromIstream(&in));
  }
  add_attr(m.mutable_graph()->mutable_node(0), "epsilon", ::onnx::AttributeProto::FLOAT)->set_f(1e-2f);
  const th::Function step = th::onnx::load_function(tmp.write("adam.onnx", m.SerializeAsString()));
  std::vector<Tensor> args;
  for (int i = 0; i < 10; ++i) args.push_back(input_of(t, i));
  const th::Result r = step.call(args);
  BOOST_REQUIRE(r.size() == 6u);
  for (int k = 0; k < 6; ++k) BOOST_TEST(max_abs_diff(r[std::size_t(k)], output_of(t, k)) < 1e-5, "output " << k);
  // without the attribute, the default epsilon 1e-6 moves X1 further
  const th::Result d = th::onnx::load_function(model_of(t)).call(args);
  BOOST_TEST(std::fabs(d[0].to_vector<double>()[0] - (1.0 - 0.1 * 1.85005 / (std::sqrt(0.5747) + 1e-6))) < 1e-5);
  // an optimizer named without its domain is refused
  m.mutable_graph()->mutable_node(0)->clear_domain();
  const std::string e = check::message_of<th::Error>([&] { th::onnx::load(tmp.write("nodomain.onnx", m.SerializeAsString())); });
  BOOST_TEST(check::has(e, "operator Adam is ai.onnx.preview.training's"), e);
}

// 8-bit quantized values are int32 in theta: QuantizeLinear takes its range from the zero
// point's ONNX type (int8: [-128, 127]; uint8 or none: [0, 255]) and rounds half to even;
// DequantizeLinear undoes it; a zero point whose type the file does not state is an error.
BOOST_AUTO_TEST_CASE(quantize_linear_saturates_to_the_zero_points_type) {
  TempDir tmp;
  auto model = [&](int zp_type, bool computed_zp) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 13, "q");
    declare_input(g, "x", ::onnx::TensorProto::FLOAT, {6});
    auto* scale = g->add_initializer();
    scale->set_name("scale");
    scale->set_data_type(::onnx::TensorProto::FLOAT);
    scale->add_float_data(0.5f);
    auto* zp = g->add_initializer();
    zp->set_name("zp");
    zp->set_data_type(zp_type);
    zp->add_int32_data(zp_type == ::onnx::TensorProto::INT8 ? -3 : 10);
    const std::string z = computed_zp ? "zp2" : "zp";
    if (computed_zp) add_node(g, "Identity", {"zp"}, {"zp2"});
    add_node(g, "QuantizeLinear", {"x", "scale", z}, {"y"}, "q");
    add_node(g, "DequantizeLinear", {"y", "scale", z}, {"back"});
    g->add_output()->set_name("y");
    g->add_output()->set_name("back");
    return tmp.write("q.onnx", m.SerializeAsString());
  };
  const Tensor x = th::tensor({-100.0, -1.25, 0.25, 0.75, 1.0, 100.0}, th::DType::float32);
  // x / 0.5 = -200, -2.5, 0.5, 1.5, 2, 200: halves to even (-2, 0, 2), then + zero point, saturated
  th::Result r = th::onnx::load_function(model(::onnx::TensorProto::INT8, false))(x);
  BOOST_TEST(r[0].to_vector<std::int32_t>() == (std::vector<std::int32_t>{-128, -5, -3, -1, -1, 127}), boost::test_tools::per_element());
  BOOST_TEST(r[1].to_vector<double>() == (std::vector<double>{-62.5, -1, 0, 1, 1, 65}), boost::test_tools::per_element());
  r = th::onnx::load_function(model(::onnx::TensorProto::UINT8, false))(x);
  BOOST_TEST(r[0].to_vector<std::int32_t>() == (std::vector<std::int32_t>{0, 8, 10, 12, 12, 210}), boost::test_tools::per_element());
  const std::string e = check::message_of<th::Error>([&] { th::onnx::load(model(::onnx::TensorProto::UINT8, true)); });
  BOOST_TEST(check::has(e, "node 'q' (QuantizeLinear): the zero point's element type (uint8 or int8) must be stated"), e);
}

// GridSample is composed of gathers and weights: it differentiates with respect to X and to
// the grid (a spatial transformer's sampler), bilinear and bicubic, padded or not.
BOOST_AUTO_TEST_CASE(grid_sample_differentiates_in_x_and_the_grid) {
  TempDir tmp;
  for (const auto& [mode, pad] : {std::pair<std::string, std::string>{"bilinear", "zeros"}, {"bicubic", "border"}, {"bilinear", "reflection"}}) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 16, "gs");
    declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {1, 2, 3, 4});
    declare_input(g, "grid", ::onnx::TensorProto::DOUBLE, {1, 2, 3, 2});
    auto* n = add_node(g, "GridSample", {"x", "grid"}, {"y"});
    set_string(n, "mode", mode);
    set_string(n, "padding_mode", pad);
    g->add_output()->set_name("y");
    const std::string path = tmp.write("gs_" + mode + pad + ".onnx", m.SerializeAsString());
    const check::Fn L = [&](const check::Inputs& xs) {
      const th::onnx::Model r = th::onnx::detail::import_model(path, {{"x", xs[0]}, {"grid", xs[1]}});
      BOOST_REQUIRE(r.outputs[0].shape() == (th::Shape{1, 2, 2, 3}));
      return th::sum(th::sqr(r.outputs[0]) * th::reshape(th::arange(12.0, th::DType::float64), {1, 2, 2, 3}));
    };
    // grid points inside and a little outside the image, off the pixel centres
    check::compare_with_fd("GridSample " + mode + " " + pad, L,
                           {check::input({1, 2, 3, 4}, 11, -1, 1), check::input({1, 2, 3, 2}, 12, -0.9, 0.9)}, {true, true}, 1e-6, 1e-6);
  }
}

// DFT: one-sided, zero-padded to dft_length, against the sum written out; it is linear, and
// its gradient passes the checker.
BOOST_AUTO_TEST_CASE(dft_matches_the_sum_and_differentiates) {
  TempDir tmp;
  ::onnx::ModelProto m;
  auto* g = new_graph(m, 17, "dft");
  declare_input(g, "x", ::onnx::TensorProto::DOUBLE, {2, 5, 1});
  int64_initializer(g, "len", 6);
  set_int(add_node(g, "DFT", {"x", "len"}, {"y"}), "onesided", 1);
  g->add_output()->set_name("y");
  const std::string path = tmp.write("dft.onnx", m.SerializeAsString());
  const Tensor x = check::input({2, 5, 1}, 21, -1, 1);
  const Tensor y = th::onnx::load_function(path)(x)[0];
  BOOST_REQUIRE(y.shape() == (th::Shape{2, 4, 2}));  // 6 / 2 + 1 bins
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int b = 0; b < 2; ++b)
    for (int f = 0; f < 4; ++f) {
      double re = 0, im = 0;
      for (int t = 0; t < 5; ++t) re += xv[std::size_t(b * 5 + t)] * std::cos(2 * M_PI * f * t / 6), im -= xv[std::size_t(b * 5 + t)] * std::sin(2 * M_PI * f * t / 6);
      BOOST_TEST(std::fabs(yv[std::size_t((b * 4 + f) * 2)] - re) < 1e-12);
      BOOST_TEST(std::fabs(yv[std::size_t((b * 4 + f) * 2 + 1)] - im) < 1e-12);
    }
  const check::Fn L = [&](const check::Inputs& xs) {
    const th::onnx::Model r = th::onnx::detail::import_model(path, {{"x", xs[0]}});
    return th::sum(th::sqr(r.outputs[0]));
  };
  check::compare_with_fd("DFT", L, {x}, {true}, 1e-6, 1e-6);
}

// String tensors: StringNormalizer drops stopwords (ignoring case unless is_case_sensitive)
// and changes case; nothing left is one empty string; a number parsed from its text by Cast
// takes part in arithmetic; the model saves as ONNX and loads back to the same text.
BOOST_AUTO_TEST_CASE(string_normalizer_and_cast_of_text) {
  TempDir tmp;
  const auto model = [&](const std::string& how, bool case_sensitive, int rank) {
    ::onnx::ModelProto m;
    auto* g = new_graph(m, 13, "text");
    declare_input(g, "x", ::onnx::TensorProto::STRING, rank == 1 ? std::vector<std::int64_t>{4} : std::vector<std::int64_t>{1, 4});
    auto* n = add_node(g, "StringNormalizer", {"x"}, {"y"});
    set_string(n, "case_change_action", how);
    set_int(n, "is_case_sensitive", case_sensitive);
    auto* stop = add_attr(n, "stopwords", ::onnx::AttributeProto::STRINGS);
    stop->add_strings("monday");
    stop->add_strings("3");
    g->add_output()->set_name("y");
    const std::string path = (tmp.dir / ("text_" + how + std::to_string(case_sensitive) + std::to_string(rank) + ".onnx")).string();
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    return path;
  };
  using Words = std::vector<std::string>;
  const auto run = [](const th::Function& f, const Words& in, th::Shape shape) { return f(th::tensor(in, shape))[0]; };
  const Words days{"Monday", "tuesday", "3", "monday"};
  const th::Function lower = th::onnx::load_function(model("LOWER", false, 1));
  BOOST_TEST(run(lower, days, {4}).to_vector<std::string>() == (Words{"tuesday"}), boost::test_tools::per_element());
  const th::Function upper = th::onnx::load_function(model("UPPER", true, 2));
  const Tensor y = run(upper, days, {1, 4});
  BOOST_TEST((y.shape() == th::Shape{1, 2}));
  BOOST_TEST(y.to_vector<std::string>() == (Words{"MONDAY", "TUESDAY"}), boost::test_tools::per_element());
  const Tensor none = run(lower, {"3", "MONDAY", "monday", "3"}, {4});
  BOOST_TEST((none.shape() == th::Shape{1}));
  BOOST_TEST(none.to_vector<std::string>()[0] == "");
  // saved by theta as ONNX (StringNormalizer, its stopwords an attribute again) and loaded back
  const std::string saved = (tmp.dir / "saved.onnx").string();
  th::onnx::save(saved, upper);
  BOOST_TEST(check::has(op_types(saved), "StringNormalizer"), op_types(saved));
  BOOST_TEST(run(th::onnx::load_function(saved), days, {1, 4}).to_vector<std::string>() == (Words{"MONDAY", "TUESDAY"}),
             boost::test_tools::per_element());
  // Cast of text to numbers, then arithmetic
  ::onnx::ModelProto m;
  auto* g = new_graph(m, 13, "parse");
  declare_input(g, "s", ::onnx::TensorProto::STRING, {3});
  set_int(add_node(g, "Cast", {"s"}, {"x"}), "to", ::onnx::TensorProto::DOUBLE);
  add_node(g, "Add", {"x", "x"}, {"y"});
  g->add_output()->set_name("y");
  const std::string path = (tmp.dir / "parse.onnx").string();
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
  const Tensor parsed = run(th::onnx::load_function(path), {"1.25", "-INF", "1e3"}, {3});
  BOOST_TEST(check::vals(parsed) == (std::vector<double>{2.5, -std::numeric_limits<double>::infinity(), 2000}),
             boost::test_tools::per_element());
  const std::string m2 = check::message_of<th::ValueError>([&] { run(th::onnx::load_function(path), {"1", "two", "3"}, {3}); });
  BOOST_TEST(check::has(m2, "\"two\" is not a number"), m2);
}
