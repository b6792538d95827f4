// The `theta` command-line tool (API.md sections 14, 17): runs, prints and draws functions
// that th::save wrote, and ONNX models, without the code that built them.
//   theta run model.theta a.npy b.npy -o out.npz
//   theta print model.theta
//   theta dot model.theta | dot -Tsvg > model.svg
//   theta info model.onnx
//   theta convert model.onnx model.theta
//   theta convert model.theta model.onnx
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <theta/theta.hpp>

namespace {

void usage(std::ostream& os) {
  os << "usage: theta COMMAND MODEL [ARGS]\n"
        "Runs and inspects functions saved by th::save (theta's frozen, optimized programs,\n"
        "MODEL.theta) and ONNX models (MODEL.onnx, frozen and optimized the same way).\n"
        "\n"
        "commands:\n"
        "  run MODEL.theta [INPUT ...] [-o OUT.npz]\n"
        "      call the function with one INPUT per input, in order: a .npy file, or a number\n"
        "      for a 0-d input; print the outputs, or write them to OUT.npz as output_0,\n"
        "      output_1, ... (a training function's updates apply to the loaded copy only;\n"
        "      the file is not changed)\n"
        "  print MODEL.theta    the program's steps (th::debugprint)\n"
        "  dot MODEL.theta      the program as Graphviz text (th::to_dot): | dot -Tsvg > f.svg\n"
        "  info MODEL.theta     its inputs, outputs and shared variables\n"
        "  convert MODEL.onnx OUT.theta\n"
        "      write the ONNX model's frozen, optimized program as a theta file\n"
        "  convert MODEL.theta OUT.onnx\n"
        "      write the function as an ONNX model (th::onnx::save, opset 17; the shared\n"
        "      variables' values as initializers)\n"
        "\n"
        "options:\n"
        "  -h, --help           this text\n"
        "\n"
        "exit status: 0 done, 1 the model or an input could not be read or run, 2 bad usage\n";
}

[[noreturn]] void bad_usage(const std::string& what) {
  std::cerr << "theta: " << what << "\n(theta --help for the commands)\n";
  std::exit(2);
}

th::Tensor argument(const std::string& a) {
  if (a.size() > 4 && a.compare(a.size() - 4, 4, ".npy") == 0) return th::load_npy(a);
  try {
    std::size_t used = 0;
    const double v = std::stod(a, &used);
    if (used == a.size()) return th::tensor(v);
  } catch (const std::logic_error&) {
  }
  bad_usage("'" + a + "' is neither a .npy file nor a number");
}

std::string shape_text(const th::Shape& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return r + (s.size() == 1 ? ",)" : ")");
}

int info(const th::Function& f) {
  const std::string text = th::debugprint(f);
  std::cout << text.substr(0, text.find('\n')) << "\n";  // its counts of inputs, steps, outputs, updates
  std::cout << "shared variables:\n";
  for (const th::Shared& s : f.shared_variables()) {
    const th::Tensor v = s.get_value();
    std::cout << "  " << (s.name().empty() ? "(unnamed)" : s.name()) << ": " << th::dtype_name(v.dtype()) << " "
              << shape_text(v.shape()) << "\n";
  }
  return 0;
}

bool is_onnx(const std::string& path) { return path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0; }

th::Function load_model(const std::string& path) {
  if (!is_onnx(path)) return th::load_function(path);
#ifdef THETA_HAS_ONNX
  return th::onnx::load_function(path);
#else
  throw th::Error("this theta was built without ONNX support (install libonnx-dev and libprotobuf-dev, or run "
                  "scripts/install-deps.sh, and rebuild)");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args)
    if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    }
  if (args.empty()) {
    usage(std::cerr);
    return 2;
  }
  const std::string cmd = args[0];
  if (cmd != "run" && cmd != "print" && cmd != "dot" && cmd != "info" && cmd != "convert")
    bad_usage("unknown command '" + cmd + "'");
  if (args.size() < 2) bad_usage(cmd + " needs a MODEL.theta or MODEL.onnx file");
  if (cmd == "convert" && (args.size() != 3 || is_onnx(args[1]) == is_onnx(args[2])))
    bad_usage("convert takes an .onnx model and the .theta file to write, or a .theta file and the .onnx model to write");
  try {
    const th::Function f = load_model(args[1]);
    if (cmd == "convert") {
      if (is_onnx(args[2])) {
#ifdef THETA_HAS_ONNX
        th::onnx::save(args[2], f);
#else
        throw th::Error("this theta was built without ONNX support (install libonnx-dev and libprotobuf-dev, or "
                        "run scripts/install-deps.sh, and rebuild)");
#endif
      } else {
        th::save(args[2], f);
      }
      std::cerr << "theta: wrote " << args[2] << "\n";
      return 0;
    }
    if (cmd == "print") {
      if (args.size() > 2) bad_usage("print takes only the model");
      std::cout << th::debugprint(f);
      return 0;
    }
    if (cmd == "dot") {
      if (args.size() > 2) bad_usage("dot takes only the model");
      std::cout << th::to_dot(f);
      return 0;
    }
    if (cmd == "info") {
      if (args.size() > 2) bad_usage("info takes only the model");
      return info(f);
    }
    std::string out;
    std::vector<th::Tensor> inputs;
    for (std::size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "-o") {
        if (i + 1 >= args.size()) bad_usage("-o needs a file name");
        out = args[++i];
        continue;
      }
      inputs.push_back(argument(args[i]));
    }
    const th::Result r = f.call(inputs);
    if (out.empty()) {
      for (std::size_t i = 0; i < r.size(); ++i) std::cout << "output " << i << ":\n" << r[i] << "\n";
      return 0;
    }
    std::map<std::string, th::Tensor> named;
    for (std::size_t i = 0; i < r.size(); ++i) named["output_" + std::to_string(i)] = r[i];
    th::save_npz(out, named);
    std::cerr << "theta: wrote " << r.size() << " output" << (r.size() == 1 ? "" : "s") << " to " << out << "\n";
    return 0;
  } catch (const th::Error& e) {
    std::cerr << "theta: " << e.what() << "\n";
    return 1;
  }
}
