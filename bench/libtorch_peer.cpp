// libtorch (C++) eager peers: W1 step, W2 MLP step, W5 adds (recorded + backward, and
// under NoGradGuard). Built when Debian's libtorch-dev is installed; prints RESULT lines.
//   ./bench_libtorch [W1 W2 W5]
#include <torch/torch.h>

#include "harness.hpp"

namespace {

void w1() {
  std::vector<double> xv, yv;
  bench::seed_data(xv, yv);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor X = torch::from_blob(xv.data(), {125, 4}, opts).clone(), Y = torch::from_blob(yv.data(), {125}, opts).clone();
  const int steps = 10000;
  bench::result("W1", "libtorch_eager", bench::median_us([&] {
    torch::Tensor w = torch::zeros({4}, opts.requires_grad(true));
    for (int i = 0; i < steps; ++i) {
      torch::Tensor cost = (X.matmul(w) - Y).pow(2).mean();
      torch::Tensor g = torch::autograd::grad({cost}, {w})[0];
      torch::NoGradGuard ng;
      w.sub_(0.1 * g);
    }
  }, steps));
}

void w2() {
  const int64_t batch = 256;
  torch::manual_seed(1);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  std::vector<torch::Tensor> p{torch::empty({784, 512}, f32).uniform_(-0.05, 0.05), torch::zeros({512}, f32),
                               torch::empty({512, 512}, f32).uniform_(-0.05, 0.05), torch::zeros({512}, f32),
                               torch::empty({512, 10}, f32).uniform_(-0.05, 0.05), torch::zeros({10}, f32)};
  for (auto& t : p) t.set_requires_grad(true);
  torch::Tensor X = torch::rand({batch, 784}, f32);
  torch::Tensor labels = torch::arange(batch) * 7 % 10;
  auto step = [&] {
    auto h1 = torch::tanh(X.matmul(p[0]) + p[1]);
    auto h2 = torch::tanh(h1.matmul(p[2]) + p[3]);
    auto loss = torch::nn::functional::cross_entropy(h2.matmul(p[4]) + p[5], labels);
    auto g = torch::autograd::grad({loss}, p);
    torch::NoGradGuard ng;
    for (std::size_t i = 0; i < p.size(); ++i) p[i].sub_(0.01 * g[i]);
  };
  step();
  bench::result("W2", "libtorch_eager", bench::median_us([&] {
    for (int i = 0; i < 20; ++i) step();
  }, 20));
}

void w5() {
  const int n = 100000;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  bench::result("W5_unrecorded", "libtorch", bench::median_us([&] {
    torch::NoGradGuard ng;
    torch::Tensor y = torch::ones({}, opts);
    for (int i = 0; i < n; ++i) y = y + 1.0;
  }, n));
  bench::result("W5_recorded", "libtorch", bench::median_us([&] {
    torch::Tensor x = torch::ones({}, opts.requires_grad(true));
    torch::Tensor y = x;
    for (int i = 0; i < n; ++i) y = y + 1.0;
    volatile double g = torch::autograd::grad({y}, {x})[0].item<double>();
    (void)g;
  }, n));
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::wanted(argc, argv, "W1")) w1();
  if (bench::wanted(argc, argv, "W2")) w2();
  if (bench::wanted(argc, argv, "W5")) w5();
}
