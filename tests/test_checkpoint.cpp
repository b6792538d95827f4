// Checkpoints (API.md section 14, in part): Function::shared_variables, save_params and
// load_params; training stopped, checkpointed and resumed in new processes follows the
// uninterrupted run bit for bit (Adam's state and the dropout stream included).
#define BOOST_TEST_MODULE checkpoint
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "check.hpp"

using th::Tensor;

namespace {

// A small classifier with dropout and Adam, its data fixed by seeds.
struct Model {
  th::RandomStreams srng{5};
  th::Shared w1 = th::shared(th::random::uniform({6, 8}, -0.5, 0.5, 1), "w1");
  th::Shared b1 = th::shared(th::zeros({8}), "b1");
  th::Shared w2 = th::shared(th::random::uniform({8, 3}, -0.5, 0.5, 2), "w2");
  th::Function train = make();
  Tensor X = th::random::normal({20, 6}, 3);
  Tensor Y = th::cast(th::random::uniform({20}, 0, 3, 4), th::DType::int64);
  th::Function make() {
    const Tensor x = th::dmatrix("x"), y = th::lvector("y");
    const Tensor h = th::dropout(th::relu(th::dot(x, w1) + b1), 0.3, srng);
    const Tensor cost = th::mean(th::categorical_crossentropy(th::softmax(th::dot(h, w2)), y));
    return th::function({x, y}, {cost}, th::optim::adam(cost, {w1, b1, w2}, 0.01));
  }
  void steps(int n) {
    for (int i = 0; i < n; ++i) train(X, Y);
  }
};

std::string tmp(const std::string& name) { return "/tmp/theta_test_ckpt_" + std::to_string(::getpid()) + "_" + name; }

}  // namespace

BOOST_AUTO_TEST_CASE(shared_variables_lists_weights_state_and_streams) {
  Model m;
  std::vector<std::string> names;
  for (const th::Shared& s : m.train.shared_variables()) names.push_back(s.name());
  for (const char* n : {"w1", "b1", "w2", "w1.m", "w1.v", "w1.step", "w2.m", "srng.state"})
    BOOST_TEST((std::find(names.begin(), names.end(), n) != names.end()), "missing " << n);
  // the handles themselves: setting one changes what the function reads
  th::Shared w2;
  for (const th::Shared& s : m.train.shared_variables())
    if (s.name() == "w2") w2 = s;
  w2.set_value(th::zeros({8, 3}));
  BOOST_TEST(th::sum(th::abs(m.w2.get_value())).item<double>() == 0.0);
}

BOOST_AUTO_TEST_CASE(load_is_all_or_nothing) {
  Model m;
  const std::string path = tmp("bad.npz");
  th::save_npz(path, {{"w1", th::ones({6, 8})}, {"b1", th::ones({8}, th::DType::float32)}});
  const auto before = m.w1.get_value().to_vector<double>();
  // b1 has the wrong dtype: w1 must not have been replaced either
  BOOST_TEST(check::has(check::message_of<th::TypeError>([&] { th::load_params(path, {m.w1, m.b1}); }), "'b1' is float64"));
  BOOST_TEST(m.w1.get_value().to_vector<double>() == before, boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::IOError>([&] { th::load_params(path, {m.w1, m.w2}); }), "no entry 'w2'"));
  BOOST_TEST(m.w1.get_value().to_vector<double>() == before, boost::test_tools::per_element());
  BOOST_TEST(check::has(check::message_of<th::ValueError>([&] { th::save_params(path, {th::shared(th::zeros({2}))}); }),
                        "without a name"));
  std::remove(path.c_str());
}

// A checkpoint of another architecture (PyTorch's "size mismatch for ..."): refused, naming
// the entry and both shapes, with nothing loaded; accepted only when asked for.
BOOST_AUTO_TEST_CASE(load_refuses_another_shape_unless_asked) {
  Model m;
  const std::string path = tmp("shape.npz");
  th::save_npz(path, {{"w1", th::ones({5, 8})}, {"b1", th::ones({8})}});
  const auto w1 = m.w1.get_value().to_vector<double>();
  const auto b1 = m.b1.get_value().to_vector<double>();
  // b1 comes first and fits: it must not be replaced when w1 does not
  const std::string msg =
      check::message_of<th::ShapeError>([&] { th::load_params(path, {m.b1, m.w1}); });
  BOOST_TEST(check::has(msg, "load_params: size mismatch for 'w1'"));
  BOOST_TEST(check::has(msg, "holds shape (5, 8)"));
  BOOST_TEST(check::has(msg, "has shape (6, 8)"));
  BOOST_TEST(check::has(msg, "allow_new_shapes"));
  BOOST_TEST(m.w1.get_value().to_vector<double>() == w1, boost::test_tools::per_element());
  BOOST_TEST(m.b1.get_value().to_vector<double>() == b1, boost::test_tools::per_element());
  // on purpose: both replaced, w1 with its new shape
  th::load_params(path, {m.b1, m.w1}, /*allow_new_shapes=*/true);
  BOOST_TEST((m.w1.get_value().shape() == th::Shape{5, 8}));
  BOOST_TEST(th::sum(m.w1.get_value()).item<double>() == 40.0);
  BOOST_TEST(th::sum(m.b1.get_value()).item<double>() == 8.0);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(resumed_in_new_processes_follows_the_uninterrupted_run) {
  const char* role = std::getenv("THETA_CKPT_ROLE");
  const char* dir = std::getenv("THETA_CKPT_PATH");
  if (role) {  // a child: train 5 steps, from scratch or from the checkpoint, and save
    Model m;
    if (std::string(role) == "resume") th::load_params(dir, m.train.shared_variables());
    m.steps(5);
    th::save_params(dir, m.train.shared_variables());
    return;
  }
  Model whole;
  whole.steps(10);
  const std::string path = tmp("run.npz");
  const std::string exe = boost::unit_test::framework::master_test_suite().argv[0];
  for (const char* r : {"start", "resume"}) {
    const std::string cmd = "THETA_CKPT_ROLE=" + std::string(r) + " THETA_CKPT_PATH='" + path + "' '" + exe +
                            "' --run_test=resumed_in_new_processes_follows_the_uninterrupted_run > /dev/null 2>&1";
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "the " << r << " process failed");
  }
  const auto saved = th::load_npz(path);
  for (const th::Shared& s : whole.train.shared_variables()) {
    BOOST_TEST_REQUIRE(saved.count(s.name()) == 1u, "missing " << s.name());
    if (s.dtype() == th::DType::int64)
      BOOST_TEST(saved.at(s.name()).to_vector<std::int64_t>() == s.get_value().to_vector<std::int64_t>(),
                 s.name() << boost::test_tools::per_element());
    else
      BOOST_TEST(saved.at(s.name()).to_vector<double>() == s.get_value().to_vector<double>(),
                 s.name() << boost::test_tools::per_element());
  }
  std::remove(path.c_str());
}
