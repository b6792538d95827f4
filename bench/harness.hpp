// The benchmark harness: run a workload several times, report the median. Every bench_*
// program times with this, so peers added later are measured the same way.
#pragma once
#include <algorithm>
#include <chrono>
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

}  // namespace bench
