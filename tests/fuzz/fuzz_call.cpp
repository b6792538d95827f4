// Fuzzes the argument checking of th::Function calls: arbitrary argument counts, dtypes,
// ranks, sizes (empty included) and values (NaN, Inf) against functions with updates,
// integer inputs, index inputs, allow_input_downcast and nan_guard. A call either succeeds
// or throws a th::Error that leaves every shared variable exactly as it was; any other
// outcome aborts.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <theta/theta.hpp>

namespace {

struct Reader {
  const std::uint8_t* p;
  std::size_t n, at = 0;
  std::uint8_t byte() { return at < n ? p[at++] : 0; }
  double number() {
    std::uint8_t k = byte();
    if (k % 4 != 0) return double(std::int8_t(byte())) / 4;  // mostly small values
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = bits << 8 | byte();  // any double: NaN, Inf, denormals
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
};

struct Fixture {
  th::Shared w = th::shared(th::tensor({0.5, -1.0, 2.0}), "w");
  th::Shared b = th::shared(th::tensor(0.25), "b");
  std::vector<th::Function> fs;

  Fixture() {
    auto x = th::dmatrix("x");
    auto y = th::dvector("y");
    th::Tensor cost = th::mean(th::sqr(th::dot(x, w) + b - y));
    auto g = th::grad(cost, {w, b});
    fs.push_back(th::function({x, y}, {cost, th::dot(x, w)}, {{w, w - 0.1 * g[0]}, {b, b - 0.1 * g[1]}}));
    auto a = th::fvector("a");
    auto i = th::ivector("i");
    auto s = th::lscalar("s");
    th::Tensor out = th::sum(a * i) + s;
    fs.push_back(th::function({a, i, s}, out));
    th::Options loose;
    loose.allow_input_downcast = true;
    loose.mode = th::Mode::nan_guard;
    fs.push_back(th::function({a, i, s}, out, {{b, b + th::cast(th::sum(a), th::DType::float64)}}, loose));
    auto t = th::dtensor3("t");
    auto idx = th::lvector("idx");
    fs.push_back(th::function({t, idx}, th::sum(th::take(t, idx, 1), {0, 2}), {{w, w * 2.0}}));
    fs.push_back(th::function(std::vector<th::Tensor>{}, th::sum(w), {{w, th::concatenate({w, b * 1.0 + w})}}));
  }
};

std::vector<double> snapshot(const th::Shared& s) { return s.get_value().to_vector<double>(); }
bool same(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

th::Tensor argument(Reader& r) {
  const th::DType dtypes[] = {th::DType::float64, th::DType::float32, th::DType::int32, th::DType::int64,
                              th::DType::boolean, th::DType::string};
  const th::DType dt = dtypes[r.byte() % 6];
  th::Shape shape(r.byte() % 4);
  std::int64_t count = 1;
  for (auto& d : shape) count *= (d = r.byte() % 5);
  if (dt == th::DType::string) {  // text (of numbers): refused by numeric placeholders
    std::vector<std::string> text;
    for (std::int64_t k = 0; k < count; ++k) text.push_back(std::to_string(r.number()));
    return th::tensor(text, shape);
  }
  std::vector<char> bytes(std::size_t(count) * th::dtype_size(dt));
  for (std::int64_t k = 0; k < count; ++k) {
    const double v = r.number();
    char* at = bytes.data() + std::size_t(k) * th::dtype_size(dt);
    switch (dt) {
      case th::DType::float64: std::memcpy(at, &v, 8); break;
      case th::DType::float32: { float f = float(v); std::memcpy(at, &f, 4); } break;
      case th::DType::int32: { std::int32_t i = v == v && std::fabs(v) < 1e9 ? std::int32_t(v) : 7; std::memcpy(at, &i, 4); } break;
      case th::DType::int64: { std::int64_t i = v == v && std::fabs(v) < 1e18 ? std::int64_t(v) : -3; std::memcpy(at, &i, 8); } break;
      case th::DType::boolean: *at = v > 0; break;
      case th::DType::string: break;  // (made above)
    }
  }
  return th::tensor_from_data(bytes.data(), dt, shape);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  fx.w.set_value(th::tensor({0.5, -1.0, 2.0}));
  fx.b.set_value(th::tensor(0.25));
  Reader r{data, size};
  const th::Function& f = fx.fs[r.byte() % fx.fs.size()];
  std::vector<th::Tensor> args(r.byte() % 5);
  for (auto& a : args) a = argument(r);
  const auto w0 = snapshot(fx.w), b0 = snapshot(fx.b);
  try {
    th::Result out = f.call(args);
    for (const th::Tensor& t : out) (void)t.to_vector<double>();
  } catch (const th::Error&) {
    if (!same(snapshot(fx.w), w0) || !same(snapshot(fx.b), b0)) std::abort();  // half-applied update
  }
  return 0;
}
