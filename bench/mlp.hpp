// W2's model, one definition for the CPU and the GPU benchmarks: an MLP training step in
// float32, 784 -> hidden -> hidden -> 10, tanh, softmax cross-entropy, SGD 0.01, frozen
// with its updates; seeded inputs and fixed labels, on `device`.
#pragma once
#include <theta/theta.hpp>

namespace bench {

struct MlpStep {
  th::Function step;
  th::Tensor x, onehot;
};

inline MlpStep mlp_step(std::int64_t batch, std::int64_t hidden, th::Device device) {
  using th::DType;
  auto init = [&](std::int64_t a, std::int64_t b, std::uint64_t seed) {
    return th::shared(th::random::uniform({a, b}, -0.05, 0.05, seed, DType::float32).to(device));
  };
  auto zeros = [&](std::int64_t n) { return th::shared(th::zeros({n}, DType::float32).to(device)); };
  th::Shared W1 = init(784, hidden, 1), W2 = init(hidden, hidden, 2), W3 = init(hidden, 10, 3);
  th::Shared b1 = zeros(hidden), b2 = zeros(hidden), b3 = zeros(10);
  auto x = th::fmatrix("x");
  auto onehot = th::fmatrix("onehot");
  auto h1 = th::tanh(th::dot(x, W1) + b1);
  auto h2 = th::tanh(th::dot(h1, W2) + b2);
  auto logits = th::dot(h2, W3) + b3;
  auto loss = -th::mean(th::sum(onehot * th::log_softmax(logits, 1), 1));
  std::vector<th::Shared> params{W1, W2, W3, b1, b2, b3};
  auto grads = th::grad(loss, std::vector<th::Tensor>(params.begin(), params.end()));
  th::Updates up;
  for (std::size_t i = 0; i < params.size(); ++i) up.push_back({params[i], params[i] - 0.01 * grads[i]});
  std::vector<float> oh(std::size_t(batch) * 10, 0.0f);
  for (std::size_t i = 0; i < std::size_t(batch); ++i) oh[i * 10 + (i * 7) % 10] = 1.0f;  // fixed labels
  return {th::function({x, onehot}, loss, up),
          th::random::uniform({batch, 784}, 0, 1, 4, DType::float32).to(device),
          th::tensor(oh, {batch, 10}).to(device)};
}

}  // namespace bench
