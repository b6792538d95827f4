// The CUDA backend. Two halves:
//  - what any machine can check: fused-kernel source generation and its NVRTC compilation
//    to PTX (no GPU needed), and the behaviour without a GPU (clear th::DeviceError, CPU
//    work unaffected);
//  - what needs a GPU (skipped by a Boost.Test precondition when th::cuda_available() is
//    false): ops and gradients on the GPU against the CPU, frozen GPU functions against
//    eager CPU, allocator reuse, device errors. Every op of the checker in test_grad_ops
//    also runs on the GPU there (check::op's GPU leg).
#define BOOST_TEST_MODULE cuda
#include <cmath>
#include <filesystem>
#include <cstdlib>

#include "check.hpp"
#include "core/backend.hpp"
#include "core/elementwise_list.hpp"

using check::has;
using check::message_of;
using check::vals;
using th::DType;
using th::Tensor;
namespace bt = boost::unit_test;
namespace td = th::detail;

namespace {

struct gpu_present {
  boost::test_tools::assertion_result operator()(bt::test_unit_id) const {
    boost::test_tools::assertion_result r(th::cuda_available());
    r.message() << "no CUDA device on this machine";
    return r;
  }
};

struct gpu_absent {
  boost::test_tools::assertion_result operator()(bt::test_unit_id) const {
    boost::test_tools::assertion_result r(!th::cuda_available());
    r.message() << "a CUDA device is present (the GPU cases run instead)";
    return r;
  }
};

struct cuda_built {
  boost::test_tools::assertion_result operator()(bt::test_unit_id) const {
#ifdef THETA_TEST_HAS_CUDA
    return true;
#else
    boost::test_tools::assertion_result r(false);
    r.message() << "theta was built without its CUDA backend";
    return r;
#endif
  }
};

// Every float unary op and every arithmetic binary op in one chain: t0 = x0 * x1, then
// each op applied to the previous result (binary ones with x2).
std::vector<td::FusedInstr> every_op_chain() {
  std::vector<td::FusedInstr> code{{false, int(td::BinaryKind::mul), -1, -2}};
  auto last = [&] { return int(code.size()) - 1; };
#define THETA_U(name, ...) code.push_back({true, int(td::UnaryKind::name), last(), 0});
  THETA_UNARY_OPS(THETA_U)
#undef THETA_U
  for (auto k : {td::BinaryKind::add, td::BinaryKind::sub, td::BinaryKind::mul, td::BinaryKind::div,
                 td::BinaryKind::pow, td::BinaryKind::maximum, td::BinaryKind::minimum})
    code.push_back({false, int(k), last(), -3});
  return code;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  auto x = vals(a), y = vals(b);
  BOOST_TEST_REQUIRE(x.size() == y.size());
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    m = std::max(m, std::fabs(x[i] - y[i]) / std::max(1.0, std::fabs(y[i])));
  }
  return m;
}

}  // namespace

// ---- any machine ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fused_kernel_source_compiles_to_ptx, *bt::precondition(cuda_built())) {
  const auto code = every_op_chain();
  for (DType d : {DType::float32, DType::float64}) {
    const std::string src = td::cuda_fused_source(code, d, {false, true, false});
    BOOST_TEST(has(src, "extern \"C\" __global__ void theta_fused("));
    BOOST_TEST(has(src, "const T x1 = p1[0];"));  // the broadcast input reads one element
    BOOST_TEST(has(src, "const T x0 = p0[i];"));
    BOOST_TEST(has(src, d == DType::float32 ? "using T = float;" : "using T = double;"));
    BOOST_TEST(has(src, "u_tanh(t"));
    BOOST_TEST(has(src, "b_pow(t"));
    for (int arch : {75, 90}) {
      const std::string ptx = td::cuda_compile_ptx(src, arch);
      BOOST_TEST(has(ptx, ".entry theta_fused"), "arch " << arch);
      BOOST_TEST(has(ptx, ".target sm_" + std::to_string(arch)), "arch " << arch);
    }
  }
  // A merged chain writes several instructions' results.
  const std::string two = td::cuda_fused_source(code, DType::float32, {false, false, false}, {3, int(code.size()) - 1});
  BOOST_TEST(has(two, "out0[i] = t3;"));
  BOOST_TEST(has(two, "out1[i] = t" + std::to_string(code.size() - 1) + ";"));
  BOOST_TEST(has(td::cuda_compile_ptx(two, 90), ".entry theta_fused"));
  // A bias row repeated over the output reads element i % its size.
  const std::string row = td::cuda_fused_source(code, DType::float64, {false, false, false}, {}, {0, 512, 0});
  BOOST_TEST(has(row, "const T x1 = p1[i % 512LL];"));
  BOOST_TEST(has(td::cuda_compile_ptx(row, 75), ".entry theta_fused"));
  // The integer formulas are not fused: asking for them is an error, not bad code.
  BOOST_TEST(has(message_of<th::TypeError>([&] { td::cuda_fused_source(code, DType::int64, {false, false, false}); }),
                 "float32 or float64"));
}

BOOST_AUTO_TEST_CASE(nvrtc_errors_carry_the_log, *bt::precondition(cuda_built())) {
  const std::string m = message_of<th::DeviceError>([] { td::cuda_compile_ptx("this is not CUDA", 75); });
  BOOST_TEST(has(m, "NVRTC"));
  BOOST_TEST(has(m, "does not compile"));
  BOOST_TEST(has(m, "error"));
}

BOOST_AUTO_TEST_CASE(without_a_gpu, *bt::precondition(gpu_absent())) {
  Tensor a = th::tensor({1.0, 2.0});
  a.set_name("a");
  const std::string m = message_of<th::DeviceError>([&] { a.to(th::cuda()); });
  BOOST_TEST(has(m, "to: cannot move a tensor 'a' from cpu to cuda:0"));
  BOOST_TEST(has(m, "no CUDA device is available"));
  BOOST_TEST(has(message_of<th::DeviceError>([] { td::backend_for(th::cuda()); }), "cuda:0"));
  BOOST_TEST(td::cuda_device_count() == 0);
  BOOST_TEST(td::cuda_memory_stats().device_mallocs == 0);
  // Moving to where it already is costs nothing and needs no GPU.
  BOOST_TEST(a.to(th::cpu()).node() == a.node());
  // The CPU path is untouched: a function runs, its fused chain runs on the CPU.
  Tensor x = th::placeholder(DType::float64, 1, "x");
  th::Function f = th::function({x}, th::tanh(x * 2.0 + 1.0));
  BOOST_TEST(std::fabs(vals(f(th::tensor({0.0}))).at(0) - std::tanh(1.0)) < 1e-12);
}

// ---- GPU present --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(transfers_round_trip, *bt::precondition(gpu_present())) {
  for (DType d : {DType::boolean, DType::int32, DType::int64, DType::float32, DType::float64}) {
    Tensor a = th::random::uniform({3, 5}, -4, 4, 11).astype(d);
    Tensor g = a.to(th::cuda());
    BOOST_TEST((g.device() == th::cuda()));
    BOOST_TEST(g.dtype() == d);
    BOOST_TEST(vals(g.to(th::cpu())) == vals(a), boost::test_tools::per_element());
    BOOST_TEST(vals(g) == vals(a), boost::test_tools::per_element());  // reading a GPU tensor copies it back
    // a strided view goes over dense
    BOOST_TEST(vals(th::transpose(a).to(th::cuda())) == vals(th::transpose(a)), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(ops_match_the_cpu, *bt::precondition(gpu_present())) {
  Tensor a = th::random::uniform({4, 6}, 0.1, 3, 1), b = th::random::uniform({6}, -2, 2, 2);
  Tensor ga = a.to(th::cuda()), gb = b.to(th::cuda());
  auto same = [](const char* what, const Tensor& gpu, const Tensor& cpu) {
    BOOST_TEST((gpu.device() == th::cuda()), what);
    BOOST_TEST(gpu.shape() == cpu.shape(), what);
    BOOST_TEST(max_rel_diff(gpu, cpu) < 1e-12, what);
  };
  same("add broadcast", ga + gb, a + b);
  same("pow", th::pow(ga, gb), th::pow(a, b));
  same("tanh", th::tanh(ga * 0.5), th::tanh(a * 0.5));
  same("sum axis 0", th::sum(ga, {0}), th::sum(a, {0}));
  same("sum all", th::sum(ga), th::sum(a));
  same("max axis 1", th::max(ga, {1}), th::max(a, {1}));
  same("mean keepdims", th::mean(ga, {1}, true), th::mean(a, {1}, true));
  same("argmax", th::argmax(ga, 1), th::argmax(a, 1));
  same("dot", th::dot(ga, th::transpose(ga)), th::dot(a, th::transpose(a)));
  same("matvec", th::dot(ga, gb), th::dot(a, b));
  same("where", th::where(ga > 1.0, ga, gb), th::where(a > 1.0, a, b));
  const Tensor idx = th::tensor({3, 0, 3}, DType::int64);
  same("take", th::take(ga, idx.to(th::cuda()), 1), th::take(a, idx, 1));
  same("softmax", th::softmax(ga), th::softmax(a));
  // a large dense reduction (CUB) and NaN propagation in max
  Tensor big = th::random::uniform({1000003}, -1, 1, 5);
  BOOST_TEST(std::fabs(th::sum(big.to(th::cuda())).item<double>() - th::sum(big).item<double>()) < 1e-8);
  Tensor nan = th::tensor({1.0, std::nan(""), 3.0});
  BOOST_TEST(std::isnan(th::max(nan.to(th::cuda())).item<double>()));
}

BOOST_AUTO_TEST_CASE(linalg_by_cusolver_matches_lapack, *bt::precondition(gpu_present())) {
  // well-conditioned batches, float64 and float32: cholesky, solve (one and several
  // right-hand sides), inv, slogdet (a negative determinant too), and the errors
  for (DType d : {DType::float64, DType::float32}) {
    const double tol = d == DType::float64 ? 1e-10 : 1e-4;
    const Tensor m = th::random::uniform({3, 5, 5}, -1, 1, 21).astype(d);
    const Tensor spd = th::matmul(m, th::transpose(m, {0, 2, 1})) + 5.0 * th::eye(5).astype(d);
    const Tensor a = m + 4.0 * th::eye(5).astype(d), b = th::random::uniform({3, 5, 2}, -1, 1, 22).astype(d);
    const Tensor ga = a.to(th::cuda()), gspd = spd.to(th::cuda());
    auto same = [&](const char* what, const Tensor& gpu, const Tensor& cpu) {
      BOOST_TEST((gpu.device() == th::cuda()), what);
      BOOST_TEST(gpu.shape() == cpu.shape(), what);
      BOOST_TEST(max_rel_diff(gpu, cpu) < tol, what);
    };
    same("cholesky", th::linalg::cholesky(gspd), th::linalg::cholesky(spd));
    same("solve k=2", th::linalg::solve(ga, b.to(th::cuda())), th::linalg::solve(a, b));
    const Tensor a0 = th::view(a, 0), v = th::random::uniform({5}, -1, 1, 23).astype(d);
    same("solve vector", th::linalg::solve(a0.to(th::cuda()), v.to(th::cuda())), th::linalg::solve(a0, v));
    same("inv", th::linalg::inv(ga), th::linalg::inv(a));
    const Tensor flip = th::matmul(th::tensor({{0.0, 1.0}, {1.0, 0.0}}).astype(d), th::tensor({{2.0, 1.0}, {1.0, 3.0}}).astype(d));
    for (const Tensor& t : {a, flip}) {
      const auto [s, l] = th::linalg::slogdet(t.to(th::cuda()));
      const auto [sc, lc] = th::linalg::slogdet(t);
      same("slogdet sign", s, sc);
      same("slogdet log|det|", l, lc);
    }
    BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::linalg::inv(th::zeros({2, 2}, d).to(th::cuda())); }),
                          "inv: singular matrix"));
    BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::linalg::cholesky((-1.0 * th::eye(3)).astype(d).to(th::cuda())); }),
                          "not positive definite"));
  }
}

BOOST_AUTO_TEST_CASE(a_function_saved_with_gpu_weights_loads_on_the_cpu, *bt::precondition(gpu_present())) {
  // the file holds host copies of the values; a loaded function's shared variables are made
  // where THETA_FLAGS's device says (the CPU by default), so it runs on machines without a GPU
  th::Shared w = th::shared(th::random::uniform({3, 2}, -1, 1, 31).to(th::cuda()), "w");
  const Tensor x = th::dmatrix("x");
  const th::Function f = th::function({x}, th::matmul(x.to(th::cuda()), w).to(th::cpu()));
  const std::string path = (std::filesystem::temp_directory_path() / ("theta_gpu_" + std::to_string(::getpid()) + ".theta")).string();
  th::save(path, f);
  th::Function g = th::load_function(path);
  std::filesystem::remove(path);
  for (const th::Shared& s : g.shared_variables()) BOOST_TEST((s.get_value().device() == th::cpu()));
  const Tensor X = th::random::uniform({4, 3}, -1, 1, 32);
  BOOST_TEST(max_rel_diff(f(X), th::matmul(X, w.get_value().to(th::cpu()))) < 1e-12);
}

BOOST_AUTO_TEST_CASE(gradients_on_the_gpu, *bt::precondition(gpu_present())) {
  Tensor x = th::variable(th::random::uniform({5, 3}, -1, 1, 3).to(th::cuda()));
  Tensor w = th::variable(th::random::uniform({3}, -1, 1, 4).to(th::cuda()));
  Tensor cost = th::sum(th::sigmoid(th::dot(x, w)) * 2.0);
  Tensor gx = th::grad(cost, x), gw = th::grad(cost, w);
  BOOST_TEST((gw.device() == th::cuda()));
  Tensor xc = th::variable(x.to(th::cpu())), wc = th::variable(w.to(th::cpu()));
  Tensor cc = th::sum(th::sigmoid(th::dot(xc, wc)) * 2.0);
  BOOST_TEST(max_rel_diff(gx, th::grad(cc, xc)) < 1e-12);
  BOOST_TEST(max_rel_diff(gw, th::grad(cc, wc)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(frozen_gpu_function_matches_eager_cpu, *bt::precondition(gpu_present())) {
  // The seed's regression step, with data and weights on the GPU; updates stay there.
  Tensor X = th::random::normal({125, 4}, 1), y = th::random::normal({125}, 2);
  th::Shared w = th::shared(th::zeros({4}).to(th::cuda()), "w");
  Tensor xs = th::placeholder(DType::float64, 2, "x"), ys = th::placeholder(DType::float64, 1, "y");
  Tensor cost = th::mean(th::pow(th::dot(xs, w) - ys, 2.0));
  th::Function step = th::function({xs, ys}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
  Tensor wc = th::zeros({4});
  Tensor gX = X.to(th::cuda()), gy = y.to(th::cuda());
  for (int i = 0; i < 20; ++i) {
    Tensor c = step(gX, gy);
    BOOST_TEST((c.device() == th::cuda()));
    Tensor wv = th::variable(wc);
    Tensor cc = th::mean(th::pow(th::dot(X, wv) - y, 2.0));
    BOOST_TEST(std::fabs(c.item<double>() - cc.item<double>()) < 1e-10);
    wc = wc - 0.1 * th::grad(cc, wv);
  }
  BOOST_TEST((w.get_value().device() == th::cuda()));
  BOOST_TEST(max_rel_diff(w.get_value(), wc) < 1e-10);
}

BOOST_AUTO_TEST_CASE(fused_chain_runs_as_one_gpu_kernel, *bt::precondition(gpu_present())) {
  for (DType d : {DType::float32, DType::float64}) {
    Tensor a = th::placeholder(d, 1, "a"), b = th::placeholder(d, 1, "b"), c = th::placeholder(d, 1, "c");
    Tensor y = th::tanh(a * b + c) * 0.5 + th::sigmoid(a);
    th::Function f = th::function({a, b, c}, y);
    BOOST_TEST(has(th::debugprint(f), "fused["));
    Tensor av = th::random::uniform({100001}, -3, 3, 1, d), bv = th::random::uniform({100001}, -3, 3, 2, d),
           cv = th::random::uniform({100001}, -3, 3, 3, d);
    Tensor got = f(av.to(th::cuda()), bv.to(th::cuda()), cv.to(th::cuda()));
    BOOST_TEST((got.device() == th::cuda()));
    BOOST_TEST(max_rel_diff(got, f(av, bv, cv)) < (d == DType::float32 ? 1e-6 : 1e-14));
  }
}

BOOST_AUTO_TEST_CASE(allocator_reuses_blocks, *bt::precondition(gpu_present())) {
  Tensor a = th::random::uniform({256, 256}, -1, 1, 1).to(th::cuda());
  for (int i = 0; i < 3; ++i) (void)th::tanh(a * 2.0 + 1.0);  // warm the cache
  const auto before = td::cuda_memory_stats();
  for (int i = 0; i < 50; ++i) (void)th::tanh(a * 2.0 + 1.0);
  const auto after = td::cuda_memory_stats();
  BOOST_TEST(after.device_mallocs == before.device_mallocs);  // steady state: no cudaMalloc
  BOOST_TEST(after.cache_hits >= before.cache_hits + 150);
}

BOOST_AUTO_TEST_CASE(device_errors, *bt::precondition(gpu_present())) {
  Tensor a = th::ones({3}), g = th::ones({3}).to(th::cuda());
  a.set_name("a");
  g.set_name("g");
  const std::string m = message_of<th::DeviceError>([&] { (void)(a + g); });
  BOOST_TEST(has(m, "add: operands live on different devices, cpu and cuda:0"));
  BOOST_TEST(has(m, "[a, g]"));
  // a C++ number (a 0-d CPU constant) goes with the GPU operand
  BOOST_TEST(((g * 2.0).device() == th::cuda()));
  BOOST_TEST(has(message_of<th::DeviceError>([&] { a.to(th::cuda(999)); }), "cuda:999"));
}
