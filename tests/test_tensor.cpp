// Tensors: creation, queries, values, numpy type promotion, printing, forward values.
#define BOOST_TEST_MODULE tensor
#include <array>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "check.hpp"
#include "core/node.hpp"
#include "theta/config.hpp"

using th::DType;
using th::Tensor;
using check::vals;

namespace {
std::string str(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}
}  // namespace

BOOST_AUTO_TEST_CASE(creation_and_queries) {
  Tensor a = th::tensor({{1, 2, 3}, {4, 5, 6}});
  BOOST_TEST((a.shape() == th::Shape{2, 3}));
  BOOST_TEST(a.ndim() == 2);
  BOOST_TEST(a.size() == 6);
  BOOST_TEST(a.dtype() == DType::float64);
  BOOST_TEST(a.device() == th::cpu());
  BOOST_TEST(!a.is_symbolic());
  BOOST_TEST(!a.is_recorded());
  BOOST_TEST(th::tensor({1, 2}, DType::int32).dtype() == DType::int32);
  BOOST_TEST(th::tensor(std::vector<std::int64_t>{1, 2, 3, 4}, {2, 2}).dtype() == DType::int64);
  BOOST_TEST(th::tensor(std::vector<float>{1, 2}, {2}).dtype() == DType::float32);
  BOOST_TEST(th::tensor(std::vector<bool>{true, false}, {2}).to_vector<bool>() == (std::vector<bool>{true, false}));
  BOOST_TEST(th::tensor({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}).shape() == (th::Shape{2, 2, 2}));
  BOOST_TEST(vals(th::zeros({2, 2})) == std::vector<double>(4, 0.0));
  BOOST_TEST(vals(th::ones({3})) == std::vector<double>(3, 1.0));
  BOOST_TEST(vals(th::full({2}, 7.5)) == (std::vector<double>{7.5, 7.5}));
  BOOST_TEST(th::arange(5).dtype() == DType::int64);
  BOOST_TEST(vals(th::arange(5)) == (std::vector<double>{0, 1, 2, 3, 4}));
  BOOST_TEST(vals(th::arange(1, 2, 0.25)) == (std::vector<double>{1, 1.25, 1.5, 1.75}));
  BOOST_TEST(th::arange(1, 2, 0.25).dtype() == DType::float64);
  BOOST_TEST(vals(th::linspace(0, 1, 5)) == (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  BOOST_TEST(vals(th::eye(2)) == (std::vector<double>{1, 0, 0, 1}));
  BOOST_TEST(th::tensor(3.5).item() == 3.5);
  BOOST_TEST(th::tensor(3.5).item<int>() == 3);
  // a number is 0-d, a list of one number 1-d, a column of lists 2-d, with gcc and clang alike
  BOOST_TEST(th::tensor(3.5).ndim() == 0);
  BOOST_TEST(th::tensor(3).ndim() == 0);
  BOOST_TEST(th::tensor(2.5f, DType::float32).dtype() == DType::float32);
  BOOST_TEST((th::tensor({1.5}).shape() == th::Shape{1}));
  BOOST_TEST((th::tensor({7}, DType::int64).shape() == th::Shape{1}));
  BOOST_TEST((th::tensor({{1}, {2}}).shape() == th::Shape{2, 1}));
}

BOOST_AUTO_TEST_CASE(random_is_seeded) {
  BOOST_TEST(vals(th::random::normal({5}, 1)) == vals(th::random::normal({5}, 1)));
  BOOST_TEST(vals(th::random::normal({5}, 1)) != vals(th::random::normal({5}, 2)));
  auto u = vals(th::random::uniform({1000}, -3, 4, 9));
  for (double v : u) BOOST_TEST((v >= -3 && v < 4));
  double m = th::mean(th::random::normal({20000}, 3)).item();
  BOOST_TEST(std::fabs(m) < 0.05);
}

BOOST_AUTO_TEST_CASE(xtensor_interop) {
  xt::xarray<double> x = {{1., 2.}, {3., 4.}};
  Tensor t = th::tensor(x);
  BOOST_TEST((t.shape() == th::Shape{2, 2}));
  xt::xarray<double> back = (t * 2.0).to_xarray();
  BOOST_TEST(back(1, 0) == 6.0);
  xt::xarray<int> xi = {1, 2, 3};
  BOOST_TEST(th::tensor(xi).dtype() == DType::int32);
}

BOOST_AUTO_TEST_CASE(type_promotion_like_numpy) {
  Tensor i32 = th::tensor({1, 2}, DType::int32), i64 = th::tensor({1, 2}, DType::int64);
  Tensor f32 = th::tensor({1, 2}, DType::float32), f64 = th::tensor({1, 2});
  Tensor b = th::tensor(std::vector<bool>{true, false}, {2});
  BOOST_TEST((i32 + i64).dtype() == DType::int64);
  BOOST_TEST((i32 + f32).dtype() == DType::float64);  // numpy: int32 + float32 -> float64
  BOOST_TEST((f32 + f64).dtype() == DType::float64);
  BOOST_TEST((b + i32).dtype() == DType::int32);
  BOOST_TEST((i32 / i32).dtype() == DType::float64);  // true division
  BOOST_TEST((f32 * 2.0).dtype() == DType::float32);  // weak scalars keep the tensor's type
  BOOST_TEST((i32 * 2.0).dtype() == DType::int32);
  BOOST_TEST((i32 * 2.5).dtype() == DType::float64);
  BOOST_TEST((f32 < 1.5).dtype() == DType::boolean);
  BOOST_TEST(th::exp(i64).dtype() == DType::float64);
  BOOST_TEST(th::sum(i32).dtype() == DType::int64);
  BOOST_TEST(th::sum(b).item() == 1.0);
  BOOST_TEST(th::mean(i32).dtype() == DType::float64);
  BOOST_TEST(th::argmax(f64).dtype() == DType::int64);
  BOOST_TEST(th::cast(f64, DType::int32).dtype() == DType::int32);
  BOOST_TEST(th::promote_types(DType::int64, DType::float32) == DType::float64);
  BOOST_TEST(vals(i32 * i32 - 1.0) == (std::vector<double>{0, 3}));
  BOOST_TEST(vals(th::pow(th::tensor({2, 3}, DType::int64), 3.0)) == (std::vector<double>{8, 27}));
}

BOOST_AUTO_TEST_CASE(float_to_integer_casts_are_defined) {
  // Truncation toward zero; out of range saturates; NaN is 0 (found by fuzz_call: a plain
  // C++ cast of -inf to int64 is undefined behaviour).
  Tensor f = th::tensor({2.7, -2.7, INFINITY, -INFINITY, NAN, 1e30, -1e30});
  BOOST_TEST(vals(th::cast(f, DType::int32)) ==
             (std::vector<double>{2, -2, 2147483647, -2147483648.0, 0, 2147483647, -2147483648.0}));
  auto i64 = th::cast(f, DType::int64).to_vector<std::int64_t>();
  BOOST_TEST(i64[2] == std::numeric_limits<std::int64_t>::max());
  BOOST_TEST(i64[3] == std::numeric_limits<std::int64_t>::min());
  BOOST_TEST(i64[4] == 0);
  BOOST_TEST(vals(th::cast(th::cast(f, DType::float32), DType::int32))[5] == 2147483647);
  // integer overflow wraps, as numpy's
  Tensor top = th::tensor(std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::max()}, {1});
  BOOST_TEST((top + std::int64_t(1)).to_vector<std::int64_t>()[0] == std::numeric_limits<std::int64_t>::min());
}

BOOST_AUTO_TEST_CASE(large_kernels_split_over_threads_match_a_scalar_reference) {
  // Big enough for the kernel threads (lib/cpu/parallel.hpp), in strided, broadcast and
  // contiguous layouts, with every output element checked.
  Tensor a = th::random::uniform({300, 701}, -2, 2, 1);
  Tensor b = th::random::uniform({701}, -2, 2, 2);
  Tensor y = th::tanh(th::transpose(a)) * th::expand_dims(b, 1) + th::where(th::transpose(a) > 0.0, 1.0, -1.0);
  BOOST_TEST_REQUIRE((y.shape() == th::Shape{701, 300}));
  auto av = vals(a), bv = vals(b), yv = vals(y);
  int wrong = 0;
  for (std::size_t i = 0; i < 701; ++i)
    for (std::size_t j = 0; j < 300; ++j) {
      const double x = av[j * 701 + i];
      const double want = std::tanh(x) * bv[i] + (x > 0 ? 1.0 : -1.0);
      wrong += std::fabs(yv[i * 300 + j] - want) > 1e-12;
    }
  BOOST_TEST(wrong == 0);
  Tensor f = th::cast(th::view(a, th::all(), th::range(0, std::nullopt, 2)), DType::float32);
  auto fv = f.to_vector<float>();
  BOOST_TEST(fv.size() == 300u * 351u);
  BOOST_TEST(fv[351 * 299 + 350] == float(av[299 * 701 + 700]));
}

BOOST_AUTO_TEST_CASE(matrix_vector_products_of_every_small_shape_match_a_reference) {
  // Small products skip BLAS (lib/cpu/gemv_small.cpp: four rows or columns at a time, the
  // last k % 4 one by one): every remainder, both sides of the matrix, rows with a gap
  // between them (a view of a wider matrix), and sizes past the small limit (BLAS again).
  int wrong = 0, checked = 0;
  for (DType d : {DType::float64, DType::float32}) {
    const double tol = d == DType::float64 ? 1e-13 : 2e-6;
    for (std::int64_t m : {1, 2, 3, 4, 5, 7, 8, 13, 125, 300})
      for (std::int64_t k : {1, 2, 3, 4, 5, 9, 17, 40}) {
        Tensor wide = th::cast(th::random::uniform({m, k + 3}, -1, 1, std::uint64_t(m * 100 + k)), d);
        Tensor a = th::view(wide, th::all(), th::range(1, k + 1));  // row stride k + 3
        Tensor u = th::cast(th::random::uniform({k}, -1, 1, 7), d), v = th::cast(th::random::uniform({m}, -1, 1, 8), d);
        const auto av = vals(a), uv = vals(u), vv = vals(v);
        auto expect = [&](const Tensor& got, bool trans) {
          const auto g = vals(got);
          const std::int64_t n = trans ? k : m, len = trans ? m : k;
          BOOST_TEST_REQUIRE(std::int64_t(g.size()) == n);
          for (std::int64_t i = 0; i < n; ++i) {
            double want = 0, scale = 0;
            for (std::int64_t j = 0; j < len; ++j) {
              const double p = trans ? av[std::size_t(j * k + i)] * vv[std::size_t(j)] : av[std::size_t(i * k + j)] * uv[std::size_t(j)];
              want += p;
              scale += std::fabs(p);
            }
            wrong += std::fabs(g[std::size_t(i)] - want) > tol * (scale + 1);
            ++checked;
          }
        };
        expect(th::dot(a, u), false);              // y = A u
        expect(th::dot(a.T(), v), true);           // y = A^T v (A's rows read as columns)
        expect(th::dot(v, a), true);               // a row times A
        expect(th::dot(u, a.T()), false);          // a row times A^T
        expect(th::dot(th::reshape(a, {m, k}), u), false);  // (a copy: reshape of a strided view)
      }
  }
  BOOST_TEST(checked > 20000);
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_CASE(matrix_products_on_every_engine_match_a_reference) {
  // GEMMs are cut into chunks of rows, or of columns when the result has more, on theta's
  // threads: float32 on oneDNN (sgemm, or its matmul primitive for chunks from 256^3 to sides
  // of 1024, as 330 x 320 x 320 in two chunks) or on OpenBLAS (THETA_FLAGS gemm=auto|dnnl|blas),
  // float64 on OpenBLAS held to one thread; matrix-vector products past the small kernels in
  // chunks of rows (600 x 500): every engine, both operands transposed or not, row and column
  // splits with ragged last chunks, batches folded into one product and batches looped,
  // against a float64 sum.
  struct Restore {
    th::GemmEngine saved = th::config().gemm;
    ~Restore() { th::config().gemm = saved; }
  } restore;
  int wrong = 0, checked = 0;
  for (auto [dt, e] : {std::pair{DType::float32, th::GemmEngine::automatic}, {DType::float32, th::GemmEngine::dnnl},
                       {DType::float32, th::GemmEngine::blas}, {DType::float64, th::GemmEngine::automatic}}) {
    th::config().gemm = e;
    for (auto [m, n, k] : {std::array<std::int64_t, 3>{5, 7, 3}, {67, 33, 129}, {33, 301, 70}, {130, 40, 64}, {16, 16, 2},
                           {330, 320, 320}, {600, 1, 500}, {1, 600, 500}})
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
          auto u = [dt = dt](th::Shape s, std::uint64_t seed) { return th::random::uniform(s, -1, 1, seed, dt); };
          const Tensor a = ta ? u({k, m}, 1).T() : u({m, k}, 1), b = tb ? u({n, k}, 2).T() : u({k, n}, 2);
          const auto av = vals(a), bv = vals(b), got = vals(th::dot(a, b));
          BOOST_TEST_REQUIRE(std::int64_t(got.size()) == m * n);
          for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < n; ++j) {
              double want = 0, scale = 0;
              for (std::int64_t p = 0; p < k; ++p) {
                want += av[std::size_t(i * k + p)] * bv[std::size_t(p * n + j)];
                scale += std::fabs(av[std::size_t(i * k + p)] * bv[std::size_t(p * n + j)]);
              }
              wrong += std::fabs(got[std::size_t(i * n + j)] - want) > 2e-6 * (scale + 1);
              ++checked;
            }
        }
    // batched: (3, 40, 50) @ (50, 60) folds into one product; (3, 40, 50) @ (3, 50, 60) loops
    const Tensor x = th::random::uniform({3, 40, 50}, -1, 1, 3, dt);
    for (const Tensor& w : {th::random::uniform({50, 60}, -1, 1, 4, dt), th::random::uniform({3, 50, 60}, -1, 1, 5, dt)}) {
      const auto xv = vals(x), wv = vals(w), got = vals(th::matmul(x, w));
      const bool per_batch = w.ndim() == 3;
      for (std::int64_t bi = 0; bi < 3; ++bi)
        for (std::int64_t i = 0; i < 40; ++i)
          for (std::int64_t j = 0; j < 60; ++j) {
            double want = 0;
            for (std::int64_t p = 0; p < 50; ++p)
              want += xv[std::size_t((bi * 40 + i) * 50 + p)] * wv[std::size_t((per_batch ? bi * 3000 : 0) + p * 60 + j)];
            wrong += std::fabs(got[std::size_t((bi * 40 + i) * 60 + j)] - want) > 2e-6 * 51;
            ++checked;
          }
    }
  }
  BOOST_TEST(checked > 100000);
  BOOST_TEST(wrong == 0);
  // oneDNN's products run on theta's kernel threads (OpenMP held to one thread in each): no
  // thread of their own, and the same bits from call to call
  th::config().gemm = th::GemmEngine::dnnl;
  const Tensor a = th::random::uniform({300, 200}, -1, 1, 6, DType::float32), b = th::random::uniform({200, 100}, -1, 1, 7, DType::float32);
  th::sum(th::exp(th::random::uniform({1 << 20}, -1, 1, 3, DType::float32))).item<float>();  // theta's pool started
  const auto first = vals(th::dot(a, b));
  const std::size_t threads = check::thread_count();
  bool same_bits = true;
  for (int i = 0; i < 3; ++i) same_bits = same_bits && vals(th::dot(a, b)) == first;
  BOOST_TEST(same_bits);
  BOOST_TEST(check::thread_count() == threads);
}

BOOST_AUTO_TEST_CASE(arg_reductions_over_every_axis_and_layout_match_a_reference) {
  // argmax/argmin view x as rows when its other axes merge into one evenly strided axis,
  // else copy it with the axis last: every axis of a 3-d tensor, contiguous, transposed and
  // strided, with ties (the first wins) and a NaN (it wins, as in numpy).
  std::vector<double> v(2 * 3 * 4);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = double((i * 7) % 5);
  v[17] = NAN;
  const Tensor base = th::tensor(v, {2, 3, 4});
  const std::vector<Tensor> layouts{base, th::transpose(base, {2, 0, 1}),
                                    th::view(th::tensor(std::vector<double>(2 * 3 * 8, 0.0), {2, 3, 8}), th::all(),
                                             th::all(), th::range(0, 8, 2)) + base};
  int wrong = 0;
  for (const Tensor& x : layouts) {
    const th::Shape s = x.shape();
    const auto xv = vals(x);  // row-major values of x
    for (bool is_max : {true, false}) {
      for (std::int64_t ax = 0; ax < 3; ++ax) {
        const auto got = vals(is_max ? th::argmax(x, ax) : th::argmin(x, ax));
        std::size_t k = 0;
        for (std::int64_t i = 0; i < s[0]; ++i)
          for (std::int64_t j = 0; j < s[1]; ++j)
            for (std::int64_t l = 0; l < s[2]; ++l) {
              std::int64_t at[3] = {i, j, l};
              if (at[ax] != 0) continue;
              std::int64_t best = 0;
              double bv = NAN;
              for (std::int64_t t = 0; t < s[std::size_t(ax)]; ++t) {
                at[ax] = t;
                const double e = xv[std::size_t((at[0] * s[1] + at[1]) * s[2] + at[2])];
                if (t == 0 || (bv == bv && (e != e || (is_max ? e > bv : e < bv)))) bv = e, best = t;
              }
              wrong += got[k++] != double(best);
            }
      }
      const auto whole = (is_max ? th::argmax(x) : th::argmin(x)).item<std::int64_t>();
      std::int64_t best = 0;
      for (std::size_t t = 1; t < xv.size() && xv[std::size_t(best)] == xv[std::size_t(best)]; ++t)
        if (xv[t] != xv[t] || (is_max ? xv[t] > xv[std::size_t(best)] : xv[t] < xv[std::size_t(best)])) best = std::int64_t(t);
      wrong += whole != best;
    }
  }
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_CASE(kernels_walk_tensors_of_many_dimensions) {
  // 17 dims of size 2 in reversed order: none merge, more than the walker keeps on the
  // stack (16); big enough for the kernel threads. Element i of the transposed view is
  // element rev(i) of x, whose value is its flat index.
  const std::int64_t nd = 17, n = std::int64_t(1) << nd;
  Tensor x = th::reshape(th::arange(double(n)), th::Shape(static_cast<std::size_t>(nd), 2));
  std::vector<std::int64_t> perm(static_cast<std::size_t>(nd));
  for (std::int64_t i = 0; i < nd; ++i) perm[std::size_t(i)] = nd - 1 - i;
  const auto yv = vals(th::transpose(x, perm) * 2.0 + 1.0);
  BOOST_TEST_REQUIRE(yv.size() == std::size_t(n));
  int wrong = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t rev = 0;
    for (std::int64_t b = 0; b < nd; ++b) rev |= ((i >> b) & 1) << (nd - 1 - b);
    wrong += yv[std::size_t(i)] != 2.0 * double(rev) + 1.0;
  }
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_CASE(whole_sums_are_pairwise_like_numpy) {
  // 10^6 float32 0.1s: one running sum drifts by ~1% (each add rounds at the sum's
  // magnitude); numpy's pairwise order stays within a few ulp of the sum of the float32
  // values. Sums, products and extremes of any size agree with a float64 reference.
  const std::int64_t n = 1'000'000;
  Tensor t = th::full({n}, 0.1, th::DType::float32);
  const double exact = double(n) * double(0.1f);
  BOOST_TEST(std::fabs(th::sum(t).item() - exact) < 1e-6 * exact);
  for (std::int64_t m : {1, 7, 8, 9, 127, 128, 129, 1000, 4097}) {
    Tensor x = th::random::uniform({m}, 0.5, 1.5, std::uint64_t(m));
    const auto v = x.to_vector();
    double s = 0, p = 1, mx = v[0], mn = v[0];
    for (double e : v) s += e, p *= e, mx = std::max(mx, e), mn = std::min(mn, e);
    BOOST_TEST(th::sum(x).item() == s, boost::test_tools::tolerance(1e-13));
    BOOST_TEST(th::prod(x).item() == p, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(th::max(x).item() == mx);
    BOOST_TEST(th::min(x).item() == mn);
  }
  Tensor with_nan = th::tensor({1.0, 2.0, std::nan(""), 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0});
  BOOST_TEST(std::isnan(th::max(with_nan).item()));
  BOOST_TEST(std::isnan(th::sum(with_nan).item()));
}

// Per-channel reductions (the batch and image axes of (N, C, H, W) into C: a bias gradient,
// batch norm's statistics) take their own kernel: each line in pairwise order, the channels
// over the threads. Against a float64 reference, every kind, both float dtypes, NaN
// propagating; and a float32 sum of 10^6 0.1s per channel stays accurate.
BOOST_AUTO_TEST_CASE(per_channel_reductions_match_a_reference) {
  for (th::DType dt : {th::DType::float64, th::DType::float32}) {
    const th::Shape s{3, 5, 7, 11};
    std::vector<double> v = th::random::uniform(s, 0.5, 1.5, 3, th::DType::float64).to_vector<double>();
    v[2 * 5 * 77 + 3 * 77 + 40] = std::nan("");  // channel 3
    const Tensor x = th::tensor(v, s).astype(dt);
    const auto xv = x.to_vector<double>();
    std::vector<double> sum(5, 0), prod(5, 1), mx(5, -1e300), mn(5, 1e300);
    for (std::size_t i = 0; i < xv.size(); ++i) {
      const std::size_t c = (i / 77) % 5;
      sum[c] += xv[i], prod[c] *= xv[i];
      mx[c] = std::isnan(xv[i]) || std::isnan(mx[c]) ? std::nan("") : std::max(mx[c], xv[i]);
      mn[c] = std::isnan(xv[i]) || std::isnan(mn[c]) ? std::nan("") : std::min(mn[c], xv[i]);
    }
    const double tol = dt == th::DType::float32 ? 1e-5 : 1e-13;
    const auto gs = th::sum(x, {0, 2, 3}).to_vector<double>(), gp = th::prod(x, {0, 2, 3}).to_vector<double>();
    const auto gx = th::max(x, {0, 2, 3}, true).to_vector<double>(), gn = th::min(x, {0, 2, 3}).to_vector<double>();
    for (std::size_t c = 0; c < 5; ++c) {
      if (c == 3) {
        BOOST_TEST((std::isnan(gs[c]) && std::isnan(gp[c]) && std::isnan(gx[c]) && std::isnan(gn[c])));
        continue;
      }
      BOOST_TEST(std::fabs(gs[c] - sum[c]) <= tol * sum[c], th::dtype_name(dt) << " sum " << c);
      BOOST_TEST(std::fabs(gp[c] - prod[c]) <= 1e3 * tol * prod[c], th::dtype_name(dt) << " prod " << c);
      BOOST_TEST(gx[c] == mx[c]);
      BOOST_TEST(gn[c] == mn[c]);
    }
  }
  const Tensor t = th::full({4, 2, 500, 500}, 0.1, th::DType::float32);
  const double exact = 1e6 * double(0.1f);
  for (double v : th::sum(t, {0, 2, 3}).to_vector<double>()) BOOST_TEST(std::fabs(v - exact) < 1e-6 * exact);
}

// The largest error of a float32 function over `x` against a double-precision reference,
// relative (absolute below `tiny`, where float32 results are subnormal).
template <class F, class Ref>
double worst_error(F f, Ref ref, const std::vector<float>& x, double tiny = 1e-300) {
  const std::vector<float> y = f(th::tensor(x, {std::int64_t(x.size())})).template to_vector<float>();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = ref(double(x[i])), err = std::fabs(y[i] - want);
    worst = std::max(worst, std::fabs(want) < tiny ? (err < 1.2e-38 ? 0.0 : 1.0) : err / std::fabs(want));
  }
  return worst;
}

// x from lo to hi by step, and the special values.
std::vector<float> grid(double lo, double hi, double step, std::initializer_list<float> special) {
  std::vector<float> x;
  for (double v = lo; v <= hi; v += step) x.push_back(float(v));
  x.insert(x.end(), special);
  return x;
}

BOOST_AUTO_TEST_CASE(float32_tanh_is_accurate) {
  // float32 tanh is a vectorisable rational function (lib/cpu/elementwise.cpp): within
  // 4e-7 relative of the double-precision tanh everywhere, NaN stays NaN, +-inf -> +-1.
  const auto x = grid(-20, 20, 1e-3, {1e-30f, -1e-8f, 3e-4f, INFINITY, -INFINITY});
  BOOST_TEST(th::tanh(th::tensor(x, {std::int64_t(x.size())})).dtype() == DType::float32);
  BOOST_TEST(worst_error([](const Tensor& t) { return th::tanh(t); }, [](double v) { return std::tanh(v); }, x) < 4e-7);
  BOOST_TEST(std::isnan(th::tanh(th::tensor({NAN}, DType::float32)).item<float>()));
}

BOOST_AUTO_TEST_CASE(float32_erf_is_accurate) {
  // float32 erf (gelu's) is a vectorisable rational function (core/scalar_math.hpp): within
  // 4e-7 of the double-precision erf, relative near 0 too; NaN stays NaN, +-inf -> +-1.
  const auto x = grid(-6, 6, 1e-4, {1e-30f, -1e-8f, 3e-4f, INFINITY, -INFINITY});
  BOOST_TEST(worst_error([](const Tensor& t) { return th::erf(t); }, [](double v) { return std::erf(v); }, x) < 4e-7);
  BOOST_TEST(std::isnan(th::erf(th::tensor({NAN}, DType::float32)).item<float>()));
}

BOOST_AUTO_TEST_CASE(float32_sigmoid_is_accurate) {
  // float32 sigmoid uses a vectorisable exp (lib/core/scalar_math.hpp exp_f32): within 3e-7
  // relative of the double-precision sigmoid over the whole range, tiny values included
  // (subnormal results down to e^-104), saturating at 1 and 0, NaN staying NaN.
  const auto x = grid(-110, 110, 1e-3, {0.0f, -0.0f, 1e-30f, -1e-8f, 88.7f, -87.5f, INFINITY, -INFINITY});
  BOOST_TEST(worst_error([](const Tensor& t) { return th::sigmoid(t); }, [](double v) { return 1 / (1 + std::exp(-v)); }, x,
                         1e-37) < 3e-7);
  BOOST_TEST(std::isnan(th::sigmoid(th::tensor({NAN}, DType::float32)).item<float>()));
  BOOST_TEST(th::sigmoid(th::tensor({-200.0}, DType::float32)).item<float>() == 0.0f);
}

boost::test_tools::assertion_result cache_enabled(boost::unit_test::test_unit_id) {
  const char* v = std::getenv("THETA_CPU_CACHE_MB");  // the sanitizer stage turns it off
  return !(v && std::atoi(v) == 0);
}

BOOST_AUTO_TEST_CASE(large_buffers_are_reused, *boost::unit_test::precondition(cache_enabled)) {
  // The CPU caching allocator (lib/cpu/allocator.hpp): a released large block comes back for
  // the next allocation of its size, with fresh contents.
  const void* first;
  {
    Tensor a = th::ones({100000});
    first = th::detail::value_of(a, "test").bytes();
  }
  Tensor b = th::zeros({100000});
  BOOST_TEST(th::detail::value_of(b, "test").bytes() == first);
  BOOST_TEST(th::sum(b).item<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(forward_values) {
  Tensor a = th::tensor({{1, 2, 3}, {4, 5, 6}});
  BOOST_TEST(vals(th::sum(a, 0)) == (std::vector<double>{5, 7, 9}));
  BOOST_TEST(vals(th::sum(a, 1, true)) == (std::vector<double>{6, 15}));
  BOOST_TEST((th::sum(a, 1, true).shape() == th::Shape{2, 1}));
  BOOST_TEST(vals(th::max(a, 1)) == (std::vector<double>{3, 6}));
  BOOST_TEST(vals(th::min(a, 0)) == (std::vector<double>{1, 2, 3}));
  BOOST_TEST(vals(th::prod(a, 1)) == (std::vector<double>{6, 120}));
  BOOST_TEST(vals(th::argmax(a, 1)) == (std::vector<double>{2, 2}));
  BOOST_TEST(th::argmax(a).item() == 5);
  BOOST_TEST(vals(th::argmin(a, 0)) == (std::vector<double>{0, 0, 0}));
  // integer max/min, including the extremes (int64 min once returned -2^63: found by test_property)
  for (DType d : {DType::int32, DType::int64}) {
    Tensor ai = th::cast(a, d);
    BOOST_TEST(vals(th::min(ai, 1)) == (std::vector<double>{1, 4}));
    BOOST_TEST(vals(th::max(ai, 0)) == (std::vector<double>{4, 5, 6}));
    BOOST_TEST(th::min(ai).dtype() == d);
  }
  const std::int64_t top = std::numeric_limits<std::int64_t>::max();
  Tensor extremes = th::tensor(std::vector<std::int64_t>{top, top - 1, top}, {3});
  BOOST_TEST(th::min(extremes).item<std::int64_t>() == top - 1);
  BOOST_TEST(th::max(-extremes).item<std::int64_t>() == 1 - top);
  // empty: fine when no reduced line is empty, an error when one is (numpy)
  BOOST_TEST((th::max(th::zeros({0, 3}), 1).shape() == th::Shape{0}));
  BOOST_TEST(check::has(check::message_of<th::ValueError>([] { th::max(th::zeros({0, 3}), 0); }), "zero-size"));
  BOOST_TEST(vals(a.T()) == (std::vector<double>{1, 4, 2, 5, 3, 6}));
  BOOST_TEST(vals(th::view(a, 1)) == (std::vector<double>{4, 5, 6}));
  BOOST_TEST(vals(th::view(a, th::all(), th::range(-2, std::nullopt))) == (std::vector<double>{2, 3, 5, 6}));
  BOOST_TEST(vals(th::view(a, th::all(), th::range(std::nullopt, std::nullopt, -1))) ==
             (std::vector<double>{3, 2, 1, 6, 5, 4}));
  BOOST_TEST(vals(th::take(a, th::tensor({1, 0}, DType::int64), 1)) == (std::vector<double>{2, 1, 5, 4}));
  BOOST_TEST(vals(th::concatenate({a, a}, 0)).size() == 12u);
  BOOST_TEST((th::stack({a, a}, 2).shape() == th::Shape{2, 3, 2}));
  BOOST_TEST(vals(th::where(a > 3.0, a, -a)) == (std::vector<double>{-1, -2, -3, 4, 5, 6}));
  BOOST_TEST(vals(th::clip(a, 2, 4)) == (std::vector<double>{2, 2, 3, 4, 4, 4}));
  BOOST_TEST(vals(th::relu(a - 3.0)) == (std::vector<double>{0, 0, 0, 1, 2, 3}));
  BOOST_TEST(vals(th::sign(a - 3.0)) == (std::vector<double>{-1, -1, 0, 1, 1, 1}));
  BOOST_TEST(vals(th::outer(th::tensor({1, 2}), th::tensor({3, 4}))) == (std::vector<double>{3, 4, 6, 8}));
  BOOST_TEST(th::dot(th::tensor({1, 2, 3}), th::tensor({4, 5, 6})).item() == 32.0);
  BOOST_TEST(vals(th::dot(a, th::tensor({{7, 8}, {9, 10}, {11, 12}}))) == (std::vector<double>{58, 64, 139, 154}));
  // float32 GEMM and GEMV go through BLAS too.
  Tensor f = th::tensor({{1, 2}, {3, 4}}, DType::float32);
  BOOST_TEST(vals(th::dot(f, f)) == (std::vector<double>{7, 10, 15, 22}));
  BOOST_TEST(vals(th::dot(f, th::tensor({1, 1}, DType::float32))) == (std::vector<double>{3, 7}));
  BOOST_TEST(vals(th::matmul(th::tensor({{1, 2}}, DType::int64), th::tensor({{3}, {4}}, DType::int64))) ==
             (std::vector<double>{11}));
  // softmax and logsumexp stay finite for huge inputs.
  Tensor big = th::tensor({1000, 1000});
  BOOST_TEST(vals(th::softmax(big)) == (std::vector<double>{0.5, 0.5}));
  BOOST_TEST(std::fabs(th::logsumexp(big).item() - (1000 + std::log(2.0))) < 1e-9);
  BOOST_TEST(vals(th::sigmoid(th::tensor({-1000, 1000}))) == (std::vector<double>{0, 1}));
  // NaN propagates through maximum, as numpy.
  BOOST_TEST(std::isnan(th::max(th::tensor({1, NAN, 3})).item()));
}

BOOST_AUTO_TEST_CASE(views_share_and_reshape_copies_when_needed) {
  Tensor a = th::arange(0, 12, 1, DType::float64);
  Tensor m = th::reshape(a, {3, 4});
  BOOST_TEST(vals(th::reshape(m.T(), {-1})) == (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  BOOST_TEST(vals(th::squeeze(th::expand_dims(m, 1), 1)) == vals(m));
  BOOST_TEST(vals(th::broadcast_to(th::tensor({1, 2}), {2, 2})) == (std::vector<double>{1, 2, 1, 2}));
}

BOOST_AUTO_TEST_CASE(printing_like_numpy) {
  BOOST_TEST(str(th::tensor({5, 7, 9})) == "[5. 7. 9.]");
  BOOST_TEST(str(th::tensor({{58, 64}, {139, 154}})) == "[[ 58.  64.]\n [139. 154.]]");
  BOOST_TEST(str(th::tensor(7.0)) == "7.0");
  BOOST_TEST(str(th::tensor(58.05881643915938)) == "58.05881643915938");
  BOOST_TEST(str(th::tensor({1.5, 2.25})) == "[1.5  2.25]");
  BOOST_TEST(str(th::tensor({-0.62460173, -0.42046766})) == "[-0.62460173 -0.42046766]");
  BOOST_TEST(str(th::arange(4)) == "[0 1 2 3]");
  BOOST_TEST(str(th::tensor({1, 2}) > 1.5) == "[False  True]");
  BOOST_TEST(str(th::tensor({1e-5, 1e3})) == "[1.e-05 1.e+03]");
  BOOST_TEST(str(th::tensor({{{1, 2}}, {{3, 4}}})) == "[[[1. 2.]]\n\n [[3. 4.]]]");
  BOOST_TEST(str(th::zeros({0})) == "[]");
  std::string longline = str(th::arange(0, 30, 1, DType::float64));
  BOOST_TEST(longline.find('\n') != std::string::npos);  // wraps at 75 columns
  std::string summary = str(th::arange(2000));
  BOOST_TEST(summary == "[   0    1    2 ... 1997 1998 1999]");
}

// Matrix-vector products go straight to the GEMV kernels (theta's small ones, or BLAS)
// with the operands' strides: every layout a view can give, each side, both float dtypes,
// small and BLAS-sized, against a plain loop over the logical elements.
BOOST_AUTO_TEST_CASE(matrix_vector_products_over_layouts) {
  using th::all;
  using th::range;
  auto naive = [](const Tensor& m, const Tensor& x, bool vector_first) {
    const std::vector<double> mv = vals(m), xv = vals(x);
    const std::int64_t r = m.shape()[0], c = m.shape()[1];
    std::vector<double> y(std::size_t(vector_first ? c : r), 0.0);
    for (std::int64_t i = 0; i < r; ++i)
      for (std::int64_t j = 0; j < c; ++j)
        y[std::size_t(vector_first ? j : i)] += mv[std::size_t(i * c + j)] * xv[std::size_t(vector_first ? i : j)];
    return y;
  };
  int cases = 0;
  for (DType dt : {DType::float64, DType::float32})
    for (auto [r, c] : {std::pair<std::int64_t, std::int64_t>{125, 4}, {5, 3}, {1, 7}, {7, 1}, {100, 90}}) {
      const double tol = dt == DType::float64 ? 1e-12 : 1e-4;
      auto u = [&](th::Shape s, std::uint64_t seed) { return th::random::uniform(s, -1, 1, seed, dt); };
      // matrices of r x c: contiguous, a transposed copy's view, a column-strided view, rows broadcast
      std::vector<Tensor> ms{u({r, c}, 1), u({c, r}, 2).T(), th::view(u({r, 2 * c}, 3), all(), range(std::nullopt, std::nullopt, 2)),
                             th::broadcast_to(u({1, c}, 4), {r, c})};
      for (bool vector_first : {false, true}) {
        const std::int64_t k = vector_first ? r : c;
        // vectors of k: contiguous, strided, one value broadcast
        std::vector<Tensor> xs{u({k}, 5), th::view(u({2 * k}, 6), range(std::nullopt, std::nullopt, 2)),
                               th::broadcast_to(u({1}, 7), {k})};
        for (const Tensor& m : ms)
          for (const Tensor& x : xs) {
            const Tensor y = vector_first ? th::dot(x, m) : th::dot(m, x);
            BOOST_TEST(y.dtype() == dt);
            const std::vector<double> got = vals(y), want = naive(m, x, vector_first);
            BOOST_REQUIRE(got.size() == want.size());
            for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
            ++cases;
          }
      }
    }
  BOOST_TEST(cases == 2 * 5 * 2 * 4 * 3);
}

// String tensors (DType::string, host-only text as ONNX's): made from and read back as
// std::string, printed as numpy prints them, converted to and from numbers by astype, and
// refused with a th::TypeError naming the op by everything else.
BOOST_AUTO_TEST_CASE(string_tensors_hold_text_and_convert_with_astype) {
  const std::vector<std::string> words{"monday", "", "Tuesday", "monday", "\xc3\xa9t\xc3\xa9"};
  const Tensor t = th::tensor(words, {5});
  BOOST_TEST(t.dtype() == DType::string);
  BOOST_TEST((t.shape() == th::Shape{5}));
  BOOST_TEST(t.to_vector<std::string>() == words, boost::test_tools::per_element());
  std::ostringstream os;
  os << th::tensor(std::vector<std::string>{"a", "bc", "", "d"}, {2, 2});
  BOOST_TEST(os.str() == "[['a' 'bc']\n ['' 'd']]");
  // numbers as text and back: shortest round-trip text, integers exact, numpy's spellings
  const Tensor f = th::tensor(std::vector<double>{0.1, -2.5e-8, 1e300, std::numeric_limits<double>::infinity(),
                                                  std::numeric_limits<double>::quiet_NaN()}, {5});
  const auto text = f.astype(DType::string).to_vector<std::string>();
  BOOST_TEST(text == (std::vector<std::string>{"0.1", "-2.5e-08", "1e+300", "inf", "nan"}), boost::test_tools::per_element());
  const auto back = f.astype(DType::string).astype(DType::float64).to_vector<double>();
  for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(back[i] == vals(f)[i]);
  BOOST_TEST(std::isnan(back[4]));
  BOOST_TEST(th::tensor(std::vector<float>{0.9767611f}, {1}).astype(DType::string).to_vector<std::string>()[0] == "0.9767611");
  const Tensor big = th::tensor(std::vector<std::int64_t>{9007199254740993, -7}, {2});
  BOOST_TEST(big.astype(DType::string).to_vector<std::string>()[0] == "9007199254740993");
  BOOST_TEST(big.astype(DType::string).astype(DType::int64).to_vector<std::int64_t>() ==
                 (std::vector<std::int64_t>{9007199254740993, -7}), boost::test_tools::per_element());
  const Tensor spelled = th::tensor(std::vector<std::string>{"NaN", "INF", "+INF", "-INF", "1e3", " 2"}, {6});
  const auto read = spelled.astype(DType::float32).to_vector<double>();
  BOOST_TEST(std::isnan(read[0]));
  BOOST_TEST(read[1] == std::numeric_limits<double>::infinity());
  BOOST_TEST(read[2] == std::numeric_limits<double>::infinity());
  BOOST_TEST(read[3] == -std::numeric_limits<double>::infinity());
  BOOST_TEST(read[4] == 1000.0);
  BOOST_TEST(read[5] == 2.0);
  BOOST_TEST(th::tensor(std::vector<bool>{true, false}, {2}).astype(DType::string).to_vector<std::string>() ==
                 (std::vector<std::string>{"True", "False"}), boost::test_tools::per_element());
  // text that is no number, operations on text, files: errors that say what to do
  std::string m = check::message_of<th::ValueError>([&] { th::tensor(std::vector<std::string>{"12", "twelve"}, {2}).astype(DType::int64).to_vector<double>(); });
  BOOST_TEST(check::has(m, "\"twelve\" is not an integer"), m);
  m = check::message_of<th::ValueError>([&] { th::tensor(std::vector<std::string>{"1.5"}, {1}).astype(DType::int32).to_vector<double>(); });
  BOOST_TEST(check::has(m, "\"1.5\" is not an integer"), m);
  const Tensor named = th::tensor(words, {5}).set_name("days");
  for (const auto& [what, f] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"add", [&] { named + 1.0; }}, {"sum", [&] { th::sum(named); }}, {"exp", [&] { th::exp(named); }},
           {"eq", [&] { (void)(named == named); }}, {"reshape", [&] { th::reshape(named, {1, 5}); }}}) {
    m = check::message_of<th::TypeError>(f);
    BOOST_TEST(check::has(m, what), m);
    BOOST_TEST(check::has(m, "days"), m);
    BOOST_TEST(check::has(m, "astype"), m);
  }
  m = check::message_of<th::ShapeError>([&] { th::tensor(words, {2, 2}); });
  BOOST_TEST(check::has(m, "5 strings do not fill shape (2, 2)"), m);
  m = check::message_of<th::TypeError>([&] { th::tensor_from_data(nullptr, DType::string, {0}); });
  BOOST_TEST(check::has(m, "std::vector<std::string>"), m);
  m = check::message_of<th::TypeError>([&] { th::save_npy("/tmp/theta_text.npy", named); });
  BOOST_TEST(check::has(m, "string tensor"), m);
}

// A frozen function takes and returns text: its string placeholder is fed th::tensor(strings),
// numbers parsed from it and text made of numbers come back; saving it is a clear error.
BOOST_AUTO_TEST_CASE(frozen_functions_take_and_return_text) {
  const Tensor s = th::placeholder(DType::string, 1, "s");
  const Tensor x = s.astype(DType::float64);
  const Tensor doubled = (2.0 * x).astype(DType::string);
  const th::Function f = th::function({s}, {th::sum(x), doubled});
  for (int call = 0; call < 2; ++call) {  // the second call reuses the first's buffers
    const auto r = f(th::tensor(std::vector<std::string>{"1.5", "-2", "1e2"}, {3}));
    BOOST_TEST(r[0].item() == 99.5);
    BOOST_TEST(r[1].to_vector<std::string>() == (std::vector<std::string>{"3", "-4", "200"}), boost::test_tools::per_element());
  }
  std::string m = check::message_of<th::TypeError>([&] { th::save("/tmp/theta_text.theta", f); });
  BOOST_TEST(check::has(m, "text"), m);
  // numbers for text and text for numbers are no silent conversions
  m = check::message_of<th::TypeError>([&] { f(th::tensor({1.0, 2.0})); });
  BOOST_TEST(check::has(m, "string"), m);
  const Tensor v = th::placeholder(DType::float64, 1, "v");
  const th::Function g = th::function({v}, 2.0 * v);
  m = check::message_of<th::TypeError>([&] { g(th::tensor(std::vector<std::string>{"1"}, {1})); });
  BOOST_TEST(check::has(m, "string"), m);
}
