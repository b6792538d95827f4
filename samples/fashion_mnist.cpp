// Fashion-MNIST (Zalando's 70,000 clothing images, Debian's dataset-fashion-mnist) trained
// with one frozen training function: an MLP (784-256-10), a small CNN (two conv + relu +
// max-pool blocks, a dense layer with dropout, softmax) or a deeper one with batch
// normalization (three 3x3 conv + batch-norm + relu blocks), Adam, float32. Prints a progress
// bar while an epoch runs (on a terminal; one line per epoch otherwise) and the test
// accuracy after each epoch.
//   ./build/samples/fashion_mnist --model cnn --epochs 5
//   ./build/samples/fashion_mnist --model bncnn --epochs 12

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <string>

#include <theta/theta.hpp>

#include "fashion.hpp"
#include "options.hpp"

namespace {

struct Args {
  std::string model = "cnn", data = "/usr/share/datasets/fashion-mnist", checkpoint, save_model, schedule;
  int epochs = 5;
  std::int64_t batch = 100, train_limit = 0, test_limit = 0;
  double lr = 1e-3, expect = -1;
  bool profile = false, data_parallel = false;
  std::uint64_t seed = 1;
};

void usage(std::ostream& os) {
  os << "usage: fashion_mnist [--model mlp|cnn|bncnn] [--epochs N] [--batch N] [--lr X] [--seed N]\n"
        "                     [--train-limit N] [--test-limit N] [--data DIR] [--save-model FILE]\n"
        "Trains on Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist) with Adam and\n"
        "prints the test accuracy after each epoch.\n"
        "  --model mlp|cnn|bncnn  784-256-10 perceptron; 2 conv+pool blocks, dense 256 with\n"
        "                     dropout 0.5, softmax (default cnn); or bncnn: three 3x3 conv +\n"
        "                     batch-norm + relu blocks (32, 32, 64 channels, max-pool after the\n"
        "                     2nd and 3rd), dense 128 with dropout 0.5, softmax; its predictor\n"
        "                     normalizes with the running statistics\n"
        "  --epochs N         passes over the training set (default 5)\n"
        "  --batch N          images per step (default 100)\n"
        "  --lr X             Adam's learning rate (default 0.001)\n"
        "  --lr-schedule constant|cosine  the learning rate over the run: constant, or cosine\n"
        "                     decay from X to 0 over all the steps (default: cosine for bncnn,\n"
        "                     constant otherwise)\n"
        "  --seed N           weights, dropout and shuffling (default 1)\n"
        "  --train-limit N    train on the first N images only (0: all 60000)\n"
        "  --test-limit N     test on the first N images only (0: all 10000)\n"
        "  --data DIR         the idx.gz files (default /usr/share/datasets/fashion-mnist)\n"
        "  --expect-accuracy X  exit with status 1 when the final test accuracy is below X\n"
        "  --profile          print the training function's time per step at the end\n"
        "  --data-parallel    under mpirun: each rank trains on its share of every batch, the\n"
        "                     gradients averaged across ranks (th::dist); rank 0 prints\n"
        "  --save-model FILE  at the end, save the trained predictor (images in, classes out) to\n"
        "                     FILE with th::save, and ten test images to FILE.images.npy:\n"
        "                     theta run FILE FILE.images.npy predicts them without this program\n"
        "  --checkpoint FILE  resume from FILE (.npz of the weights, Adam's state and the dropout\n"
        "                     stream) when it exists, and save to it after each epoch\n";
}

Args parse(int argc, char** argv) {
  Args a;
  sample::parse_options("fashion_mnist", argc, argv, usage, {
      {"--model", &a.model}, {"--epochs", &a.epochs}, {"--batch", &a.batch}, {"--lr", &a.lr},
      {"--lr-schedule", &a.schedule}, {"--seed", &a.seed}, {"--train-limit", &a.train_limit},
      {"--test-limit", &a.test_limit}, {"--checkpoint", &a.checkpoint}, {"--data-parallel", &a.data_parallel},
      {"--save-model", &a.save_model}, {"--profile", &a.profile}, {"--expect-accuracy", &a.expect},
      {"--data", &a.data},
  });
  if ((a.model != "mlp" && a.model != "cnn" && a.model != "bncnn") || a.epochs < 0 || a.batch < 1 || a.lr <= 0) {
    std::cerr << "fashion_mnist: --model must be mlp, cnn or bncnn, --epochs >= 0, --batch >= 1, --lr > 0\n";
    std::exit(2);
  }
  if (a.schedule.empty()) a.schedule = a.model == "bncnn" ? "cosine" : "constant";
  if (a.schedule != "constant" && a.schedule != "cosine") {
    std::cerr << "fashion_mnist: --lr-schedule must be constant or cosine\n";
    std::exit(2);
  }
  return a;
}

th::Shared param(th::Tensor init, const std::string& name) { return th::shared(init, name); }

struct Model {
  std::vector<th::Shared> params;
  th::Tensor x;              // the input placeholder
  th::Tensor train_logits;   // with dropout (and batch statistics)
  th::Tensor test_logits;    // without (and with the running statistics)
  th::Updates state;         // batch normalization's running statistics, updated by each step
};

Model mlp(std::uint64_t seed) {
  const auto f32 = th::DType::float32;
  Model m;
  auto w1 = param(th::init::he_uniform({784, 256}, seed, std::sqrt(2.0), f32), "w1");
  auto b1 = param(th::zeros({256}, f32), "b1");
  auto w2 = param(th::init::glorot_uniform({256, 10}, seed + 1, 1, f32), "w2");
  auto b2 = param(th::zeros({10}, f32), "b2");
  m.params = {w1, b1, w2, b2};
  m.x = th::fmatrix("x");
  m.train_logits = th::dot(th::relu(th::dot(m.x, w1) + b1), w2) + b2;
  m.test_logits = m.train_logits;
  return m;
}

Model cnn(std::uint64_t seed, th::RandomStreams& srng) {
  const auto f32 = th::DType::float32;
  Model m;
  auto c1 = param(th::init::he_uniform({32, 1, 5, 5}, seed, std::sqrt(2.0), f32), "conv1.w");
  auto cb1 = param(th::zeros({32, 1, 1}, f32), "conv1.b");
  auto c2 = param(th::init::he_uniform({64, 32, 5, 5}, seed + 1, std::sqrt(2.0), f32), "conv2.w");
  auto cb2 = param(th::zeros({64, 1, 1}, f32), "conv2.b");
  auto w3 = param(th::init::he_uniform({64 * 7 * 7, 256}, seed + 2, std::sqrt(2.0), f32), "dense.w");
  auto b3 = param(th::zeros({256}, f32), "dense.b");
  auto w4 = param(th::init::glorot_uniform({256, 10}, seed + 3, 1, f32), "out.w");
  auto b4 = param(th::zeros({10}, f32), "out.b");
  m.params = {c1, cb1, c2, cb2, w3, b3, w4, b4};
  m.x = th::ftensor4("x");
  th::ConvOptions same;
  same.border_mode = th::Padding::half();
  auto h1 = th::pool_2d(th::relu(th::conv2d(m.x, c1, same) + cb1), {2, 2});   // (n, 32, 14, 14)
  auto h2 = th::pool_2d(th::relu(th::conv2d(h1, c2, same) + cb2), {2, 2});    // (n, 64, 7, 7)
  auto h3 = th::relu(th::dot(th::reshape(h2, {-1, 64 * 7 * 7}), w3) + b3);   // (n, 256)
  m.train_logits = th::dot(th::dropout(h3, 0.5, srng), w4) + b4;
  m.test_logits = th::dot(h3, w4) + b4;
  return m;
}

// A 3x3 convolution (no bias: the batch norm's beta is one), batch normalization and relu;
// in training on the batch's statistics (the running ones updated), in the predictor on the
// running ones.
struct BnBlock {
  th::Tensor train, test;
};
BnBlock bn_block(Model& m, const th::Tensor& train_in, const th::Tensor& test_in, std::int64_t cin, std::int64_t cout,
                 std::uint64_t seed, const std::string& name) {
  const auto f32 = th::DType::float32;
  auto w = param(th::init::he_uniform({cout, cin, 3, 3}, seed, std::sqrt(2.0), f32), name + ".w");
  auto gamma = param(th::ones({cout}, f32), name + ".gamma");
  auto beta = param(th::zeros({cout}, f32), name + ".beta");
  auto rm = param(th::zeros({cout}, f32), name + ".running_mean");
  auto rv = param(th::ones({cout}, f32), name + ".running_var");
  m.params.insert(m.params.end(), {w, gamma, beta});
  th::ConvOptions same;
  same.border_mode = th::Padding::half();
  same.filter_flip = false;
  const th::BatchNormTrain bn =
      th::batch_normalization_train(th::conv2d(train_in, w, same), gamma, beta, {}, 1e-5, 0.1, rm, rv);
  m.state.push_back({rm, bn.new_running_mean});
  m.state.push_back({rv, bn.new_running_var});
  return {th::relu(bn.out), th::relu(th::batch_normalization_test(th::conv2d(test_in, w, same), gamma, beta, rm, rv, {}, 1e-5))};
}

Model bncnn(std::uint64_t seed, th::RandomStreams& srng) {
  const auto f32 = th::DType::float32;
  Model m;
  m.x = th::ftensor4("x");
  const BnBlock b1 = bn_block(m, m.x, m.x, 1, 32, seed, "block1");
  const BnBlock b2 = bn_block(m, b1.train, b1.test, 32, 32, seed + 1, "block2");
  auto p2 = [](const th::Tensor& t) { return th::pool_2d(t, {2, 2}); };
  const BnBlock b3 = bn_block(m, p2(b2.train), p2(b2.test), 32, 64, seed + 2, "block3");  // (n, 64, 14, 14)
  auto w4 = param(th::init::he_uniform({64 * 7 * 7, 128}, seed + 3, std::sqrt(2.0), f32), "dense.w");
  auto b4 = param(th::zeros({128}, f32), "dense.b");
  auto w5 = param(th::init::glorot_uniform({128, 10}, seed + 4, 1, f32), "out.w");
  auto b5 = param(th::zeros({10}, f32), "out.b");
  m.params.insert(m.params.end(), {w4, b4, w5, b5});
  auto dense = [&](const th::Tensor& t) { return th::relu(th::dot(th::reshape(p2(t), {-1, 64 * 7 * 7}), w4) + b4); };
  m.train_logits = th::dot(th::dropout(dense(b3.train), 0.5, srng), w5) + b5;
  m.test_logits = th::dot(dense(b3.test), w5) + b5;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  th::dist::init(argc, argv);  // (one process unless started by mpirun)
  const int rank = th::dist::rank(), ranks = a.data_parallel ? th::dist::size() : 1;
  if (rank != 0) std::freopen("/dev/null", "w", stdout);  // rank 0 reports
  const bool conv = a.model != "mlp";
  th::Tensor xtr, ytr, xte, yte;
  if (!sample::load_fashion("fashion_mnist", a.data, a.train_limit, a.test_limit, conv, xtr, ytr, xte, yte)) return 1;
  const std::int64_t n = xtr.shape()[0], nt = xte.shape()[0];
  std::cout << "Fashion-MNIST: " << n << " training and " << nt << " test images; model " << a.model << ", batch "
            << a.batch << ", Adam lr " << a.lr << " (" << a.schedule << "), " << a.epochs << " epochs\n";

  th::RandomStreams srng(a.seed + std::uint64_t(rank));  // (each rank its own dropout masks)
  const Model m = a.model == "cnn" ? cnn(a.seed, srng) : a.model == "bncnn" ? bncnn(a.seed, srng) : mlp(a.seed);
  if (ranks > 1) {
    th::dist::broadcast(m.params, 0);
    std::cout << "data-parallel over " << ranks << " ranks: each trains on 1/" << ranks << " of every batch\n";
  }
  const th::Tensor y = th::lvector("y");
  const th::Tensor cost = th::mean(th::categorical_crossentropy(th::softmax(m.train_logits), y));
  const auto t0 = std::chrono::steady_clock::now();
  // data-parallel: the ranks' gradients averaged (one allreduce per step), then Adam
  // the learning rate: a shared scalar, so that a schedule sets it between steps
  th::Shared lr = th::shared(th::tensor(a.lr, th::DType::float32), "lr");
  th::Updates updates = ranks > 1 ? th::optim::adam(th::dist::average(th::grad(cost, m.params)), m.params, lr)
                                  : th::optim::adam(cost, m.params, lr);
  updates.insert(updates.end(), m.state.begin(), m.state.end());  // (each rank keeps its own running statistics)
  const th::Function train = th::function({m.x, y}, {cost}, updates);
  const th::Function predict = th::function({m.x}, th::argmax(m.test_logits, 1));
  std::cout << "froze the training and prediction functions in "
            << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() << " ms\n";

  if (!a.checkpoint.empty() && std::ifstream(a.checkpoint)) {
    try {
      th::load_params(a.checkpoint, train.shared_variables());
      std::cout << "resumed from " << a.checkpoint << "\n";
    } catch (const th::Error& e) {
      std::cerr << "fashion_mnist: cannot resume: " << e.what()
                << "\n(a checkpoint of another --model? delete the file or name another one)\n";
      return 1;
    }
  }

  auto accuracy = [&] { return sample::accuracy(predict, xte, yte); };


  std::mt19937_64 shuffle(a.seed);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const std::int64_t steps = (n + a.batch - 1) / a.batch;
  double acc = 0;
  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), shuffle);
    const sample::EpochBar bar(epoch, a.epochs, steps);
    double loss_sum = 0;
    for (std::int64_t s = 0; s < steps; ++s) {
      const std::int64_t lo = s * a.batch, hi = std::min(n, lo + a.batch);
      std::vector<std::int64_t> mine;  // this rank's share of the batch
      for (std::int64_t i = lo + rank % ranks; i < hi; i += ranks) mine.push_back(order[std::size_t(i)]);
      if (a.schedule == "cosine") {
        const double t = double((epoch - 1) * steps + s) / double(std::max<std::int64_t>(1, a.epochs * steps));
        lr.set_value(th::tensor(0.5 * a.lr * (1 + std::cos(3.141592653589793 * t)), th::DType::float32));
      }
      const th::Tensor idx = th::tensor(mine, {std::int64_t(mine.size())});
      loss_sum += train(th::take(xtr, idx), th::take(ytr, idx))[0].item<double>();
      bar.step(s, loss_sum, hi);
    }
    const double secs = bar.seconds();
    acc = accuracy();
    if (!a.checkpoint.empty() && rank == 0) th::save_params(a.checkpoint, train.shared_variables());
    std::printf("%sepoch %d/%d: loss %.4f, %.0f images/s, %.1f s; test accuracy %.4f\n", bar.clear(), epoch,
                a.epochs, loss_sum / double(steps), double(n) / secs, secs, acc);
    std::fflush(stdout);
  }
  if (a.epochs == 0) acc = accuracy();
  std::printf("final test accuracy: %.4f\n", acc);
  if (a.profile) std::cout << train.profile();
  if (!a.save_model.empty() && rank == 0) {
    th::save(a.save_model, predict);
    th::save_npy(a.save_model + ".images.npy", th::view(xte, th::range(0, std::min<std::int64_t>(10, nt))));
    std::printf("saved the predictor to %s and ten test images to %s.images.npy (their classes: %s); try\n"
                "  theta run %s %s.images.npy\n",
                a.save_model.c_str(), a.save_model.c_str(),
                [&] {
                  std::string c;
                  for (auto v : th::view(yte, th::range(0, std::min<std::int64_t>(10, nt))).to_vector<std::int64_t>())
                    c += (c.empty() ? "" : " ") + std::to_string(v);
                  return c;
                }().c_str(),
                a.save_model.c_str(), a.save_model.c_str());
  }
  if (acc < a.expect) {
    std::fprintf(stderr, "fashion_mnist: test accuracy %.4f is below the expected %.4f\n", acc, a.expect);
    return 1;
  }
  return 0;
}
