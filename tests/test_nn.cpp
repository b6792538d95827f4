// Neural-network ops (API.md section 9): conv2d and pool_2d values against plain loops over
// every option, their gradients (and gradients of gradients) through the shared checker,
// the losses and statistics, shape_of, weight initialisation, and the errors.
#include <filesystem>
#define BOOST_TEST_MODULE nn
#include <cmath>
#include <unistd.h>
#include <functional>
#include <limits>

#include "check.hpp"
#include "core/node.hpp"
#include "ops/conv.hpp"
#include "cpu/dnnl.hpp"
#include "cpu/parallel.hpp"

using th::Tensor;
using X = check::Inputs;

namespace {

struct ConvCase {
  th::ConvOptions o;
  std::string label;
};

std::int64_t pad_of(std::int64_t code, std::int64_t k, std::int64_t d) {
  const std::int64_t dk = (k - 1) * d + 1;
  return code == th::Padding::kFull ? dk - 1 : code == th::Padding::kHalf ? dk / 2 : code;
}

// The definition, one output element at a time (Theano's conv2d: filters flipped unless
// filter_flip is false).
Tensor conv_reference(const Tensor& x, const Tensor& w, const th::ConvOptions& o) {
  const auto xs = x.shape(), ws = w.shape();
  const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const std::int64_t G = o.num_groups, Og = O / G;
  const std::int64_t ph = pad_of(o.border_mode.rows, KH, o.filter_dilation[0]);
  const std::int64_t pw = pad_of(o.border_mode.cols, KW, o.filter_dilation[1]);
  const std::int64_t OH = (H + 2 * ph - ((KH - 1) * o.filter_dilation[0] + 1)) / o.subsample[0] + 1;
  const std::int64_t OW = (W + 2 * pw - ((KW - 1) * o.filter_dilation[1] + 1)) / o.subsample[1] + 1;
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> y(std::size_t(N * O * OH * OW));
  (void)C;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oc = 0; oc < O; ++oc)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          double s = 0;
          const std::int64_t g = oc / Og;
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t i = 0; i < KH; ++i)
              for (std::int64_t j = 0; j < KW; ++j) {
                const std::int64_t ih = oh * o.subsample[0] - ph + i * o.filter_dilation[0];
                const std::int64_t iw = ow * o.subsample[1] - pw + j * o.filter_dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const std::int64_t fi = o.filter_flip ? KH - 1 - i : i, fj = o.filter_flip ? KW - 1 - j : j;
                s += xv[std::size_t(((n * xs[1] + g * Cg + c) * H + ih) * W + iw)] *
                     wv[std::size_t(((oc * Cg + c) * KH + fi) * KW + fj)];
              }
          y[std::size_t(((n * O + oc) * OH + oh) * OW + ow)] = s;
        }
  return th::tensor(y, {N, O, OH, OW});
}

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> r;
  const std::vector<std::pair<th::Padding, std::string>> borders{
      {th::Padding::valid(), "valid"}, {th::Padding::full(), "full"}, {th::Padding::half(), "half"}, {th::Padding(1, 2), "(1,2)"}};
  for (const auto& [b, bn] : borders)
    for (std::array<std::int64_t, 2> s : {std::array<std::int64_t, 2>{1, 1}, std::array<std::int64_t, 2>{2, 1}})
      for (std::array<std::int64_t, 2> d : {std::array<std::int64_t, 2>{1, 1}, std::array<std::int64_t, 2>{1, 2}})
        for (std::int64_t g : {1, 2})
          for (bool flip : {true, false}) {
            ConvCase c;
            c.o.border_mode = b;
            c.o.subsample = s;
            c.o.filter_dilation = d;
            c.o.num_groups = g;
            c.o.filter_flip = flip;
            c.label = "conv2d border=" + bn + " stride=" + std::to_string(s[0]) + "," + std::to_string(s[1]) +
                      " dilation=" + std::to_string(d[0]) + "," + std::to_string(d[1]) + " groups=" + std::to_string(g) +
                      (flip ? " flip" : " corr");
            r.push_back(c);
          }
  return r;
}

void expect_values(const std::string& what, const Tensor& got, const Tensor& want, double tol = 1e-12) {
  BOOST_TEST_REQUIRE(got.shape() == want.shape(), what << ": shape " << th::shape_str(got.shape()) << " vs "
                                                       << th::shape_str(want.shape()));
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i)
    BOOST_TEST(std::fabs(a[i] - b[i]) <= tol * std::max(1.0, std::fabs(b[i])), what << "[" << i << "]: " << a[i] << " vs " << b[i]);
}

}  // namespace

BOOST_AUTO_TEST_CASE(conv2d_hand_computed) {
  // Theano's conv2d is a true convolution: the filter is flipped.
  const Tensor x = th::reshape(th::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}), {1, 1, 3, 3});
  const Tensor w = th::reshape(th::tensor({1, 0, 0, -1}), {1, 1, 2, 2});
  expect_values("convolution", th::conv2d(x, w), th::reshape(th::tensor({4, 4, 4, 4}), {1, 1, 2, 2}));
  th::ConvOptions corr;
  corr.filter_flip = false;
  expect_values("cross-correlation", th::conv2d(x, w, corr), th::reshape(th::tensor({-4, -4, -4, -4}), {1, 1, 2, 2}));
}

BOOST_AUTO_TEST_CASE(conv2d_values_over_every_option) {
  for (const ConvCase& c : conv_cases()) {
    BOOST_TEST_CONTEXT(c.label) {
      const Tensor x = check::input({2, 4, 6, 7}, 11, -1, 1), w = check::input({4, 4 / c.o.num_groups, 3, 2}, 12, -1, 1);
      expect_values(c.label, th::conv2d(x, w, c.o), conv_reference(x, w, c.o));
      // float32 agrees with the float64 result to float32 precision
      const Tensor y32 = th::conv2d(x.astype(th::DType::float32), w.astype(th::DType::float32), c.o);
      BOOST_TEST((y32.dtype() == th::DType::float32));
      expect_values(c.label + " float32", y32, conv_reference(x, w, c.o), 1e-5);
    }
  }
}

BOOST_AUTO_TEST_CASE(conv2d_through_the_backend_entry_points) {
  // The GPU's path (im2col, GEMM, strided copies, col2im through the backend), run on the
  // CPU's entry points: every mode and option against the direct CPU kernels.
  for (const ConvCase& c : conv_cases()) {
    BOOST_TEST_CONTEXT(c.label) {
      const Tensor x = check::input({3, 4, 6, 7}, 31, -1, 1), w = check::input({4, 4 / c.o.num_groups, 3, 2}, 32, -1, 1);
      const Tensor y = th::conv2d(x, w, c.o);
      const Tensor r = check::input(y.shape(), 33, -1, 1);
      const Tensor xv = th::variable(x), wv = th::variable(w);
      const auto grads = th::grad(th::sum(th::conv2d(xv, wv, c.o) * r), {xv, wv});
      th::detail::ConvGeom g;
      const auto xs = x.shape(), ws = w.shape(), ys = y.shape();
      g.N = xs[0], g.C = xs[1], g.H = xs[2], g.W = xs[3], g.O = ws[0], g.KH = ws[2], g.KW = ws[3], g.OH = ys[2], g.OW = ys[3];
      g.ph = pad_of(c.o.border_mode.rows, g.KH, c.o.filter_dilation[0]);
      g.pw = pad_of(c.o.border_mode.cols, g.KW, c.o.filter_dilation[1]);
      g.sh = c.o.subsample[0], g.sw = c.o.subsample[1], g.dh = c.o.filter_dilation[0], g.dw = c.o.filter_dilation[1];
      g.G = c.o.num_groups, g.flip = c.o.filter_flip;
      const auto& X = th::detail::value_of(x, "test");
      const auto& W = th::detail::value_of(w, "test");
      const auto& R = th::detail::value_of(r, "test");
      const th::DType f64 = th::DType::float64;
      auto as_tensor = [](th::detail::Storage s) { return th::detail::make_constant(std::move(s)); };
      expect_values("forward", as_tensor(th::detail::conv_through_backend(0, X, W, g, f64, ys)), y, 1e-12);
      expect_values("input gradient", as_tensor(th::detail::conv_through_backend(1, R, W, g, f64, xs)), grads[0], 1e-12);
      expect_values("filter gradient", as_tensor(th::detail::conv_through_backend(2, X, R, g, f64, ws)), grads[1], 1e-12);
    }
  }
}

BOOST_AUTO_TEST_CASE(conv2d_large_batch_runs_in_chunks) {
  // more images than one column chunk holds, and enough work for the kernel threads
  th::ConvOptions o;
  o.border_mode = th::Padding::half();
  const Tensor x = check::input({40, 3, 20, 17}, 5, -1, 1), w = check::input({5, 3, 5, 5}, 6, -1, 1);
  expect_values("batched conv2d", th::conv2d(x, w, o), conv_reference(x, w, o), 1e-11);
  const Tensor xv = th::variable(x), wv = th::variable(w);
  const Tensor r = check::input({40, 5, 20, 17}, 7, -1, 1);
  const Tensor cost = th::sum(th::conv2d(xv, wv, o) * r);
  const auto g = th::grad(cost, {xv, wv});
  // d/dw of sum(conv(x, w) * r) = sum over the batch of the per-image gradients
  Tensor dw_sum = th::zeros({5, 3, 5, 5});
  for (std::int64_t n = 0; n < 40; n += 13) {
    const std::int64_t e = std::min<std::int64_t>(40, n + 13);
    const Tensor xn = th::variable(th::view(x, th::range(n, e)));
    const Tensor wn = th::variable(w);
    dw_sum = dw_sum + th::grad(th::sum(th::conv2d(xn, wn, o) * th::view(r, th::range(n, e))), wn);
  }
  expect_values("filter gradient summed over chunks", g[1], dw_sum, 1e-10);
}

namespace {
// th::config().conv for one scope.
struct Engine {
  th::ConvEngine saved = th::config().conv;
  explicit Engine(th::ConvEngine e) { th::config().conv = e; }
  ~Engine() { th::config().conv = saved; }
};

}  // namespace

// float32 convolutions run on oneDNN (conv=dnnl; conv=auto where built with it) or theta's own
// kernels (conv=theta): both give the float64 result (whose gradients the shared checker
// verifies against central differences below) to float32 precision, for the value and both
// gradients over every option; oneDNN's results are the same bits eager and frozen and from
// call to call, on a batch the kernel threads split (odd sizes, one image too).
BOOST_AUTO_TEST_CASE(conv2d_float32_engines_over_every_option) {
  const th::DType f32 = th::DType::float32;
  BOOST_TEST_MESSAGE("oneDNN built in: " << th::detail::cpu::dnnl_built());
  for (th::ConvEngine e : {th::ConvEngine::dnnl, th::ConvEngine::theta}) {
    const Engine engine(e);
    for (const ConvCase& c : conv_cases())
      for (std::int64_t n : {1, 5}) {
        BOOST_TEST_CONTEXT(c.label << " batch " << n << (e == th::ConvEngine::dnnl ? " dnnl" : " theta")) {
          const Tensor x = check::input({n, 4, 7, 6}, 41, -1, 1), w = check::input({6, 4 / c.o.num_groups, 3, 2}, 42, -1, 1);
          const Tensor y64 = th::conv2d(x, w, c.o);
          const Tensor r = check::input(y64.shape(), 43, -1, 1);
          const Tensor xv = th::variable(x), wv = th::variable(w);
          const auto g64 = th::grad(th::sum(th::conv2d(xv, wv, c.o) * r), {xv, wv});
          const Tensor x32 = th::variable(x.astype(f32)), w32 = th::variable(w.astype(f32)), r32 = r.astype(f32);
          const Tensor y32 = th::conv2d(x32, w32, c.o);
          const auto g32 = th::grad(th::sum(y32 * r32), {x32, w32});
          expect_values("value", y32, y64, 2e-5);
          expect_values("input gradient", g32[0], g64[0], 2e-5);
          expect_values("filter gradient", g32[1], g64[1], 1e-4);
          // frozen == eager, bit for bit, and again on a second call
          const Tensor px = th::ftensor4("x"), pw = th::ftensor4("w"), pr = th::ftensor4("r");
          const Tensor py = th::conv2d(px, pw, c.o);
          const auto pg = th::grad(th::sum(py * pr), {px, pw});
          const th::Function f = th::function({px, pw, pr}, {py, pg[0], pg[1]});
          for (int call = 0; call < 2; ++call) {
            const th::Result got = f(x32, w32, r32);
            BOOST_TEST((check::bits(got) == check::bits(th::Result({y32, g32[0], g32[1]}, false))), "call " << call);
          }
        }
      }
  }
}

// Winograd's algorithm (THETA_FLAGS winograd=on, the default): oneDNN picks it for 3x3
// stride-1 layers from 16 images a chunk (its rule), forward and input gradient; off gives
// the direct algorithm. Its results stay within float32 tolerance of the float64 ones, the
// same bits eager and frozen, and differ from the direct algorithm's (it did run). oneDNN
// 2.6 has Winograd kernels for AVX-512 only: on an AVX2 CPU both settings run the direct
// algorithm (the same bits).
BOOST_AUTO_TEST_CASE(conv2d_winograd_3x3) {
  if (!th::detail::cpu::dnnl_built()) {
    BOOST_TEST_MESSAGE("built without oneDNN: nothing to check");
    return;
  }
  const th::DType f32 = th::DType::float32;
  const Engine engine(th::ConvEngine::dnnl);
  struct Winograd {
    bool saved = th::config().winograd;
    explicit Winograd(bool on) { th::config().winograd = on; }
    ~Winograd() { th::config().winograd = saved; }
  };
  const bool avx512_core = th::detail::cpu::avx512_core();
  th::detail::ConvGeom geom;
  geom.N = 32, geom.C = 32, geom.H = geom.W = 14, geom.O = 32, geom.KH = geom.KW = 3, geom.OH = geom.OW = 14;
  geom.ph = geom.pw = 1, geom.flip = false;
  th::ConvOptions o;
  o.border_mode = th::Padding::half();
  o.filter_flip = false;
  const Tensor x = check::input({32, 32, 14, 14}, 81, -1, 1), w = check::input({32, 32, 3, 3}, 82, -0.3, 0.3);
  const Tensor r = check::input({32, 32, 14, 14}, 83, -1, 1);
  const Tensor xv = th::variable(x), wv = th::variable(w);
  const auto g64 = th::grad(th::sum(th::conv2d(xv, wv, o) * r), {xv, wv});
  const Tensor y64 = th::conv2d(x, w, o);
  std::vector<th::Result> runs;
  for (bool on : {true, false}) {
    BOOST_TEST_CONTEXT("winograd " << on) {
      const Winograd wino(on);
      for (int mode : {0, 1}) {
        const std::string impl = th::detail::cpu::dnnl_conv_impl(mode, geom, 16);
        BOOST_TEST((impl.find("wino") != std::string::npos) == (on && avx512_core), "mode " << mode << ": " << impl);
      }
      BOOST_TEST(th::detail::cpu::dnnl_conv_impl(2, geom, 16).find("wino") == std::string::npos);
      const Tensor x32 = th::variable(x.astype(f32)), w32 = th::variable(w.astype(f32)), r32 = r.astype(f32);
      const Tensor y32 = th::conv2d(x32, w32, o);
      const auto g32 = th::grad(th::sum(y32 * r32), {x32, w32});
      expect_values("value", y32, y64, 2e-5);
      expect_values("input gradient", g32[0], g64[0], 2e-5);
      expect_values("filter gradient", g32[1], g64[1], 5e-4);  // (sums of 6272 products)
      const Tensor px = th::ftensor4("x"), pw = th::ftensor4("w"), pr = th::ftensor4("r");
      const Tensor py = th::conv2d(px, pw, o);
      const auto pg = th::grad(th::sum(py * pr), {px, pw});
      const th::Function f = th::function({px, pw, pr}, {py, pg[0], pg[1]});
      const th::Result got = f(x32, w32, r32);
      BOOST_TEST((check::bits(got) == check::bits(th::Result({y32, g32[0], g32[1]}, false))));
      runs.push_back(got);
    }
  }
  // chunks of 16 or more images (one or two kernel threads) ran Winograd's forward
  if (th::detail::cpu::num_threads() <= 2)
    BOOST_TEST((check::bits(th::Result({runs[0][0]}, false)) == check::bits(th::Result({runs[1][0]}, false))) != avx512_core);
}

// One thread budget: a oneDNN convolution runs on theta's kernel threads (THETA_NUM_THREADS)
// with OpenMP held to one thread in each: it starts no thread of its own, and leaves the
// caller's OpenMP setting as it was.
BOOST_AUTO_TEST_CASE(conv2d_on_onednn_starts_no_threads) {
  const Engine engine(th::ConvEngine::dnnl);
  const th::DType f32 = th::DType::float32;
  const Tensor x = th::random::uniform({8, 3, 32, 32}, -1, 1, 1, f32), w = th::random::uniform({16, 3, 3, 3}, -1, 1, 2, f32);
  const Tensor xv = th::variable(x), wv = th::variable(w);
  th::sum(th::exp(th::random::uniform({1 << 20}, -1, 1, 3, f32))).item<float>();  // theta's pool started
  const std::size_t before = check::thread_count();
  for (int i = 0; i < 3; ++i) {
    const auto g = th::grad(th::sum(th::sqr(th::conv2d(xv, wv))), {xv, wv});
    th::sum(g[1]).item<float>();
  }
  BOOST_TEST(check::thread_count() == before);
}

BOOST_AUTO_TEST_CASE(conv2d_gradients_over_every_option) {
  std::size_t k = 0;
  for (const ConvCase& c : conv_cases()) {
    check::Options o;
    o.grad2 = k++ % 5 == 0;  // grad of grad on a spread of the cases (each costs a second sweep)
    // the frozen function again on more images of more rows and columns (channels and filters kept)
    o.grow = [](std::size_t i, const th::Shape& s) { return i == 0 ? th::Shape{s[0] + 1, s[1], s[2] + 2, s[3] + 1} : s; };
    const th::ConvOptions co = c.o;
    check::op(
        c.label, [co](const X& x) { return th::conv2d(x[0], x[1], co); },
        {{2, 4, 5, 6}, {4, 4 / co.num_groups, 2, 3}}, conv_reference(check::input({2, 4, 5, 6}, 7, -2, 2),
                                                                     check::input({4, 4 / co.num_groups, 2, 3}, 8, -2, 2), co)
                                                          .shape(),
        o);
  }
}

// conv2d_transpose is the input gradient of conv2d (API.md section 16): against that
// definition over every option, with output padding; PyTorch's conv_transpose2d on a hand
// example; gradients through the shared checker; errors.
BOOST_AUTO_TEST_CASE(conv2d_transpose_is_the_input_gradient) {
  std::size_t k = 0;
  for (const ConvCase& c : conv_cases())
    for (std::int64_t opad : {0, 1}) {
      if (opad && c.o.subsample[0] == 1 && c.o.filter_dilation[0] == 1) continue;  // (needs stride or dilation > 1)
      BOOST_TEST_CONTEXT(c.label << " output_padding " << opad) {
        const std::array<std::int64_t, 2> op{opad, 0};
        // input: the output of a conv2d of (2, 4, 7, 6) by filters (6, 4 / G, 3, 2)
        const Tensor w = check::input({6, 4 / c.o.num_groups, 3, 2}, 61, -1, 1);
        const th::Shape conv_in{2, 4, 7 + opad, 6};
        const Tensor probe = th::conv2d(th::zeros(conv_in), w, c.o);
        const Tensor x = check::input(probe.shape(), 62, -1, 1);
        const Tensor y = th::conv2d_transpose(x, w, c.o, op);
        const Tensor v = th::variable(th::zeros(conv_in));
        const Tensor want = th::grad(th::sum(th::conv2d(v, w, c.o) * x), v);
        expect_values("conv2d_transpose", y, want, 1e-12);
        if (k++ % 8 == 0) {  // the shared checker on a spread of the cases (frozen, saved, symbolic too)
          const th::ConvOptions co = c.o;
          check::Options o;
          o.grad2 = k % 16 == 1;
          o.grow = [](std::size_t i, const th::Shape& sh) { return i == 0 ? th::Shape{sh[0] + 1, sh[1], sh[2] + 1, sh[3] + 2} : sh; };
          check::op(c.label + " conv2d_transpose", [co, op](const X& a) { return th::conv2d_transpose(a[0], a[1], co, op); },
                    {x.shape(), w.shape()}, y.shape(), o);
        }
      }
    }
}

BOOST_AUTO_TEST_CASE(conv2d_transpose_as_pytorch_and_errors) {
  th::ConvOptions corr;
  corr.filter_flip = false;
  const Tensor x = th::reshape(th::tensor({1, 2, 3, 4}), {1, 1, 2, 2}), w = th::reshape(th::tensor({1, 0, 0, 1}), {1, 1, 2, 2});
  // torch.nn.functional.conv_transpose2d(x, w): out[i + a, j + b] += x[i, j] w[a, b]
  expect_values("pytorch", th::conv2d_transpose(x, w, corr), th::reshape(th::tensor({1, 2, 0, 3, 5, 2, 0, 3, 4}), {1, 1, 3, 3}));
  th::ConvOptions s2 = corr;
  s2.subsample = {2, 2};
  BOOST_TEST((th::conv2d_transpose(x, w, s2, {1, 1}).shape() == th::Shape{1, 1, 5, 5}));
  const Tensor xv = th::variable(th::zeros({2, 3, 4, 4}), "x"), wv = th::variable(th::zeros({4, 2, 3, 3}), "w");
  const std::string m = check::message_of<th::ShapeError>([&] { th::conv2d_transpose(xv, wv); });
  BOOST_TEST(check::has(m, "conv2d_transpose: the filters take 4 input channels but the input has 3"), m);
  BOOST_TEST(check::has(m, "[x, w]"), m);
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::conv2d_transpose(x, w, s2, {2, 0}); }),
                        "output_padding 2 must be >= 0 and smaller than the stride or the dilation"));
  th::ConvOptions big = corr;
  big.border_mode = th::Padding(3, 0);
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { th::conv2d_transpose(x, w, big); }), "would number"));
}

// A frozen function folds a convolution's epilogue into it (conv2d_fused, one oneDNN
// primitive in float32): relu(conv + bias), conv + bias, and an inference batch
// normalization (x * scale + shift) with a relu. Fused == unfused (eager) within float32
// precision; float64 and shifts that are not per channel run the replaced ops' own kernels
// (the same bits); a saved fused function loads and computes the same bits.
BOOST_AUTO_TEST_CASE(conv_epilogues_fold_into_the_convolution) {
  const th::DType f32 = th::DType::float32;
  th::ConvOptions same;
  same.border_mode = th::Padding::half();
  for (th::DType dt : {f32, th::DType::float64}) {
    const Tensor X = check::input({5, 3, 9, 8}, 71, -1, 1).astype(dt);
    const th::Shared w = th::shared(check::input({6, 3, 3, 3}, 72, -1, 1).astype(dt), "w");
    const th::Shared b = th::shared(check::input({6, 1, 1}, 73, -1, 1).astype(dt), "b");
    const th::Shared g = th::shared(check::input({6}, 74, 0.5, 2).astype(dt), "gamma");
    const th::Shared beta = th::shared(check::input({6}, 75, -1, 1).astype(dt), "beta");
    const th::Shared m = th::shared(check::input({6}, 76, -1, 1).astype(dt), "mean");
    const th::Shared v = th::shared(check::input({6}, 77, 0.5, 2).astype(dt), "var");
    const Tensor x = th::placeholder(dt, 4, "x");
    struct Case {
      std::string name;
      std::function<Tensor(const Tensor&)> f;
      bool folds;
    };
    const std::vector<Case> cases{
        {"relu(conv + b)", [&](const Tensor& in) { return th::relu(th::conv2d(in, w, same) + b); }, true},
        {"conv + b", [&](const Tensor& in) { return b + th::conv2d(in, w, same); }, true},
        {"relu(bn_test(conv))",
         [&](const Tensor& in) { return th::relu(th::batch_normalization_test(th::conv2d(in, w, same), g, beta, m, v)); }, true},
        {"conv + a row (not per channel)", [&](const Tensor& in) { return th::conv2d(in, w, same) + th::view(X, 0, 0, 0); },
         true}};
    for (const Case& c : cases) {
      BOOST_TEST_CONTEXT(c.name << " " << th::dtype_name(dt)) {
        const th::Function f = th::function({x}, c.f(x));
        const std::string text = th::debugprint(f);
        BOOST_TEST(check::has(text, "conv2d_fused"), text);
        const Tensor got = f(X), want = c.f(X);
        if (dt == f32 && c.name != "conv + a row (not per channel)") expect_values(c.name, got, want, 2e-5);
        else BOOST_TEST((check::bits(th::Result({got}, true)) == check::bits(th::Result({want}, true))));
        const std::string path = (std::filesystem::temp_directory_path() / ("theta_nn_fused_" + std::to_string(::getpid()))).string();
        th::save(path, f);
        const th::Function loaded = th::load_function(path);
        std::filesystem::remove(path);
        BOOST_TEST((check::bits(th::Result({loaded(X)[0]}, true)) == check::bits(th::Result({got}, true))));
      }
    }
  }
  // In a training function the backward pass reads the convolution's output for its shape
  // only (a shape twin reads it now), so bias and relu fold into the convolution there too:
  // three SGD steps equal the graph as recorded (debug mode: no rewrites) within float32
  // tolerance, costs and both parameters, for per-channel biases (oneDNN's post-ops) and a
  // bias of another shape (the replaced ops' kernels).
  for (const th::Shape& bias_shape : {th::Shape{4, 1, 1}, th::Shape{1, 1, 6}}) {
    BOOST_TEST_CONTEXT("training, bias " << th::shape_str(bias_shape)) {
      const Tensor x = th::ftensor4("x");
      const Tensor W0 = check::input({4, 3, 3, 3}, 78, -1, 1).astype(f32), B0 = check::input(bias_shape, 80, -1, 1).astype(f32);
      const Tensor X = check::input({2, 3, 8, 8}, 79, -1, 1).astype(f32);
      std::vector<std::vector<double>> seen;
      for (th::Mode mode : {th::Mode::fast, th::Mode::debug}) {
        const th::Shared w = th::shared(W0, "w"), b = th::shared(B0, "b");
        const Tensor cost = th::sum(th::sqr(th::pool_2d(th::relu(th::conv2d(x, w) + b), {2, 2})));
        th::Options o;
        o.mode = mode;
        const th::Function train = th::function({x}, cost, th::optim::sgd(cost, {w, b}, 0.01), o);
        BOOST_TEST(check::has(th::debugprint(train), "conv2d_fused") == (mode == th::Mode::fast), th::debugprint(train));
        std::vector<double> got;
        for (int step = 0; step < 3; ++step) got.push_back(train(X)[0].item<double>());
        for (const th::Shared& v : {w, b})
          for (double e : v.get_value().to_vector<double>()) got.push_back(e);
        seen.push_back(got);
      }
      BOOST_TEST(seen[0][2] < seen[0][0]);
      for (std::size_t i = 0; i < seen[0].size(); ++i)
        BOOST_TEST(std::fabs(seen[0][i] - seen[1][i]) <= 2e-5 * std::max(1.0, std::fabs(seen[1][i])), i << ": " << seen[0][i] << " vs " << seen[1][i]);
    }
  }
}

// Consecutive convolutions and 2 x 2 max poolings of an inference function run as one
// conv_chain step, the values between them in oneDNN's layouts (blocked, NHWC, padded
// channels): the bits of the links run one by one (the fused first layer as its own frozen
// step, the rest eager: a fused bias rounds as oneDNN's kernel for the CPU adds it, the same
// bits as conv + bias with AVX-512, not with AVX2) over filter flips, strides, channel
// counts that do and do not fill a block, plain and fused convolutions, one image and an odd
// batch (float64 is not chained); a pooling that does not tile (odd sizes, ignore_border
// off) makes the step run its links, still their bits; th::save writes the links and the
// loaded function chains them again; a training function (its backward pass reads the
// values between) gets no chain.
BOOST_AUTO_TEST_CASE(conv_chains_keep_onednn_layouts_between_layers) {
  const th::DType f32 = th::DType::float32;
  for (th::DType dt : {f32, th::DType::float64})
    for (std::int64_t c1 : {8, 20})
      for (int variant = 0; variant < 3; ++variant) {
        BOOST_TEST_CONTEXT(th::dtype_name(dt) << " channels " << c1 << " variant " << variant) {
          th::ConvOptions o1, o2;
          o1.filter_flip = variant != 1;
          o1.border_mode = variant == 2 ? th::Padding::half() : th::Padding::valid();
          o2.subsample = {variant == 1 ? 2 : 1, 1};
          const th::Shared w1 = th::shared(check::input({c1, 3, 3, 3}, 101, -0.5, 0.5).astype(dt), "w1");
          const th::Shared b1 = th::shared(check::input({c1, 1, 1}, 102, -0.2, 0.2).astype(dt), "b1");
          const th::Shared w2 = th::shared(check::input({16, c1, 3, 3}, 103, -0.3, 0.3).astype(dt), "w2");
          th::PoolOptions tail;
          tail.ignore_border = variant != 2;  // (variant 2: an odd size left over, a pooling that does not tile)
          auto first = [&](const Tensor& in) { return th::relu(th::conv2d(in, w1, o1) + b1); };
          auto rest = [&](const Tensor& h) { return th::pool_2d(th::conv2d(th::pool_2d(h, {2, 2}), w2, o2), {2, 2}, tail); };
          auto net = [&](const Tensor& in) { return rest(first(in)); };
          const Tensor x = th::placeholder(dt, 4, "x");
          const th::Function f = th::function({x}, net(x));
          const th::Function f_first = th::function({x}, first(x));
          BOOST_TEST(check::has(th::debugprint(f_first), "conv2d_fused"), th::debugprint(f_first));
          const std::string text = th::debugprint(f);
          BOOST_TEST(check::has(text, "conv_chain[conv2d_fused pool_2d conv2d pool_2d]") == (dt == f32), text);
          const std::string path = (std::filesystem::temp_directory_path() / ("theta_nn_chain_" + std::to_string(::getpid()))).string();
          th::save(path, f);
          const th::Function loaded = th::load_function(path);
          std::filesystem::remove(path);
          BOOST_TEST(check::has(th::debugprint(loaded), "conv_chain[") == (dt == f32), th::debugprint(loaded));
          for (std::int64_t n : {1, 5}) {
            const Tensor X = check::input({n, 3, 22, 19}, 104, -1, 1).astype(dt);
            const th::Result want({rest(f_first(X)[0])}, true);
            expect_values("eager, batch " + std::to_string(n), f(X)[0], net(X), 2e-5);
            BOOST_TEST((check::bits(th::Result({f(X)[0]}, true)) == check::bits(want)), "batch " << n);
            BOOST_TEST((check::bits(th::Result({loaded(X)[0]}, true)) == check::bits(want)), "loaded, batch " << n);
          }
          const Tensor cost = th::sum(th::sqr(net(x)));
          const th::Function train = th::function({x}, cost, th::optim::sgd(cost, {w1, b1, w2}, 0.01));
          BOOST_TEST(!check::has(th::debugprint(train), "conv_chain"), th::debugprint(train));
        }
      }
}

BOOST_AUTO_TEST_CASE(conv2d_gradients_are_convolutions) {
  // the three ops of the family, each differentiated again
  const Tensor x = th::variable(check::input({1, 2, 4, 5}, 3, -1, 1)), w = th::variable(check::input({3, 2, 2, 2}, 4, -1, 1));
  const Tensor cost = th::sum(th::sqr(th::conv2d(x, w)));
  const auto g = th::grad(cost, {x, w});
  const std::string text = th::debugprint(th::sum(g[0]) + th::sum(g[1]));
  BOOST_TEST(check::has(text, "conv2d_grad_input"), text);
  BOOST_TEST(check::has(text, "conv2d_grad_filters"), text);
  check::Options o;
  o.grad2 = true;
  check::op("sqr(conv2d)", [](const X& v) { return th::sqr(th::conv2d(v[0], v[1])); }, {{1, 2, 4, 5}, {3, 2, 2, 2}},
            {1, 3, 3, 4}, o);
}

namespace {
// Theano's pool_2d by its definition (windows cut at the padded border when ignore_border is false).
Tensor pool_reference(const Tensor& x, std::array<std::int64_t, 2> ws, const th::PoolOptions& o) {
  const auto xs = x.shape();
  const std::size_t nd = xs.size();
  const std::int64_t H = xs[nd - 2], W = xs[nd - 1];
  const auto st = o.stride.value_or(ws);
  auto out = [&](std::int64_t n, std::int64_t w, std::int64_t s, std::int64_t p) -> std::int64_t {
    const std::int64_t r = n + 2 * p;
    if (o.ignore_border) return (r - w) / s + 1;
    return s >= w ? (r - 1) / s + 1 : std::max<std::int64_t>(0, (r - 1 - w + s) / s) + 1;
  };
  const std::int64_t OH = out(H, ws[0], st[0], o.pad[0]), OW = out(W, ws[1], st[1], o.pad[1]);
  std::int64_t planes = 1;
  for (std::size_t i = 0; i + 2 < nd; ++i) planes *= xs[i];
  const auto xv = x.to_vector<double>();
  std::vector<double> y;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < OH; ++oh)
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        const std::int64_t r0 = oh * st[0], r1 = std::min(r0 + ws[0], H + 2 * o.pad[0]);
        const std::int64_t c0 = ow * st[1], c1 = std::min(c0 + ws[1], W + 2 * o.pad[1]);
        double s = 0, m = -std::numeric_limits<double>::infinity();
        std::int64_t real = 0;
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t c = c0; c < c1; ++c) {
            const std::int64_t h = r - o.pad[0], w = c - o.pad[1];
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const double v = xv[std::size_t((p * H + h) * W + w)];
            s += v, m = std::max(m, v), ++real;
          }
        double v = s;
        if (o.mode == th::PoolMode::max) v = m;
        if (o.mode == th::PoolMode::average_inc_pad) v = s / double((r1 - r0) * (c1 - c0));
        if (o.mode == th::PoolMode::average_exc_pad) v = s / double(real);
        y.push_back(v);
      }
  th::Shape ys = xs;
  ys[nd - 2] = OH, ys[nd - 1] = OW;
  return th::tensor(y, ys);
}

struct PoolCase {
  std::array<std::int64_t, 2> ws;
  th::PoolOptions o;
  std::string label;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> r;
  const std::vector<std::pair<th::PoolMode, std::string>> modes{{th::PoolMode::max, "max"},
                                                               {th::PoolMode::sum, "sum"},
                                                               {th::PoolMode::average_inc_pad, "average_inc_pad"},
                                                               {th::PoolMode::average_exc_pad, "average_exc_pad"}};
  for (const auto& [m, mn] : modes)
    for (bool ib : {true, false})
      for (int variant = 0; variant < 3; ++variant) {
        PoolCase c;
        c.ws = {2, 3};
        c.o.mode = m;
        c.o.ignore_border = ib;
        if (variant == 1) c.o.stride = std::array<std::int64_t, 2>{1, 2};  // overlapping windows
        if (variant == 2 && ib) c.o.pad = {1, 2};
        if (variant == 2 && !ib) c.o.stride = std::array<std::int64_t, 2>{3, 1};
        c.label = "pool_2d " + mn + (ib ? " ignore_border" : " border") + " variant " + std::to_string(variant);
        r.push_back(c);
      }
  for (const auto& [m, mn] : modes) {  // 2 x 2 windows tiling the image (max pooling's fast kernels)
    PoolCase c;
    c.ws = {2, 2};
    c.o.mode = m;
    c.label = "pool_2d " + mn + " 2x2 tiling";
    r.push_back(c);
  }
  return r;
}
}  // namespace

BOOST_AUTO_TEST_CASE(pool_2d_values_over_every_option) {
  for (const PoolCase& c : pool_cases())
    for (const th::Shape& s : {th::Shape{5, 7}, th::Shape{2, 3, 5, 7}}) {
      const Tensor x = check::input(s, 21, -1, 1);
      expect_values(c.label + " " + th::shape_str(s), th::pool_2d(x, c.ws, c.o), pool_reference(x, c.ws, c.o));
    }
}

BOOST_AUTO_TEST_CASE(pool_2d_gradients_over_every_option) {
  for (const PoolCase& c : pool_cases()) {
    const Tensor x = check::input({2, 5, 7}, 7, -2, 2);
    check::Options o;
    o.grad2 = true;
    const auto ws = c.ws;
    const th::PoolOptions po = c.o;
    // squared, so that grad of grad runs through pool_2d_grad's own gradient (pool_2d_select for max)
    check::op(
        c.label, [ws, po](const X& v) { return th::sqr(th::pool_2d(v[0], ws, po)); }, {{2, 5, 7}},
        pool_reference(x, ws, po).shape(), o);
  }
}

// Max pooling over 2 x 2 windows that tile the image runs vectorised kernels (blocks of
// windows, then a tail, odd rows and columns left over): the values and the gradient (to each
// window's first maximum in row-major order, NaN winning) against the definition, in both
// dtypes, with many ties (values on a coarse grid: ReLU outputs tie at 0) and NaNs.
BOOST_AUTO_TEST_CASE(max_pool_2x2_tiling_kernels) {
  for (th::DType dt : {th::DType::float32, th::DType::float64}) {
    const th::Shape s{3, 2, 9, 21};
    std::vector<double> v = th::random::uniform(s, -2, 2, 51, th::DType::float64).to_vector<double>();
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = std::round(v[i]);  // five levels: ties everywhere
      if (i % 37 == 5) v[i] = std::numeric_limits<double>::quiet_NaN();
    }
    const Tensor x = th::tensor(v, s).astype(dt);
    const Tensor gy = check::input({3, 2, 4, 10}, 52, -1, 1).astype(dt);
    const Tensor xv = th::variable(x);
    const Tensor y = th::pool_2d(xv, {2, 2});
    const Tensor dx = th::grad(th::sum(y * gy), xv);
    std::vector<double> want_y(3 * 2 * 4 * 10), want_dx(v.size(), 0.0);
    const auto g = gy.to_vector<double>(), xr = x.to_vector<double>();
    for (std::int64_t p = 0; p < 6; ++p)
      for (std::int64_t oh = 0; oh < 4; ++oh)
        for (std::int64_t ow = 0; ow < 10; ++ow) {
          std::int64_t at = -1;
          for (std::int64_t i = 0; i < 2; ++i)
            for (std::int64_t j = 0; j < 2; ++j) {
              const std::int64_t k = (p * 9 + 2 * oh + i) * 21 + 2 * ow + j;
              const double e = xr[std::size_t(k)], best = at < 0 ? 0 : xr[std::size_t(at)];
              if (at < 0 || e > best || (std::isnan(e) && !std::isnan(best))) at = k;
            }
          const std::size_t o = std::size_t((p * 4 + oh) * 10 + ow);
          want_y[o] = xr[std::size_t(at)];
          want_dx[std::size_t(at)] += g[o];
        }
    const auto got_y = y.to_vector<double>(), got_dx = dx.to_vector<double>();
    for (std::size_t i = 0; i < want_y.size(); ++i)
      BOOST_TEST((got_y[i] == want_y[i] || (std::isnan(got_y[i]) && std::isnan(want_y[i]))), th::dtype_name(dt) << " y[" << i << "]");
    BOOST_TEST(got_dx == want_dx, th::dtype_name(dt) << boost::test_tools::per_element());
  }
}

// A gradient reads the pooling's or the convolution's output for its shape only: the frozen
// function runs their shape twins (no pooling, no convolution), gives eager's bits, and saves
// and loads (the twins are ops of the format).
BOOST_AUTO_TEST_CASE(shape_only_reads_run_no_pooling_or_convolution) {
  const th::DType f32 = th::DType::float32;
  const Tensor A = check::input({3, 2, 6, 8}, 91, -1, 1).astype(f32), G = check::input({3, 2, 3, 4}, 92, -1, 1).astype(f32);
  const Tensor W = check::input({4, 2, 3, 3}, 93, -1, 1).astype(f32), R = check::input({3, 4, 4, 6}, 94, -1, 1).astype(f32);
  const Tensor a = th::ftensor4("a"), g = th::ftensor4("g"), w = th::ftensor4("w"), r = th::ftensor4("r");
  const th::Function f = th::function({a, g, w, r}, {th::grad(th::sum(th::pool_2d(a, {2, 2}) * g), a),
                                                     th::grad(th::sum(th::conv2d(a, w) * r), a)});
  const std::string text = th::debugprint(f);
  BOOST_TEST(check::has(text, "pool_2d_shape"), text);
  BOOST_TEST(check::has(text, "conv2d_shape"), text);
  BOOST_TEST(!check::has(text, "= pool_2d("), text);
  BOOST_TEST(!check::has(text, "= conv2d("), text);
  const Tensor av = th::variable(A);
  const th::Result want({th::grad(th::sum(th::pool_2d(av, {2, 2}) * G), av), th::grad(th::sum(th::conv2d(av, W) * R), av)},
                        false);
  BOOST_TEST((check::bits(f(A, G, W, R)) == check::bits(want)));
  const std::string path = (std::filesystem::temp_directory_path() / ("theta_nn_twins_" + std::to_string(::getpid()))).string();
  th::save(path, f);
  const th::Function loaded = th::load_function(path);
  std::filesystem::remove(path);
  BOOST_TEST((check::bits(loaded(A, G, W, R)) == check::bits(want)));
}

BOOST_AUTO_TEST_CASE(max_pool_gradient_goes_to_the_first_maximum) {
  const Tensor x = th::variable(th::reshape(th::tensor({1, 3, 3, 2}), {1, 1, 2, 2}));
  const Tensor g = th::grad(th::sum(th::pool_2d(x, {2, 2})), x);
  BOOST_TEST(check::vals(g) == (std::vector<double>{0, 1, 0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(statistics_and_losses) {
  check::op("var axis", [](const X& x) { return th::var(x[0], 1); }, {{3, 4}}, {3});
  check::op("var ddof keepdims", [](const X& x) { return th::var(x[0], {0, 2}, true, 1); }, {{3, 2, 4}}, {1, 2, 1});
  check::op("std", [](const X& x) { return th::std(x[0]); }, {{2, 5}}, {});
  const Tensor x = th::tensor({{1, 2, 3, 4}, {2, 4, 6, 9}});
  BOOST_TEST(check::vals(th::var(x, 1)) == (std::vector<double>{1.25, 6.6875}), boost::test_tools::per_element());
  BOOST_TEST(th::std(x, 1, false, 1).to_vector<double>()[0] == std::sqrt(5.0 / 3.0), boost::test_tools::tolerance(1e-15));

  check::Options probs;
  probs.lo = 0.05, probs.hi = 0.95;
  check::op("binary_crossentropy", [](const X& v) { return th::binary_crossentropy(v[0], v[1]); }, {{3, 4}, {3, 4}},
            {3, 4}, probs);
  check::op(
      "categorical_crossentropy one-hot",
      [](const X& v) { return th::categorical_crossentropy(th::softmax(v[0]), th::softmax(v[1])); }, {{3, 5}, {3, 5}}, {3});
  const Tensor labels = th::tensor(std::vector<std::int64_t>{2, 0, 4}, {3});
  check::op(
      "categorical_crossentropy indices", [labels](const X& v) { return th::categorical_crossentropy(th::softmax(v[0]), labels); },
      {{3, 5}}, {3});
  check::op(
      "categorical_crossentropy of probabilities",
      [labels](const X& v) { return th::categorical_crossentropy(v[0], labels); }, {{3, 5}}, {3}, probs);
  // -log p[i, t_i]
  const Tensor p = th::tensor({{0.2, 0.5, 0.3}, {0.6, 0.3, 0.1}});
  const Tensor t = th::tensor(std::vector<std::int64_t>{1, 2}, {2});
  const Tensor want = th::tensor({-std::log(0.5), -std::log(0.1)});
  expect_values("crossentropy of indices", th::categorical_crossentropy(p, t), want, 1e-15);
  expect_values("crossentropy of one-hot rows", th::categorical_crossentropy(p, th::one_hot(t, 3)), want, 1e-15);
}

BOOST_AUTO_TEST_CASE(crossentropy_of_softmax_is_stable_eager_and_frozen) {
  // logits far apart: softmax underflows to 0 for the target class, log(0) would be -inf
  const Tensor z = th::variable(th::tensor({{0.0, 800.0, -800.0}}));
  const Tensor t = th::tensor(std::vector<std::int64_t>{2}, {1});
  const Tensor loss = th::sum(th::categorical_crossentropy(th::softmax(z), t));
  BOOST_TEST(loss.item<double>() == 1600.0, boost::test_tools::tolerance(1e-12));
  expect_values("stable gradient", th::grad(loss, z), th::tensor({{0, 1, -1}}));
  const Tensor zp = th::dmatrix("z");
  const Tensor tp = th::lvector("t");
  const Tensor c = th::sum(th::categorical_crossentropy(th::softmax(zp), tp));
  const th::Function f = th::function({zp, tp}, {c, th::grad(c, zp)});
  const th::Result r = f(th::tensor({{0.0, 800.0, -800.0}}), t);
  BOOST_TEST(r[0].item<double>() == 1600.0, boost::test_tools::tolerance(1e-12));
  expect_values("frozen stable gradient", r[1], th::tensor({{0, 1, -1}}));
  // binary crossentropy of sigmoid: finite for any logit
  const Tensor b = th::variable(th::tensor({-1000.0, 1000.0}));
  const Tensor bl = th::sum(th::binary_crossentropy(th::sigmoid(b), th::tensor({1.0, 0.0})));
  BOOST_TEST(bl.item<double>() == 2000.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(th::grad(bl, b).to_vector<double>() == (std::vector<double>{-1, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(one_hot_and_shape_of) {
  const Tensor t = th::tensor(std::vector<std::int64_t>{1, 0, 2}, {3});
  BOOST_TEST(check::vals(th::one_hot(t, 3)) == (std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0, 1}),
             boost::test_tools::per_element());
  BOOST_TEST((th::one_hot(t, 4, th::DType::float32).shape() == th::Shape{3, 4}));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::one_hot(t, 2); }), "one_hot: label 2"));
  BOOST_TEST(check::has(check::message_of<th::TypeError>([] { th::one_hot(th::tensor({1.0}), 2); }), "one_hot"));
  const Tensor x = th::zeros({2, 3, 4});
  BOOST_TEST(th::shape_of(x).to_vector<std::int64_t>() == (std::vector<std::int64_t>{2, 3, 4}), boost::test_tools::per_element());
  // symbolic: reshape and zeros take it
  const Tensor a = th::dmatrix("a"), b = th::dvector("b");
  const th::Function f = th::function({a, b}, {th::reshape(b, th::shape_of(a)) + a, th::zeros(th::shape_of(a)) + 1.0});
  const th::Result r = f(th::tensor({{1, 2}, {3, 4}}), th::tensor({10, 20, 30, 40}));
  BOOST_TEST(check::vals(r[0]) == (std::vector<double>{11, 22, 33, 44}), boost::test_tools::per_element());
  BOOST_TEST((r[1].shape() == th::Shape{2, 2}));
  BOOST_TEST(check::has(check::message_of<th::ShapeError>([&] { f(th::tensor({{1, 2}, {3, 4}}), th::tensor({1, 2, 3})); }),
                        "reshape: cannot reshape 3 elements into (2, 2)"));
  // reshape by a shape tensor differentiates like reshape
  check::op("reshape(x, shape_of(y))", [](const X& v) { return th::reshape(v[0], th::shape_of(th::zeros({3, 4}))) * 2.0; },
            {{2, 6}}, {3, 4});
}

BOOST_AUTO_TEST_CASE(weight_initialisation) {
  // Glorot uniform of a dense (300, 200): U(-a, a), a = sqrt(6 / 500)
  const auto v = th::init::glorot_uniform({300, 200}, 1).to_vector<double>();
  const double a = std::sqrt(6.0 / 500.0);
  double mx = 0, var = 0;
  for (double e : v) mx = std::max(mx, std::fabs(e)), var += e * e;
  var /= double(v.size());
  BOOST_TEST(mx <= a);
  BOOST_TEST(mx > 0.99 * a);
  BOOST_TEST(var == a * a / 3, boost::test_tools::tolerance(0.02));
  // He normal of a conv filter (16, 8, 3, 3): fan_in 72, std = gain / sqrt(72)
  const auto h = th::init::he_normal({16, 8, 3, 3}, 2, std::sqrt(2.0), th::DType::float32);
  BOOST_TEST((h.dtype() == th::DType::float32));
  double hv = 0;
  for (double e : h.to_vector<double>()) hv += e * e;
  BOOST_TEST(hv / 1152 == 2.0 / 72, boost::test_tools::tolerance(0.1));
  BOOST_TEST(th::init::glorot_normal({4, 5}, 3).shape() == (th::Shape{4, 5}));
  BOOST_TEST(th::init::he_uniform({4, 5}, 3).to_vector<double>() == th::init::he_uniform({4, 5}, 3).to_vector<double>(),
             boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ValueError>([] { th::init::he_normal({0, 3}, 1); }), "init::he_normal"));
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_shapes_and_names) {
  const Tensor x = th::zeros({2, 3, 8, 8}).set_name("images");
  const Tensor w = th::zeros({4, 2, 3, 3}).set_name("filters");
  std::string m = check::message_of<th::ShapeError>([&] { th::conv2d(x, w); });
  BOOST_TEST(check::has(m, "conv2d: the filters take 2 channels per group"), m);
  BOOST_TEST(check::has(m, "(2, 3, 8, 8) float64 and (4, 2, 3, 3) float64 [images, filters]"), m);
  m = check::message_of<th::ShapeError>([&] { th::conv2d(x, th::zeros({4, 3, 9, 3})); });
  BOOST_TEST(check::has(m, "exceed the input's 8"), m);
  m = check::message_of<th::ValueError>([&] {
    th::ConvOptions o;
    o.subsample = {0, 1};
    th::conv2d(x, th::zeros({4, 3, 3, 3}), o);
  });
  BOOST_TEST(check::has(m, "conv2d: subsample"), m);
  m = check::message_of<th::ShapeError>([&] { th::conv2d(th::zeros({3, 8, 8}), w); });
  BOOST_TEST(check::has(m, "conv2d: input must be 4-d"), m);
  m = check::message_of<th::ShapeError>([&] { th::pool_2d(x, {9, 2}); });
  BOOST_TEST(check::has(m, "pool_2d: the window's rows (9) exceed the input's 8"), m);
  m = check::message_of<th::ValueError>([&] {
    th::PoolOptions o;
    o.pad = {3, 0};
    th::pool_2d(x, {3, 3}, o);
  });
  BOOST_TEST(check::has(m, "pool_2d: padding must be >= 0 and smaller than the window"), m);
  // symbolic: the error comes when the shapes are known, from the frozen call
  const Tensor xi = th::dtensor4("xi"), wi = th::dtensor4("wi");
  const th::Function f = th::function({xi, wi}, th::conv2d(xi, wi));
  m = check::message_of<th::ShapeError>([&] { f(th::zeros({1, 3, 5, 5}), th::zeros({2, 2, 3, 3})); });
  BOOST_TEST(check::has(m, "conv2d"), m);
  BOOST_TEST(Tensor(f(th::zeros({1, 3, 5, 5}), th::ones({2, 3, 3, 3}))).shape() == (th::Shape{1, 2, 3, 3}));
}
