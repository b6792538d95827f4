// W1 (theta side only, for now): the seed's linear regression, 125 x 4 float64; one step
// = cost, gradient, w -= 0.1 * grad. Frozen (th::function with updates) and eager.
// Prints the median of 5 runs of 10000 steps, in us/step.
#include <cstdio>

#include <theta/theta.hpp>

#include "harness.hpp"

int main() {
  const int steps = 10000;
  th::Tensor X = th::random::uniform({125, 4}, 0, 1, 1), Y = th::dot(X, th::tensor({3, 3, 2, 2}));
  auto x = th::matrix("x");
  auto y = th::vector("y");
  auto w = th::shared(th::random::normal({4}, 1), "w");
  auto cost = th::mean(th::sqr(th::dot(x, w) - y));
  auto train = th::function({x, y}, {cost}, {{w, w - 0.1 * th::grad(cost, w)}});
  double frozen = bench::median_us([&] { for (int i = 0; i < steps; ++i) train(X, Y); }, steps);
  double eager = bench::median_us([&] {
    th::Tensor we = th::variable(th::random::normal({4}, 1));
    for (int i = 0; i < steps; ++i) {
      th::Tensor c = th::mean(th::sqr(th::dot(X, we) - Y));
      we = th::variable(we - 0.1 * th::grad(c, we));
    }
  }, steps);
  std::printf("W1 seed regression step (125x4 float64): frozen %.2f us, eager %.2f us\n", frozen, eager);
}
