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
#include "check.hpp"
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
