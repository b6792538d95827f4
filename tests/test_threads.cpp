// Thread safety: each thread records on its own tape; one th::Function may be called from
// many threads at once; concurrent training calls are serializable (no lost or torn update).
#define BOOST_TEST_MODULE threads
#include <atomic>
#include <thread>

#include "check.hpp"
#include "core/node.hpp"

using check::vals;
using th::Tensor;

namespace {

constexpr int kThreads = 8;

template <class F>
void run_threads(F body) {
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) ts.emplace_back(body, t);
  for (auto& t : ts) t.join();
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_thread_records_on_its_own_tape) {
  // A leaf shared by every thread, read-only; each thread builds and differentiates its own graph.
  const Tensor common = th::variable(th::tensor({1.0, 2.0, 3.0}));
  std::atomic<int> wrong{0};
  const std::int64_t live_before = th::detail::live_nodes();
  run_threads([&](int t) {
    for (int it = 0; it < 300; ++it) {
      Tensor w = th::variable(th::tensor({double(t), double(it), 1.0}));
      Tensor cost = th::sum(th::sqr(w * common) + th::sin(w));
      auto g = th::grad(cost, {w, common});
      // d/dw = 2 w c^2 + cos(w); d/dc = 2 c w^2
      auto gw = vals(g[0]), gc = vals(g[1]), wv = vals(w), cv = vals(common);
      for (int i = 0; i < 3; ++i) {
        if (std::fabs(gw[i] - (2 * wv[i] * cv[i] * cv[i] + std::cos(wv[i]))) > 1e-9) ++wrong;
        if (std::fabs(gc[i] - 2 * cv[i] * wv[i] * wv[i]) > 1e-9) ++wrong;
      }
    }
  });
  BOOST_TEST(wrong.load() == 0);
  BOOST_TEST(th::detail::live_nodes() == live_before);  // every thread's tape was released
}

BOOST_AUTO_TEST_CASE(one_function_called_from_eight_threads_matches_serial_calls) {
  auto x = th::dmatrix("x");
  auto v = th::dvector("v");
  Tensor y = th::tanh(th::dot(x, v)) + th::logsumexp(x, 1);
  auto f = th::function({x, v}, {y, th::grad(th::sum(y), v)});
  const int calls = 100;
  std::vector<std::vector<double>> serial(kThreads * calls), parallel(kThreads * calls);
  auto arg_x = [](int k) { return check::input({5 + k % 3, 4}, 1000 + std::uint64_t(k), -1, 1); };
  auto arg_v = [](int k) { return check::input({4}, 5000 + std::uint64_t(k), -1, 1); };
  auto flat = [](const th::Result& r) {
    auto a = vals(r[0]), b = vals(r[1]);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  for (int k = 0; k < kThreads * calls; ++k) serial[std::size_t(k)] = flat(f(arg_x(k), arg_v(k)));
  run_threads([&](int t) {
    for (int i = 0; i < calls; ++i) {
      int k = t * calls + i;
      parallel[std::size_t(k)] = flat(f(arg_x(k), arg_v(k)));
    }
  });
  BOOST_TEST((serial == parallel));  // bit-identical
}

BOOST_AUTO_TEST_CASE(concurrent_training_calls_lose_no_update) {
  // SGD on the seed's regression: the same step applied 8 x 50 times, serially and from 8 threads.
  auto x = th::dmatrix("x");
  auto y = th::dvector("y");
  const Tensor X = check::input({32, 4}, 3, -1, 1), Y = check::input({32}, 4, -1, 1);
  auto make = [&](th::Shared& w, th::Shared& steps) {
    Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
    return th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}, {steps, steps + 1}});
  };
  th::Shared w1 = th::shared(th::zeros({4}), "w"), n1 = th::shared(th::tensor(std::int64_t(0)), "steps");
  th::Shared w2 = th::shared(th::zeros({4}), "w"), n2 = th::shared(th::tensor(std::int64_t(0)), "steps");
  auto serial = make(w1, n1), parallel = make(w2, n2);
  for (int k = 0; k < kThreads * 50; ++k) serial(X, Y);
  run_threads([&](int) {
    for (int i = 0; i < 50; ++i) parallel(X, Y);
  });
  BOOST_TEST(n2.get_value().item<std::int64_t>() == kThreads * 50);
  BOOST_TEST(vals(w2.get_value()) == vals(w1.get_value()), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(shared_values_are_never_torn) {
  // Writers add 1 to every element of a large vector; readers (get_value and eager math on
  // the shared variable itself) must always see all elements equal.
  const std::int64_t n = 20000;
  th::Shared v = th::shared(th::zeros({n}), "v");
  auto bump = th::function(std::vector<Tensor>{}, th::sum(v), {{v, v + 1.0}});
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto a = vals(v.get_value());
      if (a.front() != a.back()) ++torn;
      const double total = th::sum(v).item<double>();  // an eager op reading the shared variable
      if (std::fmod(total, double(n)) != 0) ++torn;
      ++reads;
    }
  });
  run_threads([&](int) {
    for (int i = 0; i < 40; ++i) bump();
  });
  done = true;
  reader.join();
  BOOST_TEST(torn.load() == 0);
  BOOST_TEST(reads.load() > 0);
  BOOST_TEST(vals(v.get_value())[123] == double(kThreads * 40));
}

BOOST_AUTO_TEST_CASE(concurrent_convolutions_and_random_draws_match_serial) {
  // conv2d turns OpenBLAS single-threaded for its region and spreads the batch over the
  // kernel threads (float64: theta's kernels; float32: oneDNN's primitives, cached and shared
  // by every thread, each with its own scratchpad); several user threads at once must
  // neither race nor change the numbers.
  th::ConvOptions o;
  o.border_mode = th::Padding::half();
  for (th::DType dt : {th::DType::float64, th::DType::float32}) {
    const Tensor x = th::random::uniform({6, 3, 9, 8}, -1, 1, 1, dt), w = th::random::uniform({4, 3, 3, 3}, -1, 1, 2, dt);
    const Tensor xs = th::placeholder(dt, 4, "x"), ws = th::placeholder(dt, 4, "w");
    const Tensor y = th::conv2d(xs, ws, o);
    const auto g = th::grad(th::sum(y * y), std::vector<Tensor>{xs, ws});
    const th::Function f = th::function({xs, ws}, {th::pool_2d(y, {2, 2}), g[0], g[1]});
    const th::Result want = f(x, w);
    const auto eager = vals(th::conv2d(x, w, o));
    th::RandomStreams srng(3);
    const th::Function draw = th::function(std::vector<Tensor>{}, srng.uniform({1000}));
    std::atomic<int> wrong{0};
    run_threads([&](int) {
      for (int i = 0; i < 5; ++i) {
        const th::Result r = f(x, w);
        for (std::size_t k = 0; k < 3; ++k)
          if (vals(r[k]) != vals(want[k])) ++wrong;
        if (vals(th::conv2d(x, w, o)) != eager) ++wrong;
        draw.call({});
      }
    });
    BOOST_TEST(wrong.load() == 0, th::dtype_name(dt));
    // 8 threads x 5 calls: the stream advanced once per call, none lost
    BOOST_TEST(srng.state().get_value().to_vector<std::int64_t>()[1] == kThreads * 5);
  }
}

BOOST_AUTO_TEST_CASE(whole_programs_called_from_eight_threads_match_serial_calls) {
  // The native tier's whole programs (freeze/whole.cpp, compiled at once under native=sync):
  // a training step (its calls serialized by the variables' stripes) and a function without
  // updates (one call at a time runs the compiled program, the others the interpreter),
  // each from 8 threads, against serial calls, with a reader of the variable meanwhile.
  const th::NativeMode saved = th::config().native;
  th::config().native = th::NativeMode::sync;
  auto x = th::dmatrix("x");
  auto y = th::dvector("y");
  const Tensor X = check::input({125, 4}, 7, -1, 1), Y = check::input({125}, 8, -1, 1);
  auto make = [&](th::Shared& w) {
    Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
    return th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
  };
  th::Shared w1 = th::shared(th::zeros({4}), "w"), w2 = th::shared(th::zeros({4}), "w");
  auto serial = make(w1), parallel = make(w2);
  for (int k = 0; k < kThreads * 50 + 3; ++k) serial(X, Y);
  for (int k = 0; k < 3; ++k) parallel(X, Y);  // planned and compiled
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      if (vals(w2.get_value()).size() != 4u) ++torn;
    }
  });
  run_threads([&](int) {
    for (int i = 0; i < 50; ++i) parallel(X, Y);
  });
  done = true;
  reader.join();
  BOOST_TEST((vals(w2.get_value()) == vals(w1.get_value())));  // bit-identical
  BOOST_TEST(torn.load() == 0);
  // set_value between calls: the next calls start from it
  w1.set_value(th::zeros({4}));
  w2.set_value(th::zeros({4}));
  for (int k = 0; k < 3; ++k) serial(X, Y), parallel(X, Y);
  BOOST_TEST((vals(w2.get_value()) == vals(w1.get_value())));

  auto v = th::dvector("v");
  auto f = th::function({x, v}, {th::tanh(th::dot(x, v)), th::sum(th::exp(x * 0.5))});
  const Tensor V = check::input({4}, 9, -1, 1);
  std::vector<double> want;
  for (const Tensor& t : f(X, V)) for (double d : vals(t)) want.push_back(d);
  for (int k = 0; k < 3; ++k) f(X, V);
  BOOST_TEST(th::debugprint(f).find("[whole program: ") != std::string::npos, th::debugprint(f));
  std::atomic<int> wrong{0};
  run_threads([&](int) {
    for (int i = 0; i < 200; ++i) {
      std::vector<double> got;
      for (const Tensor& t : f(X, V)) for (double d : vals(t)) got.push_back(d);
      if (got != want) ++wrong;
    }
  });
  BOOST_TEST(wrong.load() == 0);
  th::config().native = saved;
}

// One thread budget: OpenBLAS runs on the calling thread only; theta cuts its products into
// chunks on its own pool, whose workers sleep between regions (after polling for the next
// one for at most 100 us). OpenBLAS's own workers would
// spin for ~0.1 s after each call, taking a core: after float64 products, a matrix-vector
// product and a solve, the process burns (almost) no CPU while the caller sleeps. (OpenBLAS's
// worker also spins for ~0.1 s when the library loads, before theta can hold it: waited out.)
BOOST_AUTO_TEST_CASE(no_thread_spins_after_products_and_solves) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Tensor a = th::random::uniform({400, 400}, -1, 1, 1) + 20.0 * th::eye(400);
  const Tensor b = th::random::uniform({400, 300}, -1, 1, 2), v = th::random::uniform({400}, -1, 1, 3);
  double sink = 0;
  for (int i = 0; i < 3; ++i)
    sink += th::sum(th::dot(a, b)).item() + th::sum(th::dot(a.T(), v)).item() + th::sum(th::linalg::solve(a, b)).item();
  BOOST_TEST(std::isfinite(sink));
  const auto cpu_seconds = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
  };
  const double before = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  BOOST_TEST(cpu_seconds() - before < 0.03);
}
