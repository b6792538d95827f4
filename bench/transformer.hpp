// W10's shared ground (theta's and libtorch's programs both include it): the character-level
// transformer of samples/transformer_lm (vocab 96, context 64, batch 32, d_model 128, 4 heads,
// 2 pre-LN blocks, gelu MLP, AdamW with clipping), its initial weights from one seeded
// generator and its batches from Debian's fortune files, so both sides train the same model
// on the same data.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

struct Gpt {
  static constexpr std::int64_t V = 96, T = 64, B = 32, D = 128, H = 4, L = 2;
  static constexpr double lr = 3e-3, wd = 0.1, clip = 1.0;
  static constexpr int steps = 50;
};

/// The parameters' shapes in order: tok, pos, then per block ln1 g b, w_qkv, b_qkv, w_o, b_o,
/// ln2 g b, w_1, b_1, w_2, b_2; then lnf g b, head w b.
inline std::vector<std::vector<std::int64_t>> gpt_shapes() {
  const std::int64_t V = Gpt::V, T = Gpt::T, D = Gpt::D;
  std::vector<std::vector<std::int64_t>> s{{V, D}, {T, D}};
  for (std::int64_t l = 0; l < Gpt::L; ++l)
    for (auto&& x : std::vector<std::vector<std::int64_t>>{{D}, {D}, {D, 3 * D}, {3 * D}, {D, D}, {D}, {D}, {D}, {D, 4 * D}, {4 * D}, {4 * D, D}, {D}})
      s.push_back(x);
  for (auto&& x : std::vector<std::vector<std::int64_t>>{{D}, {D}, {D, V}, {V}}) s.push_back(x);
  return s;
}

/// Initial values: layer-norm gains 1, biases 0, the rest uniform in [-0.035, 0.035) (std 0.02).
inline std::vector<std::vector<float>> gpt_weights() {
  unsigned s = 2024;
  auto next = [&] { return float((s = s * 1103515245u + 12345u) / 4294967296.0); };
  std::vector<std::vector<float>> w;
  const auto shapes = gpt_shapes();
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    std::int64_t n = 1;
    for (auto d : shapes[i]) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    const std::size_t k = i < 2 ? 99 : i >= 2 + 12 * Gpt::L ? (i - 2 - 12 * Gpt::L) : (i - 2) % 12;
    const bool gain = (i >= 2 && i < 2 + 12 * Gpt::L && (k == 0 || k == 6)) || (i >= 2 + 12 * Gpt::L && k == 0);
    const bool bias = shapes[i].size() == 1 && !gain;
    for (auto& x : v) x = gain ? 1.0f : bias ? 0.0f : (next() * 2 - 1) * 0.0346f;
    w.push_back(std::move(v));
  }
  return w;
}

/// The fortune files' characters as codes (newline 0, ' '..'~' 1..95, tabs as spaces).
inline std::vector<std::int64_t> fortune_codes(const std::string& dir = "/usr/share/games/fortunes") {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && !e.is_symlink() && e.path().filename().string().find('.') == std::string::npos)
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<std::int64_t> codes;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    for (unsigned char c : s.str()) {
      if (c == '\t') c = ' ';
      if (c == '\n') codes.push_back(0);
      else if (c >= 32 && c <= 126) codes.push_back(std::int64_t(c) - 31);
    }
  }
  return codes;
}

/// Batch `k`'s tokens and targets (B x T each), windows from seeded positions.
inline void gpt_batch(const std::vector<std::int64_t>& text, int k, std::vector<std::int64_t>& x, std::vector<std::int64_t>& y) {
  unsigned s = 77u + unsigned(k) * 7919u;
  const auto n = std::int64_t(text.size()) - Gpt::T - 2;
  x.assign(std::size_t(Gpt::B * Gpt::T), 0);
  y.assign(x.size(), 0);
  for (std::int64_t i = 0; i < Gpt::B; ++i) {
    s = s * 1103515245u + 12345u;
    const std::int64_t from = std::int64_t(s % unsigned(n));
    for (std::int64_t t = 0; t < Gpt::T; ++t) {
      x[std::size_t(i * Gpt::T + t)] = text[std::size_t(from + t)];
      y[std::size_t(i * Gpt::T + t)] = text[std::size_t(from + t + 1)];
    }
  }
}

}  // namespace bench
