// The core is ready for symbolic use (the next issue's th::function): ops record on a
// placeholder with unknown dims through the same op definitions, shape rules work with
// unknown dims, th::grad returns symbolic gradients, and re-running the recorded graph
// with run_op on two input sizes matches the eager results.
#define BOOST_TEST_MODULE symbolic_core
#include <unordered_map>

#include "check.hpp"
#include <theta/function.hpp>
#include "core/node.hpp"
#include "ops/op.hpp"

using th::Tensor;
namespace d = th::detail;

namespace {

// A minimal interpreter: evaluates `out` with placeholders bound to concrete tensors.
Tensor evaluate(const Tensor& out, const std::unordered_map<d::Node*, Tensor>& bind) {
  std::unordered_map<d::Node*, d::Storage> vals;
  std::function<const d::Storage&(const Tensor&)> eval = [&](const Tensor& t) -> const d::Storage& {
    d::Node* n = t.node().get();
    if (auto it = vals.find(n); it != vals.end()) return it->second;
    if (n->kind == d::NodeKind::placeholder) return vals[n] = *bind.at(n).node()->value;
    if (!n->symbolic) return vals[n] = *n->value;
    std::vector<const d::Storage*> in;
    std::vector<std::string> in_names;
    for (const Tensor& i : n->inputs) {
      in.push_back(&eval(i));
      in_names.push_back(d::display_name(*i.node()));
    }
    std::vector<d::Meta> metas;
    for (std::size_t k = 0; k < in.size(); ++k) metas.push_back(d::meta_of(*in[k], in_names[k]));
    return vals[n] = d::run_op(*n->op, in, metas, n->attrs);
  };
  return d::make_constant(eval(out));
}

}  // namespace

BOOST_AUTO_TEST_CASE(seed_regression_graph_is_shape_polymorphic) {
  Tensor X = th::placeholder(th::DType::float64, 2, "x");
  Tensor Y = th::placeholder(th::DType::float64, 1, "y");
  Tensor w = th::variable(th::random::normal({4}, 1), "w");
  Tensor cost = th::mean(th::sqr(th::dot(X, w) - Y));
  BOOST_TEST(cost.is_symbolic());
  BOOST_TEST(cost.ndim() == 0);
  BOOST_CHECK_THROW(cost.item(), th::ValueError);
  BOOST_CHECK_THROW(cost.shape(), th::ValueError);
  Tensor g = th::grad(cost, w);
  BOOST_TEST(g.is_symbolic());
  BOOST_TEST(g.ndim() == 1);
  BOOST_TEST((g.node()->shape == th::Shape{4}));

  for (std::int64_t rows : {5, 9}) {
    Tensor xv = th::random::normal({rows, 4}, 10 + std::uint64_t(rows));
    Tensor yv = th::random::normal({rows}, 20 + std::uint64_t(rows));
    std::unordered_map<d::Node*, Tensor> bind{{X.node().get(), xv}, {Y.node().get(), yv}};
    Tensor eager_cost = th::mean(th::sqr(th::dot(xv, w) - yv));
    Tensor eager_g = th::grad(eager_cost, w);
    BOOST_TEST(evaluate(cost, bind).item() == eager_cost.item(), boost::test_tools::tolerance(1e-12));
    auto a = evaluate(g, bind).to_vector(), b = eager_g.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i], boost::test_tools::tolerance(1e-12));
  }
  // A size that the broadcasting does not allow fails at run time with the user's names.
  std::unordered_map<d::Node*, Tensor> bad{{X.node().get(), th::zeros({5, 3})}, {Y.node().get(), th::zeros({5})}};
  try {
    evaluate(cost, bad);
    BOOST_FAIL("expected a ShapeError");
  } catch (const th::ShapeError& e) {
    BOOST_TEST(std::string(e.what()).find("[x, expand_dims(w)]") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(symbolic_grad_of_grad_and_shape_ops) {
  Tensor x = th::placeholder(th::DType::float64, 1, "x");
  auto f = [](const Tensor& v) {
    return th::sum(th::pow(v, 3)) + th::sum(th::softmax(th::reshape(v, {1, -1})) * v) +
           th::sum(th::sqr(th::concatenate({th::view(v, th::range(0, 2)), th::take(v, th::tensor({0}, th::DType::int64))})));
  };
  Tensor y = f(x);
  Tensor g = th::grad(y, x);
  Tensor h = th::grad(th::sum(g), x);  // sum of Hessian rows
  for (std::int64_t n : {3, 6}) {
    Tensor xv = th::random::normal({n}, std::uint64_t(n));
    Tensor xe = th::variable(xv);
    Tensor ye = f(xe);
    Tensor ge = th::grad(ye, xe);
    Tensor he = th::grad(th::sum(ge), xe);
    std::unordered_map<d::Node*, Tensor> bind{{x.node().get(), xv}};
    auto a = evaluate(h, bind).to_vector(), b = he.to_vector();
    BOOST_TEST_REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i], boost::test_tools::tolerance(1e-10));
  }
}
