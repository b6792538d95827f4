// Memory of repeated frozen calls: once warm, a training step allocates only what it hands
// back (operator new counted for the whole binary), so a training loop runs in constant
// memory whatever its length.
#define BOOST_TEST_MODULE memory
#include <atomic>
#include <cstdlib>
#include <new>

#include "check.hpp"

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

BOOST_AUTO_TEST_CASE(a_warm_training_step_allocates_only_what_it_returns) {
  // The seed's linear regression step: loss out, w updated. Per call, after warm-up: the
  // result's tensor node and list, its buffer object, and the updated w's buffer object
  // (the buffers' memory itself comes from the allocator's cache).
  const Tensor X = th::random::uniform({125, 4}, -1, 1, 1), Y = th::random::uniform({125}, -1, 1, 2);
  auto x = th::dmatrix("x");
  auto y = th::dvector("y");
  auto w = th::shared(th::zeros({4}), "w");
  Tensor cost = th::mean(th::sqr(th::dot(x, w) - y));
  auto train = th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
  for (int i = 0; i < 20; ++i) train(X, Y);
  const int calls = 500;
  const long before = g_news.load();
  for (int i = 0; i < calls; ++i) train(X, Y);
  const double per_call = double(g_news.load() - before) / calls;
  BOOST_TEST_MESSAGE("heap allocations per call: " << per_call);
  BOOST_TEST(per_call <= 4.0, per_call);
  // A 1-d result: also its shape and strides (in the tensor's storage) and the node's
  // shape; the function's own steps allocate nothing.
  auto a = th::dvector("a");
  auto f = th::function({a}, th::tanh(a * 2.0) + th::exp(a));
  const Tensor A = th::random::uniform({3000}, -1, 1, 3);
  for (int i = 0; i < 20; ++i) f(A);
  const long b2 = g_news.load();
  for (int i = 0; i < calls; ++i) f(A);
  BOOST_TEST(double(g_news.load() - b2) / calls <= 6.0);
}
