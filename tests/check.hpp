// The one checker every differentiable op's test goes through (Theano's verify_grad):
//   check::op("name", fn, {shapes...}, expected_shape, opts)
// builds seeded float64 inputs, checks the output shape, compares the VJP of a random
// projection sum(fn(x) * r) against central differences, and optionally differentiates
// the gradient again (grad of grad) the same way. Then it builds the same expression and
// its projected gradients on placeholders, freezes them into one th::function and checks
// it against eager on the test shapes and on grown shapes (every dimension > 1 plus one),
// and saves it (th::save), loads it back and checks that it computes the same bits.
// Under THETA_FLAGS=native=sync (ctest's *_native runs) the frozen function's fused chains
// run compiled by the native tier, and must compute the interpreter's bits.
// Where a GPU is present, the op and its gradients also run there against the CPU.
#pragma once
#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <theta/theta.hpp>

namespace check {

using Inputs = std::vector<th::Tensor>;
using Fn = std::function<th::Tensor(const Inputs&)>;

struct Options {
  double lo = -2, hi = 2;       // input range (e.g. positive for log/sqrt)
  double eps = 1e-6;            // finite-difference step
  double tol = 1e-5;            // relative-or-absolute tolerance
  bool grad2 = false;           // also check the gradient of the gradient
  std::vector<bool> diff;       // which inputs to differentiate (default: all)
  std::uint64_t seed = 7;
  bool frozen = true;           // also check the frozen function (off only where symbolic is impossible)
  /// The grown shape of input i for the frozen function's second run (default: every
  /// dimension > 1 plus one); an op whose operands must agree (conv's channels) grows its own.
  std::function<th::Shape(std::size_t i, const th::Shape&)> grow;
};

/// `o` with the gradient of the gradient checked too.
inline Options g2(Options o = {}) {
  o.grad2 = true;
  return o;
}

/// The message of the E that f() throws, or a text saying what happened instead.
template <class E, class F>
std::string message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}
/// The number of threads this process runs (/proc/self/task).
inline std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}
/// A tensor's values as doubles, row-major.
inline std::vector<double> vals(const th::Tensor& t) { return t.to_vector<double>(); }
inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
/// How often `part` occurs in `s` (e.g. a step's name in th::debugprint's text).
inline std::size_t count(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = s.find(part); at != std::string::npos; at = s.find(part, at + 1)) ++n;
  return n;
}

inline th::Tensor input(const th::Shape& s, std::uint64_t seed, double lo, double hi) {
  return th::random::uniform(s, lo, hi, seed, th::DType::float64);
}

inline double l_of(const Fn& fn, const Inputs& xs, const th::Tensor& r) {
  return th::sum(fn(xs) * r).item<double>();
}

// Compares grad(L, xs[i]) with central differences of L, for each differentiated input.
inline void compare_with_fd(const std::string& what, const Fn& L, const Inputs& xs, const std::vector<bool>& diff,
                            double eps, double tol) {
  Inputs vars;
  for (auto& x : xs) vars.push_back(th::variable(x));
  th::Tensor cost = L(vars);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!diff[i]) continue;
    th::Tensor g = th::grad(cost, vars[i]);
    BOOST_TEST_REQUIRE(g.shape() == xs[i].shape(), what << ": gradient of input " << i << " has the wrong shape");
    std::vector<double> gv = g.to_vector<double>();
    std::vector<double> xv = xs[i].to_vector<double>();
    for (std::size_t j = 0; j < xv.size(); ++j) {
      auto at = [&](double delta) {
        std::vector<double> p = xv;
        p[j] += delta;
        Inputs q = xs;
        q[i] = th::tensor(p, xs[i].shape());
        return L(q).item<double>();
      };
      double fd = (at(eps) - at(-eps)) / (2 * eps);
      double err = std::fabs(fd - gv[j]) / std::max(1.0, std::fabs(fd));
      BOOST_TEST(err < tol, what << ": d/dx" << i << "[" << j << "] analytic " << gv[j] << " vs numeric " << fd);
    }
  }
}

/// got's values (row-major) against `want`, each within tol * max(1, |want|); NaN matches NaN.
inline void expect(const std::string& what, const th::Tensor& got, const std::vector<double>& want, double tol = 1e-12) {
  const auto v = got.to_vector<double>();
  BOOST_TEST_REQUIRE(v.size() == want.size(), what << ": " << v.size() << " values, want " << want.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    BOOST_TEST((std::isnan(want[i]) ? std::isnan(v[i]) : std::fabs(v[i] - want[i]) <= tol * std::max(1.0, std::fabs(want[i]))),
               what << "[" << i << "]: " << v[i] << " vs " << want[i]);
}

inline void expect_close(const std::string& what, const th::Tensor& got, const th::Tensor& want) {
  BOOST_TEST_REQUIRE(got.shape() == want.shape(), what << ": shape " << th::shape_str(got.shape()) << " vs eager "
                                                      << th::shape_str(want.shape()));
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    BOOST_TEST(std::fabs(a[i] - b[i]) <= 1e-9 * std::max(1.0, std::fabs(b[i])),
               what << "[" << i << "]: frozen " << a[i] << " vs eager " << b[i]);
}

// The frozen function of `fn` and its projected gradients must match eager at `xs`.
inline void frozen_matches_eager(const std::string& name, const Fn& fn, const th::Function& f, const Inputs& xs,
                                 const std::vector<bool>& diff, std::uint64_t seed) {
  th::Tensor y = fn(xs);
  th::Tensor r = input(y.shape(), seed, -1, 1);
  Inputs vars;
  for (auto& x : xs) vars.push_back(th::variable(x));
  th::Tensor cost = th::sum(fn(vars) * r);
  Inputs args = xs;
  args.push_back(r);
  th::Result got = f.call(args);
  expect_close(name + " frozen value", got[0], y);
  std::size_t k = 1;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (diff[i]) expect_close(name + " frozen gradient " + std::to_string(i), got[k++], th::grad(cost, vars[i]));
}

// Saved by th::save and read back by th::load_function, f computes bit for bit what it did.
inline void round_trip(const std::string& name, const th::Function& f, const Inputs& args) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("theta_check_" + std::to_string(::getpid()) + ".theta")).string();
  th::save(path, f);
  const th::Function g = th::load_function(path);
  std::remove(path.c_str());
  const th::Result a = f.call(args), b = g.call(args);
  BOOST_TEST_REQUIRE(a.size() == b.size(), name << ": the loaded function has another number of outputs");
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(a[i].shape() == b[i].shape(), name << " loaded output " << i);
    BOOST_TEST(vals(a[i]) == vals(b[i]), name << " loaded output " << i << " differs" << boost::test_tools::per_element());
  }
}

// Every result's bytes, NaNs made one NaN first (a NaN's sign after an addition depends on
// which operand the compiler put first, which the interpreter itself does not fix).
inline std::vector<std::string> bits(const th::Result& r) {
  std::vector<std::string> out;
  auto raw = [](auto v) {
    for (auto& x : v)
      if (std::isnan(x)) x = std::numeric_limits<std::decay_t<decltype(x)>>::quiet_NaN();
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof v[0]);
  };
  for (const th::Tensor& t : r) {
    const std::string head = th::dtype_name(t.dtype()) + th::shape_str(t.shape());
    if (t.dtype() == th::DType::float32) out.push_back(head + raw(t.to_vector<float>()));
    else if (t.dtype() == th::DType::float64) out.push_back(head + raw(t.to_vector<double>()));
    else out.push_back(head + raw(t.to_vector<std::int64_t>()));
  }
  return out;
}

/// The function of `outs` over `ins` frozen twice, interpreted (native=off) and with the
/// native tier compiling its fused chains (native=sync), called on `args`: the same bits, and
/// no fused step of the native one left interpreted. Leaves the tier in sync mode; returns
/// debugprint of the native one.
inline std::string native_matches_interpreter(const std::string& what, const Inputs& ins, const Inputs& outs,
                                       const Inputs& args) {
  th::config().native = th::NativeMode::off;
  const th::Function interp = th::function(ins, outs);
  const auto want = bits(interp.call(args));
  th::config().native = th::NativeMode::sync;
  const th::Function native = th::function(ins, outs);
  const auto got = bits(native.call(args));
  const std::string dp = th::debugprint(native);
  BOOST_TEST(dp.find("interpreted:") == std::string::npos, what << ": a fused step was not compiled:\n" << dp);
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST((got[i] == want[i]), what << ": native output " << i << " differs from the interpreter's");
  return dp;
}

inline void frozen(const std::string& name, const Fn& fn, const Inputs& xs, const std::vector<bool>& diff,
                   std::uint64_t seed, std::size_t out_ndim, double lo, double hi,
                   const std::function<th::Shape(std::size_t, const th::Shape&)>& grow = {}) {
  Inputs ph;
  for (std::size_t i = 0; i < xs.size(); ++i)
    ph.push_back(th::placeholder(th::DType::float64, xs[i].ndim(), "x" + std::to_string(i)));
  th::Tensor rph = th::placeholder(th::DType::float64, std::int64_t(out_ndim), "r");
  th::Tensor y = fn(ph);
  th::Tensor cost = th::sum(y * rph);
  std::vector<th::Tensor> outs{y};
  for (std::size_t i = 0; i < ph.size(); ++i)
    if (diff[i]) outs.push_back(th::grad(cost, ph[i]));
  Inputs ins = ph;
  ins.push_back(rph);
  th::Function f = th::function(ins, outs);
  frozen_matches_eager(name, fn, f, xs, diff, seed);
  {
    Inputs args = xs;
    args.push_back(input(fn(xs).shape(), seed + 7, -1, 1));
    round_trip(name + " (saved and loaded)", f, args);
    if (th::config().native == th::NativeMode::sync) native_matches_interpreter(name + " (native)", ins, outs, args);
  }
  Inputs grown;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    th::Shape s = xs[i].shape();
    if (grow) s = grow(i, s);
    else
      for (auto& d : s) d = d > 1 ? d + 1 : d;
    grown.push_back(input(s, seed + 1 + i, lo, hi));
  }
  bool valid = true;
  try {
    fn(grown);
  } catch (const th::Error&) {
    valid = false;  // the op's fixed attributes (a target shape, say) do not fit grown inputs
  }
  if (valid) frozen_matches_eager(name + " (grown shapes)", fn, f, grown, diff, seed + 50);
}

// With a GPU present: the op and its projected gradients computed on the GPU match the CPU.
inline void on_gpu(const std::string& name, const Fn& fn, const Inputs& xs, const std::vector<bool>& diff,
                   const th::Tensor& r) {
  Inputs cpu_vars, gpu_vars;
  for (auto& x : xs) {
    cpu_vars.push_back(th::variable(x));
    gpu_vars.push_back(th::variable(x.to(th::cuda())));
  }
  th::Tensor yc = fn(cpu_vars), yg = fn(gpu_vars);
  BOOST_TEST((yg.device() == th::cuda()), name << ": the GPU result lives on " << yg.device());
  auto close = [&](const std::string& what, const th::Tensor& got, const th::Tensor& want) {
    BOOST_TEST_REQUIRE(got.shape() == want.shape(), what << ": GPU shape " << th::shape_str(got.shape()));
    auto a = got.to_vector<double>(), b = want.to_vector<double>();
    for (std::size_t i = 0; i < a.size(); ++i)
      BOOST_TEST(std::fabs(a[i] - b[i]) <= 1e-9 * std::max(1.0, std::fabs(b[i])),
                 what << "[" << i << "]: GPU " << a[i] << " vs CPU " << b[i]);
  };
  close(name + " on the GPU", yg, yc);
  th::Tensor cc = th::sum(yc * r), cg = th::sum(yg * r.to(th::cuda()));
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (diff[i]) close(name + " GPU gradient " + std::to_string(i), th::grad(cg, gpu_vars[i]), th::grad(cc, cpu_vars[i]));
}

inline void op(const std::string& name, const Fn& fn, const std::vector<th::Shape>& shapes, const th::Shape& expect,
               Options o = {}) {
  BOOST_TEST_CONTEXT("op " << name) {
    Inputs xs;
    for (std::size_t i = 0; i < shapes.size(); ++i) xs.push_back(input(shapes[i], o.seed + i, o.lo, o.hi));
    if (o.diff.empty()) o.diff.assign(xs.size(), true);
    th::Tensor y = fn(xs);
    BOOST_TEST_REQUIRE(y.shape() == expect, name << ": output shape " << th::shape_str(y.shape()) << " expected "
                                                 << th::shape_str(expect));
    BOOST_TEST(y.dtype() == th::DType::float64);
    th::Tensor r = input(y.shape(), o.seed + 100, -1, 1);
    Fn L = [&](const Inputs& v) { return th::sum(fn(v) * r); };
    compare_with_fd(name, L, xs, o.diff, o.eps, o.tol);
    if (o.frozen) frozen(name, fn, xs, o.diff, o.seed + 300, y.shape().size(), o.lo, o.hi, o.grow);
    if (th::cuda_available()) on_gpu(name, fn, xs, o.diff, r);
    if (o.grad2) {
      // h(x) = sum(grad(L, x) * r2): its gradient is a Hessian-vector product.
      std::vector<th::Tensor> r2;
      for (std::size_t i = 0; i < xs.size(); ++i) r2.push_back(input(xs[i].shape(), o.seed + 200 + i, -1, 1));
      Fn H = [&](const Inputs& v) {
        Inputs vars;
        for (auto& x : v) vars.push_back(x.is_recorded() ? x : th::variable(x));
        th::Tensor c = L(vars);
        th::Tensor h = th::tensor(0.0);
        for (std::size_t i = 0; i < v.size(); ++i)
          if (o.diff[i]) h = h + th::sum(th::grad(c, vars[i]) * r2[i]);
        return h;
      };
      compare_with_fd(name + " (grad of grad)", H, xs, o.diff, 1e-4, 1e-4);
    }
  }
}

}  // namespace check
