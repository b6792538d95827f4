// libtorch (C++) eager peers: W1 step, W2 MLP step, W5 adds (recorded + backward, and
// under NoGradGuard), W6/W7 Fashion-MNIST epochs, W8 torch::nn::GRU forward + backward.
// Built when Debian's libtorch-dev is installed; prints RESULT lines.
//   ./bench_libtorch [W1 W2 W5 W6 W7 W7L W7B W8 O1 O2]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "fashion.hpp"
#include "harness.hpp"
#include "transformer.hpp"

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

torch::Tensor param(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone().set_requires_grad(true);
}

double accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& logits, const torch::Tensor& x,
                const torch::Tensor& y) {
  torch::NoGradGuard ng;
  int64_t right = 0;
  for (int64_t i = 0; i < x.size(0); i += 1000)
    right += (logits(x.slice(0, i, i + 1000)).argmax(1) == y.slice(0, i, i + 1000)).sum().item<int64_t>();
  return double(right) / double(x.size(0));
}

// W6 (bench/fashion.hpp): the MLP's epoch from the same weights and batches as theta's.
void w6() {
  bench::Fashion d = bench::load_fashion();
  if (!d.ok) return;
  const int64_t n = int64_t(d.train_y.size()), nt = int64_t(d.test_y.size());
  auto X = torch::from_blob(d.train_x.data(), {n, 784}, torch::kFloat32), Y = torch::from_blob(d.train_y.data(), {n}, torch::kInt64);
  auto Xt = torch::from_blob(d.test_x.data(), {nt, 784}, torch::kFloat32), Yt = torch::from_blob(d.test_y.data(), {nt}, torch::kInt64);
  const auto w1i = bench::uniform_init(784 * 256, std::sqrt(6.0 / 784), 1), w2i = bench::uniform_init(256 * 10, std::sqrt(6.0 / 266), 2);
  std::vector<torch::Tensor> p;
  auto logits = [&](const torch::Tensor& x) { return torch::relu(x.matmul(p[0]) + p[1]).matmul(p[2]) + p[3]; };
  bench::result("W6", "libtorch_epoch", bench::median_us([&] {
    p = {param(w1i, {784, 256}), torch::zeros({256}, torch::kFloat32).set_requires_grad(true), param(w2i, {256, 10}),
         torch::zeros({10}, torch::kFloat32).set_requires_grad(true)};
    for (int64_t s = 0; s < n; s += bench::kBatch) {
      auto loss = torch::nn::functional::cross_entropy(logits(X.slice(0, s, s + bench::kBatch)), Y.slice(0, s, s + bench::kBatch));
      auto g = torch::autograd::grad({loss}, p);
      torch::NoGradGuard ng;
      for (std::size_t i = 0; i < p.size(); ++i) p[i].sub_(0.1 * g[i]);
    }
  }, 1, 3));
  bench::result("W6_test_accuracy", "libtorch", accuracy(logits, Xt, Yt));
}

// W7 (bench/fashion.hpp): the CNN with Adam, and conv2d forward + gradients alone.
void w7() {
  for (const auto& c : bench::conv_shapes()) {
    torch::manual_seed(1);
    auto X = torch::empty({c.n, c.c, c.h, c.w}).uniform_(-1, 1).set_requires_grad(true);
    auto W = torch::empty({c.o, c.c, c.k, c.k}).uniform_(-0.1, 0.1).set_requires_grad(true);
    auto f = [&] {
      auto y = torch::conv2d(X, W, {}, 1, c.same ? c.k / 2 : 0);
      return torch::autograd::grad({y.sum()}, {X, W});
    };
    f();
    bench::result(c.name, "libtorch", bench::median_us([&] { f(); }, 1, 7));
  }
  if (std::getenv("THETA_BENCH_CONV_ONLY")) return;
  bench::Fashion d = bench::load_fashion();
  if (!d.ok) return;
  const int64_t n = int64_t(d.train_y.size()), nt = int64_t(d.test_y.size());
  const int64_t steps = std::min(bench::w7_steps(), n / bench::kBatch);
  auto X = torch::from_blob(d.train_x.data(), {n, 1, 28, 28}, torch::kFloat32), Y = torch::from_blob(d.train_y.data(), {n}, torch::kInt64);
  auto Xt = torch::from_blob(d.test_x.data(), {nt, 1, 28, 28}, torch::kFloat32), Yt = torch::from_blob(d.test_y.data(), {nt}, torch::kInt64);
  auto z = [](int64_t k) { return torch::zeros({k}, torch::kFloat32).set_requires_grad(true); };
  std::vector<torch::Tensor> p{param(bench::uniform_init(32 * 25, std::sqrt(6.0 / 25), 3), {32, 1, 5, 5}), z(32),
                               param(bench::uniform_init(64 * 32 * 25, std::sqrt(6.0 / 800), 4), {64, 32, 5, 5}), z(64),
                               param(bench::uniform_init(3136 * 256, std::sqrt(6.0 / 3136), 5), {3136, 256}), z(256),
                               param(bench::uniform_init(256 * 10, std::sqrt(6.0 / 266), 6), {256, 10}), z(10)};
  torch::optim::Adam adam(p, torch::optim::AdamOptions(1e-3));
  auto features = [&](const torch::Tensor& x) {
    auto h1 = torch::max_pool2d(torch::relu(torch::conv2d(x, p[0], p[1], 1, 2)), 2);
    auto h2 = torch::max_pool2d(torch::relu(torch::conv2d(h1, p[2], p[3], 1, 2)), 2);
    return torch::relu(h2.reshape({-1, 3136}).matmul(p[4]) + p[5]);
  };
  auto step = [&](int64_t s) {
    auto h3 = torch::dropout(features(X.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch)), 0.5, true);
    auto loss = torch::nn::functional::cross_entropy(h3.matmul(p[6]) + p[7], Y.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch));
    adam.zero_grad();
    loss.backward();
    adam.step();
  };
  step(0);  // warm up
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) step(s);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  bench::result("W7_epoch", "libtorch", us * double(n / bench::kBatch) / double(steps));
  bench::result("W7_test_accuracy", "libtorch",
                accuracy([&](const torch::Tensor& x) { return features(x).matmul(p[6]) + p[7]; }, Xt, Yt));
}

// W7L (bench/fashion.hpp): the LeNet-size CNN's training step, as theta's; and max pooling's
// gradient on its first pooling shape.
void w7l() {
  {
    torch::manual_seed(1);
    auto A = torch::empty({100, 16, 24, 24}).uniform_(-1, 1).set_requires_grad(true);
    auto gy = torch::empty({100, 16, 12, 12}).uniform_(-1, 1);
    auto f = [&] { return torch::autograd::grad({torch::max_pool2d(A, 2)}, {A}, {gy}); };
    f();
    bench::result("W7L_pool_grad", "libtorch", bench::median_us([&] { f(); }, 1, 9));
  }
  bench::Fashion d = bench::load_fashion();
  if (!d.ok) return;
  const int64_t n = int64_t(d.train_y.size());
  auto X = torch::from_blob(d.train_x.data(), {n, 1, 28, 28}, torch::kFloat32), Y = torch::from_blob(d.train_y.data(), {n}, torch::kInt64);
  auto z = [](int64_t k) { return torch::zeros({k}, torch::kFloat32).set_requires_grad(true); };
  bench::LeNetInit init;
  std::vector<torch::Tensor> p{param(init.c1, {16, 1, 5, 5}), z(16), param(init.c2, {32, 16, 5, 5}), z(32),
                               param(init.w3, {512, 128}), z(128), param(init.w4, {128, 10}), z(10)};
  torch::optim::Adam adam(p, torch::optim::AdamOptions(1e-3));
  auto step = [&](int64_t s) {
    auto x = X.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch);
    auto h1 = torch::max_pool2d(torch::relu(torch::conv2d(x, p[0], p[1])), 2);
    auto h2 = torch::max_pool2d(torch::relu(torch::conv2d(h1, p[2], p[3])), 2);
    auto h3 = torch::relu(h2.reshape({-1, 512}).matmul(p[4]) + p[5]);
    auto loss = torch::nn::functional::cross_entropy(h3.matmul(p[6]) + p[7], Y.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch));
    adam.zero_grad();
    loss.backward();
    adam.step();
  };
  step(0);  // warm up
  const int steps = 20;
  bench::result("W7L_step", "libtorch", bench::median_us([&] {
    for (int s = 0; s < steps; ++s) step(s);
  }, steps, 5));
}

// W7B (bench/fashion.hpp): the batch-normalized CNN's training step, as theta's.
void w7b() {
  bench::Fashion d = bench::load_fashion();
  if (!d.ok) return;
  const int64_t n = int64_t(d.train_y.size());
  auto X = torch::from_blob(d.train_x.data(), {n, 1, 28, 28}, torch::kFloat32), Y = torch::from_blob(d.train_y.data(), {n}, torch::kInt64);
  bench::BnCnnInit init;
  auto ones = [](int64_t k) { return torch::ones({k}, torch::kFloat32).set_requires_grad(true); };
  auto z = [](int64_t k) { return torch::zeros({k}, torch::kFloat32).set_requires_grad(true); };
  std::vector<torch::Tensor> p{param(init.c1, {32, 1, 3, 3}), ones(32), z(32), param(init.c2, {32, 32, 3, 3}), ones(32), z(32),
                               param(init.c3, {64, 32, 3, 3}), ones(64), z(64), param(init.w4, {3136, 128}), z(128),
                               param(init.w5, {128, 10}), z(10)};
  std::vector<torch::Tensor> rm{torch::zeros({32}), torch::zeros({32}), torch::zeros({64})},
      rv{torch::ones({32}), torch::ones({32}), torch::ones({64})};
  torch::optim::Adam adam(p, torch::optim::AdamOptions(1e-3));
  namespace F = torch::nn::functional;
  auto block = [&](const torch::Tensor& in, int i) {
    auto c = torch::conv2d(in, p[size_t(3 * i)], {}, 1, 1);
    return torch::relu(F::batch_norm(c, rm[size_t(i)], rv[size_t(i)],
                                     F::BatchNormFuncOptions().weight(p[size_t(3 * i + 1)]).bias(p[size_t(3 * i + 2)]).training(true).momentum(0.1).eps(1e-5)));
  };
  auto step = [&](int64_t s) {
    auto x = X.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch);
    auto h = torch::max_pool2d(block(torch::max_pool2d(block(block(x, 0), 1), 2), 2), 2);
    auto logits = torch::relu(h.reshape({-1, 3136}).matmul(p[9]) + p[10]).matmul(p[11]) + p[12];
    auto loss = F::cross_entropy(logits, Y.slice(0, s * bench::kBatch, (s + 1) * bench::kBatch));
    adam.zero_grad();
    loss.backward();
    adam.step();
  };
  step(0);  // warm up
  const int steps = 10;
  bench::result("W7B_step", "libtorch", bench::median_us([&] {
    for (int s = 0; s < steps; ++s) step(s);
  }, steps, 5));
}

// W8: torch::nn::GRU, 50 steps, batch 32, input and hidden 256, float32: forward, the sum of
// its outputs, backward (the gradients of its weights), as theta's W8.
void w8() {
  torch::manual_seed(1);
  const int64_t T = 50, B = 32, I = 256, H = 256;
  torch::nn::GRU gru(torch::nn::GRUOptions(I, H));
  torch::Tensor X = torch::rand({T, B, I}) * 2 - 1, h0 = torch::zeros({1, B, H});
  auto step = [&] {
    gru->zero_grad();
    torch::Tensor out = std::get<0>(gru->forward(X, h0));
    out.sum().backward();
  };
  step();
  bench::result("W8", "libtorch", bench::median_us(step, 1, 9));
}

// W10 (bench/theta_workloads.cpp, bench/transformer.hpp): the same transformer step in
// libtorch: the same weights and batches, attention written out (1.13 has no fused one),
// torch::optim::AdamW and clip_grad_norm_.
void w10() {
  using G = bench::Gpt;
  const std::vector<std::int64_t> text = bench::fortune_codes();
  if (text.size() < 100000) return;
  const auto shapes = bench::gpt_shapes();
  auto init = bench::gpt_weights();
  std::vector<torch::Tensor> p;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    p.push_back(torch::from_blob(init[i].data(), shapes[i], torch::kFloat32).clone().requires_grad_(true));
  const int64_t B = G::B, T = G::T, D = G::D, H = G::H, Dh = D / H;
  const torch::Tensor hidden = torch::ones({T, T}, torch::kBool).triu(1);  // key after query
  auto forward = [&](const torch::Tensor& X) {
    torch::Tensor x = p[0].index_select(0, X.view({-1})).view({B, T, D}) + p[1];
    for (int64_t l = 0; l < G::L; ++l) {
      const torch::Tensor* b = &p[std::size_t(2 + 12 * l)];
      auto qkv = (torch::matmul(torch::layer_norm(x, {D}, b[0], b[1]), b[2]) + b[3]).split(D, -1);
      auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, Dh}).transpose(1, 2); };
      torch::Tensor s = torch::matmul(heads(qkv[0]), heads(qkv[1]).transpose(-2, -1)) / std::sqrt(double(Dh));
      s = s.masked_fill(hidden, -std::numeric_limits<float>::infinity());
      torch::Tensor att = torch::matmul(torch::softmax(s, -1), heads(qkv[2])).transpose(1, 2).reshape({B, T, D});
      x = x + torch::matmul(att, b[4]) + b[5];
      x = x + torch::matmul(torch::gelu(torch::matmul(torch::layer_norm(x, {D}, b[6], b[7]), b[8]) + b[9]), b[10]) + b[11];
    }
    const std::size_t f = std::size_t(2 + 12 * G::L);
    return torch::matmul(torch::layer_norm(x, {D}, p[f], p[f + 1]), p[f + 2]) + p[f + 3];
  };
  torch::optim::AdamW opt(p, torch::optim::AdamWOptions(G::lr).betas({0.9, 0.99}).eps(1e-8).weight_decay(G::wd));
  int k = 0;
  double loss = 0;
  std::vector<std::int64_t> bx, by;
  auto step = [&] {
    bench::gpt_batch(text, k++, bx, by);
    const torch::Tensor X = torch::from_blob(bx.data(), {B, T}, torch::kInt64).clone(),
                        Y = torch::from_blob(by.data(), {B * T}, torch::kInt64).clone();
    opt.zero_grad();
    torch::Tensor cost = torch::nn::functional::cross_entropy(forward(X).view({-1, G::V}), Y);
    cost.backward();
    torch::nn::utils::clip_grad_norm_(p, G::clip);
    opt.step();
    loss = cost.item<double>();
  };
  for (int w = 0; w < 5; ++w) step();  // warm-up, as theta's
  bench::result("W10", "libtorch", bench::median_us(step, 1, G::steps - 5));
  bench::result("W10_loss", "libtorch", loss);
}

// A1 (bench/theta_workloads.cpp): the same step with the maths written out (libtorch 1.13
// has no fused attention): scores, softmax, weighted sum, and autograd's backward.
void a1(int L) {
  const int64_t B = 4, H = 8, d = 64;
  torch::manual_seed(1);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor q = torch::empty({B, H, L, d}, f32).uniform_(-1, 1).requires_grad_(true),
                k = torch::empty({B, H, L, d}, f32).uniform_(-1, 1).requires_grad_(true),
                v = torch::empty({B, H, L, d}, f32).uniform_(-1, 1).requires_grad_(true),
                w = torch::empty({B, H, L, d}, f32).uniform_(-1, 1);
  const double scale = 1.0 / std::sqrt(double(d));
  auto step = [&] {
    torch::Tensor p = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale, -1);
    torch::Tensor cost = (torch::matmul(p, v) * w).sum();
    auto g = torch::autograd::grad({cost}, {q, k, v});
  };
  const double before = bench::status_mb("VmRSS");
  step();
  const std::string name = "A1_" + std::to_string(L);
  bench::result(name.c_str(), "libtorch", bench::median_us(step, 1, 3));
  bench::result(("A1_mem_" + std::to_string(L)).c_str(), "libtorch", bench::status_mb("VmHWM") - before);
}

// O1: the 100 MB MLP of bench_theta's O1 (Linear 5000 -> 2500, relu, Linear 2500 -> 5000),
// its weights written by torch::save and read back into the module by torch::load.
struct BigMlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  BigMlpImpl()
      : fc1(register_module("fc1", torch::nn::Linear(5000, 2500))), fc2(register_module("fc2", torch::nn::Linear(2500, 5000))) {}
};
TORCH_MODULE(BigMlp);

void o1() {
  torch::manual_seed(1);
  BigMlp m;
  const std::string path = "/tmp/theta_bench_100mb.pt";
  torch::save(m, path);
  BigMlp back;
  bench::result("O1_load_100MB", "libtorch", bench::median_us([&] { torch::load(back, path); }, 1, 5));
  std::remove(path.c_str());
}

// O2: samples/data/fashion_cnn.py's module (conv 5x5 8, relu, max-pool, conv 5x5 16, relu,
// max-pool, flatten, Linear 256 -> 10) in inference mode, batch 1 and 100.
struct FashionCnnImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc{nullptr};
  FashionCnnImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 5)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 5)))),
        fc(register_module("fc", torch::nn::Linear(256, 10))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2(h)), 2);
    return fc(torch::flatten(h, 1));
  }
};
TORCH_MODULE(FashionCnn);

void o2() {
  torch::manual_seed(1);
  FashionCnn m;
  m->eval();
  c10::InferenceMode guard;
  for (const std::int64_t b : {std::int64_t(1), std::int64_t(100)}) {
    const torch::Tensor x = torch::rand({b, 1, 28, 28});
    for (int i = 0; i < 10; ++i) m(x);
    const int calls = b == 1 ? 2000 : 100;
    bench::result(b == 1 ? "O2_cnn_b1" : "O2_cnn_b100", "libtorch", bench::median_us([&] {
      for (int i = 0; i < calls; ++i) m(x);
    }, calls));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::wanted(argc, argv, "W10")) w10();
  if (const int L = bench::attention_length(argc, argv)) a1(L);
  if (bench::wanted(argc, argv, "W1")) w1();
  if (bench::wanted(argc, argv, "W2")) w2();
  if (bench::wanted(argc, argv, "W5")) w5();
  if (bench::wanted(argc, argv, "W6")) w6();
  if (bench::wanted(argc, argv, "W7")) w7();
  if (bench::wanted(argc, argv, "W7L")) w7l();
  if (bench::wanted(argc, argv, "W7B")) w7b();
  if (bench::wanted(argc, argv, "W8")) w8();
  if (bench::wanted(argc, argv, "O1")) o1();
  if (bench::wanted(argc, argv, "O2")) o2();
}
