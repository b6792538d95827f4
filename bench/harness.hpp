// The benchmark harness: run a workload several times, report the median, print one
// machine-readable line per measurement:  RESULT <workload> <implementation> <median_us>
// (bench/report.py turns the lines of every program, C++ and Python, into the ratio table).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace bench {

/// Median over `runs` runs of f(), in microseconds per unit of work (`units` per run).
template <class F>
double median_us(F f, int units, int runs = 5) {
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count() / units);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

inline void result(const char* workload, const char* impl, double us) {
  std::printf("RESULT %s %s %.4f\n", workload, impl, us);
  std::fflush(stdout);
}

/// True when the program was given no workload filter, or `w` is among its arguments.
inline bool wanted(int argc, char** argv, const char* w) {
  if (argc < 2) return true;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], w) == 0) return true;
  return false;
}

/// A field of /proc/self/status in MiB ("VmRSS": resident now, "VmHWM": the process's peak).
inline double status_mb(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double kb = -1;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') kb = std::atof(line + n + 1);
  std::fclose(f);
  return kb / 1024;
}

/// A1's lengths: the workload names A1_512, A1_2048, A1_4096 (one process each, so that
/// each one's peak memory is its own).
inline int attention_length(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    for (int L : {512, 2048, 4096})
      if (std::strcmp(argv[i], ("A1_" + std::to_string(L)).c_str()) == 0) return L;
  return 0;
}

/// The seed regression data (W1): x 125 x 4 uniform in [0, 1), y = x . [3 3 2 2].
inline void seed_data(std::vector<double>& x, std::vector<double>& y) {
  unsigned s = 12345;
  auto next = [&] { return (s = s * 1103515245u + 12345u) / 4294967296.0; };
  x.resize(125 * 4), y.resize(125);
  for (auto& v : x) v = next();
  for (int i = 0; i < 125; ++i) y[i] = 3 * x[i * 4] + 3 * x[i * 4 + 1] + 2 * x[i * 4 + 2] + 2 * x[i * 4 + 3];
}

}  // namespace bench
