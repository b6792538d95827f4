// W6/W7's shared ground (theta's and libtorch's programs both include it): Fashion-MNIST
// read from Debian's idx.gz files with zlib, the initial weights from one seeded generator,
// and the architectures' shapes, so both sides train the same model on the same batches.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline const char* fashion_dir() {
  const char* d = std::getenv("THETA_FASHION_DIR");
  return d ? d : "/usr/share/datasets/fashion-mnist";
}

/// The bytes of an idx(.gz) file after its header, and its dimensions; empty when absent.
inline std::vector<std::uint8_t> read_idx(const std::string& path, std::vector<std::int64_t>& dims) {
  std::vector<std::uint8_t> out;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return out;
  unsigned char h[4];
  if (gzread(f, h, 4) == 4) {
    dims.assign(h[3], 0);
    std::int64_t n = 1;
    for (auto& d : dims) {
      unsigned char b[4];
      if (gzread(f, b, 4) != 4) break;
      d = (std::int64_t(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
      n *= d;
    }
    out.resize(std::size_t(n));
    if (gzread(f, out.data(), unsigned(n)) != int(n)) out.clear();
  }
  gzclose(f);
  return out;
}

struct Fashion {
  std::vector<float> train_x, test_x;  // (n, 784) in [0, 1]
  std::vector<std::int64_t> train_y, test_y;
  bool ok = false;
};

inline Fashion load_fashion() {
  Fashion f;
  const std::string d = fashion_dir();
  std::vector<std::int64_t> dims;
  auto images = [&](const char* name, std::vector<float>& x) {
    const auto b = read_idx(d + "/" + name, dims);
    x.assign(b.begin(), b.end());
    for (float& v : x) v /= 255.0f;
    return !b.empty();
  };
  auto labels = [&](const char* name, std::vector<std::int64_t>& y) {
    const auto b = read_idx(d + "/" + name, dims);
    y.assign(b.begin(), b.end());
    return !b.empty();
  };
  f.ok = images("train-images-idx3-ubyte.gz", f.train_x) && labels("train-labels-idx1-ubyte.gz", f.train_y) &&
         images("t10k-images-idx3-ubyte.gz", f.test_x) && labels("t10k-labels-idx1-ubyte.gz", f.test_y);
  if (!f.ok) std::fprintf(stderr, "W6/W7: no Fashion-MNIST under %s (apt-get install dataset-fashion-mnist)\n", d.c_str());
  return f;
}

/// n values uniform in [-a, a) from seed (the same on both sides of a comparison).
inline std::vector<float> uniform_init(std::size_t n, double a, unsigned seed) {
  std::vector<float> v(n);
  std::uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& e : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = float((double(s >> 11) * 0x1p-53 * 2 - 1) * a);
  }
  return v;
}

// W6: MLP 784-256-10, relu, batch 100, SGD 0.1, float32, one epoch in order.
// W7: CNN conv(1->32, 5x5, same) relu pool2, conv(32->64, 5x5, same) relu pool2, dense
//     3136-256 relu, dropout 0.5, dense 256-10; Adam 1e-3, batch 100, float32.
constexpr std::int64_t kBatch = 100;

/// Steps of W7 timed (THETA_BENCH_W7_STEPS; default 600, one epoch).
inline std::int64_t w7_steps() {
  const char* s = std::getenv("THETA_BENCH_W7_STEPS");
  return s ? std::atoll(s) : 600;
}

/// The layer shapes of the conv-only measurements: input (N, C, H, W), filters (O, C, K, K),
/// padded K / 2 ("same", W7's network) or not at all ("valid", the LeNet of W7L).
struct ConvShape {
  const char* name;
  std::int64_t n, c, h, w, o, k;
  bool same = true;
};
inline const std::vector<ConvShape>& conv_shapes() {
  static const std::vector<ConvShape> s{{"W7_conv1_100x1x28x28_32x5x5", 100, 1, 28, 28, 32, 5},
                                        {"W7_conv2_100x32x14x14_64x5x5", 100, 32, 14, 14, 64, 5},
                                        {"W7_conv3_32x64x28x28_64x3x3", 32, 64, 28, 28, 64, 3},
                                        {"W7L_conv1_100x1x28x28_16x5x5", 100, 1, 28, 28, 16, 5, false},
                                        {"W7L_conv2_100x16x12x12_32x5x5", 100, 16, 12, 12, 32, 5, false},
                                        {"W7B_conv1_100x1x28x28_32x3x3", 100, 1, 28, 28, 32, 3},
                                        {"W7B_conv2_100x32x28x28_32x3x3", 100, 32, 28, 28, 32, 3},
                                        {"W7B_conv3_100x32x14x14_64x3x3", 100, 32, 14, 14, 64, 3}};
  return s;
}

/// W7L, a LeNet-size CNN: conv 1->16 and 16->32, 5x5 valid, relu, 2x2 max-pool after each,
/// dense 512->128 (relu) ->10, Adam 1e-3, batch 100. Its initial weights, by parameter.
struct LeNetInit {
  std::vector<float> c1 = uniform_init(16 * 25, std::sqrt(6.0 / 25), 13), c2 = uniform_init(32 * 16 * 25, std::sqrt(6.0 / 400), 14),
                     w3 = uniform_init(512 * 128, std::sqrt(6.0 / 512), 15), w4 = uniform_init(128 * 10, std::sqrt(6.0 / 138), 16);
};

/// W7B, the sample's batch-normalized CNN (fashion_mnist --model bncnn): three 3x3 "same"
/// conv (no bias) + batch norm + relu blocks of 32, 32, 64 channels, 2x2 max-pool after the
/// 2nd and 3rd, dense 3136->128 (relu) ->10, Adam 1e-3, batch 100 (no dropout here, so that
/// both sides compute the same thing). Its initial weights.
struct BnCnnInit {
  std::vector<float> c1 = uniform_init(32 * 9, std::sqrt(6.0 / 9), 21), c2 = uniform_init(32 * 32 * 9, std::sqrt(6.0 / 288), 22),
                     c3 = uniform_init(64 * 32 * 9, std::sqrt(6.0 / 288), 23), w4 = uniform_init(3136 * 128, std::sqrt(6.0 / 3136), 24),
                     w5 = uniform_init(128 * 10, std::sqrt(6.0 / 138), 25);
};

}  // namespace bench
