// The native tier (lib/cpu/native.cpp, docs/native.md): fused chains compiled by the C++
// compiler compute the interpreter's bits for every elementwise formula, in both float
// dtypes, with broadcast scalars, rows, columns, folded sums and streamed outputs; the disk
// cache is used by a later lookup (a new process's), a corrupted entry is rebuilt, and
// without a compiler, with a failing one or with an unwritable cache the interpreter runs on
// and debugprint says why. Every case works in its own cache directory.
#define BOOST_TEST_MODULE native

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>
#include "check.hpp"
#include "cpu/gemv_reference.hpp"
#include "cpu/gemv_small.hpp"
#include "cpu/native.hpp"

namespace fs = std::filesystem;
using th::Tensor;

namespace {

// A fresh cache directory and the tier's mode for one test case; restored after it.
struct Tier {
  fs::path dir;
  th::NativeMode saved = th::config().native;
  explicit Tier(th::NativeMode mode) {
    static int n = 0;
    dir = fs::temp_directory_path() / ("theta_native_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(dir);
    ::setenv("THETA_CACHE_DIR", dir.c_str(), 1);
    th::detail::cpu::native_forget();
    th::config().native = mode;
  }
  ~Tier() {
    th::detail::cpu::native_forget();
    th::config().native = saved;
    ::unsetenv("THETA_CACHE_DIR");
    ::unsetenv("THETA_CXX");
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Inputs of `n` elements with the awkward values first (NaN, infinities, signed zeros, the
// clamps of the float32 exp and tanh, denormals), then uniform in [lo, hi].
Tensor values(std::int64_t n, th::DType dt, std::uint64_t seed, double lo, double hi) {
  std::vector<double> v = th::random::uniform({n}, lo, hi, seed, th::DType::float64).to_vector<double>();
  const double special[] = {std::numeric_limits<double>::quiet_NaN(), INFINITY, -INFINITY, 0.0, -0.0, 1e-40, -1e-40,
                            89.5, -104.5, 7.9, -7.9, 710, -745, 1.0, -1.0, 0.5, 2.0};
  for (std::size_t i = 0; i < sizeof special / sizeof *special && i < v.size(); ++i) v[i * 3 % v.size()] = special[i];
  return th::tensor(v, {n}).astype(dt);
}

// The interpreter's bits from the compiled chains, and some step compiled.
void same_bits(const std::string& what, const std::vector<Tensor>& ins, const std::vector<Tensor>& outs,
               const std::vector<Tensor>& args) {
  const std::string dp = check::native_matches_interpreter(what, ins, outs, args);
  BOOST_TEST(dp.find("[native") != std::string::npos, what << ": no step ran natively:\n" << dp);
}

// cpu/gemv_reference.hpp's products for the sizes the test below uses (they are template
// arguments there, fixed in generated code).
template <class T, std::int64_t R, std::int64_t C>
bool reference_at(bool trans, std::int64_t rows, std::int64_t cols, const T* a, const T* b, T* y) {
  if (rows != R || cols != C) return false;
  if (trans) th::detail::cpu::gemv_reference::cols<T, R, C, C + 1>(a, b, y);
  else th::detail::cpu::gemv_reference::rows<T, R, C, C + 1>(a, b, y);
  return true;
}
template <class T, std::int64_t R, std::int64_t... Cs>
bool reference_row(bool trans, std::int64_t rows, std::int64_t cols, const T* a, const T* b, T* y) {
  return (reference_at<T, R, Cs>(trans, rows, cols, a, b, y) || ...);
}
template <class T>
void reference(bool trans, std::int64_t rows, std::int64_t cols, std::int64_t lda, const T* a, const T* b, T* y) {
  BOOST_TEST_REQUIRE(lda == cols + 1);
  const bool done =
      reference_row<T, 1, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y) || reference_row<T, 3, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y) ||
      reference_row<T, 4, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y) || reference_row<T, 5, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y) ||
      reference_row<T, 8, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y) || reference_row<T, 13, 1, 2, 4, 7, 9>(trans, rows, cols, a, b, y);
  BOOST_TEST_REQUIRE(done);
}

using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);

}  // namespace

BOOST_AUTO_TEST_CASE(every_formula_matches_the_interpreter_bit_for_bit) {
  Tier tier(th::NativeMode::sync);
  const std::pair<const char*, Unary> unary[] = {
      {"neg", th::neg},   {"abs", th::abs},   {"sign", th::sign},       {"exp", th::exp},   {"log", th::log},
      {"log1p", th::log1p}, {"sqrt", th::sqrt}, {"sin", th::sin},       {"cos", th::cos},   {"tanh", th::tanh},
      {"sigmoid", th::sigmoid}, {"softplus", th::softplus}, {"relu", th::relu}};
  const std::pair<const char*, Binary> binary[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
      {"pow", [](const Tensor& a, const Tensor& b) { return th::pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return th::maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return th::minimum(a, b); }},
      {"where(lt)", [](const Tensor& a, const Tensor& b) { return th::where(a < b, a, b * 2.0); }},
      {"where(ge)", [](const Tensor& a, const Tensor& b) { return th::where(a >= b, a * b, b); }}};
  const std::int64_t n = 5003;  // more than one block, and a remainder
  for (th::DType dt : {th::DType::float32, th::DType::float64}) {
    const Tensor x = values(n, dt, 1, -3, 3), y = values(n, dt, 2, -2, 4);
    const Tensor px = th::placeholder(dt, 1, "x"), py = th::placeholder(dt, 1, "y");
    for (const auto& [name, f] : unary) {
      // the op inside a chain, with a broadcast scalar, an output and a folded sum
      const Tensor z = f(px * 1.5 + py) - 0.25;
      same_bits(std::string(name) + " " + th::dtype_name(dt), {px, py}, {z, th::sum(z * py)}, {x, y});
    }
    for (const auto& [name, f] : binary) {
      const Tensor z = th::tanh(f(px, py)) + f(py, px * 0.5);
      same_bits(std::string(name) + " " + th::dtype_name(dt), {px, py}, {z, th::mean(z)}, {x, y});
    }
  }
}

BOOST_AUTO_TEST_CASE(rows_columns_gradients_and_streamed_outputs_match) {
  Tier tier(th::NativeMode::sync);
  for (th::DType dt : {th::DType::float32, th::DType::float64}) {
    const Tensor X = th::random::uniform({300, 70}, -2, 2, 3, dt), b = th::random::uniform({70}, -1, 1, 4, dt);
    const Tensor px = th::placeholder(dt, 2, "x"), pb = th::placeholder(dt, 1, "b");
    // a bias row, a row maximum's column (softmax), and the gradients of both through sums
    const Tensor h = th::tanh(px + pb);
    const Tensor e = th::exp(h - th::max(h, 1, true));
    const Tensor s = e / th::sum(e, 1, true);
    const Tensor cost = th::mean(th::sqr(s - 0.1)) + th::sum(th::relu(h));
    same_bits(std::string("softmax ") + th::dtype_name(dt), {px, pb},
              {s, cost, th::grad(cost, px), th::grad(cost, pb)}, {X, b});
  }
  // 3 * 2^20 float32: outputs large enough to be streamed past the cache
  const std::int64_t n = 3 << 20;
  const Tensor A = th::random::uniform({n}, -1, 1, 5, th::DType::float32),
               B = th::random::uniform({n}, -1, 1, 6, th::DType::float32);
  const Tensor pa = th::fvector("a"), pb = th::fvector("b");
  const Tensor y = th::tanh(pa * pb + 0.5f) * 0.5f + th::sigmoid(pa);
  same_bits("W3-like, streamed", {pa, pb}, {y, th::grad(th::sum(y), pa)}, {A, B});
}

BOOST_AUTO_TEST_CASE(the_source_is_the_formulas_text) {
  using th::detail::FusedInstr;
  const std::vector<FusedInstr> code{{false, int(th::detail::BinaryKind::mul), -1, -2},
                                     {true, int(th::detail::UnaryKind::tanh), 0, 0}};
  const std::string src = th::detail::cpu::native_source(code, th::DType::float32, {false, true}, {0, 1});
  BOOST_TEST(src.find("tanh_scalar(x)") != std::string::npos);  // u_tanh, from elementwise_list.hpp
  BOOST_TEST(src.find("fmadd(p, x2,") != std::string::npos);    // scalar_math.hpp, embedded
  BOOST_TEST(src.find("b_mul<T>(x0[i], s1)") != std::string::npos, src);
  BOOST_TEST(src.find("y1[i] = t1;") != std::string::npos);
  BOOST_TEST(src.find("y0[i]") == std::string::npos);  // instruction 0 is not stored
}

BOOST_AUTO_TEST_CASE(a_later_process_loads_the_cache_and_a_corrupted_entry_is_rebuilt) {
  Tier tier(th::NativeMode::sync);
  namespace cpu = th::detail::cpu;
  const Tensor pa = th::dvector("a");
  const Tensor y = th::softplus(pa * 3.0) - th::sin(pa);
  const Tensor A = values(2000, th::DType::float64, 8, -5, 5);
  auto run = [&] { return check::bits(th::function({pa}, y).call({A})); };

  const cpu::NativeStats s0 = cpu::native_stats();
  const auto first = run();
  const cpu::NativeStats s1 = cpu::native_stats();
  BOOST_TEST(s1.compiled == s0.compiled + 1);
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(tier.dir)) entries.push_back(e.path());
  BOOST_TEST(entries.size() == 2u, "the cache holds the object and its hash, and no temporary files");

  cpu::native_forget();  // as a new process: nothing known in memory
  const th::Function g = th::function({pa}, y);
  BOOST_TEST((check::bits(g.call({A})) == first));
  const cpu::NativeStats s2 = cpu::native_stats();
  BOOST_TEST(s2.compiled == s1.compiled, "compiled again instead of loading the cache");
  BOOST_TEST(s2.loaded == s1.loaded + 1);
  BOOST_TEST(th::debugprint(g).find("[native (cached)]") != std::string::npos, th::debugprint(g));

  // corrupt the object (its hash kept): rejected, compiled again, still the same bits
  for (const fs::path& p : entries)
    if (p.extension() == ".so") {
      std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(fs::file_size(p) / 2));
      f.write("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    }
  cpu::native_forget();
  BOOST_TEST((run() == first));
  const cpu::NativeStats s3 = cpu::native_stats();
  BOOST_TEST(s3.rejected == s2.rejected + 1);
  BOOST_TEST(s3.compiled == s2.compiled + 1);
}

BOOST_AUTO_TEST_CASE(without_a_working_compiler_or_cache_the_interpreter_runs_on) {
  namespace cpu = th::detail::cpu;
  const Tensor pa = th::dvector("a");
  const Tensor y = th::exp(pa * 0.5) + th::cos(pa);
  const Tensor A = values(1000, th::DType::float64, 9, -3, 3);
  th::config().native = th::NativeMode::off;
  const auto want = check::bits(th::function({pa}, y).call({A}));
  struct Case {
    const char* cxx;
    bool cache_ok;
    const char* says;
  };
  for (const Case& c : {Case{"/nonexistent/c++", true, "interpreted: no C++ compiler"},
                        Case{"false", true, "interpreted: the compiler failed"},
                        Case{nullptr, false, "is not writable"}}) {
    Tier tier(th::NativeMode::sync);
    if (c.cxx) ::setenv("THETA_CXX", c.cxx, 1);
    if (!c.cache_ok) {  // a directory below a plain file can never be made (even by root)
      fs::create_directories(tier.dir);
      std::ofstream(tier.dir / "file") << "x";
      ::setenv("THETA_CACHE_DIR", (tier.dir / "file" / "cache").c_str(), 1);
    }
    const cpu::NativeStats s0 = cpu::native_stats();
    const th::Function f = th::function({pa}, y);
    BOOST_TEST((check::bits(f.call({A})) == want), c.says);
    BOOST_TEST(cpu::native_stats().failed == s0.failed + 1);
    BOOST_TEST(th::debugprint(f).find(c.says) != std::string::npos, th::debugprint(f));
  }
}

BOOST_AUTO_TEST_CASE(async_compiles_hot_chains_in_the_background) {
  Tier tier(th::NativeMode::async);
  const std::int64_t n = 1 << 21;  // 2M elements x 4 instructions: hot on the first call
  const Tensor pa = th::fvector("a"), pb = th::fvector("b");
  const Tensor y = th::sigmoid(pa * pb) - pb;
  const Tensor A = th::random::uniform({n}, -4, 4, 10, th::DType::float32),
               B = th::random::uniform({n}, -4, 4, 11, th::DType::float32);
  const th::Function f = th::function({pa, pb}, y);
  const auto first = check::bits(f.call({A, B}));  // interpreted, and queued
  const std::string before = th::debugprint(f);
  BOOST_TEST((before.find("[interpreted: compiling]") != std::string::npos ||
              before.find("[native") != std::string::npos),
             before);
  th::detail::cpu::native_wait();
  BOOST_TEST((check::bits(f.call({A, B})) == first));
  BOOST_TEST(th::debugprint(f).find("[native]") != std::string::npos, th::debugprint(f));

  // a small chain called a few times stays interpreted (the compiler would not pay back)
  const Tensor small = th::random::uniform({100}, -1, 1, 12, th::DType::float32);
  const th::Function g = th::function({pa, pb}, th::exp(pa) * pb);
  for (int i = 0; i < 10; ++i) g.call({small, small});
  BOOST_TEST(th::debugprint(g).find("[native") == std::string::npos, th::debugprint(g));
  BOOST_TEST(th::debugprint(g).find("[interpreted") == std::string::npos, th::debugprint(g));
}

// native=async must never cost a short program more than the interpreter: its compiler runs
// at the SCHED_IDLE policy (only on CPU time nothing else wants), and a compilation that
// outlives its process (a short program ended first) is not lost: the next process adopts
// the finished object from the cache instead of compiling again.
BOOST_AUTO_TEST_CASE(async_compiles_at_idle_priority_and_outlives_its_process) {
  namespace cpu = th::detail::cpu;
  const std::int64_t n = 1 << 21;  // hot on the first call
  const Tensor pa = th::fvector("a"), pb = th::fvector("b");
  const Tensor y = th::sigmoid(pa * pb) - pb;
  const Tensor A = th::random::uniform({n}, -4, 4, 10, th::DType::float32),
               B = th::random::uniform({n}, -4, 4, 11, th::DType::float32);
  auto has_file = [](const fs::path& dir, const std::string& prefix, const std::string& suffix) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string f = it->path().filename().string();
      if (f.rfind(prefix, 0) == 0 && f.size() >= suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        return true;
    }
    return false;
  };
  if (const char* role = std::getenv("THETA_NATIVE_ROLE"); role && std::string(role) == "short") {
    // the short program: one hot call (queued), then it ends as soon as the compiler started
    th::config().native = th::NativeMode::async;
    th::function({pa, pb}, y).call({A, B});
    const fs::path dir = std::getenv("THETA_CACHE_DIR");
    for (int i = 0; i < 600 && !has_file(dir, "tmp-", ".log"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::_Exit(has_file(dir, "tmp-", ".log") ? 0 : 3);
  }
  Tier tier(th::NativeMode::async);
  fs::create_directories(tier.dir);
  // a compiler that records its scheduling policy (5 is SCHED_IDLE) before it compiles
  const fs::path cxx = tier.dir / "cxx.sh";
  std::ofstream(cxx) << "#!/bin/sh\ngrep policy /proc/$$/sched > '" << (tier.dir / "policy").string()
                     << "'\nexec c++ \"$@\"\n";
  fs::permissions(cxx, fs::perms::owner_all);
  ::setenv("THETA_CXX", cxx.c_str(), 1);
  const std::string exe = boost::unit_test::framework::master_test_suite().argv[0];
  const std::string cmd = "THETA_NATIVE_ROLE=short '" + exe +
                          "' --run_test=async_compiles_at_idle_priority_and_outlives_its_process > /dev/null 2>&1";
  BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "the short process failed");
  // its compilation goes on without it and leaves the finished object
  for (int i = 0; i < 3000 && !has_file(tier.dir, "", ".new.so"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  BOOST_TEST_REQUIRE(has_file(tier.dir, "", ".new.so"));
  std::string policy;
  std::getline(std::ifstream(tier.dir / "policy"), policy);
  BOOST_TEST(policy.substr(policy.find(':') + 1).find('5') != std::string::npos, policy);
  // the next process (this one, under sync) adopts it: loaded, not compiled again
  th::config().native = th::NativeMode::off;
  const auto want = check::bits(th::function({pa, pb}, y).call({A, B}));
  th::config().native = th::NativeMode::sync;
  const cpu::NativeStats s0 = cpu::native_stats();
  const th::Function f = th::function({pa, pb}, y);
  BOOST_TEST((check::bits(f.call({A, B})) == want));
  BOOST_TEST(cpu::native_stats().compiled == s0.compiled);
  BOOST_TEST(cpu::native_stats().loaded == s0.loaded + 1);
  BOOST_TEST(th::debugprint(f).find("[native (cached)]") != std::string::npos, th::debugprint(f));
  BOOST_TEST(!has_file(tier.dir, "", ".new.so"));
}

// ---- Whole programs (lib/freeze/whole.cpp): a small function compiled as one C++ function.

namespace {

// A function with shared variables of its own: built twice, interpreted and native, each
// trains its own copies.
struct Built {
  th::Function f;
  std::vector<th::Shared> vars;
};
using Builder = std::function<Built()>;

std::vector<std::string> value_bits(const th::Shared& v) { return check::bits(th::Result({v.get_value()}, true)); }

// `build`'s function called `calls` times on `args` interpreted (native=off) and with the
// native tier (native=sync: from the third call on, as a whole program): the same bits for
// every result and every shared value after each call. Returns the native one.
th::Function whole_matches(const std::string& what, const Builder& build, const std::vector<Tensor>& args,
                           bool expect_whole = true, int calls = 5) {
  th::config().native = th::NativeMode::off;
  Built interp = build();
  th::config().native = th::NativeMode::sync;
  Built whole = build();
  for (int i = 0; i < calls; ++i) {
    th::config().native = th::NativeMode::off;  // (read by each call)
    const auto want = check::bits(interp.f.call(args));
    th::config().native = th::NativeMode::sync;
    const auto got = check::bits(whole.f.call(args));
    BOOST_TEST((got == want), what << ": call " << i << "'s results differ from the interpreter's");
    for (std::size_t v = 0; v < interp.vars.size(); ++v)
      BOOST_TEST((value_bits(whole.vars[v]) == value_bits(interp.vars[v])),
                 what << ": shared variable " << v << " after call " << i << " differs");
  }
  const std::string dp = th::debugprint(whole.f);
  BOOST_TEST((dp.find("[whole program: native") != std::string::npos) == expect_whole, what << ":\n" << dp);
  return whole.f;
}

// W1: least squares by gradient descent, 125 x 4 float64 (bench/theta_workloads.cpp).
Built w1_step(th::DType dt = th::DType::float64) {
  const Tensor x = th::placeholder(dt, 2, "x"), y = th::placeholder(dt, 1, "y");
  th::Shared w = th::shared(th::zeros({4}, dt), "w");
  const Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
  return {th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}}), {w}};
}

std::vector<Tensor> w1_data(th::DType dt = th::DType::float64) {
  return {th::random::uniform({125, 4}, -1, 1, 21, dt), th::random::uniform({125}, -1, 1, 22, dt)};
}

// W1's step called on `data` until it runs as a whole program (the third call).
Built warm_w1_step(const std::vector<Tensor>& data) {
  Built b = w1_step();
  for (int i = 0; i < 3; ++i) b.f.call(data);
  BOOST_TEST_REQUIRE(th::debugprint(b.f).find("[whole program: native]") != std::string::npos, th::debugprint(b.f));
  return b;
}

}  // namespace

BOOST_AUTO_TEST_CASE(whole_programs_compute_the_interpreters_bits) {
  Tier tier(th::NativeMode::sync);
  for (th::DType dt : {th::DType::float64, th::DType::float32})
    whole_matches(std::string("W1 ") + th::dtype_name(dt), [dt] { return w1_step(dt); }, w1_data(dt));

  // the tutorial's logistic regression, float32: a bias, a penalty, two updates, two results
  whole_matches("logistic regression", [] {
    const Tensor x = th::fmatrix("x"), y = th::fvector("y");
    th::Shared w = th::shared(th::random::uniform({5}, -1, 1, 23, th::DType::float32), "w");
    th::Shared b = th::shared(th::zeros({}, th::DType::float32), "b");
    const Tensor p1 = th::sigmoid(th::dot(x, w) + b);
    const Tensor xent = -y * th::log(p1) - (1.0f - y) * th::log(1.0f - p1);
    const Tensor cost = th::mean(xent) + 0.01f * th::sum(th::sqr(w));
    const Tensor gw = th::grad(cost, w), gb = th::grad(cost, b);
    return Built{th::function({x, y}, {cost, p1}, {{w, w - 0.1f * gw}, {b, b - 0.1f * gb}}), {w, b}};
  }, {th::random::uniform({100, 5}, -2, 2, 24, th::DType::float32),
      th::tensor(std::vector<float>(100, 1.0f), {100}) - th::random::uniform({100}, 0, 1, 25, th::DType::float32)});

  // three blocks of the sums' order (3000 elements), a shared scalar read, no update
  whole_matches("three blocks", [] {
    const Tensor a = th::dvector("a"), b = th::dvector("b");
    th::Shared c = th::shared(th::tensor(std::vector<double>{0.25}, {}), "c");
    const Tensor y = th::tanh(a * b + c);
    return Built{th::function({a, b}, {th::sum(y), th::grad(th::sum(y) * 0.5, a)}), {c}};
  }, {th::random::uniform({3000}, -2, 2, 26), th::random::uniform({3000}, -2, 2, 27)});

  // a vector times a matrix, and the gradient's matrix times a vector
  whole_matches("vector @ matrix", [] {
    const Tensor v = th::dvector("v"), m = th::dmatrix("m");
    const Tensor cost = th::sum(th::exp(th::dot(v, m) * 0.1));
    return Built{th::function({v, m}, {cost, th::grad(cost, v)}), {}};
  }, {th::random::uniform({50}, -1, 1, 28), th::random::uniform({50, 30}, -1, 1, 29)});

  // a matrix product is no matrix-vector product: the interpreter runs it all, as before,
  // and the profile says why
  const th::Function f = whole_matches("matrix @ matrix", [] {
    const Tensor a = th::dmatrix("a"), m = th::dmatrix("m");
    return Built{th::function({a, m}, th::sum(th::tanh(th::dot(a, m)))), {}};
  }, {th::random::uniform({20, 30}, -1, 1, 30), th::random::uniform({30, 10}, -1, 1, 31)}, false);
  BOOST_TEST(th::debugprint(f).find("[whole program") == std::string::npos, th::debugprint(f));
  BOOST_TEST(f.profile().find("whole program: interpreted (step 0 (matmul): no native form)") != std::string::npos,
             f.profile());
}

BOOST_AUTO_TEST_CASE(whole_programs_never_write_what_the_caller_holds) {
  Tier tier(th::NativeMode::sync);
  const std::vector<Tensor> data = w1_data();
  Built b = warm_w1_step(data);
  // a result and a shared value kept by the caller stay as they were
  const Tensor r1 = b.f.call(data);
  const Tensor w1 = b.vars[0].get_value();
  const double r1v = r1.item<double>();
  const std::vector<double> w1v = w1.to_vector<double>();
  for (int i = 0; i < 3; ++i) b.f.call(data);
  BOOST_TEST(r1.item<double>() == r1v);
  BOOST_TEST((w1.to_vector<double>() == w1v));
  BOOST_TEST((b.vars[0].get_value().to_vector<double>() != w1v));
  // a result given back as an argument
  const Tensor pv = th::dvector("v");
  const th::Function dbl = th::function({pv}, th::tanh(pv) * 2.0);
  Tensor v = th::random::uniform({10}, -1, 1, 32);
  std::vector<double> want = v.to_vector<double>();
  for (int i = 0; i < 6; ++i) {
    Tensor next = dbl(v);
    for (double& x : want) x = std::tanh(x) * 2.0;
    const std::vector<double> got = next.to_vector<double>();
    for (std::size_t k = 0; k < want.size(); ++k) BOOST_TEST(got[k] == want[k], "call " << i << " element " << k);
    v = next;
  }
  BOOST_TEST(th::debugprint(dbl).find("[whole program: native]") != std::string::npos, th::debugprint(dbl));
}

BOOST_AUTO_TEST_CASE(whole_programs_leave_other_calls_to_the_interpreter) {
  Tier tier(th::NativeMode::sync);
  const std::vector<Tensor> data = w1_data();
  Built b = warm_w1_step(data);
  th::config().native = th::NativeMode::off;
  Built ref = w1_step();
  for (int i = 0; i < 3; ++i) ref.f.call(data);
  // other shapes: the interpreter, the same results as an interpreted function's
  const std::vector<Tensor> other{th::random::uniform({60, 4}, -1, 1, 33), th::random::uniform({60}, -1, 1, 34)};
  const auto want = check::bits(ref.f.call(other));
  th::config().native = th::NativeMode::sync;
  BOOST_TEST((check::bits(b.f.call(other)) == want));
  BOOST_TEST((value_bits(b.vars[0]) == value_bits(ref.vars[0])));
  // bad arguments: the interpreter's errors, and no update applied
  const std::vector<double> before = b.vars[0].get_value().to_vector<double>();
  BOOST_CHECK_THROW(b.f.call({data[1], data[1]}), th::TypeError);
  BOOST_CHECK_THROW(b.f.call({th::random::uniform({125, 5}, -1, 1, 35), data[1]}), th::Error);
  BOOST_CHECK_THROW(b.f.call({data[0]}), th::TypeError);
  BOOST_TEST((b.vars[0].get_value().to_vector<double>() == before));
  // the native tier turned off: interpreted again, the same bits
  th::config().native = th::NativeMode::off;
  const auto a = check::bits(ref.f.call(data));
  const auto c = check::bits(b.f.call(data));
  BOOST_TEST((a == c));
  // the profile counts the whole program's calls
  th::config().native = th::NativeMode::sync;
  for (int i = 0; i < 40; ++i) b.f.call(data);
  BOOST_TEST(b.f.profile().find("whole program: ") != std::string::npos, b.f.profile());
  BOOST_TEST(b.f.profile().find("us/call, native") != std::string::npos, b.f.profile());
}

BOOST_AUTO_TEST_CASE(whole_programs_serialize_concurrent_training_calls) {
  Tier tier(th::NativeMode::sync);
  const std::vector<Tensor> data = w1_data();
  Built b = warm_w1_step(data);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) b.f.call(data);
    });
  for (auto& t : threads) t.join();
  // every call applied whole, in some order: 1003 identical steps in all
  th::config().native = th::NativeMode::off;
  Built ref = w1_step();
  for (int i = 0; i < 1003; ++i) ref.f.call(data);
  BOOST_TEST((value_bits(b.vars[0]) == value_bits(ref.vars[0])));
}

BOOST_AUTO_TEST_CASE(the_generated_products_compute_the_small_gemv_kernels_bits) {
  // cpu/gemv_reference.hpp (compiled into whole programs) against cpu/gemv_small.cpp's
  // kernels, both orientations, sizes around the kernels' multiples of 4, with signed
  // zeros, infinities and NaN among the values
  namespace cpu = th::detail::cpu;
  if (!cpu::gemv_small_applies(4, 4)) return;  // (no AVX2 and FMA here: whole programs have no products)
  auto check = [](auto zero, std::int64_t rows, std::int64_t cols) {
    using T = decltype(zero);
    const std::int64_t lda = cols + 1;  // a row stride beyond the row
    const std::int64_t n = std::max(rows, cols);
    const std::size_t na = static_cast<std::size_t>(rows * lda), nb = static_cast<std::size_t>(n);
    std::vector<T> a(na), b(nb), want(nb), got(nb);
    const std::vector<double> u = th::random::uniform({std::int64_t(a.size() + b.size())}, -2, 2, std::uint64_t(rows * 131 + cols)).to_vector<double>();
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = T(u[i]);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = T(u[a.size() + i]);
    a[0] = T(-0.0), b[0] = T(-0.0);  // products of -0 and the sums of zeros
    if (rows * cols > 20) a[std::size_t(lda + 1)] = T(INFINITY), a[std::size_t(2 * lda)] = std::numeric_limits<T>::quiet_NaN();
    for (bool trans : {false, true}) {
      const std::int64_t out = trans ? cols : rows;
      std::fill(want.begin(), want.end(), T(7)), std::fill(got.begin(), got.end(), T(7));
      BOOST_TEST_REQUIRE(cpu::gemv_small<T>(trans, rows, cols, a.data(), lda, b.data(), want.data()));
      reference(trans, rows, cols, lda, a.data(), b.data(), got.data());
      for (std::int64_t i = 0; i < out; ++i) {
        const bool same = std::isnan(want[std::size_t(i)]) ? std::isnan(got[std::size_t(i)])
                                                           : std::memcmp(&want[std::size_t(i)], &got[std::size_t(i)], sizeof(T)) == 0;
        BOOST_TEST(same, th::dtype_name(sizeof(T) == 4 ? th::DType::float32 : th::DType::float64)
                             << " " << rows << "x" << cols << (trans ? " transposed" : "") << " element " << i << ": "
                             << want[std::size_t(i)] << " vs " << got[std::size_t(i)]);
      }
    }
  };
  for (std::int64_t rows : {1, 3, 4, 5, 8, 13})
    for (std::int64_t cols : {1, 2, 4, 7, 9}) check(0.0, rows, cols), check(0.0f, rows, cols);
}
