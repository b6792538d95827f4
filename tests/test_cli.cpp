// The `theta` command-line tool on a function th::save wrote: run (numpy files in, an .npz
// out, the same values as the function), print, dot, info, --help, and its exit codes and
// messages on bad input.
#define BOOST_TEST_MODULE cli
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "check.hpp"

#ifndef THETA_CLI_PATH
#error "THETA_CLI_PATH: the built theta tool (tests/CMakeLists.txt)"
#endif

namespace {
const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("theta_test_cli_" + std::to_string(::getpid()));

// Runs the tool with `args`; its exit status, and what it printed (stdout and stderr).
std::pair<int, std::string> theta(const std::string& args) {
  const std::string out = (dir / "out.txt").string();
  const int rc = std::system((std::string(THETA_CLI_PATH) + " " + args + " > " + out + " 2>&1").c_str());
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ss.str()};
}
}  // namespace

BOOST_AUTO_TEST_CASE(run_print_dot_info) {
  std::filesystem::create_directories(dir);
  const th::Tensor x = th::dmatrix("x"), s = th::dscalar("s");
  th::Shared w = th::shared(th::tensor({{1.0, -2.0}, {0.5, 3.0}}), "w");
  const th::Function f = th::function({x, s}, {th::matmul(x, w) * s, th::sum(x)});
  const std::string model = (dir / "model.theta").string(), in = (dir / "x.npy").string(), out = (dir / "y.npz").string();
  th::save(model, f);
  const th::Tensor xv = th::tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
  th::save_npy(in, xv);
  auto [rc, text] = theta("run " + model + " " + in + " 2.5 -o " + out);
  BOOST_TEST(rc == 0, text);
  const auto got = th::load_npz(out);
  const th::Result want = f(xv, 2.5);
  BOOST_TEST(check::vals(got.at("output_0")) == check::vals(want[0]), boost::test_tools::per_element());
  BOOST_TEST(check::vals(got.at("output_1")) == check::vals(want[1]), boost::test_tools::per_element());
  std::tie(rc, text) = theta("run " + model + " " + in + " 2.5");
  BOOST_TEST(rc == 0);
  BOOST_TEST(check::has(text, "output 1:\n21"), text);
  std::tie(rc, text) = theta("print " + model);
  BOOST_TEST((rc == 0 && check::has(text, "matmul") && check::has(text, "shared 'w'")), text);
  std::tie(rc, text) = theta("dot " + model);
  BOOST_TEST((rc == 0 && check::has(text, "digraph")), text);
  std::tie(rc, text) = theta("info " + model);
  BOOST_TEST((rc == 0 && check::has(text, "w: float64 (2, 2)")), text);
  std::tie(rc, text) = theta("--help");
  BOOST_TEST((rc == 0 && check::has(text, "usage: theta COMMAND")), text);
}

#ifdef THETA_HAS_ONNX
// ONNX models (Debian's libonnx-testdata): run like .theta files, and converted into one.
BOOST_AUTO_TEST_CASE(onnx_models_run_and_convert, *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
  return std::filesystem::exists("/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx");
})) {
  std::filesystem::create_directories(dir);
  const std::string t = "/usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/";
  const std::string in = (dir / "conv_x.npy").string(), out = (dir / "conv_y.npz").string(),
                    converted = (dir / "conv.theta").string();
  const th::Function f = th::onnx::load_function(t + "model.onnx");
  const th::Tensor x = th::random::uniform({2, 3, 7, 5}, -1, 1, 3, th::DType::float32);  // the sizes the file declares
  th::save_npy(in, x);
  auto [rc, text] = theta("run " + t + "model.onnx " + in + " -o " + out);
  BOOST_TEST(rc == 0, text);
  const std::string wrong = (dir / "conv_wrong.npy").string();
  th::save_npy(wrong, th::random::uniform({2, 3, 6, 5}, -1, 1, 3, th::DType::float32));
  std::tie(rc, text) = theta("run " + t + "model.onnx " + wrong);
  BOOST_TEST((rc == 1 && check::has(text, "input 0 '0' has the fixed shape (2, 3, 7, 5), got (2, 3, 6, 5)")), text);
  BOOST_TEST(check::vals(th::load_npz(out).at("output_0")) == check::vals(f(x)[0]), boost::test_tools::per_element());
  std::tie(rc, text) = theta("info " + t + "model.onnx");
  BOOST_TEST((rc == 0 && check::has(text, "shared variables:")), text);
  std::tie(rc, text) = theta("convert " + t + "model.onnx " + converted);
  BOOST_TEST(rc == 0, text);
  std::tie(rc, text) = theta("run " + converted + " " + in + " -o " + out);
  BOOST_TEST(rc == 0, text);
  BOOST_TEST(check::vals(th::load_npz(out).at("output_0")) == check::vals(f(x)[0]), boost::test_tools::per_element());
  // and back: the .theta file as an ONNX model, which runs to the same outputs
  const std::string back = (dir / "conv_back.onnx").string();
  std::tie(rc, text) = theta("convert " + converted + " " + back);
  BOOST_TEST(rc == 0, text);
  std::tie(rc, text) = theta("run " + back + " " + in + " -o " + out);
  BOOST_TEST(rc == 0, text);
  BOOST_TEST(check::vals(th::load_npz(out).at("output_0")) == check::vals(f(x)[0]), boost::test_tools::per_element());
  std::tie(rc, text) = theta("convert " + converted + " again.theta");
  BOOST_TEST((rc == 2 && check::has(text, "convert takes an .onnx model")), text);
}
#endif

// The tool links only what load_function reaches: a function of the section 16 ops (each family
// in its own file of the library) must load and run there too.
BOOST_AUTO_TEST_CASE(every_op_family_loads_in_the_tool) {
  std::filesystem::create_directories(dir);
  const th::Tensor x = th::dtensor3("x");
  const auto parts = th::split(x, {2, 2}, -1);
  th::Shared g = th::shared(th::ones({4}), "g"), b = th::shared(th::zeros({4}), "b");
  const th::Tensor y = th::scaled_dot_product_attention(parts[0], parts[1], parts[1], {}, true) +
                       th::softmax(parts[0]) + th::cumsum(th::tril(parts[1]), 1) + th::sort(parts[0]) +
                       std::get<0>(th::linalg::qr(parts[1]));
  const th::Tensor z = th::sum(y) + th::sum(th::batch_normalization_train(x, g, b, {0, 1}).out * x);
  const th::Function f = th::function({x}, {z, th::grad(z, x)});
  const std::string model = (dir / "sec16.theta").string(), in = (dir / "x16.npy").string(), out = (dir / "y16.npz").string();
  th::save(model, f);
  const th::Tensor xv = th::random::uniform({2, 3, 4}, -1, 1, 3);
  th::save_npy(in, xv);
  auto [rc, text] = theta("run " + model + " " + in + " -o " + out);
  BOOST_TEST(rc == 0, text);
  if (rc == 0) {
    const th::Result want = f(xv);
    BOOST_TEST(check::vals(th::load_npz(out).at("output_1")) == check::vals(want[1]), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(bad_input_says_what_to_do) {
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "m.theta").string();
  const th::Tensor v = th::dvector("v");
  th::save(model, th::function({v}, v * 2.0));
  auto [rc, text] = theta("frobnicate " + model);
  BOOST_TEST((rc == 2 && check::has(text, "unknown command 'frobnicate'") && check::has(text, "--help")), text);
  std::tie(rc, text) = theta("run " + (dir / "missing.theta").string());
  BOOST_TEST((rc == 1 && check::has(text, "cannot open")), text);
  std::tie(rc, text) = theta("run " + model + " notafile");
  BOOST_TEST((rc == 2 && check::has(text, "neither a .npy file nor a number")), text);
  std::tie(rc, text) = theta("run " + model);  // an input missing
  BOOST_TEST((rc == 1 && check::has(text, "theta: ")), text);
  std::tie(rc, text) = theta("");
  BOOST_TEST(rc == 2);
  std::filesystem::remove_all(dir);
}
