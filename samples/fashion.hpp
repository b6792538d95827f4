// What the Fashion-MNIST samples share (fashion_mnist.cpp, onnx_finetune.cpp): the data set
// (Debian's dataset-fashion-mnist, idx.gz files) and the progress bar of a training epoch.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include <theta/theta.hpp>

namespace sample {

/// Images as float32 in [0, 1], (n, 1, 28, 28) for convolutions or (n, 784); the first
/// `limit` only when limit > 0.
inline th::Tensor fashion_images(const std::string& path, std::int64_t limit, bool conv) {
  th::Tensor raw = th::load_idx(path);
  if (limit > 0 && limit < raw.shape()[0]) raw = th::view(raw, th::range(0, limit));
  const std::int64_t n = raw.shape()[0];
  th::Tensor x = th::cast(raw, th::DType::float32) / 255.0;
  return conv ? th::reshape(x, {n, 1, 28, 28}) : th::reshape(x, {n, 784});
}

/// The labels (0-9), the first `limit` only when limit > 0.
inline th::Tensor fashion_labels(const std::string& path, std::int64_t limit) {
  th::Tensor raw = th::load_idx(path);
  if (limit > 0 && limit < raw.shape()[0]) raw = th::view(raw, th::range(0, limit));
  return raw;
}

/// The four arrays of the data set in `dir`; false (after saying how to get them) when
/// they cannot be read.
inline bool load_fashion(const std::string& program, const std::string& dir, std::int64_t train_limit,
                         std::int64_t test_limit, bool conv, th::Tensor& xtr, th::Tensor& ytr, th::Tensor& xte,
                         th::Tensor& yte) {
  try {
    xtr = fashion_images(dir + "/train-images-idx3-ubyte.gz", train_limit, conv);
    ytr = fashion_labels(dir + "/train-labels-idx1-ubyte.gz", train_limit);
    xte = fashion_images(dir + "/t10k-images-idx3-ubyte.gz", test_limit, conv);
    yte = fashion_labels(dir + "/t10k-labels-idx1-ubyte.gz", test_limit);
    return true;
  } catch (const th::IOError& e) {
    std::cerr << program << ": " << e.what()
              << "\nInstall the data set with `apt-get install dataset-fashion-mnist` (scripts/install-deps.sh does), "
                 "or point --data at a folder with the four idx.gz files.\n";
    return false;
  }
}

/// The fraction of the images x whose class `predict` (images in, classes out) gets right,
/// 1000 images per call.
inline double accuracy(const th::Function& predict, const th::Tensor& x, const th::Tensor& y) {
  const std::int64_t n = x.shape()[0];
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < n; i += 1000) {
    const std::int64_t e = std::min(n, i + 1000);
    right += th::sum(predict(th::view(x, th::range(i, e)))[0] == th::view(y, th::range(i, e))).item<std::int64_t>();
  }
  return double(right) / double(n);
}

/// Seconds as "1m05s" or "2h03m".
inline std::string clock_text(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
  return b;
}

/// One epoch's progress bar on a terminal (nothing when stdout is not one): batches done,
/// the mean loss so far, images per second and the time left.
class EpochBar {
 public:
  EpochBar(int epoch, int epochs, std::int64_t steps)
      : epoch_(epoch), epochs_(epochs), steps_(steps), start_(std::chrono::steady_clock::now()), tty_(isatty(STDOUT_FILENO)) {}
  /// After batch s (from 0) of an epoch whose batches so far held `images` images.
  void step(std::int64_t s, double loss_sum, std::int64_t images) const {
    if (!tty_ || (s % 10 != 9 && s + 1 != steps_)) return;
    const double secs = seconds();
    const int width = 30, done = int(width * (s + 1) / steps_);
    std::printf("\repoch %d/%d [%s%s] %lld/%lld batches, loss %.4f, %.0f images/s, %s left ", epoch_, epochs_,
                std::string(std::size_t(done), '#').c_str(), std::string(std::size_t(width - done), '.').c_str(),
                static_cast<long long>(s + 1), static_cast<long long>(steps_), loss_sum / double(s + 1),
                double(images) / secs, clock_text(secs / double(s + 1) * double(steps_ - s - 1)).c_str());
    std::fflush(stdout);
  }
  /// Seconds since the epoch began.
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  /// What starts the epoch's summary line: clears the bar on a terminal.
  const char* clear() const { return tty_ ? "\r\033[K" : ""; }

 private:
  int epoch_, epochs_;
  std::int64_t steps_;
  std::chrono::steady_clock::time_point start_;
  bool tty_;
};

}  // namespace sample
