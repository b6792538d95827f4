// th::save / th::load_function (API.md section 14): a loaded training function goes on
// bit for bit as the original (updates, Adam's state, dropout's stream), on any batch size;
// its shared variables are its own, listed by name; every op's function round-trips (the
// shared checker, in every test file); and bad files are th::IOError naming the problem.
#define BOOST_TEST_MODULE save
#include <filesystem>

#include "check.hpp"
#include "io/npy.hpp"

using th::Tensor;

namespace {
// A saved function's bytes with its function.json edited (the first `from` replaced by `to`),
// re-zipped: how the tests make hostile files.
std::string edited(const std::string& good, const std::string& from, const std::string& to) {
  std::vector<th::detail::ZipEntry> entries;
  for (const auto& [n, b] : th::detail::zip_entries(good, "f.theta", "test")) {
    entries.push_back({n, std::string(b), nullptr, 0});
    if (n != "function.json") continue;
    std::string& j = entries.back().head;
    const auto at = j.find(from);
    BOOST_TEST_REQUIRE(at != std::string::npos, from << " in " << j);
    j.replace(at, from.size(), to);
  }
  return th::detail::zip_bytes(entries, "test");
}

std::string temp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("theta_test_save_" + std::to_string(::getpid()) + "_" + name)).string();
}

// An MLP step with dropout and Adam, and its predictor.
struct Model {
  th::Shared w1 = th::shared(th::random::uniform({4, 8}, -0.5, 0.5, 1), "w1");
  th::Shared b1 = th::shared(th::zeros({8}), "b1");
  th::Shared w2 = th::shared(th::random::uniform({8, 3}, -0.5, 0.5, 2), "w2");
  th::RandomStreams srng{7};
  Tensor x = th::dmatrix("x"), y = th::lvector("y");
  Tensor logits(bool train) {
    Tensor h = th::relu(th::matmul(x, w1) + b1);
    if (train) h = th::dropout(h, 0.3, srng);
    return th::matmul(h, w2);
  }
  th::Function train_fn() {
    const Tensor cost = th::mean(th::categorical_crossentropy(th::softmax(logits(true)), y));
    return th::function({x, y}, {cost}, th::optim::adam(cost, {w1, b1, w2}, 0.01));
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(loaded_training_goes_on_bit_for_bit) {
  Model m;
  const th::Function f = m.train_fn();
  const Tensor X = th::random::uniform({16, 4}, -1, 1, 3);
  const Tensor Y = th::tensor(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, {16});
  f(X, Y);
  f(X, Y);
  const std::string path = temp("train.theta");
  th::save(path, f);
  const th::Function g = th::load_function(path);
  std::filesystem::remove(path);
  // the loaded function's state is its own, at the saved values: both go on the same way
  for (int step = 0; step < 5; ++step) {
    const double a = f(X, Y)[0].item<double>(), b = g(X, Y)[0].item<double>();
    BOOST_TEST(a == b, "step " << step << ": " << a << " vs " << b);
  }
  std::vector<std::string> names;
  for (const th::Shared& s : g.shared_variables()) names.push_back(s.name());
  for (const char* n : {"w1", "b1", "w2", "w1.m", "w1.v", "w1.step", "srng.state"})
    BOOST_TEST((std::find(names.begin(), names.end(), n) != names.end()), "missing shared variable " << n);
  for (const th::Shared& s : g.shared_variables())
    if (s.name() == "w1") BOOST_TEST(check::vals(s.get_value()) == check::vals(m.w1.get_value()), boost::test_tools::per_element());
  // another batch size through the same loaded function
  BOOST_TEST(std::isfinite(g(th::random::uniform({5, 4}, -1, 1, 4), th::tensor(std::vector<std::int64_t>{0, 1, 2, 0, 1}, {5}))[0].item<double>()));
}

BOOST_AUTO_TEST_CASE(a_predictor_saved_and_loaded) {
  Model m;
  const th::Function predict = th::function({m.x}, th::argmax(m.logits(false), 1));
  const std::string path = temp("predict.theta");
  th::save(path, predict);
  const th::Function p = th::load_function(path);
  const Tensor X = th::random::uniform({7, 4}, -1, 1, 5);
  BOOST_TEST(check::vals(p(X)) == check::vals(predict(X)), boost::test_tools::per_element());
  BOOST_TEST(check::has(th::debugprint(p), "argmax"));
  // replacing a loaded weight changes the loaded function only
  for (th::Shared s : p.shared_variables())
    if (s.name() == "w2") s.set_value(th::zeros({8, 3}));
  BOOST_TEST(check::vals(p(X)) == std::vector<double>(7, 0.0), boost::test_tools::per_element());
  BOOST_TEST(check::vals(predict(X)) != std::vector<double>(7, 0.0));
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(bad_files_are_io_errors) {
  Model m;
  const th::Function predict = th::function({m.x}, th::argmax(m.logits(false), 1));
  const std::string path = temp("bad.theta");
  th::save(path, predict);
  const std::string good = th::detail::read_bytes(path, "test");
  std::filesystem::remove(path);
  auto load = [](const std::string& bytes) {
    return check::message_of<th::IOError>([&] { th::detail::load_function_bytes(bytes, "f.theta"); });
  };
  BOOST_TEST(check::has(check::message_of<th::IOError>([] { th::load_function("/nonexistent/model.theta"); }), "cannot open"));
  BOOST_TEST(check::has(load(good.substr(0, good.size() / 2)), "f.theta"));   // truncated
  BOOST_TEST(check::has(load(""), "not a zip archive"));
  std::string flipped = good;
  flipped[100] = char(flipped[100] ^ 0x55);  // inside function.json: its checksum fails
  BOOST_TEST(check::has(load(flipped), "checksum mismatch"));
  // edits of function.json, re-zipped
  auto with = [&](const std::string& from, const std::string& to) { return load(edited(good, from, to)); };
  BOOST_TEST(check::has(with("\"version\":3", "\"version\":7"), "format version 7 is newer"));
  BOOST_TEST(check::has(with("\"op\":\"argmax\"", "\"op\":\"frobnicate\""), "unknown op 'frobnicate'"));
  BOOST_TEST(check::has(with("\"outputs\":[", "\"outputs\":[123456,"), "out of range"));
  BOOST_TEST(check::has(with("\"format\":\"theta.function\"", "\"format\":\"other\""), "not a theta function file"));
  BOOST_TEST(check::has(with("{", "["), "malformed function.json"));
  // an op with the wrong number of operands is refused before it runs
  BOOST_TEST(check::has(with("\"op\":\"argmax\"", "\"op\":\"add\""), "has 1 operands"));
  // an .npz is not a function
  const std::string npz = temp("x.npz");
  th::save_npz(npz, {{"a", th::zeros({2})}});
  BOOST_TEST(check::has(check::message_of<th::IOError>([&] { th::load_function(npz); }), "no function.json"));
  std::filesystem::remove(npz);
}

// A loaded function's errors name what the user wrote (dot records a matmul step), as the
// frozen function's in memory do; files of format version 1 (no `called`) still load.
BOOST_AUTO_TEST_CASE(loaded_errors_name_the_users_function_and_old_files_load) {
  const Tensor x = th::dmatrix("x"), w = th::dvector("w");
  const std::string path = temp("dot.theta");
  th::save(path, th::function({x, w}, th::dot(x, w) * 2.0));
  const th::Function g = th::load_function(path);
  std::filesystem::remove(path);
  const std::string m = check::message_of<th::ShapeError>([&] { g(th::zeros({125, 4}), th::zeros({3})); });
  BOOST_TEST(check::has(m, "dot: shapes not aligned: 4 (dim 1) != 3 (dim 0)"), m);
  BOOST_TEST(check::has(m, "[x, w]"), m);
  BOOST_TEST(Tensor(g(th::ones({2, 3}), th::ones({3}))).to_vector<double>() == std::vector<double>({6.0, 6.0}), boost::test_tools::per_element());
  // version 1 (predictor.theta: argmax(matmul(x, w)), w (3, 2)) loads and runs
  const th::Function old = th::load_function(std::string(THETA_TEST_CORPUS) + "/function/predictor.theta");
  const Tensor w0 = old.shared_variables().at(0).get_value();
  const Tensor X = th::random::uniform({5, w0.shape()[0]}, -1, 1, 4);
  BOOST_TEST(Tensor(old(X)).to_vector<std::int64_t>() == th::argmax(th::matmul(X, w0), 1).to_vector<std::int64_t>(),
             boost::test_tools::per_element());
  // version 2 (linalg_v2.theta, written by theta before steps with several outputs: one op per
  // factor of qr(a), svd(a), eigh(a^T a), slogdet(a^T a)) loads and runs as today's functions
  const th::Function lin = th::load_function(std::string(THETA_TEST_CORPUS) + "/function/linalg_v2.theta");
  const Tensor A = th::random::uniform({4, 3}, -1, 1, 8);
  const th::Result got = lin(A);
  const auto [q, r] = th::linalg::qr(A);
  const auto [u, s, vt] = th::linalg::svd(A);
  const Tensor sq = th::matmul(th::transpose(A), A);
  const auto [ew, V] = th::linalg::eigh(sq);
  const auto [sign, logabs] = th::linalg::slogdet(sq);
  const std::vector<Tensor> want{q, r, u, s, vt, ew, V, sign, logabs};
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    BOOST_TEST(got[i].to_vector<double>() == want[i].to_vector<double>(), boost::test_tools::per_element());
}

// A file whose convolution or pooling step has attributes the public functions never make
// (too few entries, a zero stride) is refused with an error when the step runs, never read
// past its attributes or divided by zero.
BOOST_AUTO_TEST_CASE(hostile_conv_and_pool_attributes_are_errors) {
  const Tensor x = th::dtensor4("x");
  const th::Shared w = th::shared(th::random::uniform({2, 1, 3, 3}, -1, 1, 5), "w");
  const th::Function f = th::function({x}, th::pool_2d(th::conv2d(x, w), {2, 2}));
  const std::string path = temp("conv.theta");
  th::save(path, f);
  const std::string good = th::detail::read_bytes(path, "test");
  std::filesystem::remove(path);
  const Tensor X = th::random::uniform({1, 1, 6, 6}, -1, 1, 6);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"axes\":[0,0,1,1,1,1,1,1]", "\"axes\":[0,0]"},
           {"\"axes\":[0,0,1,1,1,1,1,1]", "\"axes\":[0,0,0,1,1,1,1,1]"},
           {"\"axes\":[2,2,2,2,0,0,1,0]", "\"axes\":[2,2,0,2,0,0,1,0]"},
           {"\"axes\":[2,2,2,2,0,0,1,0]", "\"axes\":[2]"}}) {
    BOOST_TEST_CONTEXT(to) {
      const std::string msg = check::message_of<th::Error>([&, from = from, to = to] {
        const th::Function g = th::detail::load_function_bytes(edited(good, from, to), "f.theta");
        g(X);
      });
      BOOST_TEST((check::has(msg, "invalid convolution attributes") || check::has(msg, "invalid pooling attributes")), msg);
    }
  }
}

BOOST_AUTO_TEST_CASE(loops_and_branches_round_trip) {
  // a training function with a scan (and its backward scan) and an ifelse, saved and loaded
  th::Shared W = th::shared(th::random::uniform({3, 3}, -0.5, 0.5, 9), "W");
  const Tensor xs = th::dtensor3("xs"), h0 = th::dmatrix("h0"), c = th::placeholder(th::DType::boolean, 0, "c");
  const Tensor hs = th::scan([&](const std::vector<Tensor>& s) { return std::vector<Tensor>{th::tanh(s[0] + th::matmul(s[1], W))}; },
                             {xs}, {h0})[0];
  const Tensor cost = th::ifelse(c, th::sum(th::sqr(hs)), th::sum(hs));
  const th::Function f = th::function({xs, h0, c}, {cost, th::grad(cost, W)}, th::optim::sgd(cost, {W}, 0.1));
  const std::string path = temp("loop.theta");
  th::save(path, f);
  const th::Function g = th::load_function(path);
  std::filesystem::remove(path);
  for (std::int64_t T : {1, 4, 9}) {
    const Tensor X = th::random::uniform({T, 2, 3}, -1, 1, std::uint64_t(T)), H = th::random::uniform({2, 3}, -1, 1, 20);
    for (bool cv : {true, false}) {
      const th::Result a = f(X, H, cv), b = g(X, H, cv);
      BOOST_TEST(check::vals(a[0]) == check::vals(b[0]), boost::test_tools::per_element());
      BOOST_TEST(check::vals(a[1]) == check::vals(b[1]), boost::test_tools::per_element());
    }
  }
}
