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
