// The samples' command lines: `--name value` options, flags and `--help`, with messages that
// say what went wrong (an option without its value, a value that is not a number, an option
// that does not exist) and show the usage.
#pragma once
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

namespace sample {

/// Calls handle(key, value) for each option of argv; `value()` takes the option's value (or
/// exits with status 2 saying it is missing); handle returns false for an option it does not
/// know. --help and -h print `usage` and exit 0.
template <class Handle>
void parse_options(const char* program, int argc, char** argv, void (*usage)(std::ostream&), Handle handle) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      usage(std::cout);
      std::exit(0);
    }
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << program << ": " << k << " needs a value\n";
        usage(std::cerr);
        std::exit(2);
      }
      return argv[++i];
    };
    bool known = false;
    try {
      known = handle(k, value);
    } catch (const std::logic_error&) {  // std::stoi and friends: not a number, or out of range
      std::cerr << program << ": bad value for " << k << "\n";
      std::exit(2);
    }
    if (!known) {
      std::cerr << program << ": unknown option '" << k << "'\n";
      usage(std::cerr);
      std::exit(2);
    }
  }
}

}  // namespace sample
