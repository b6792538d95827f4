// What a fuzzed reader's tensor must satisfy: its size matches its shape, and a small one
// can be computed with (read through). A violation aborts, which libFuzzer reports.
#pragma once
#include <cstdint>
#include <cstdlib>

#include <theta/theta.hpp>

namespace fuzz {

inline void check_parsed(const th::Tensor& t) {
  std::int64_t n = 1;
  for (auto d : t.shape()) n *= d;
  if (n != t.size()) std::abort();
  if (t.size() > 0 && t.size() < 64) (void)th::sum(th::cast(t, th::DType::float64)).item<double>();
}

}  // namespace fuzz
