// The samples' command lines: `--name value` options and flags bound to the fields they set,
// and `--help`, with messages that say what went wrong (an option without its value, a value
// that is not a number, an option that does not exist) and show the usage.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>

namespace sample {

/// One option: its name and the field it sets (a bool is a flag without a value).
struct Option {
  const char* name;
  std::variant<int*, std::int64_t*, std::uint64_t*, double*, std::string*, bool*> field;
};

/// Sets each option's field from argv. --help and -h print `usage` and exit 0; a missing or
/// malformed value or an unknown option prints why and the usage, and exits 2.
inline void parse_options(const char* program, int argc, char** argv, void (*usage)(std::ostream&),
                          std::initializer_list<Option> options) {
  auto fail = [&](const std::string& why, bool show_usage) {
    std::cerr << program << ": " << why << "\n";
    if (show_usage) usage(std::cerr);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      usage(std::cout);
      std::exit(0);
    }
    const Option* o = nullptr;
    for (const Option& c : options)
      if (k == c.name) o = &c;
    if (!o) fail("unknown option '" + k + "'", true);
    if (auto* flag = std::get_if<bool*>(&o->field)) {
      **flag = true;
      continue;
    }
    if (i + 1 >= argc) fail(k + " needs a value", true);
    const std::string v = argv[++i];
    try {
      std::size_t used = v.size();
      std::visit(
          [&](auto* f) {
            using T = std::remove_pointer_t<decltype(f)>;
            if constexpr (std::is_same_v<T, int>) *f = std::stoi(v, &used);
            else if constexpr (std::is_same_v<T, std::int64_t>) *f = std::stoll(v, &used);
            else if constexpr (std::is_same_v<T, std::uint64_t>) *f = std::stoull(v, &used);
            else if constexpr (std::is_same_v<T, double>) *f = std::stod(v, &used);
            else if constexpr (std::is_same_v<T, std::string>) *f = v;
          },
          o->field);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::logic_error&) {  // std::stoi and friends: not a number, or out of range
      fail("bad value for " + k, false);
    }
  }
}

}  // namespace sample
