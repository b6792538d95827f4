// ONNX's own backend test suite (Debian's libonnx-testdata) through th::onnx: every model of
// the chosen categories against its reference outputs (ONNX's tolerances: rtol 1e-3, atol
// 1e-7; integers and booleans exactly), each in a child process with a time limit, so that a
// crash or a hang is one failure. Prints one line per test and a summary per category, and
// with --markdown writes the table of docs/onnx.md (scripts/onnx_table.sh).
//   onnx_suite [--data DIR] [--category NAME]... [--only SUBSTRING] [--markdown FILE]
//              [--min-pass CATEGORY=N]... [--timeout SECONDS] [--verbose] [--roundtrip]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <theta/theta.hpp>

#include "onnx/import.hpp"

namespace fs = std::filesystem;

namespace {

bool g_roundtrip = false;  // --roundtrip: each frozen model saved by th::onnx::save and loaded back

struct Outcome {
  std::string test, category, result, detail;  // result: pass, fail, unsupported, crash, timeout
  std::string mode;                            // frozen (placeholders) or bound (inputs known at load)
};

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.path().extension() == ".pb")
      found.push_back({std::atoi(name.c_str() + prefix.size()), e.path()});
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> r;
  for (auto& [i, p] : found) r.push_back(p);
  return r;
}

// "" when `got` matches `want` within ONNX's tolerances, else what differs.
std::string compare(const th::Tensor& got, const th::Tensor& want) {
  if (got.is_symbolic()) return "the output is symbolic";
  if (got.shape() != want.shape()) return "shape " + th::shape_str(got.shape()) + ", expected " + th::shape_str(want.shape());
  const bool exact = want.dtype() != th::DType::float32 && want.dtype() != th::DType::float64;
  if (exact && got.dtype() != want.dtype())
    return std::string("dtype ") + th::dtype_name(got.dtype()) + ", expected " + th::dtype_name(want.dtype());
  if (want.dtype() == th::DType::string) {  // text: exactly
    const auto g = got.to_vector<std::string>(), w = want.to_vector<std::string>();
    for (std::size_t i = 0; i < g.size(); ++i)
      if (g[i] != w[i]) return "element " + std::to_string(i) + ": \"" + g[i] + "\", expected \"" + w[i] + "\"";
    return "";
  }
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (std::size_t i = 0; i < g.size(); ++i) {
    const bool both_nan = std::isnan(g[i]) && std::isnan(w[i]);
    const bool ok = exact ? g[i] == w[i] : both_nan || g[i] == w[i] || std::fabs(g[i] - w[i]) <= 1e-7 + 1e-3 * std::fabs(w[i]);
    if (!ok) return "element " + std::to_string(i) + ": " + std::to_string(g[i]) + ", expected " + std::to_string(w[i]);
  }
  return "";
}

bool needs_known_inputs(const std::string& what) {
  return what.find("must be known when the model loads") != std::string::npos ||
         what.find("needs the shape of input") != std::string::npos ||
         what.find("known only when the function runs") != std::string::npos;
}

// Runs one test in this process: "pass", or the reason it is not.
std::pair<std::string, std::string> run_one(const fs::path& dir, std::string& mode) {
  const std::string model = (dir / "model.onnx").string();
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {"fail", "no test_data_set_*"};
  mode = "frozen";
  std::optional<th::Function> f;
  th::onnx::Model m;
  try {
    m = th::onnx::detail::import_model(model, {});
    f = th::function(m.inputs, m.outputs);
  } catch (const th::Error& e) {
    if (!needs_known_inputs(e.what())) return {"unsupported", e.what()};
    mode = "bound";
  }
  if (g_roundtrip) {  // the function through th::onnx::save and back
    if (mode == "bound") return {"unsupported", "runs only with its inputs bound at load: no function to save"};
    const fs::path tmp = fs::temp_directory_path() / ("theta_roundtrip_" + std::to_string(getpid()) + ".onnx");
    try {
      th::onnx::save(tmp.string(), *f);
    } catch (const th::Error& e) {
      return {"unsupported", std::string("save: ") + e.what()};
    }
    f = th::onnx::load_function(tmp.string());
    fs::remove(tmp);
  }
  for (const fs::path& set : sets) {
    std::vector<th::Tensor> inputs, wants;
    std::vector<std::string> names;
    for (const auto& p : numbered(set, "input_")) inputs.push_back(th::onnx::detail::read_tensor_file(p.string()));
    for (const auto& p : numbered(set, "output_")) wants.push_back(th::onnx::detail::read_tensor_file(p.string()));
    std::vector<th::Tensor> outs;
    if (mode == "frozen") {
      if (inputs.size() != m.inputs.size())
        return {"fail", std::to_string(inputs.size()) + " input files for " + std::to_string(m.inputs.size()) + " inputs"};
      const th::Result r = f->call(inputs);
      outs.assign(r.begin(), r.end());
    } else {
      // the inputs as constants, by the graph's input order
      const std::vector<std::string> order = th::onnx::detail::graph_input_names(model);
      if (order.size() != inputs.size())
        return {"fail", std::to_string(inputs.size()) + " input files for " + std::to_string(order.size()) + " inputs"};
      std::map<std::string, th::Tensor> bound;
      for (std::size_t i = 0; i < order.size(); ++i) bound[order[i]] = inputs[i];
      try {
        m = th::onnx::detail::import_model(model, bound);
      } catch (const th::Error& e) {
        return {"unsupported", e.what()};
      }
      outs = m.outputs;
    }
    if (outs.size() != wants.size())
      return {"fail", std::to_string(outs.size()) + " outputs, expected " + std::to_string(wants.size())};
    for (std::size_t i = 0; i < outs.size(); ++i)
      if (std::string d = compare(outs[i], wants[i]); !d.empty())
        return {"fail", set.filename().string() + " output " + std::to_string(i) + ": " + d};
  }
  return {"pass", ""};
}

// The test in a child process: a crash or a hang is its own failure.
Outcome isolated(const fs::path& dir, const std::string& category, int timeout_s) {
  Outcome o{dir.filename().string(), category, "", "", ""};
  int fds[2];
  if (pipe(fds) != 0) return {o.test, category, "crash", "pipe failed", ""};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(unsigned(timeout_s));
    std::string mode, result, detail;
    try {
      std::tie(result, detail) = run_one(dir, mode);
    } catch (const std::exception& e) {
      result = "fail", detail = e.what();
    }
    std::replace(detail.begin(), detail.end(), '\n', ' ');
    const std::string line = result + "\t" + mode + "\t" + detail;
    (void)!write(fds[1], line.data(), line.size());
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, std::size_t(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    o.result = WTERMSIG(status) == SIGALRM ? "timeout" : "crash";
    o.detail = WTERMSIG(status) == SIGALRM ? "over " + std::to_string(timeout_s) + " s" : std::string("signal ") + strsignal(WTERMSIG(status));
    return o;
  }
  const auto t1 = text.find('\t'), t2 = text.find('\t', t1 == std::string::npos ? 0 : t1 + 1);
  if (t1 == std::string::npos || t2 == std::string::npos) return {o.test, category, "crash", "no result", ""};
  o.result = text.substr(0, t1), o.mode = text.substr(t1 + 1, t2 - t1 - 1), o.detail = text.substr(t2 + 1);
  // references that disagree with their own model (checked by hand; still counted as wrong)
  static const std::map<std::string, std::string> bad_reference = {
      {"test_adam_multiple",
       "ONNX's reference was computed with epsilon 1e-2, which the model's Adam node does not set "
       "(default 1e-6); with 1e-2 every output matches"}};
  if (const auto b = bad_reference.find(o.test); o.result == "fail" && b != bad_reference.end()) o.detail += " [" + b->second + "]";
  return o;
}

// The class of reason a test does not pass, for the table's summary.
std::string reason_class(const Outcome& o) {
  if (o.result == "unsupported") {
    const auto at = o.detail.find("operator ");
    if (at != std::string::npos && o.detail.find(" is not supported", at) != std::string::npos)
      return "operator " + o.detail.substr(at + 9, o.detail.find(' ', at + 9) - at - 9) + " not supported";
    if (o.detail.find("element type") != std::string::npos) return "element type not supported";
    if (o.detail.find("attribute") != std::string::npos) return "attribute not supported";
    if (o.detail.find("only tensor inputs") != std::string::npos) return "sequence/optional inputs";
    return "other unsupported";
  }
  return o.result;
}

void usage() {
  std::cout << "onnx_suite: ONNX's backend test suite through th::onnx\n"
               "  --data DIR           the suite (default /usr/share/libonnx-testdata/data)\n"
               "  --category NAME      simple, pytorch-converted, pytorch-operator, node (default: all four)\n"
               "  --only TEXT          only tests whose name contains TEXT\n"
               "  --markdown FILE      write the results table (docs/onnx.md)\n"
               "  --min-pass CAT=N     exit 1 when fewer than N tests of CAT pass (ctest's floor)\n"
               "  --timeout SECONDS    per test (default 60)\n"
               "  --verbose            print each test's reason\n"
               "  --roundtrip          save each frozen model with th::onnx::save, load it back, run that\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/libonnx-testdata/data", only, markdown;
  std::vector<std::string> categories;
  std::map<std::string, int> floors;
  int timeout_s = 60;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "onnx_suite: " << a << " needs a value (see --help)\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") return usage(), 0;
    if (a == "--data") data = next();
    else if (a == "--category") categories.push_back(next());
    else if (a == "--only") only = next();
    else if (a == "--markdown") markdown = next();
    else if (a == "--timeout") timeout_s = std::max(1, std::atoi(next().c_str()));
    else if (a == "--verbose") verbose = true;
    else if (a == "--roundtrip") g_roundtrip = true;
    else if (a == "--min-pass") {
      const std::string v = next();
      const auto eq = v.find('=');
      if (eq == std::string::npos) return std::cerr << "onnx_suite: --min-pass wants CATEGORY=N\n", 2;
      floors[v.substr(0, eq)] = std::atoi(v.c_str() + eq + 1);
    } else {
      std::cerr << "onnx_suite: unknown option " << a << " (see --help)\n";
      return 2;
    }
  }
  if (categories.empty()) categories = {"simple", "pytorch-converted", "pytorch-operator", "node"};
  if (!fs::is_directory(data)) {
    std::cerr << "onnx_suite: " << data << " not found: install Debian's libonnx-testdata (scripts/install-deps.sh)\n";
    return 2;
  }
  std::vector<Outcome> all;
  for (const std::string& cat : categories) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(fs::path(data) / cat))
      if (e.is_directory() && (only.empty() || e.path().filename().string().find(only) != std::string::npos)) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    int done = 0;
    for (const auto& d : dirs) {
      Outcome o = isolated(d, cat, timeout_s);
      ++done;
      if (verbose || o.result == "crash" || o.result == "timeout")
        std::cout << cat << "/" << o.test << ": " << o.result << (o.mode.empty() ? "" : " (" + o.mode + ")")
                  << (o.detail.empty() ? "" : ": " + o.detail) << "\n";
      else if (done % 50 == 0)
        std::cerr << "onnx_suite: " << cat << " " << done << "/" << dirs.size() << "\n";
      all.push_back(std::move(o));
    }
  }
  std::map<std::string, std::map<std::string, int>> by_cat;
  for (const auto& o : all) {
    ++by_cat[o.category][o.result], ++by_cat[o.category]["total"];
    if (o.result == "pass" && o.mode == "bound") ++by_cat[o.category]["pass_bound"];
  }
  bool floor_ok = true;
  for (const std::string& cat : categories) {
    auto& c = by_cat[cat];
    std::cout << cat << ": " << c["pass"] << " of " << c["total"] << " pass (" << c["unsupported"] << " unsupported, "
              << c["fail"] << " wrong, " << c["crash"] << " crashed, " << c["timeout"] << " timed out)\n";
    if (floors.count(cat) && c["pass"] < floors[cat]) {
      std::cout << "onnx_suite: " << cat << " passes " << c["pass"] << ", below the committed " << floors[cat]
                << " (docs/onnx.md): a regression\n";
      floor_ok = false;
    }
  }
  if (!markdown.empty() && g_roundtrip) {  // the summary: which tests pass through a saved file
    std::ofstream md(markdown);
    md << "| category | tests | pass after save and load | not saved | wrong | crashed | timed out |\n"
          "| --- | --- | --- | --- | --- | --- | --- |\n";
    for (const std::string& cat : categories) {
      auto& c = by_cat[cat];
      md << "| " << cat << " (saved) | " << c["total"] << " | " << c["pass"] << " | " << c["unsupported"] << " | " << c["fail"]
         << " | " << c["crash"] << " | " << c["timeout"] << " |\n";
    }
    std::map<std::string, int> reasons;
    for (const auto& o : all)
      if (o.result != "pass") {
        const auto op_at = o.detail.find("theta's op");
        std::string r = o.detail.rfind("save: ", 0) == 0 ? (op_at != std::string::npos ? o.detail.substr(op_at) : o.detail)
                        : o.mode == "bound" ? "runs only with inputs bound (nothing to save)"
                                            : std::string("does not load (see ONNX in, below)");
        ++reasons[r];
      }
    md << "\n| why not | tests |\n| --- | --- |\n";
    for (auto& [r, n] : reasons) md << "| " << r << " | " << n << " |\n";
  } else if (!markdown.empty()) {
    std::ofstream md(markdown);
    md << "| category | tests | pass | of them with inputs bound | unsupported | wrong | crashed | timed out |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for (const std::string& cat : categories) {
      auto& c = by_cat[cat];
      md << "| " << cat << " | " << c["total"] << " | " << c["pass"] << " | " << c["pass_bound"] << " | " << c["unsupported"] << " | "
         << c["fail"] << " | "
         << c["crash"] << " | " << c["timeout"] << " |\n";
    }
    std::map<std::string, int> reasons;
    for (const auto& o : all)
      if (o.result != "pass") ++reasons[reason_class(o)];
    std::vector<std::pair<int, std::string>> sorted;
    for (auto& [r, n] : reasons) sorted.push_back({-n, r});
    std::sort(sorted.begin(), sorted.end());
    md << "\n### Why the others do not pass\n\n| reason | tests |\n| --- | --- |\n";
    for (auto& [n, r] : sorted) md << "| " << r << " | " << -n << " |\n";
    md << "\n### Every test that does not pass\n\n| test | result | reason |\n| --- | --- | --- |\n";
    for (const auto& o : all)
      if (o.result != "pass") {
        std::string d = o.detail.substr(0, 160);
        std::replace(d.begin(), d.end(), '|', '/');
        md << "| " << o.category << "/" << o.test << " | " << o.result << " | " << d << " |\n";
      }
  }
  return floor_ok ? 0 : 1;
}
