// Philox-4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2,
// 3", SC'11): a counter-based generator, 4 random words per (key, 128-bit counter). The
// random streams (ops/random.cpp) use it; a GPU kernel would use the same rounds.
#pragma once
#include <cstdint>

namespace th::detail {

struct Philox {
  std::uint32_t k0, k1;  // the key
  /// The 4 words of counter (lo, hi) as two 64-bit halves: block b (words 0-1), call c (2-3).
  void block(std::uint64_t b, std::uint64_t c, std::uint32_t out[4]) const {
    std::uint32_t x0 = std::uint32_t(b), x1 = std::uint32_t(b >> 32), x2 = std::uint32_t(c), x3 = std::uint32_t(c >> 32);
    std::uint32_t a = k0, d = k1;
    for (int r = 0; r < 10; ++r) {
      const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * x0, p1 = std::uint64_t(0xCD9E8D57u) * x2;
      const std::uint32_t y0 = std::uint32_t(p1 >> 32) ^ x1 ^ a, y1 = std::uint32_t(p1);
      const std::uint32_t y2 = std::uint32_t(p0 >> 32) ^ x3 ^ d, y3 = std::uint32_t(p0);
      x0 = y0, x1 = y1, x2 = y2, x3 = y3;
      a += 0x9E3779B9u;
      d += 0xBB67AE85u;
    }
    out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;
  }
};

}  // namespace th::detail
