// W5 (theta side only, for now): per-operation overhead of eager adds on 0-d tensors,
// recorded + back-propagated and unrecorded. Prints the median of 5 runs in us/op.
#include <cstdio>

#include <theta/theta.hpp>

#include "harness.hpp"

int main() {
  const int n = 100000;
  // NOTE: unrecorded first: timed after the recorded run it measured the heap state the
  // backward sweep left behind (0.42 vs 0.88 us/op for the same code).
  double plain = bench::median_us(
      [&] {
        auto y = th::tensor(1.0);
        for (int i = 0; i < n; ++i) y = y + 1.0;
        volatile double v = y.item();
        (void)v;
      },
      n);
  double rec = bench::median_us(
      [&] {
        auto x = th::variable(th::tensor(1.0));
        auto y = x;
        for (int i = 0; i < n; ++i) y = y + 1.0;
        volatile double g = th::grad(y, x).item();
        (void)g;
      },
      n);
  std::printf("eager add, recorded + backward: %.3f us/op\neager add, unrecorded:          %.3f us/op\n", rec, plain);
}
