// Freeze-time rewrites (lib/freeze/rewrite_*.cpp): each test shows the rewrite fired (the
// frozen program's steps, through debugprint) and that values and gradients are kept, or
// improved where the rewrite exists for stability.
#define BOOST_TEST_MODULE rewrites
#include "check.hpp"
#include "core/node.hpp"

using check::has;
using check::vals;
using th::Tensor;

namespace {

// The op names of a frozen function's steps, in order ("mul sin add"), with the members of
// fused steps ("fused[mul sin] add") listed in their place; fused_steps_of keeps the fusion.
std::string fused_steps_of(const th::Function& f) {
  std::istringstream is(th::debugprint(f));
  std::string line, r;
  while (std::getline(is, line)) {
    auto eq = line.find(" = "), paren = line.find('(');
    if (line.rfind("  %", 0) == 0 && eq != std::string::npos && paren != std::string::npos && paren > eq &&
        line.find(" constant ") == std::string::npos)
      r += (r.empty() ? "" : " ") + line.substr(eq + 3, paren - eq - 3);
  }
  return r;
}

std::string steps_of(const th::Function& f) {
  std::string r = fused_steps_of(f);
  for (auto at = r.find("fused["); at != std::string::npos; at = r.find("fused[")) {
    r.erase(at, 6);
    r.erase(r.find(']', at), 1);
  }
  return r;
}

const Tensor xs = th::tensor({-1.5, -0.2, 0.3, 2.0});

// f(x) frozen equals eager at `at`, and so does the frozen gradient of sum(f(x) * r).
void keeps_values_and_gradients(const std::function<Tensor(const Tensor&)>& fn, const Tensor& at) {
  auto x = th::dvector("x");
  Tensor r = check::input(fn(at).shape(), 5, -1, 1);
  auto f = th::function({x}, {fn(x), th::grad(th::sum(fn(x) * r), x)});
  Tensor v = th::variable(at);
  Tensor y = fn(v);
  check::expect_close("value", f(at)[0], y);
  check::expect_close("gradient", f(at)[1], th::grad(th::sum(y * r), v));
}

}  // namespace

BOOST_AUTO_TEST_CASE(common_subexpressions_merge) {
  auto x = th::dvector("x");
  auto f = th::function({x}, th::sin(x * th::tensor(2.0)) + th::sin(x * th::tensor(2.0)));  // two constants 2.0, two muls, two sins
  BOOST_TEST(steps_of(f) == "mul sin add");
  BOOST_TEST(has(th::debugprint(f), "rewrites: cse 3"), th::debugprint(f));
  BOOST_TEST(vals(f(xs)) == vals(2.0 * th::sin(xs * 2.0)), boost::test_tools::tolerance(1e-15));
  // different attributes do not merge
  auto m = th::dmatrix("m");
  auto h = th::function({m}, th::sum(m, 0) + th::sum(m, 1));
  BOOST_TEST(steps_of(h) == "sum sum add");
  keeps_values_and_gradients([](const Tensor& t) { return th::exp(t * 3.0) * th::exp(t * 3.0); }, xs);
}

BOOST_AUTO_TEST_CASE(algebraic_identities_drop_steps) {
  auto x = th::dvector("x");
  auto f = th::function({x}, th::exp((x * 1.0 + 0.0 - 0.0) / 1.0) + th::stop_gradient(-(-x)));
  BOOST_TEST(steps_of(f) == "exp add");
  BOOST_TEST(has(th::debugprint(f), "algebra 6"), th::debugprint(f));
  BOOST_TEST(vals(f(xs)) == vals(th::exp(xs) + xs), boost::test_tools::tolerance(1e-15));
  keeps_values_and_gradients([](const Tensor& t) { return th::sin(1.0 * t) * (0.0 + t); }, xs);
  // A constant that broadcasts or promotes is not an identity: the step stays.
  auto s = th::dscalar("s");
  auto b = th::function({s}, s * th::ones({3}));
  BOOST_TEST(steps_of(b) == "mul");
  BOOST_TEST(vals(b(2.0)) == (std::vector<double>{2, 2, 2}));
  auto i = th::ivector("i");
  auto d = th::function({i}, i / 1.0);
  BOOST_TEST(steps_of(d) == "div");
  BOOST_TEST(d(std::vector<int>{3})[0].dtype() == th::DType::float64);
}

BOOST_AUTO_TEST_CASE(log_of_one_plus_x_is_log1p) {
  auto x = th::dvector("x");
  auto f = th::function({x}, th::log(1.0 + x) + th::log(x + 1.0));
  BOOST_TEST(steps_of(f) == "log1p add");  // both forms become log1p(x), which CSE then merges
  const Tensor tiny = th::tensor({1e-17, 3.0});
  BOOST_TEST(vals(f(tiny))[0] == 2e-17, boost::test_tools::tolerance(1e-12));  // eager: log(1 + 1e-17) = 0
  BOOST_TEST(vals(th::log(1.0 + tiny))[0] == 0.0);
  keeps_values_and_gradients([](const Tensor& t) { return th::log(1.0 + t * t); }, xs);
}

BOOST_AUTO_TEST_CASE(log_sigmoid_becomes_softplus) {
  auto x = th::dvector("x");
  auto f = th::function({x}, {th::log(th::sigmoid(x)), th::log(1.0 - th::sigmoid(x))});
  BOOST_TEST(steps_of(f) == "neg softplus neg softplus neg");
  const Tensor far = th::tensor({-800.0, 800.0, 0.5});
  auto r = f(far);
  check::expect_close("log sigmoid", r[0], th::tensor({-800, 0, std::log(1 / (1 + std::exp(-0.5)))}));
  check::expect_close("log 1 - sigmoid", r[1], th::tensor({0, -800, std::log(1 - 1 / (1 + std::exp(-0.5)))}));
  BOOST_TEST(std::isinf(vals(th::log(th::sigmoid(far)))[0]));  // eager, as written: log(0)
  keeps_values_and_gradients([](const Tensor& t) { return th::log(th::sigmoid(t)) * th::log(1.0 - th::sigmoid(t)); }, xs);
}

BOOST_AUTO_TEST_CASE(log_softmax_is_stable) {
  auto m = th::dmatrix("m");
  auto f = th::function({m}, th::log(th::softmax(m, 1)));
  BOOST_TEST(!has(steps_of(f), "div"), steps_of(f));
  const Tensor wide = th::tensor({{0.0, 1000.0}, {1.0, 2.0}});
  check::expect_close("log softmax", f(wide), th::log_softmax(wide, 1));
  BOOST_TEST(vals(f(wide))[0] == -1000.0);
  BOOST_TEST(std::isinf(vals(th::log(th::softmax(wide, 1)))[0]));  // eager, as written
  keeps_values_and_gradients([](const Tensor& t) { return th::log(th::softmax(th::reshape(t, {2, 2}), 0)); }, xs);
}

BOOST_AUTO_TEST_CASE(debug_mode_runs_the_graph_as_recorded) {
  auto x = th::dvector("x");
  th::Options o;
  o.mode = th::Mode::debug;
  auto f = th::function({x}, th::log(1.0 + x * 1.0), {}, o);
  BOOST_TEST(steps_of(f) == "mul add log");
  BOOST_TEST(!has(th::debugprint(f), "rewrites"));
}

BOOST_AUTO_TEST_CASE(updates_and_outputs_survive_rewrites) {
  // An output or update that a rewrite aliases to an input or shared slot still works.
  auto x = th::dvector("x");
  th::Shared w = th::shared(th::tensor({1.0, 2.0}), "w");
  auto f = th::function({x}, {x * 1.0, -(-w)}, {{w, w * 1.0 + x}});
  auto r = f(std::vector<double>{10, 20});
  BOOST_TEST(vals(r[0]) == (std::vector<double>{10, 20}));
  BOOST_TEST(vals(r[1]) == (std::vector<double>{1, 2}));
  BOOST_TEST(vals(w.get_value()) == (std::vector<double>{11, 22}));
  BOOST_TEST(steps_of(f) == "add");
}

BOOST_AUTO_TEST_CASE(memory_plan_frees_values_after_their_last_reader) {
  // h1 and h2 are read by one step each: the plan drops them right after it, so the call
  // never holds all of them at once; outputs and update values are kept to the end.
  auto x = th::dmatrix("x");
  th::Shared w = th::shared(th::tensor({{1.0, 2.0}, {3.0, 4.0}}), "w");
  Tensor h1 = th::dot(x, w), h2 = th::dot(h1, w), h3 = th::dot(h2, w);
  auto f = th::function({x}, h3, {{w, w + th::sum(h3)}});
  const std::string d = th::debugprint(f);
  auto line_of = [&](const std::string& head) {
    auto at = d.find(head);
    return at == std::string::npos ? std::string() : d.substr(at, d.find('\n', at) - at);
  };
  // slots: x 0, w 1, h1 2, h2 3, h3 4
  BOOST_TEST(has(line_of("%3 = matmul"), "[frees %2]"), d);
  BOOST_TEST(has(line_of("%4 = matmul"), "[frees %3]"), d);
  BOOST_TEST(!has(d, "frees %4"), d);  // the output
  BOOST_TEST(!has(line_of("%2 = matmul"), "frees %1"), d);  // w: read again by h2
  const Tensor xv = th::tensor({{1.0, 0.0}, {0.5, -1.0}});
  Tensor wv = w.get_value();
  Tensor want = th::dot(th::dot(th::dot(xv, wv), wv), wv);
  BOOST_TEST(vals(f(xv)) == vals(want), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(vals(w.get_value()) == vals(wv + th::sum(want)), boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(a_reductions_gradient_broadcasts_without_a_reshape) {
  // The gradient of sum/mean to a scalar is broadcast_like(expand_dims(g), x), g 0-d: the
  // expand_dims goes (broadcasting one element needs no unit axis), and the broadcast
  // rides in the fused chain of the rest of the gradient.
  auto x = th::dvector("x");
  auto f = th::function({x}, th::grad(th::mean(th::sqr(x - 1.0)), x));
  const std::string st = steps_of(f);
  BOOST_TEST(!has(st, "expand_dims"), st);
  BOOST_TEST(has(st, "broadcast_like"), st);
  BOOST_TEST(has(th::debugprint(f), "like_shapes"), th::debugprint(f));
  for (std::int64_t n : {7, 1}) {
    const Tensor xv = th::random::uniform({n}, -2, 2, 9);
    Tensor v = th::variable(xv);
    BOOST_TEST(vals(f(xv)) == vals(th::grad(th::mean(th::sqr(v - 1.0)), v)), boost::test_tools::per_element());
  }
  // a one-element x of rank 1 reshaped to 2-d and broadcast to a matrix: the same rule
  auto m = th::dmatrix("m");
  auto h = th::function({m, x}, th::grad(th::sum(m * th::reshape(th::sum(x), {1, 1})), x));
  const Tensor mv = th::random::uniform({2, 3}, -1, 1, 4), xv = th::random::uniform({5}, -1, 1, 5);
  Tensor v = th::variable(xv);
  BOOST_TEST(vals(h(mv, xv)) == vals(th::grad(th::sum(mv * th::reshape(th::sum(v), {1, 1})), v)),
             boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(transposes_fold_into_the_gemm) {
  auto a = th::dmatrix("a"), b = th::dmatrix("b");
  const Tensor av = th::random::uniform({3, 4}, -1, 1, 1), bv = th::random::uniform({3, 5}, -1, 1, 2),
               cv = th::random::uniform({5, 3}, -1, 1, 3);
  auto f = th::function({a, b}, th::dot(a.T(), b));
  BOOST_TEST(steps_of(f) == "matmul_t");
  BOOST_TEST(has(th::debugprint(f), "gemm_transpose 1"), th::debugprint(f));
  BOOST_TEST(vals(f(av, bv)) == vals(th::dot(av.T(), bv)), boost::test_tools::per_element());
  auto g = th::function({a, b}, th::dot(a.T(), b.T()));  // both operands, and a transposed twice
  BOOST_TEST(steps_of(g) == "matmul_t");
  BOOST_TEST(vals(g(av, cv)) == vals(th::dot(av.T(), cv.T())), boost::test_tools::per_element());
  auto h = th::function({a}, th::dot(a.T().T(), a.T()));
  BOOST_TEST(vals(h(av)) == vals(th::dot(av, av.T())), boost::test_tools::per_element());
  // a batch: only a swap of the last two axes folds
  auto x = th::placeholder(th::DType::float64, 3, "x");
  const Tensor xv = th::random::uniform({2, 3, 4}, -1, 1, 4);
  auto k = th::function({x}, th::matmul(th::transpose(x, {0, 2, 1}), x));
  BOOST_TEST(steps_of(k) == "matmul_t");
  BOOST_TEST(vals(k(xv)) == vals(th::matmul(th::transpose(xv, {0, 2, 1}), xv)), boost::test_tools::per_element());
  auto m = th::function({x}, th::matmul(th::transpose(x, {1, 0, 2}), th::transpose(x, {1, 2, 0})));
  BOOST_TEST(steps_of(m) == "transpose transpose matmul");
  // the gradient of a product reads x^T: folded, same values as eager
  auto w = th::dvector("w");
  const Tensor wv = th::random::uniform({4}, -1, 1, 5);
  auto gw = th::function({a, w}, th::grad(th::sum(th::tanh(th::dot(a, w))), w));
  BOOST_TEST(has(steps_of(gw), "matmul_t"), steps_of(gw));
  BOOST_TEST(!has(steps_of(gw), "transpose"), steps_of(gw));
  Tensor wr = th::variable(wv);
  BOOST_TEST(vals(gw(av, wv)) == vals(th::grad(th::sum(th::tanh(th::dot(av, wr))), wr)),
             boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(gradient_steps_fold_into_the_gemm) {
  // w - 0.1 * grad with grad = x^T (...) (a linear model's SGD step): one matmul_acc step,
  // which writes the product and subtracts it from w in the same step
  // (rewrite_gemm_acc.cpp), with the formulas of the mul and sub it replaces: the updates
  // are the eager ones bit for bit, float64 and float32, over several calls.
  for (th::DType dt : {th::DType::float64, th::DType::float32}) {
    auto x = th::placeholder(dt, 2, "x"), y = th::placeholder(dt, 1, "y");
    auto w = th::shared(th::zeros({4}, dt), "w");
    Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
    auto train = th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
    BOOST_TEST(has(steps_of(train), "matmul_acc"), steps_of(train));
    BOOST_TEST(!has(steps_of(train), "matmul_t"), steps_of(train));
    BOOST_TEST(has(th::debugprint(train), "gemm_acc 1"), th::debugprint(train));
    const Tensor X = th::random::uniform({125, 4}, -1, 1, 1, dt), Y = th::random::uniform({125}, -1, 1, 2, dt);
    Tensor we = th::zeros({4}, dt);
    for (int i = 0; i < 5; ++i) {
      train(X, Y);
      Tensor wv = th::variable(we);
      we = wv - 0.1 * th::grad(th::mean(th::sqr(th::dot(X, wv) - Y)), wv);
      BOOST_TEST(vals(w.get_value()) == vals(we), boost::test_tools::per_element());
    }
  }
  // c + k * (a @ b) and (a @ b) * k + c fold too; where c's shape is not the product's
  // (it broadcasts), the step runs as the ops it stands for.
  auto a = th::dmatrix("a"), b = th::dmatrix("b"), c = th::dmatrix("c"), d = th::dmatrix("d");
  auto f = th::function({a, b, c, d}, {c + th::matmul(a, b) * 2.0, th::matmul(a, d) * 0.5 + c});
  BOOST_TEST(steps_of(f) == "matmul_acc matmul_acc", steps_of(f));
  // debugprint shows what each stands for, in its operands' slots
  const std::string printed = th::debugprint(f);
  BOOST_TEST(has(printed, "= %2 + 2 * %0 @ %1"), printed);
  BOOST_TEST(has(printed, "= 0.5 * %0 @ %3 + %2"), printed);
  const Tensor A = th::random::uniform({3, 5}, -1, 1, 3), B = th::random::uniform({5, 2}, -1, 1, 4),
               D = th::random::uniform({5, 2}, -1, 1, 6);
  for (th::Shape cs : {th::Shape{3, 2}, th::Shape{1, 2}, th::Shape{3, 1}}) {
    const Tensor C = th::random::uniform(cs, -1, 1, 5);
    auto r = f(A, B, C, D);
    BOOST_TEST(vals(r[0]) == vals(C + th::matmul(A, B) * 2.0), boost::test_tools::per_element());
    BOOST_TEST(vals(r[1]) == vals(th::matmul(A, D) * 0.5 + C), boost::test_tools::per_element());
  }
  // A product read elsewhere too stays a matmul.
  auto g = th::function({a, b, c}, {c - th::matmul(a, b) * 2.0, th::matmul(a, b)});
  BOOST_TEST(!has(steps_of(g), "matmul_acc"), steps_of(g));
}

BOOST_AUTO_TEST_CASE(elementwise_chains_fuse_into_one_pass) {
  auto a = th::fvector("a"), b = th::fvector("b"), c = th::fvector("c");
  Tensor y = th::tanh(a * b + c) * 0.5 + th::sigmoid(a);
  auto fwd = th::function({a, b, c}, y);
  BOOST_TEST(fused_steps_of(fwd) == "fused[mul add tanh mul sigmoid add]");
  // With the gradient: the gradient's sum_to_like/broadcast_like either go (shapes provably
  // equal) or read a zero-copy broadcast_shape of the inputs instead of forward values
  // (rewrite_like_shapes.cpp); tanh's and sigmoid's outputs, read by both passes, are
  // recomputed instead of stored; the forward and the backward read the same inputs, so
  // they merge into one pass writing both outputs (tanh and sigmoid computed once), the
  // remaining sum_to_likes no-ops checked at run time.
  auto f = th::function({a, b, c}, {y, th::grad(th::sum(y), a)});
  const std::string fs = fused_steps_of(f);
  BOOST_TEST(has(fs, "fused[mul add tanh mul sigmoid add broadcast_like sum_to_like mul sub mul"), fs);
  BOOST_TEST(fs.find("fused[") == fs.rfind("fused["), fs);  // one fused step
  BOOST_TEST(has(th::debugprint(f), ", %"), th::debugprint(f));  // it writes two slots
  BOOST_TEST(has(steps_of(f), "broadcast_shape"), steps_of(f));
  BOOST_TEST(has(th::debugprint(f), "like_shapes"));
  // Sizes with several blocks, a partial last block and both kernel threads; then tiny;
  // then an output too large for the cache (over 8 MiB: the forward pass streams it out of
  // its scratch blocks with non-temporal stores, cpu/fused.cpp).
  for (std::int64_t n : {100003, 5, (1 << 21) + 5}) {
    Tensor A = th::random::uniform({n}, -2, 2, 1, th::DType::float32), B = th::random::uniform({n}, -2, 2, 2, th::DType::float32),
           C = th::random::uniform({n}, -2, 2, 3, th::DType::float32);
    Tensor av = th::variable(A);
    Tensor ye = th::tanh(av * B + C) * 0.5 + th::sigmoid(av);
    Tensor ge = th::grad(th::sum(ye), av);
    auto r = f(A, B, C);
    BOOST_TEST(vals(fwd(A, B, C)) == vals(ye), boost::test_tools::per_element());  // the same formulas: bit-identical
    BOOST_TEST(vals(r[0]) == vals(ye), boost::test_tools::per_element());
    BOOST_TEST(vals(r[1]) == vals(ge), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(one_value_instructions_in_fused_chains) {
  // s * t, exp of it and s - t are of one element inside chains over x: each is computed
  // once per block (not spread over it), its readers take it as a broadcast value. The
  // same bits as eager, at one element, within a block and over several blocks.
  auto x = th::dvector("x");
  auto s = th::dscalar("s"), t = th::dscalar("t");
  auto fn = [](const Tensor& xv, const Tensor& sv, const Tensor& tv) { return xv * th::exp(sv * tv) + (sv - tv); };
  Tensor y = fn(x, s, t);
  auto f = th::function({x, s, t}, {y, th::grad(th::sum(y * y), x)});
  BOOST_TEST(has(fused_steps_of(f), "fused[mul exp mul sub add]"), fused_steps_of(f));
  for (std::int64_t n : {1, 5, 2500}) {
    const Tensor X = th::random::uniform({n}, -2, 2, 4), S = th::tensor(0.3), T = th::tensor(-0.7);
    Tensor xv = th::variable(X);
    Tensor ye = fn(xv, S, T);
    auto r = f(X, S, T);
    BOOST_TEST(vals(r[0]) == vals(ye), boost::test_tools::per_element());
    BOOST_TEST(vals(r[1]) == vals(th::grad(th::sum(ye * ye), xv)), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(every_formula_rounds_alike_fused_eager_and_strided) {
  // The kernels contract a*b+c into FMAs where the CPU has them (cpu/multiversion.hpp): the
  // fused blocks and the eager loops, contiguous or strided, must still round alike. Each
  // op at the end of a fused chain over 3 x 1500 values (vector bodies and scalar tails),
  // against eager on the same values and eager on transposed (strided) views.
  using U = Tensor (*)(const Tensor&);
  const std::vector<std::pair<std::string, U>> unary = {
      {"neg", [](const Tensor& z) { return -z; }}, {"abs", [](const Tensor& z) { return th::abs(z); }},
      {"exp", [](const Tensor& z) { return th::exp(z); }}, {"log", [](const Tensor& z) { return th::log(th::abs(z) + 0.1); }},
      {"log1p", [](const Tensor& z) { return th::log1p(th::abs(z)); }}, {"sqrt", [](const Tensor& z) { return th::sqrt(th::abs(z)); }},
      {"sin", [](const Tensor& z) { return th::sin(z); }}, {"cos", [](const Tensor& z) { return th::cos(z); }},
      {"tanh", [](const Tensor& z) { return th::tanh(z); }}, {"sigmoid", [](const Tensor& z) { return th::sigmoid(z); }},
      {"softplus", [](const Tensor& z) { return th::softplus(z); }},
      {"div", [](const Tensor& z) { return 1.0 / (th::abs(z) + 0.5); }},
      {"pow", [](const Tensor& z) { return th::pow(th::abs(z) + 0.1, z); }},
      {"maximum", [](const Tensor& z) { return th::maximum(z, z * z - 1.0); }},
      {"minimum", [](const Tensor& z) { return th::minimum(z, 1.0 - z * z); }}};
  for (th::DType dt : {th::DType::float32, th::DType::float64}) {
    auto x = th::placeholder(dt, 2, "x"), y = th::placeholder(dt, 2, "y");
    const Tensor X = th::random::uniform({3, 1500}, -6, 6, 1, dt), Y = th::random::uniform({3, 1500}, -2, 2, 2, dt);
    const Tensor Xt = th::transpose(th::transpose(X) * 1.0), Yt = th::transpose(th::transpose(Y) * 1.0);  // strided
    for (const auto& [name, u] : unary) {
      auto f = th::function({x, y}, u(x * y + x));
      BOOST_TEST(has(fused_steps_of(f), "fused[mul add"), name << ": " << fused_steps_of(f));
      const std::vector<double> fused = vals(f(X, Y));
      BOOST_TEST(fused == vals(u(X * Y + X)), boost::test_tools::per_element());
      BOOST_TEST(fused == vals(u(Xt * Yt + Xt)), boost::test_tools::per_element());
      BOOST_TEST(std::all_of(fused.begin(), fused.end(), [](double v) { return std::isfinite(v); }), name);
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_scratch_blocks_are_reused_only_after_their_last_reader) {
  // sin(x) and cos(x) stay live across a long chain that frees and reuses other scratch
  // blocks; both are read again at the end. Bit-identical to eager over several blocks.
  auto x = th::dvector("x");
  auto chain_of = [](const Tensor& v) {
    Tensor s1 = th::sin(v), c1 = th::cos(v), t = s1;
    for (int i = 0; i < 3; ++i) t = th::tanh(t * 1.1 + c1);  // c1: 4 readers, recomputed in the chain
    return t * s1 + c1;
  };
  auto f = th::function({x}, chain_of(x));
  const std::string fs = fused_steps_of(f);
  BOOST_TEST((fs.rfind("fused[", 0) == 0 && fs.find(']') == fs.size() - 1), fs);  // one fused step
  for (std::int64_t n : {2500, 1}) {
    const Tensor xv = th::random::uniform({n}, -3, 3, 11);
    BOOST_TEST(vals(f(xv)) == vals(chain_of(xv)), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(shared_values_are_recomputed_or_stored) {
  // t is read by two chains: copied into both (no step writes it), which then merge into
  // one pass computing t once. With a reader whose chain is already full (32 ops), that
  // reader reads t from memory, so t stays a step.
  auto x = th::dvector("x"), z = th::dvector("z");
  Tensor t = th::tanh(x * 2.0);
  auto f = th::function({x}, {t + 1.0, t * 3.0});
  BOOST_TEST(fused_steps_of(f) == "fused[mul tanh add mul]");
  Tensor longer = z;
  for (int i = 0; i < 31; ++i) longer = longer * 1.5 - 0.25;  // 62 ops: one full chain and more
  auto g = th::function({x, z}, {longer + t, t * 3.0});
  BOOST_TEST(has(fused_steps_of(g), "fused[mul tanh"), fused_steps_of(g));  // t is stored (with t * 3.0, merged)
  Tensor X = th::random::uniform({1000}, -1, 1, 1), Z = th::random::uniform({1000}, -1, 1, 2);
  Tensor te = th::tanh(X * 2.0), le = Z;
  for (int i = 0; i < 31; ++i) le = le * 1.5 - 0.25;
  auto r = f(X), q = g(X, Z);
  BOOST_TEST(vals(r[0]) == vals(te + 1.0), boost::test_tools::per_element());
  BOOST_TEST(vals(r[1]) == vals(te * 3.0), boost::test_tools::per_element());
  BOOST_TEST(vals(q[0]) == vals(le + te), boost::test_tools::per_element());
  BOOST_TEST(vals(q[1]) == vals(te * 3.0), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(merged_chains_fall_back_to_their_parts) {
  // tanh(x) * 2 and x * y share x; merged into one pass. When x is one element and y is
  // larger at run time the outputs differ in shape: the merged kernel does not fit and each
  // chain runs on its own (the first still fused).
  auto x = th::dvector("x");
  auto y = th::dvector("y");
  auto f = th::function({x, y}, {th::tanh(x) * 2.0, th::exp(x * y)});
  BOOST_TEST(fused_steps_of(f) == "fused[tanh mul mul exp]");
  for (std::int64_t nx : {1000, 1}) {
    Tensor X = th::random::uniform({nx}, -1, 1, 1), Y = th::random::uniform({1000}, -1, 1, 2);
    auto r = f(X, Y);
    BOOST_TEST((r[0].shape() == th::Shape{nx}));
    BOOST_TEST((r[1].shape() == th::Shape{1000}));
    BOOST_TEST(vals(r[0]) == vals(th::tanh(X) * 2.0), boost::test_tools::per_element());
    BOOST_TEST(vals(r[1]) == vals(th::exp(X * Y)), boost::test_tools::per_element());
  }
  // Outputs whose static shapes cannot agree (a 1-d and a 2-d one) are not merged: the
  // merged pass could never run.
  auto m = th::dmatrix("m");
  auto g = th::function({x, m}, {th::tanh(x) * 2.0, th::exp(x * m)});
  BOOST_TEST(fused_steps_of(g) == "fused[tanh mul] fused[mul exp]");
}

BOOST_AUTO_TEST_CASE(whole_sums_fold_into_the_chain_feeding_them) {
  // sum(chain) is computed by the fused pass itself (rewrite_fuse_reduce.cpp), each block
  // reduced while in cache in theta's order for whole reductions
  // (cpu/pairwise.hpp): the bits of the eager sum, for sizes inside one block, at its edges,
  // over many blocks and both kernel threads, in float32 and float64; the chain's values are
  // not written when nothing else reads them.
  for (th::DType dt : {th::DType::float64, th::DType::float32}) {
    auto x = th::placeholder(dt, 1, "x"), y = th::placeholder(dt, 1, "y");
    Tensor loss = th::mean(th::sqr(th::tanh(x * 1.5 + y) - y));
    auto f = th::function({x, y}, {loss, th::sum(th::sigmoid(x) * y)});
    // the mean's count reads the inputs' shapes (rewrite_like_shapes.cpp), both chains read
    // x and y: one pass with both sums (rewrite_fuse_merge.cpp)
    const std::string fs = fused_steps_of(f);
    // x and y: one pass with both sums (rewrite_fuse_merge.cpp), and the mean's division on
    // the sum after them (its tail)
    BOOST_TEST(fs == "broadcast_shape count fused[mul add tanh sub mul sigmoid mul sum sum div]", fs);
    BOOST_TEST(has(th::debugprint(f), "fused_reduce 3"), th::debugprint(f));
    auto g = th::function({x, y}, th::grad(loss, x));  // and the gradient of such a loss
    for (std::int64_t n : {1, 7, 125, 1024, 1025, 4096, 100003, 1 << 20}) {
      Tensor X = th::random::uniform({n}, -2, 2, 1, dt), Y = th::random::uniform({n}, -2, 2, 2, dt);
      auto r = f(X, Y);
      BOOST_TEST(r[0].dtype() == dt);
      BOOST_TEST(r[0].item() == th::mean(th::sqr(th::tanh(X * 1.5 + Y) - Y)).item(), n);  // bit for bit
      BOOST_TEST(r[1].item() == th::sum(th::sigmoid(X) * Y).item(), n);
      BOOST_TEST(std::fabs(r[1].item() - th::sum(th::cast(th::sigmoid(X) * Y, th::DType::float64)).item()) <=
                     (dt == th::DType::float32 ? 1e-5 : 1e-12) * double(n),
                 n);
      Tensor xv = th::variable(X);
      BOOST_TEST(vals(g(X, Y)) == vals(th::grad(th::mean(th::sqr(th::tanh(xv * 1.5 + Y) - Y)), xv)),
                 boost::test_tools::per_element());
    }
  }
  // The chain's value read elsewhere too: written, and summed.
  auto x = th::dvector("x");
  Tensor t = th::exp(x) * 0.5;
  auto both = th::function({x}, {t, th::sum(t), th::mean(t)});
  BOOST_TEST(fused_steps_of(both) == "count fused[exp mul sum div]", fused_steps_of(both));
  const Tensor X = th::random::uniform({3000}, -1, 1, 3);
  auto r = both(X);
  BOOST_TEST(vals(r[0]) == vals(th::exp(X) * 0.5), boost::test_tools::per_element());
  BOOST_TEST(r[1].item() == th::sum(th::exp(X) * 0.5).item());
  BOOST_TEST(r[2].item() == th::mean(th::exp(X) * 0.5).item());
  auto empty = both(th::zeros({0}));  // empty: 0, as the eager sum; 0/0 for the mean
  BOOST_TEST(empty[1].item() == 0.0);
  BOOST_TEST(std::isnan(empty[2].item()));
  // Where the pass cannot run (a strided argument) or every op is checked (nan_guard), the
  // chain runs op by op and the sum and count after it: the same values.
  auto m = th::dmatrix("m");
  auto h = th::function({m}, th::sum(th::tanh(m) * 2.0));
  const Tensor M = th::random::uniform({40, 30}, -2, 2, 4);
  BOOST_TEST(h(th::transpose(M)).item() == th::sum(th::tanh(th::transpose(M)) * 2.0).item());
  th::Options o;
  o.mode = th::Mode::nan_guard;
  auto hg = th::function({m}, th::sum(th::tanh(m) * 2.0), {}, o);
  BOOST_TEST(hg(M).item() == h(M).item());
  // The tail: elementwise steps on the sums, constants and one-element inputs, in the
  // eager kernels' formulas (tanh's contracted polynomial included): the same bits.
  for (th::DType dt : {th::DType::float32, th::DType::float64}) {
    auto v = th::placeholder(dt, 1, "v"), s = th::placeholder(dt, 0, "s");
    auto k = th::function({v, s}, th::tanh(th::sum(v * v * 0.5) * s - 1.0) * th::sum(th::exp(v) * 2.0));
    BOOST_TEST(fused_steps_of(k) == "fused[mul mul exp mul sum sum mul sub tanh mul]", fused_steps_of(k));
    for (std::int64_t n : {3, 2000}) {
      const Tensor V = th::random::uniform({n}, -1, 1, 6, dt), S = th::full({}, 0.002, dt);
      BOOST_TEST(k(V, S).item() == (th::tanh(th::sum(V * V * 0.5) * S - 1.0) * th::sum(th::exp(V) * 2.0)).item(), n);
    }
  }
  // A chain of one-element steps that joined a tail is no pass of its own: a sum of its
  // result stays a step (found by the property suite, seed 7282).
  auto u = th::dvector("u");
  auto mean_of_tail = [](const Tensor& z) {
    Tensor s5 = th::sum(th::sign(z) * z);
    return th::mean(s5 / (1.0 + s5 * s5));
  };
  auto q = th::function({u}, mean_of_tail(u));
  const Tensor U = th::random::uniform({3}, -1, 1, 7);
  BOOST_TEST(q(U).item() == mean_of_tail(U).item());
  // A sum over some axes is not whole: it stays a step.
  BOOST_TEST(fused_steps_of(th::function({m}, th::sum(th::tanh(m) * 2.0, 0))) == "fused[tanh mul] sum");
}

BOOST_AUTO_TEST_CASE(passes_reading_the_same_inputs_merge_past_the_steps_between) {
  // mean((x - y)^2) and its gradient: the loss's sum and division sit between the loss
  // chain and the gradient chain, whose count is hoisted to the top (it reads shapes only):
  // the gradient chain moves up into the loss chain's pass (rewrite_fuse_merge.cpp), which
  // reads x and y once and computes x - y once. Bit-identical to eager.
  auto x = th::dvector("x"), y = th::dvector("y");
  Tensor loss = th::mean(th::sqr(x - y));
  auto f = th::function({x, y}, {loss, th::grad(loss, x)});
  const std::string fs = fused_steps_of(f);
  BOOST_TEST(fs.find("fused[") == fs.rfind("fused["), fs);  // one pass
  BOOST_TEST(fs.find("fused[sub mul") != std::string::npos, fs);
  BOOST_TEST(fs.find("sub", fs.find("fused[sub") + 7) == std::string::npos, fs);  // x - y once
  BOOST_TEST(has(th::debugprint(f), "fused_merge 1"), th::debugprint(f));
  // Sizes repeated and changed: a repeated call reuses the count and broadcast_shape of
  // the last call (the frame keeps them), a new size computes them again.
  for (std::int64_t n : {5, 5, 3000, 3000, 5, 7}) {
    Tensor X = th::random::uniform({n}, -2, 2, 1), Y = th::random::uniform({n}, -2, 2, 2);
    Tensor xv = th::variable(X);
    Tensor le = th::mean(th::sqr(xv - Y));
    auto r = f(X, Y);
    BOOST_TEST(r[0].item() == le.item());
    BOOST_TEST(vals(r[1]) == vals(th::grad(le, xv)), boost::test_tools::per_element());
  }
  // Passes whose shapes differ at run time (a single element against b's n): the merged
  // step runs its two passes one after the other.
  auto a = th::dvector("a"), b = th::dvector("b");
  auto g = th::function({a, b}, {th::sum(th::tanh(a * b)) * 2.0, th::exp(a) * 2.0});
  BOOST_TEST(has(th::debugprint(g), "fused_merge 1"), th::debugprint(g));
  for (auto [na, nb] : {std::pair<std::int64_t, std::int64_t>{1, 9}, {9, 9}, {9, 1}}) {
    Tensor A = th::random::uniform({na}, -2, 2, 3), B = th::random::uniform({nb}, -2, 2, 4);
    auto r = g(A, B);
    BOOST_TEST(r[0].item() == (th::sum(th::tanh(A * B)) * 2.0).item());
    BOOST_TEST(vals(r[1]) == vals(th::exp(A) * 2.0), boost::test_tools::per_element());
  }
  // A pass needing a value made after the earlier pass stays where it is.
  auto h = th::function({a}, {th::exp(a) * 2.0, th::tanh(a) * th::sum(th::exp(a) * 2.0)});
  BOOST_TEST(!has(th::debugprint(h), "fused_merge"), th::debugprint(h));
  const Tensor A = th::random::uniform({50}, -1, 1, 5);
  BOOST_TEST(vals(h(A)[1]) == vals(th::tanh(A) * th::sum(th::exp(A) * 2.0)), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bias_rows_ride_in_fused_chains) {
  // tanh(h + b) with b a row repeated over the leading dimensions (a bias): the fused pass
  // reads b block by block (cpu/fused.cpp), bit-identical to the unfused ops; so is a row
  // with leading 1s, a column of the output's rank (each value repeated along its row: a
  // softmax's row maximum) and a column of lower rank (neither: op by op).
  auto h = th::dmatrix("h");
  auto b = th::dvector("b");
  auto f = th::function({h, b}, th::tanh(h + b) * 2.0);
  BOOST_TEST(fused_steps_of(f) == "fused[add tanh mul]");
  auto h3 = th::dtensor3("h3");
  auto b2 = th::dmatrix("b2");
  auto g = th::function({h3, b2}, th::sigmoid(h3 * b2 - 1.0));
  auto softmax_top = th::function({h}, th::exp(h - th::max(h, 1, true)) / 2.0);
  auto c3 = th::dtensor3("c3");
  auto g3 = th::function({h3, c3}, th::sigmoid(h3 * c3 - 1.0));
  BOOST_TEST(fused_steps_of(softmax_top) == "max fused[sub exp div]");
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{3, 5}, {1000, 7}, {2, 2000}}) {
    Tensor H = th::random::uniform({rows, cols}, -2, 2, 1), B = th::random::uniform({cols}, -2, 2, 2);
    BOOST_TEST(vals(f(H, B)) == vals(th::tanh(H + B) * 2.0), boost::test_tools::per_element());
    Tensor H3 = th::random::uniform({2, rows, cols}, -2, 2, 3);
    for (th::Shape bs : {th::Shape{rows, cols}, th::Shape{1, cols}, th::Shape{rows, 1}}) {
      Tensor B2 = th::random::uniform(bs, -2, 2, 4);
      BOOST_TEST(vals(g(H3, B2)) == vals(th::sigmoid(H3 * B2 - 1.0)), boost::test_tools::per_element());
    }
    Tensor C = th::max(H, 1, true), C3 = th::random::uniform({2, rows, 1}, -2, 2, 5);
    BOOST_TEST(vals(softmax_top(H)) == vals(th::exp(H - C) / 2.0), boost::test_tools::per_element());
    BOOST_TEST(vals(g3(H3, C3)) == vals(th::sigmoid(H3 * C3 - 1.0)), boost::test_tools::per_element());
    // a middle column, (1, cols, 1) over (2, cols, rows): its values cycle (a conv bias)
    Tensor H3t = th::random::uniform({2, cols, rows}, -2, 2, 6), M = th::random::uniform({1, cols, 1}, -2, 2, 7);
    BOOST_TEST(vals(g3(H3t, M)) == vals(th::sigmoid(H3t * M - 1.0)), boost::test_tools::per_element());
    // (2, 1, cols) is neither a row nor a column of (2, rows, cols): the pass falls back
    Tensor N = th::random::uniform({2, 1, cols}, -2, 2, 8);
    BOOST_TEST(vals(g3(H3, N)) == vals(th::sigmoid(H3 * N - 1.0)), boost::test_tools::per_element());
  }
  // the profile says which passes fell back: only g3's, on its (2, 1, cols) operands (and
  // not g's lower-rank columns (rows, 1), which cycle)
  BOOST_TEST(!has(f.profile(), "op by op"), f.profile());
  BOOST_TEST(!has(softmax_top.profile(), "op by op"), softmax_top.profile());
  BOOST_TEST(!has(g.profile(), "op by op"), g.profile());
  BOOST_TEST(has(g3.profile(), "op by op in 3 calls"), g3.profile());
}

BOOST_AUTO_TEST_CASE(gradient_seeds_of_ones_sink_into_their_readers) {
  // grad(sum(y), ...) starts from ones broadcast like y; ones * 0.5 is 0.5 broadcast the
  // same way, and a filled 0.5 times a value of the result's shape is just 0.5 times it:
  // 0.5 * (1 - tanh(a)^2) is the whole gradient pass, bit for bit the eager values.
  auto a = th::dvector("a");
  Tensor y = th::tanh(a) * 0.5;
  auto f = th::function({a}, th::grad(th::sum(y), a));
  BOOST_TEST(fused_steps_of(f) == "fused[tanh mul sub mul]", th::debugprint(f));
  for (std::int64_t n : {1, 7, 3000}) {
    const Tensor A = th::random::uniform({n}, -2, 2, 3);
    Tensor av = th::variable(A);
    BOOST_TEST(vals(f(A)) == vals(th::grad(th::sum(th::tanh(av) * 0.5), av)), boost::test_tools::per_element());
  }
  // a fill whose other operand may be smaller than the result keeps the broadcast
  auto b = th::dmatrix("b");
  auto g = th::function({a, b}, th::grad(th::sum(th::tanh(a) * b), a));
  const Tensor A = th::random::uniform({4}, -2, 2, 4), B = th::random::uniform({3, 4}, -2, 2, 5);
  Tensor av = th::variable(A);
  BOOST_TEST(vals(g(A, B)) == vals(th::grad(th::sum(th::tanh(av) * B), av)), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gradient_reductions_inside_fused_chains_stay_reductions) {
  // a broadcast against b: the gradient of a is a real sum_to_like. The fused backward
  // sees that at run time (its like is not of the output's shape) and runs op by op.
  auto a = th::dvector("a"), b = th::dvector("b");
  Tensor y = th::tanh(a * b) + a;
  auto f = th::function({a, b}, {y, th::grad(th::sum(y), a), th::grad(th::sum(y), b)});
  for (auto [na, nb] : {std::pair<std::int64_t, std::int64_t>{1, 7}, {7, 1}, {7, 7}}) {
    Tensor A = th::random::uniform({na}, -2, 2, 1), B = th::random::uniform({nb}, -2, 2, 2);
    Tensor av = th::variable(A), bv = th::variable(B);
    Tensor ye = th::tanh(av * bv) + av;
    auto r = f(A, B);
    BOOST_TEST(vals(r[0]) == vals(ye), boost::test_tools::per_element());
    BOOST_TEST(vals(r[1]) == vals(th::grad(th::sum(ye), av)), boost::test_tools::per_element());
    BOOST_TEST(vals(r[2]) == vals(th::grad(th::sum(ye), bv)), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(chains_end_at_sums_over_an_axis) {
  // A bias's update: its gradient sums over the batch (sum_to_like to b's shape, which has
  // fewer dims). Such a sum is never a no-op, so a chain through it would always run op by
  // op: the chain ends there instead, the parts before and after it fuse and the sum runs
  // as its op, bit for bit the eager update.
  auto x = th::dmatrix("x");
  auto b = th::shared(th::zeros({5}), "b");
  Tensor h = th::tanh(x + b);
  Tensor cost = th::sum(h * h);
  auto f = th::function({x}, cost, {{b, b - 0.1 * th::grad(cost, b)}});
  const std::string steps = fused_steps_of(f);
  BOOST_TEST(has(steps, "sum_to_like fused["), steps);  // the sum as a step of its own, a pass after it
  Tensor bv = th::zeros({5});
  for (int i = 0; i < 3; ++i) {
    const Tensor X = th::random::uniform({7, 5}, -1, 1, std::uint64_t(i + 1));
    Tensor v = th::variable(bv), he = th::tanh(X + v), ce = th::sum(he * he);
    BOOST_TEST(f(X).item() == ce.item());
    bv = bv - 0.1 * th::grad(ce, v);
    BOOST_TEST(vals(b.get_value()) == vals(bv), boost::test_tools::per_element());
  }
  BOOST_TEST(!has(f.profile(), "op by op"), f.profile());
}

BOOST_AUTO_TEST_CASE(fused_steps_fall_back_where_the_kernel_cannot_go) {
  auto m = th::dmatrix("m"), row = th::dmatrix("row");
  auto f = th::function({m, row}, th::exp(m * 2.0) - th::sin(row));
  BOOST_TEST(has(fused_steps_of(f), "fused["), fused_steps_of(f));
  Tensor M = th::random::uniform({3, 4}, -1, 1, 1), R = th::random::uniform({1, 4}, -1, 1, 2);
  // a (1, 4) row broadcast over rows, and a transposed (strided) argument
  check::expect_close("broadcast row", f(M, R), th::exp(M * 2.0) - th::sin(R));
  Tensor Mt = th::transpose(th::random::uniform({4, 3}, -1, 1, 3));
  check::expect_close("strided argument", f(Mt, R), th::exp(Mt * 2.0) - th::sin(R));
  check::expect_close("equal shapes", f(M, M), th::exp(M * 2.0) - th::sin(M));
  // an error inside a fused step is the member op's own error
  BOOST_TEST(has(check::message_of<th::ShapeError>([&] { f(M, th::zeros({2, 4})); }), "shapes cannot be broadcast"));
}

BOOST_AUTO_TEST_CASE(fusion_keeps_results_others_read) {
  // exp(x) is read three times and also returned: it stays a step of its own.
  auto x = th::dvector("x");
  Tensor e = th::exp(x);
  auto f = th::function({x}, {e * e + e, e});
  BOOST_TEST(fused_steps_of(f) == "exp fused[mul add]");
  auto r = f(xs);
  check::expect_close("value", r[0], th::exp(xs) * th::exp(xs) + th::exp(xs));
  check::expect_close("shared intermediate", r[1], th::exp(xs));
}

BOOST_AUTO_TEST_CASE(nan_guard_checks_each_op_of_a_fused_chain) {
  auto x = th::dvector("x");
  th::Options o;
  o.mode = th::Mode::nan_guard;
  auto f = th::function({x}, th::exp(th::sqrt(x * 2.0) + 1.0), {}, o);
  BOOST_TEST(has(fused_steps_of(f), "fused["), fused_steps_of(f));
  BOOST_TEST(has(check::message_of<th::ValueError>([&] { f(th::tensor({1.0, -1.0})); }), "sqrt: produced NaN"));
}

// th::grad writes sum_to_like(broadcast_like(g, ...), x) for an operand that might broadcast;
// when the shapes are open at freeze time the chain stays, and a call where they are equal
// takes g itself (shared, not copied). The caller's g is never written, a later call never
// reuses it as scratch, and a call that does broadcast still sums.
BOOST_AUTO_TEST_CASE(gradient_plumbing_of_equal_shapes_aliases_its_operand) {
  auto a = th::dmatrix("a"), g = th::dmatrix("g"), m = th::dmatrix("m");
  // the gradient itself (a result that is g), and the gradient read by a product
  auto f = th::function({a, g}, th::grad(th::sum(a * g), a));
  auto h = th::function({a, g, m}, th::dot(th::grad(th::sum(a * g), a), m));
  for (const auto* fn : {&f, &h}) BOOST_TEST(has(fused_steps_of(*fn), "fused[broadcast_like sum_to_like]"), fused_steps_of(*fn));
  const Tensor av = th::random::uniform({3, 4}, -1, 1, 1), gv = th::random::uniform({3, 4}, -1, 1, 2),
               mv = th::random::uniform({4, 2}, -1, 1, 3);
  const std::vector<double> g_before = vals(gv);
  auto expect = [&](const Tensor& at, const Tensor& gg) {
    Tensor v = th::variable(at);
    const Tensor want = th::grad(th::sum(v * gg), v);
    BOOST_TEST(vals(f(at, gg)[0]) == vals(want), boost::test_tools::per_element());
    BOOST_TEST(vals(h(at, gg, mv)[0]) == vals(th::dot(want, mv)), boost::test_tools::tolerance(1e-15));
  };
  const Tensor r1 = f(av, gv)[0];
  BOOST_TEST(vals(r1) == g_before, boost::test_tools::per_element());
  BOOST_TEST(th::detail::node_of(r1, "r1").value->buf == th::detail::node_of(gv, "g").value->buf);  // g itself, not a copy
  expect(av, gv);
  // more calls, other arguments: g and the first result keep their values
  for (std::uint64_t seed = 3; seed < 6; ++seed) expect(th::random::uniform({3, 4}, -1, 1, seed), th::random::uniform({3, 4}, -1, 1, seed + 10));
  BOOST_TEST(vals(gv) == g_before, boost::test_tools::per_element());
  BOOST_TEST(vals(r1) == g_before, boost::test_tools::per_element());
  // g of one row broadcasts over a's rows: the gradient is that row repeated (the pass runs)
  const Tensor row = th::random::uniform({1, 4}, -1, 1, 7);
  expect(av, row);
  expect(av, th::random::uniform({3, 4}, -1, 1, 8));
  BOOST_TEST(vals(gv) == g_before, boost::test_tools::per_element());
}
