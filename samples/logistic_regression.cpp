// Theano's "a real example: logistic regression": 400 random samples of 784 features with
// random 0/1 labels, w and b shared, trained 10000 steps by a frozen function with updates.
#include <iostream>

#include <theta/theta.hpp>

int main() {
  const std::int64_t N = 400, feats = 784;
  const int training_steps = 10000;
  // D = (inputs, labels); labels drawn 0/1 at random (seeded).
  th::Tensor D_x = th::random::normal({N, feats}, /*seed=*/1);
  th::Tensor D_y = th::cast(th::random::uniform({N}, 0, 1, /*seed=*/2) > 0.5, th::floatX());

  auto x = th::matrix("x");
  auto y = th::vector("y");
  auto w = th::shared(th::random::normal({feats}, /*seed=*/3), "w");
  auto b = th::shared(th::tensor(0.0), "b");
  std::cout << "Initial model: w[0:3] = " << th::view(w.get_value(), th::range(0, 3)) << ", b = " << b.get_value()
            << "\n";

  auto z = th::dot(x, w) + b;
  auto p_1 = th::sigmoid(z);    // probability that target = 1
  auto prediction = p_1 > 0.5;  // the prediction thresholded
  // Cross-entropy -y log(p_1) - (1-y) log(1-p_1), written stably: log(sigmoid(z)) = -softplus(-z).
  // NOTE: Theano's example reaches this form through its log(sigmoid) rewrite; written
  // naively here, p_1 saturates to exactly 0 or 1 with 784 features and log gives -inf.
  auto xent = y * th::softplus(-z) + (1.0 - y) * th::softplus(z);
  auto cost = th::mean(xent) + 0.01 * th::sum(th::sqr(w));       // with weight decay
  auto g = th::grad(cost, {w, b});

  auto train = th::function({x, y}, {prediction, xent}, {{w, w - 0.1 * g[0]}, {b, b - 0.1 * g[1]}});
  auto predict = th::function({x}, prediction);
  auto cost_of = th::function({x, y}, cost);

  for (int i = 0; i < training_steps; ++i) {
    train(D_x, D_y);
    if ((i + 1) % 1000 == 0) std::cout << "step " << i + 1 << " cost " << cost_of(D_x, D_y) << "\n";
  }
  th::Tensor correct = th::cast(predict(D_x), th::floatX()) == D_y;
  std::cout << "Final model: w[0:3] = " << th::view(w.get_value(), th::range(0, 3)) << ", b = " << b.get_value()
            << "\n";
  std::cout << "target values for D:   " << th::view(D_y, th::range(0, 20)) << " ...\n";
  std::cout << "prediction on D:       " << th::view(th::Tensor(predict(D_x)), th::range(0, 20)) << " ...\n";
  std::cout << "accuracy on D: " << th::mean(correct) << "\n";
  return 0;
}
