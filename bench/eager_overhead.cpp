// W5 (theta side only, for now): per-operation overhead of eager adds on 0-d tensors,
// recorded + back-propagated and unrecorded. Prints the median of 5 runs in us/op.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <theta/theta.hpp>

template <class F>
double median_us_per_op(F f, int ops) {
  std::vector<double> t;
  for (int r = 0; r < 5; ++r) {
    auto a = std::chrono::steady_clock::now();
    f();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(b - a).count() / ops);
  }
  std::sort(t.begin(), t.end());
  return t[2];
}

int main() {
  const int n = 100000;
  double rec = median_us_per_op(
      [&] {
        auto x = th::variable(th::tensor(1.0));
        auto y = x;
        for (int i = 0; i < n; ++i) y = y + 1.0;
        volatile double g = th::grad(y, x).item();
        (void)g;
      },
      n);
  double plain = median_us_per_op(
      [&] {
        auto y = th::tensor(1.0);
        for (int i = 0; i < n; ++i) y = y + 1.0;
        volatile double v = y.item();
        (void)v;
      },
      n);
  std::printf("eager add, recorded + backward: %.3f us/op\neager add, unrecorded:          %.3f us/op\n", rec, plain);
}
