// A character-level GRU language model over the words of /usr/share/dict/words (Debian's
// wamerican), trained with th::scan (back-propagation through time) and Adam, float32.
// Prints the loss per character for each epoch (and its perplexity), then samples new words
// letter by letter from the trained model.
//
//   ./build/samples/char_rnn --epochs 5
//
// The words are lower-case a-z; each is read as <start> w o r d <end> (one symbol for both
// ends), padded to the longest word of its batch with a mask that keeps the padding out of
// the loss. One frozen training function serves every batch whatever its length: the scan
// over the letters is one step of its program.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <string>

#include <theta/theta.hpp>

#include "options.hpp"

namespace {

constexpr std::int64_t kSymbols = 27;  // 0: a word's start and end; 1..26: a..z

struct Args {
  int epochs = 5;
  std::int64_t batch = 128, hidden = 128, words = 0, samples = 10;
  double lr = 0.005, temperature = 0.8;
  std::uint64_t seed = 1;
  std::string path = "/usr/share/dict/words";
  double expect = 0;  // 0: no bar
};

void usage(std::ostream& os) {
  os << "usage: char_rnn [--epochs N] [--hidden N] [--batch N] [--lr X] [--words N] [--samples N]\n"
        "                [--temperature X] [--seed N] [--dict FILE] [--expect-loss X]\n"
        "A GRU language model over the letters of a word list, trained with scan and Adam;\n"
        "prints the loss per letter for each epoch, then samples new words.\n"
        "  --epochs N         passes over the words (default 5)\n"
        "  --hidden N         the GRU's state size (default 128)\n"
        "  --batch N          words per step (default 128)\n"
        "  --lr X             Adam's learning rate (default 0.005)\n"
        "  --words N          train on N words picked at random (0: all)\n"
        "  --samples N        words to sample at the end (default 10)\n"
        "  --temperature X    sampling temperature (default 0.8; lower: likelier words)\n"
        "  --seed N           weights, batches and sampling (default 1)\n"
        "  --dict FILE        the word list (default /usr/share/dict/words, Debian's wamerican)\n"
        "  --expect-loss X    exit with status 1 when the last epoch's loss per letter is above X\n";
}

Args parse(int argc, char** argv) {
  Args a;
  sample::parse_options("char_rnn", argc, argv, usage, {
      {"--epochs", &a.epochs}, {"--hidden", &a.hidden}, {"--batch", &a.batch}, {"--lr", &a.lr},
      {"--words", &a.words}, {"--samples", &a.samples}, {"--temperature", &a.temperature}, {"--seed", &a.seed},
      {"--dict", &a.path}, {"--expect-loss", &a.expect},
  });
  if (a.epochs < 0 || a.batch < 1 || a.hidden < 1 || a.lr <= 0 || a.words < 0 || a.samples < 0 || a.temperature <= 0) {
    std::cerr << "char_rnn: --epochs, --words, --samples >= 0; --batch, --hidden >= 1; --lr, --temperature > 0\n";
    std::exit(2);
  }
  return a;
}

std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "char_rnn: cannot read " << path
              << "\nInstall Debian's word list (sudo apt-get install wamerican) or name another with --dict FILE.\n";
    std::exit(2);
  }
  std::vector<std::string> words;
  for (std::string w; std::getline(in, w);)
    if (!w.empty() && w.size() <= 24 && std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      words.push_back(w);
  return words;
}

// The GRU (PyTorch's formulation): gx holds x's projections for the reset, update and new
// gates side by side (B, 3H); r scales the state's projection for the new gate.
th::Tensor gru_cell(const th::Tensor& gx, const th::Tensor& h, const th::Tensor& U, const th::Tensor& bh, std::int64_t H) {
  using th::all;
  using th::range;
  const th::Tensor gh = th::matmul(h, U) + bh;
  const th::Tensor r = th::sigmoid(th::view(gx, all(), range(0, H)) + th::view(gh, all(), range(0, H)));
  const th::Tensor z = th::sigmoid(th::view(gx, all(), range(H, 2 * H)) + th::view(gh, all(), range(H, 2 * H)));
  const th::Tensor n = th::tanh(th::view(gx, all(), range(2 * H, 3 * H)) + r * th::view(gh, all(), range(2 * H, 3 * H)));
  return (1.0 - z) * n + z * h;
}

std::string clock_text(double secs) {
  char b[32];
  std::snprintf(b, sizeof b, "%d:%02d", int(secs) / 60, int(secs) % 60);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::vector<std::string> words = read_words(a.path);
  if (words.empty()) {
    std::cerr << "char_rnn: no lower-case words in " << a.path << "\n";
    return 2;
  }
  std::mt19937_64 rng(a.seed);
  std::shuffle(words.begin(), words.end(), rng);
  if (a.words > 0 && a.words < std::int64_t(words.size())) words.resize(std::size_t(a.words));
  const auto n = std::int64_t(words.size());
  const std::int64_t H = a.hidden;
  std::printf("char_rnn: %lld words from %s, GRU with %lld units, batches of %lld\n", static_cast<long long>(n),
              a.path.c_str(), static_cast<long long>(H), static_cast<long long>(a.batch));

  // parameters: x's projections are rows of Wx picked by the letter (no one-hot product)
  const th::DType f32 = th::DType::float32;
  auto init = [&](th::Shape s, double scale, std::uint64_t k) {
    return th::random::uniform(s, -scale, scale, a.seed * 1000 + k, f32);
  };
  const double su = 1.0 / std::sqrt(double(H));
  th::Shared Wx = th::shared(init({kSymbols, 3 * H}, su, 1), "Wx"), U = th::shared(init({H, 3 * H}, su, 2), "U");
  th::Shared bx = th::shared(th::zeros({3 * H}, f32), "bx"), bh = th::shared(th::zeros({3 * H}, f32), "bh");
  th::Shared Wo = th::shared(init({H, kSymbols}, su, 3), "Wo"), bo = th::shared(th::zeros({kSymbols}, f32), "bo");
  const std::vector<th::Shared> params{Wx, U, bx, bh, Wo, bo};

  // training: x (T, B) letters in, y (T, B) letters out, mask (T, B) 1 where y is real
  const th::Tensor xs = th::lmatrix("x"), ys = th::lmatrix("y"), ms = th::fmatrix("mask");
  const th::Tensor gx = th::take(Wx, xs) + bx;  // (T, B, 3H), before the loop: one gather
  const th::Tensor h0 = th::zeros(th::concatenate({th::view(th::shape_of(xs), th::range(1, 2)),
                                                   th::tensor(std::vector<std::int64_t>{H}, {1})}),
                                  f32);
  const th::Tensor hs = th::scan([&](const std::vector<th::Tensor>& s) { return std::vector<th::Tensor>{gru_cell(s[0], s[1], U, bh, H)}; },
                                 {gx}, {h0})[0];
  const th::Tensor logits = th::matmul(th::reshape(hs, {-1, H}), Wo) + bo;
  const th::Tensor per_letter = th::categorical_crossentropy(th::softmax(logits), th::reshape(ys, {-1}));
  const th::Tensor m = th::reshape(ms, {-1});
  const th::Tensor cost = th::sum(per_letter * m) / th::sum(m);
  const th::Function train = th::function({xs, ys, ms}, {cost}, th::optim::adam(cost, params, a.lr));

  // sampling: one letter for each of B words at a time
  const th::Tensor xt = th::lvector("x"), ht = th::fmatrix("h");
  const th::Tensor hn = gru_cell(th::take(Wx, xt) + bx, ht, U, bh, H);
  const th::Function step = th::function({xt, ht}, {th::softmax((th::matmul(hn, Wo) + bo) / a.temperature), hn});

  const bool tty = isatty(STDOUT_FILENO);
  const std::int64_t batches = (n + a.batch - 1) / a.batch;
  double last = 0;
  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    std::shuffle(words.begin(), words.end(), rng);
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0, letters = 0;
    for (std::int64_t b = 0; b < batches; ++b) {
      const std::int64_t lo = b * a.batch, hi = std::min(n, lo + a.batch), B = hi - lo;
      std::int64_t T = 0;
      for (std::int64_t i = lo; i < hi; ++i) T = std::max<std::int64_t>(T, std::int64_t(words[std::size_t(i)].size()) + 1);
      std::vector<std::int64_t> xv(std::size_t(T * B), 0), yv(std::size_t(T * B), 0);
      std::vector<float> mv(std::size_t(T * B), 0.f);
      for (std::int64_t i = 0; i < B; ++i) {
        const std::string& w = words[std::size_t(lo + i)];
        for (std::int64_t t = 0; t <= std::int64_t(w.size()); ++t) {
          const auto at = std::size_t(t * B + i);
          xv[at] = t == 0 ? 0 : w[std::size_t(t - 1)] - 'a' + 1;
          yv[at] = t == std::int64_t(w.size()) ? 0 : w[std::size_t(t)] - 'a' + 1;
          mv[at] = 1.f;
        }
      }
      const double count = std::accumulate(mv.begin(), mv.end(), 0.0);
      const double l = train(th::tensor(xv, {T, B}), th::tensor(yv, {T, B}), th::tensor(mv, {T, B}))[0].item<double>();
      loss_sum += l * count, letters += count;
      if (tty && (b % 20 == 19 || b + 1 == batches)) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const int width = 30, done = int(width * (b + 1) / batches);
        std::printf("\repoch %d/%d [%s%s] %lld/%lld batches, loss %.4f, %.0f words/s, %s left ", epoch, a.epochs,
                    std::string(std::size_t(done), '#').c_str(), std::string(std::size_t(width - done), '.').c_str(),
                    static_cast<long long>(b + 1), static_cast<long long>(batches), loss_sum / letters,
                    double(hi) / secs, clock_text(secs / double(b + 1) * double(batches - b - 1)).c_str());
        std::fflush(stdout);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    last = loss_sum / letters;
    std::printf("%sepoch %d/%d: loss %.4f nats per letter (perplexity %.2f), %.0f words/s, %.1f s\n", tty ? "\r\033[K" : "",
                epoch, a.epochs, last, std::exp(last), double(n) / secs, secs);
    std::fflush(stdout);
  }

  // sample: all words at once, letter by letter, until each has drawn its end
  if (a.samples > 0) {
    std::vector<std::string> out(std::size_t(a.samples));
    std::vector<bool> done(out.size(), false);
    std::vector<std::int64_t> cur(out.size(), 0);
    th::Tensor h = th::zeros({a.samples, H}, f32);
    for (int t = 0; t < 24; ++t) {
      const th::Result r = step(th::tensor(cur, {a.samples}), h);
      const std::vector<float> p = r[0].to_vector<float>();
      h = r[1];
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::discrete_distribution<int> pick(p.begin() + std::ptrdiff_t(i * kSymbols),
                                             p.begin() + std::ptrdiff_t((i + 1) * kSymbols));
        cur[i] = pick(rng);
        if (!done[i] && cur[i] == 0) done[i] = true;
        if (!done[i]) out[i] += char('a' + cur[i] - 1);
      }
    }
    std::printf("sampled words:");
    for (const std::string& w : out) std::printf(" %s", w.c_str());
    std::printf("\n");
  }
  if (a.expect > 0 && (a.epochs == 0 || last > a.expect)) {
    std::fprintf(stderr, "char_rnn: the last epoch's loss %.4f is above the expected %.4f\n", last, a.expect);
    return 1;
  }
  return 0;
}
