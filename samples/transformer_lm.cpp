// A character-level GPT trained on Debian's fortune cookies (/usr/share/games/fortunes, the
// `fortunes` package: 2.6 MB of English that nobody here wrote; the last 10 % held out):
// token and learned position embeddings, pre-LN blocks of causal self-attention (one fused
// q|k|v projection, th::split, th::scaled_dot_product_attention) and a gelu MLP, a final
// layer norm and a linear head; AdamW with warm-up and cosine decay, gradient clipping; one
// frozen training function. Prints a progress bar with the loss and tokens per second, the
// held-out loss in bits per character after each epoch, and samples text at the end.
//
//   ./build/samples/transformer_lm --epochs 4 --sample 400
//
// Characters: newline and the 95 printable ASCII ones (a vocabulary of 96; tabs read as
// spaces, other bytes skipped).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include <theta/theta.hpp>

#include "options.hpp"

namespace {

constexpr std::int64_t kVocab = 96;

struct Args {
  int epochs = 4;
  std::int64_t batch = 32, context = 64, d_model = 128, heads = 4, layers = 2, steps = 0, warmup = 200, sample = 300;
  double lr = 3e-3, weight_decay = 0.1, clip = 1.0, temperature = 0.8, expect_bpc = 0;
  std::uint64_t seed = 1;
  std::string data = "/usr/share/games/fortunes", checkpoint, save_model, prompt = "The ";
};

void usage(std::ostream& os) {
  os << "usage: transformer_lm [--epochs N] [--steps N] [--batch N] [--context N] [--d-model N] [--heads N]\n"
        "                      [--layers N] [--lr X] [--warmup N] [--weight-decay X] [--clip X] [--seed N]\n"
        "                      [--data DIR] [--checkpoint FILE] [--save-model FILE] [--sample N]\n"
        "                      [--temperature T] [--prompt TEXT] [--expect-bpc X]\n"
        "A character-level transformer language model on the fortune cookie files; prints the\n"
        "held-out loss in bits per character after each epoch, then samples text.\n"
        "  --epochs N         passes of --steps batches (default 4)\n"
        "  --steps N          batches per epoch (default: the training text's characters once)\n"
        "  --batch N          sequences per batch (default 32)\n"
        "  --context N        characters per sequence (default 64)\n"
        "  --d-model N        the model's width (default 128); --heads N attention heads (default 4)\n"
        "  --layers N         transformer blocks (default 2)\n"
        "  --lr X             AdamW's peak learning rate (default 0.003), after --warmup N steps\n"
        "                     (default 200) rising linearly, then cosine decay to 0\n"
        "  --weight-decay X   AdamW's decoupled weight decay (default 0.1)\n"
        "  --clip X           clip the gradients' global norm to X (default 1; 0: off)\n"
        "  --data DIR         the fortune files (default /usr/share/games/fortunes; apt-get install fortunes)\n"
        "  --checkpoint FILE  resume from FILE if it exists (weights and AdamW's state, .npz);\n"
        "                     written after every epoch\n"
        "  --save-model FILE  save the next-character predictor (th::save; `theta run` loads it)\n"
        "  --sample N         characters to generate at the end (default 300; 0: none)\n"
        "  --temperature T    sampling temperature (default 0.8)\n"
        "  --prompt TEXT      the text the sample continues (default \"The \")\n"
        "  --expect-bpc X     exit with status 1 when the last held-out bits per character exceed X\n";
}

Args parse(int argc, char** argv) {
  Args a;
  sample::parse_options("transformer_lm", argc, argv, usage, {
      {"--epochs", &a.epochs}, {"--steps", &a.steps}, {"--batch", &a.batch}, {"--context", &a.context},
      {"--d-model", &a.d_model}, {"--heads", &a.heads}, {"--layers", &a.layers}, {"--lr", &a.lr},
      {"--warmup", &a.warmup}, {"--weight-decay", &a.weight_decay}, {"--clip", &a.clip}, {"--seed", &a.seed},
      {"--data", &a.data}, {"--checkpoint", &a.checkpoint}, {"--save-model", &a.save_model},
      {"--sample", &a.sample}, {"--temperature", &a.temperature}, {"--prompt", &a.prompt},
      {"--expect-bpc", &a.expect_bpc},
  });
  if (a.epochs < 0 || a.steps < 0 || a.batch < 1 || a.context < 2 || a.d_model < 1 || a.heads < 1 ||
      a.d_model % a.heads != 0 || a.layers < 1 || a.lr <= 0 || a.warmup < 0 || a.weight_decay < 0 || a.clip < 0 ||
      a.sample < 0 || a.temperature <= 0) {
    std::cerr << "transformer_lm: --epochs, --steps, --warmup, --sample, --weight-decay, --clip >= 0; --batch, "
                 "--layers >= 1; --context >= 2; --heads divides --d-model; --lr, --temperature > 0\n";
    std::exit(2);
  }
  return a;
}

std::int64_t code_of(unsigned char c) {
  if (c == '\n') return 0;
  if (c == '\t') c = ' ';
  return c >= 32 && c <= 126 ? std::int64_t(c) - 31 : -1;
}
char char_of(std::int64_t k) { return k == 0 ? '\n' : char(k + 31); }

// Every fortune file of `dir` (not the .dat indexes or .u8 links), in name order, as codes.
std::vector<std::int64_t> read_text(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && !e.is_symlink() && name.find('.') == std::string::npos) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::int64_t> codes;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    for (unsigned char c : s.str())
      if (const std::int64_t k = code_of(c); k >= 0) codes.push_back(k);
  }
  if (codes.size() < 10000) {
    std::cerr << "transformer_lm: no fortune files in " << dir
              << "\nInstall Debian's (sudo apt-get install fortunes) or name a directory of text files with --data DIR.\n";
    std::exit(2);
  }
  return codes;
}

std::string clock_text(double secs) {
  char b[32];
  std::snprintf(b, sizeof b, "%d:%02d", int(secs) / 60, int(secs) % 60);
  return b;
}

struct Block {
  th::Shared ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_1, b_1, w_2, b_2;
};

struct Model {
  th::Shared tok, pos, lnf_g, lnf_b, head_w, head_b;
  std::vector<Block> blocks;
  std::vector<th::Shared> params;
};

Model make_model(const Args& a) {
  const th::DType f32 = th::DType::float32;
  const std::int64_t D = a.d_model;
  std::uint64_t k = a.seed * 1000;
  std::string prefix;  // "block0." ...: the names tell checkpoints' entries apart
  auto normal = [&](th::Shape s, double std, const char* name) {
    return th::shared(th::random::normal(s, ++k, f32) * std, prefix + name);
  };
  auto fill = [&](th::Shape s, double v, const char* name) { return th::shared(th::full(s, v, f32), prefix + name); };
  Model m;
  m.tok = normal({kVocab, D}, 0.02, "tok_emb");
  m.pos = normal({a.context, D}, 0.02, "pos_emb");
  const double proj = 0.02 / std::sqrt(2.0 * double(a.layers));  // GPT-2's scaled residual projections
  for (std::int64_t l = 0; l < a.layers; ++l) {
    prefix = "block" + std::to_string(l) + ".";
    m.blocks.push_back({fill({D}, 1, "ln1_g"), fill({D}, 0, "ln1_b"), normal({D, 3 * D}, 0.02, "w_qkv"),
                        fill({3 * D}, 0, "b_qkv"), normal({D, D}, proj, "w_o"), fill({D}, 0, "b_o"), fill({D}, 1, "ln2_g"),
                        fill({D}, 0, "ln2_b"), normal({D, 4 * D}, 0.02, "w_1"), fill({4 * D}, 0, "b_1"),
                        normal({4 * D, D}, proj, "w_2"), fill({D}, 0, "b_2")});
  }
  prefix.clear();
  m.lnf_g = fill({D}, 1, "lnf_g");
  m.lnf_b = fill({D}, 0, "lnf_b");
  m.head_w = normal({D, kVocab}, 0.02, "head_w");
  m.head_b = fill({kVocab}, 0, "head_b");
  m.params = {m.tok, m.pos};
  for (const Block& b : m.blocks)
    m.params.insert(m.params.end(), {b.ln1_g, b.ln1_b, b.w_qkv, b.b_qkv, b.w_o, b.b_o, b.ln2_g, b.ln2_b, b.w_1, b.b_1,
                                     b.w_2, b.b_2});
  m.params.insert(m.params.end(), {m.lnf_g, m.lnf_b, m.head_w, m.head_b});
  return m;
}

// logits (B, T, vocab) of tokens (B, T) at positions (T)
th::Tensor forward(const Model& m, const Args& a, const th::Tensor& tokens, const th::Tensor& positions) {
  const std::int64_t D = a.d_model, H = a.heads, Dh = D / H;
  th::Tensor x = th::take(m.tok, tokens) + th::take(m.pos, positions);  // (B, T, D)
  const th::Tensor bt = th::view(th::shape_of(tokens), th::range(0, 2));
  const th::Tensor split_shape = th::concatenate({bt, th::tensor(std::vector<std::int64_t>{H, Dh}, {2})});
  const th::Tensor merge_shape = th::concatenate({bt, th::tensor(std::vector<std::int64_t>{D}, {1})});
  auto heads = [&](const th::Tensor& t) { return th::transpose(th::reshape(t, split_shape), {0, 2, 1, 3}); };
  for (const Block& b : m.blocks) {
    const auto qkv = th::split(th::matmul(th::layer_norm(x, b.ln1_g, b.ln1_b), b.w_qkv) + b.b_qkv, {D, D, D}, -1);
    const th::Tensor att = th::scaled_dot_product_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), {}, true);
    x = x + th::matmul(th::reshape(th::transpose(att, {0, 2, 1, 3}), merge_shape), b.w_o) + b.b_o;
    const th::Tensor h = th::gelu(th::matmul(th::layer_norm(x, b.ln2_g, b.ln2_b), b.w_1) + b.b_1);
    x = x + th::matmul(h, b.w_2) + b.b_2;
  }
  return th::matmul(th::layer_norm(x, m.lnf_g, m.lnf_b), m.head_w) + m.head_b;
}

}  // namespace

int run(const Args& a);

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    return run(a);
  } catch (const th::Error& e) {
    std::cerr << "transformer_lm: " << e.what() << "\n";
    return 1;
  }
}

int run(const Args& a) {
  const std::vector<std::int64_t> text = read_text(a.data);
  const auto n = std::int64_t(text.size()), n_train = n * 9 / 10;
  const std::int64_t B = a.batch, T = a.context;
  const std::int64_t steps = a.steps > 0 ? a.steps : std::max<std::int64_t>(1, n_train / (B * T));
  Model m = make_model(a);
  std::int64_t n_params = 0;
  for (const th::Shared& p : m.params) n_params += p.get_value().size();
  std::printf("transformer_lm: %lld characters from %s (%lld for training, %lld held out); %lld blocks, d_model %lld, "
              "%lld heads, %lld parameters; %lld steps of %lld x %lld per epoch\n",
              static_cast<long long>(n), a.data.c_str(), static_cast<long long>(n_train), static_cast<long long>(n - n_train),
              static_cast<long long>(a.layers), static_cast<long long>(a.d_model), static_cast<long long>(a.heads),
              static_cast<long long>(n_params), static_cast<long long>(steps), static_cast<long long>(B),
              static_cast<long long>(T));

  // training: tokens and next tokens (B, T), positions 0..T-1
  const th::Tensor xs = th::lmatrix("tokens"), ys = th::lmatrix("targets"), ps = th::lvector("positions");
  const th::Tensor logits = forward(m, a, xs, ps);
  const th::Tensor flat = th::reshape(logits, {-1, kVocab});
  const th::Tensor cost = th::mean(th::categorical_crossentropy(th::softmax(flat), th::reshape(ys, {-1})));
  th::Shared lr = th::shared(th::tensor(a.lr, th::DType::float32), "lr");
  std::vector<th::Tensor> grads = th::grad(cost, m.params);
  if (a.clip > 0) grads = th::optim::clip_grad_norm(grads, a.clip);
  const th::Function train =
      th::function({xs, ys, ps}, {cost}, th::optim::adamw(grads, m.params, lr, 0.9, 0.99, 1e-8, a.weight_decay));
  const th::Function evaluate = th::function({xs, ys, ps}, {cost});
  // the next character's probabilities after a window (1, t <= T)
  const th::Tensor last = th::view(logits, 0, -1);
  const th::Function predict = th::function({xs, ps}, th::softmax(last / a.temperature));

  if (!a.checkpoint.empty() && std::ifstream(a.checkpoint)) {
    try {
      th::load_params(a.checkpoint, train.shared_variables());
      std::cout << "resumed from " << a.checkpoint << "\n";
    } catch (const th::Error& e) {
      std::cerr << "transformer_lm: cannot resume: " << e.what()
                << "\n(a checkpoint of another model size? delete the file or name another one)\n";
      return 1;
    }
  }

  std::vector<std::int64_t> pos(static_cast<std::size_t>(T));
  for (std::int64_t t = 0; t < T; ++t) pos[std::size_t(t)] = t;
  const th::Tensor positions = th::tensor(pos, {T});
  auto window = [&](std::int64_t from, std::vector<std::int64_t>& x, std::vector<std::int64_t>& y, std::size_t at) {
    for (std::int64_t t = 0; t < T; ++t) {
      x[at + std::size_t(t)] = text[std::size_t(from + t)];
      y[at + std::size_t(t)] = text[std::size_t(from + t + 1)];
    }
  };
  // held-out bits per character: every whole window of the last 10 % (at most 256 batches)
  auto held_out_bpc = [&] {
    std::vector<std::int64_t> x(std::size_t(B * T)), y(std::size_t(B * T));
    double sum = 0;
    std::int64_t batches = 0;
    for (std::int64_t from = n_train; from + B * T + 1 <= n && batches < 256; from += B * T, ++batches) {
      for (std::int64_t i = 0; i < B; ++i) window(from + i * T, x, y, std::size_t(i * T));
      sum += evaluate(th::tensor(x, {B, T}), th::tensor(y, {B, T}), positions)[0].item<double>();
    }
    return sum / double(std::max<std::int64_t>(1, batches)) / std::log(2.0);
  };

  const bool tty = isatty(STDOUT_FILENO);
  std::mt19937_64 rng(a.seed);
  std::uniform_int_distribution<std::int64_t> start(0, n_train - T - 2);
  std::vector<std::int64_t> x(std::size_t(B * T)), y(std::size_t(B * T));
  const std::int64_t total = std::int64_t(a.epochs) * steps;
  double bpc = 0;
  const auto began = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    for (std::int64_t s = 0; s < steps; ++s) {
      const std::int64_t step = (epoch - 1) * steps + s;  // warm-up, then cosine decay to 0
      const double rate = step < a.warmup ? a.lr * double(step + 1) / double(a.warmup)
                                          : 0.5 * a.lr * (1 + std::cos(3.141592653589793 * double(step - a.warmup) /
                                                                       double(std::max<std::int64_t>(1, total - a.warmup))));
      lr.set_value(th::tensor(rate, th::DType::float32));
      for (std::int64_t i = 0; i < B; ++i) window(start(rng), x, y, std::size_t(i * T));
      loss_sum += train(th::tensor(x, {B, T}), th::tensor(y, {B, T}), positions)[0].item<double>();
      if (tty && (s % 10 == 9 || s + 1 == steps)) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const int width = 30, done = int(width * (s + 1) / steps);
        std::printf("\repoch %d/%d [%s%s] %lld/%lld steps, loss %.3f bits/char, %.0f tokens/s, %s left ", epoch,
                    a.epochs, std::string(std::size_t(done), '#').c_str(), std::string(std::size_t(width - done), '.').c_str(),
                    static_cast<long long>(s + 1), static_cast<long long>(steps), loss_sum / double(s + 1) / std::log(2.0),
                    double((s + 1) * B * T) / secs, clock_text(secs / double(s + 1) * double(steps - s - 1)).c_str());
        std::fflush(stdout);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bpc = held_out_bpc();
    if (!a.checkpoint.empty()) th::save_params(a.checkpoint, train.shared_variables());
    std::printf("%sepoch %d/%d: training loss %.3f bits/char, %.0f tokens/s, %.1f s; held-out %.3f bits/char (%s in all)\n",
                tty ? "\r\033[K" : "", epoch, a.epochs, loss_sum / double(steps) / std::log(2.0),
                double(steps * B * T) / secs, secs, bpc,
                clock_text(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count()).c_str());
    std::fflush(stdout);
  }
  if (a.epochs == 0) bpc = held_out_bpc();

  if (a.sample > 0) {  // the prompt continued a character at a time (the last T characters as context)
    std::vector<std::int64_t> ctx;
    for (unsigned char c : a.prompt)
      if (const std::int64_t k = code_of(c); k >= 0) ctx.push_back(k);
    if (ctx.empty()) ctx.push_back(0);
    std::string out = a.prompt;
    for (std::int64_t i = 0; i < a.sample; ++i) {
      const std::int64_t t = std::min<std::int64_t>(T, std::int64_t(ctx.size()));
      const std::vector<std::int64_t> w(ctx.end() - t, ctx.end());
      const std::vector<float> p =
          predict(th::tensor(w, {1, t}), th::view(positions, th::range(0, t)))[0].to_vector<float>();
      std::discrete_distribution<int> pick(p.begin(), p.end());
      const std::int64_t k = pick(rng);
      ctx.push_back(k);
      out += char_of(k);
    }
    std::printf("sample (temperature %.2f):\n%s\n", a.temperature, out.c_str());
  }
  if (!a.save_model.empty()) {
    th::save(a.save_model, predict);
    std::printf("saved the next-character predictor to %s (inputs: tokens (1, t) and positions (t))\n",
                a.save_model.c_str());
  }
  if (a.expect_bpc > 0 && bpc > a.expect_bpc) {
    std::fprintf(stderr, "transformer_lm: held-out %.3f bits per character is above the expected %.3f\n", bpc,
                 a.expect_bpc);
    return 1;
  }
  return 0;
}
