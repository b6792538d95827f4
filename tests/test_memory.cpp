// Memory of repeated frozen calls: once warm, a call with unchanged shapes makes no heap
// allocation (operator new counted for the whole binary), so a training loop runs in
// constant memory whatever its length, and values stay right call after call.
#define BOOST_TEST_MODULE memory
#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "check.hpp"
#include "core/node.hpp"

namespace {
std::atomic<long> g_news{0};
}  // namespace

void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using th::Tensor;

// The native tier's background compiler allocates as it works: the cases here run without
// it (native=off) unless they set a mode themselves, so that each count is this thread's.
struct InterpretedUnlessSaid {
  InterpretedUnlessSaid() { th::config().native = th::NativeMode::off; }
};
BOOST_TEST_GLOBAL_FIXTURE(InterpretedUnlessSaid);

namespace {
// Whether a and b hold the same values, bit for bit, in the same shape.
bool same(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && check::vals(a) == check::vals(b); }
// Heap allocations per call of `step` (after warm-up calls).
template <class F>
double allocations_per_call(F&& step, int calls = 300) {
  for (int i = 0; i < 20; ++i) step();
  const long before = g_news.load();
  for (int i = 0; i < calls; ++i) step();
  return double(g_news.load() - before) / calls;
}
}  // namespace

namespace {
// The seed's linear regression step: loss out, w updated. Once warm, a call reuses the
// result tensor the caller let go of and its buffer, and writes w's update into the
// buffer the last update retired. Under native=sync it runs as a whole program
// (freeze/whole.cpp), which keeps the same buffers.
void training_step_allocates_nothing(th::NativeMode mode) {
  th::config().native = mode;
  const Tensor X = th::random::uniform({125, 4}, -1, 1, 1), Y = th::random::uniform({125}, -1, 1, 2);
  auto x = th::dmatrix("x");
  auto y = th::dvector("y");
  auto w = th::shared(th::zeros({4}), "w");
  Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
  auto train = th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
  double loss = 0;
  const double per_call = allocations_per_call([&] { loss = train(X, Y).item(); });
  BOOST_TEST(per_call == 0.0, per_call);
  // ... and its values are the eager ones, call after call (the recycled buffers hold the
  // new values, not the old ones)
  th::Tensor we = th::zeros({4});
  for (int i = 0; i < 330; ++i) {  // the calls above, warm-up included, and ten more
    Tensor c = th::mean(th::sqr(th::dot(X, we) - Y));
    if (i == 319) BOOST_TEST(c.item() == loss);
    th::Tensor v = th::variable(we);
    Tensor cv = th::mean(th::sqr(th::dot(X, v) - Y));
    we = we - 0.1 * th::grad(cv, v);
    if (i >= 320) BOOST_TEST(train(X, Y).item() == cv.item());
  }
  BOOST_TEST(same(w.get_value(), we));
  if (mode == th::NativeMode::sync)
    BOOST_TEST(th::debugprint(train).find("[whole program: native") != std::string::npos, th::debugprint(train));
  th::config().native = th::NativeMode::off;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_warm_training_step_allocates_nothing) { training_step_allocates_nothing(th::NativeMode::off); }

BOOST_AUTO_TEST_CASE(a_warm_training_step_allocates_nothing_as_a_whole_program) {
  training_step_allocates_nothing(th::NativeMode::sync);
}

BOOST_AUTO_TEST_CASE(results_the_caller_keeps_are_not_reused) {
  auto a = th::dvector("a");
  auto f = th::function({a}, {th::tanh(a * 2.0) + th::exp(a), th::sum(a)});
  const Tensor A = th::random::uniform({3000}, -1, 1, 3);
  BOOST_TEST(allocations_per_call([&] { f(A); }) == 0.0);  // 1-d and 0-d results, dropped
  std::vector<Tensor> kept;  // results kept: each call's are new tensors with their own values
  for (int i = 0; i < 5; ++i) {
    const Tensor Ai = A + double(i);
    th::Result r = f(Ai);
    kept.push_back(r[0]);
    kept.push_back(r[1]);
  }
  for (int i = 0; i < 5; ++i) {
    const Tensor Ai = A + double(i);
    BOOST_TEST(same(kept[2 * i], th::tanh(Ai * 2.0) + th::exp(Ai)));
    BOOST_TEST(same(kept[2 * i + 1], th::sum(Ai)));
  }
  // a result renamed and recorded by the caller, then let go of, comes back as a plain constant
  {
    Tensor r = f(A)[0];
    r.set_name("mine").requires_grad(true);
  }
  Tensor r = f(A)[0];
  BOOST_TEST(r.name().empty());
  BOOST_TEST(!r.node()->recorded);
}

BOOST_AUTO_TEST_CASE(a_softmax_runs_as_one_pass_without_allocating) {
  // x - max(x, axis 1) reads the row maxima as a column repeated along each row: the fused
  // pass takes it (it allocated views and shapes when it ran op by op).
  auto x = th::dmatrix("x");
  Tensor e = th::exp(x - th::max(x, 1, true));
  auto f = th::function({x}, e / th::sum(e, 1, true));
  const Tensor X = th::random::uniform({37, 53}, -3, 3, 4);
  BOOST_TEST(allocations_per_call([&] { f(X); }) == 0.0);
  const Tensor eX = th::exp(X - th::max(X, 1, true));
  BOOST_TEST(same(f(X), eX / th::sum(eX, 1, true)));
  // the softmax primitive, too
  auto g = th::function({x}, th::softmax(x, 1) * 2.0);
  BOOST_TEST(allocations_per_call([&] { g(X); }) == 0.0);
}

// An MLP training step under the given native-tier mode (sync: its chains compiled on the
// first call, then run natively).
void mlp_step_allocates_nothing(th::NativeMode mode) {
  th::config().native = mode;
  // Buffers above what a frame keeps whole (64 KiB) give their memory back to the cache
  // between calls and keep their buffer objects with the frame; the weights' updates
  // alternate between two buffers; the gradient chains that reduce over some axes run op by
  // op with their operands' views in per-thread storages, and the values views share go
  // back to their owners' slots.
  using th::DType;
  auto init = [](std::int64_t a, std::int64_t b, std::uint64_t seed) {
    return th::shared(th::random::uniform({a, b}, -0.1, 0.1, seed, DType::float32));
  };
  th::Shared W1 = init(64, 300, 1), W2 = init(300, 10, 2);
  th::Shared b1 = th::shared(th::zeros({300}, DType::float32));
  auto x = th::fmatrix("x"), onehot = th::fmatrix("onehot");
  auto h = th::tanh(th::dot(x, W1) + b1);
  auto loss = -th::mean(th::sum(onehot * th::log_softmax(th::dot(h, W2), 1), 1));
  auto g = th::grad(loss, {W1, W2, b1});
  auto step = th::function({x, onehot}, loss, {{W1, W1 - 0.01f * g[0]}, {W2, W2 - 0.01f * g[1]}, {b1, b1 - 0.01f * g[2]}});
  const Tensor X = th::random::uniform({128, 64}, 0, 1, 4, DType::float32);
  std::vector<float> oh(128 * 10, 0.0f);
  for (std::size_t i = 0; i < 128; ++i) oh[i * 10 + i % 10] = 1.0f;
  const Tensor OH = th::tensor(oh, {128, 10});
  BOOST_TEST(allocations_per_call([&] { step(X, OH); }, 100) == 0.0);  // 85 before this was tested
  // a value the caller took still holds it after the steps (the buffer it shares, once
  // retired, is not written again): W1's large buffer and W2's small one (kept whole)
  const Tensor snap = W1.get_value(), copy = snap * 1.0f, snap2 = W2.get_value(), copy2 = snap2 * 1.0f;
  for (int i = 0; i < 3; ++i) step(X, OH);
  BOOST_TEST(same(snap, copy));
  BOOST_TEST(same(snap2, copy2));
  BOOST_TEST(!same(W1.get_value(), copy));
  BOOST_TEST(!same(W2.get_value(), copy2));
  // and the steps are the eager SGD steps
  Tensor w1 = W1.get_value(), w2 = W2.get_value(), bb = b1.get_value();
  for (int i = 0; i < 3; ++i) {
    Tensor v1 = th::variable(w1), v2 = th::variable(w2), vb = th::variable(bb);
    Tensor hh = th::tanh(th::dot(X, v1) + vb);
    Tensor l = -th::mean(th::sum(OH * th::log_softmax(th::dot(hh, v2), 1), 1));
    auto ge = th::grad(l, {v1, v2, vb});
    w1 = w1 - 0.01f * ge[0], w2 = w2 - 0.01f * ge[1], bb = bb - 0.01f * ge[2];
    step(X, OH);
  }
  auto close = [](const Tensor& a, const Tensor& b) { return th::max(th::abs(a - b)).item() <= 1e-6; };
  BOOST_TEST(close(W1.get_value(), w1));
  BOOST_TEST(close(W2.get_value(), w2));
  BOOST_TEST(close(b1.get_value(), bb));
  th::config().native = th::NativeMode::off;
}

BOOST_AUTO_TEST_CASE(a_warm_mlp_step_allocates_nothing) { mlp_step_allocates_nothing(th::NativeMode::off); }

BOOST_AUTO_TEST_CASE(a_warm_mlp_step_allocates_nothing_with_native_chains) {
  mlp_step_allocates_nothing(th::NativeMode::sync);
}

BOOST_AUTO_TEST_CASE(indexing_and_its_gradients_allocate_nothing_when_warm) {
  // take and its scatter-add gradient (indices checked on every call: copied into per-thread
  // scratch when they are int32 or negative, read in place otherwise), view and its
  // gradient, concatenate/stack and the split of their gradient, argmax over views that
  // need a copy or not, a max's gradient (its tie count sums booleans), and a function that
  // returns the shared value it updates. Each warm call allocates nothing and gives the
  // eager values.
  using th::DType;
  const Tensor X = th::random::uniform({6, 5}, -1, 1, 7);
  auto x = th::dmatrix("x");
  auto i64 = th::placeholder(DType::int64, 1, "i64");
  const Tensor I64 = th::tensor(std::vector<std::int64_t>{4, 0, -1, 2}, {4});
  const Tensor I32 = th::cast(th::tensor(std::vector<std::int64_t>{1, 3, 3}, {3}), DType::int32);
  const Tensor Ipos = th::tensor(std::vector<std::int64_t>{3, 1}, {2});
  auto cases = [](const Tensor& a, const Tensor& ia, const Tensor& ib) {
    std::vector<Tensor> out;
    out.push_back(th::take(a, ia, 1) * 2.0);
    out.push_back(th::take(a, ib, 0));
    out.push_back(th::grad(th::sum(th::sqr(th::take(a, ia, 1))) + th::sum(th::take(a, ib, 0)), a));
    out.push_back(th::view(a, th::range(1, 5, 2), 3) + 1.0);
    out.push_back(th::grad(th::sum(th::sqr(th::view(a, th::all(), th::range(1, 4)))), a));
    out.push_back(th::concatenate({a, th::tanh(a)}, 1));
    out.push_back(th::stack({a, a * 3.0}, 0));
    out.push_back(th::grad(th::sum(th::sqr(th::concatenate({a, a * 2.0}, 0))), a));
    out.push_back(th::argmax(a, 0));
    out.push_back(th::argmin(th::transpose(a * 1.0), 1));
    out.push_back(th::argmax(th::view(a, th::all(), th::range(0, 5, 2))));
    out.push_back(th::grad(th::sum(th::max(a, 1)), a));
    return out;
  };
  for (const Tensor& ib : {I32, Ipos}) {
    auto ibp = th::placeholder(ib.dtype(), 1, "ib");
    const std::vector<Tensor> outs = cases(x, i64, ibp);
    Tensor v = th::variable(X);
    const std::vector<Tensor> eager = cases(v, I64, ib);
    for (std::size_t k0 = 0; k0 < outs.size(); k0 += 4) {  // (a Result keeps up to 4 tensors inline)
      auto f = th::function({x, i64, ibp}, std::vector<Tensor>(outs.begin() + k0, outs.begin() + k0 + 4));
      const double per_call = allocations_per_call([&] { f(X, I64, ib); });
      BOOST_TEST(per_call == 0.0, "indices " << th::dtype_name(ib.dtype()) << ", outputs from " << k0 << ": " << per_call);
      const th::Result r = f(X, I64, ib);
      for (std::size_t k = 0; k < 4; ++k) BOOST_TEST(same(r[k], eager[k0 + k]), "output " << k0 + k);
    }
  }
  // the updated shared value as an output: the update writes into the buffer it returned
  auto w = th::shared(th::zeros({4}), "w");
  auto g = th::function({x}, w, {{w, w + th::sum(x)}});
  BOOST_TEST(allocations_per_call([&] { g(X); }) == 0.0);
  const double before = w.get_value().to_vector<double>()[0];
  BOOST_TEST(g(X).to_vector<double>()[0] == before);
  BOOST_TEST(w.get_value().to_vector<double>()[0] == before + th::sum(X).item());
}

BOOST_AUTO_TEST_CASE(a_pass_that_fell_back_once_leaves_the_warm_path_exact) {
  // A strided argument makes the fused pass run op by op (its members write their own
  // slots); contiguous calls after it run the pass again. The frame walks the members'
  // slots from then on: values stay the eager ones whichever way each call went, and a
  // warm contiguous call still allocates nothing.
  auto a = th::dmatrix("a");
  auto fn = [](const Tensor& v) { return th::tanh(v * 2.0) + th::exp(v) * v; };
  auto f = th::function({a}, {fn(a), th::grad(th::sum(fn(a)), a)});
  const Tensor A = th::random::uniform({40, 30}, -1, 1, 5);
  const Tensor At = th::transpose(th::random::uniform({30, 40}, -1, 1, 6));  // strided
  BOOST_TEST(!check::has(f.profile(), "op by op"));
  for (int round = 0; round < 3; ++round)
    for (const Tensor& arg : {A, At, A}) {
      Tensor v = th::variable(arg);
      const th::Result r = f(arg);
      BOOST_TEST(same(r[0], fn(arg)));
      BOOST_TEST(same(r[1], th::grad(th::sum(fn(v)), v)));
    }
  BOOST_TEST(check::has(f.profile(), "op by op in 3 calls"), f.profile());
  BOOST_TEST(allocations_per_call([&] { f(A); }) == 0.0);
  BOOST_TEST(same(f(A)[0], fn(A)));
}

BOOST_AUTO_TEST_CASE(shape_checks_before_recording_allocate_only_their_result) {
  // dot checks its shapes before apply() (to name "dot" in errors) and sum/count normalise
  // their axes: in reused per-thread metas (scratch_metas), so an unrecorded eager dot,
  // sum or mean allocates only its results (node, value's shape and strides, buffer), input
  // lists and the shape rules' results. The bounds are today's counts (15/8/19 before).
  const Tensor X = th::random::uniform({125, 4}, -1, 1, 1), w = th::zeros({4});
  const double dot = allocations_per_call([&] { (void)th::dot(X, w); });
  const double sum = allocations_per_call([&] { (void)th::sum(X); });
  const double mean = allocations_per_call([&] { (void)th::mean(X); });  // a sum, a count, a division
  BOOST_TEST_MESSAGE("allocations: dot " << dot << ", sum " << sum << ", mean " << mean);
  BOOST_TEST(dot <= 10);
  BOOST_TEST(sum <= 5);
  BOOST_TEST(mean <= 13);
}

// Recorded nodes come from the thread's cache of freed node blocks: once one was freed, a new
// node allocates nothing (an eager loop records and frees them by the hundred thousand, and
// blocks returned to the system cost a page fault each when they come back). A node freed on
// another thread joins that thread's cache; values and gradients are unaffected.
BOOST_AUTO_TEST_CASE(recorded_nodes_reuse_freed_blocks) {
  const void* first = nullptr;
  {
    const auto n = th::detail::new_node();
    first = n.get();
  }
  const long before = g_news.load();
  const auto again = th::detail::new_node();
  BOOST_TEST(g_news.load() == before);  // no allocation
  BOOST_TEST(static_cast<const void*>(again.get()) == first);
  // a chain recorded here and released on another thread, then one recorded here again
  auto chain = [] {
    Tensor x = th::variable(th::tensor(2.0));
    Tensor y = x;
    for (int i = 0; i < 2000; ++i) y = y * 1.0 + 0.5;
    return std::pair<Tensor, Tensor>{y, x};
  };
  chain();  // (the scalars' constant nodes, which theta keeps, made)
  const std::int64_t live = th::detail::live_nodes();
  {
    std::pair<Tensor, Tensor> yx = chain();
    BOOST_TEST(th::grad(yx.first, yx.second).item<double>() == 1.0);
    std::thread([&yx] { yx = {}; }).join();  // the chain's nodes freed there
    BOOST_TEST(th::detail::live_nodes() == live);
  }
  auto [y, x] = chain();
  BOOST_TEST(y.item<double>() == 1002.0);
  BOOST_TEST(th::grad(y, x).item<double>() == 1.0);
}
