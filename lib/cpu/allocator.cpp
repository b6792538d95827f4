// The caching allocator behind CpuBackend::alloc (see allocator.hpp).
#include "cpu/allocator.hpp"

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "theta/error.hpp"

namespace th::detail::cpu {

namespace {

constexpr std::size_t kSmall = 64 << 10;    // small blocks: 64-byte size classes
constexpr std::size_t kSmallPerClass = 256;  // at most this many cached small blocks per class

std::size_t rounded(std::size_t bytes) {
  const std::size_t unit = bytes < kSmall ? 64 : 4096;
  return (bytes + unit - 1) / unit * unit;
}

struct Cache {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free;
  std::size_t held = 0;
  const std::size_t limit = [] {
    const char* v = std::getenv("THETA_CPU_CACHE_MB");
    return std::size_t(v ? std::strtoull(v, nullptr, 10) : 1024) << 20;
  }();
};

Cache& cache() {
  static Cache* c = new Cache;  // NOTE: never destroyed: buffers may be released during static destruction
  return *c;
}

}  // namespace

void* cached_alloc(std::size_t bytes) {
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free.find(size);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.held -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) throw Error("alloc: out of memory allocating " + std::to_string(bytes) + " bytes on cpu");
  return p;
}

void cached_free(void* p, std::size_t bytes) {
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (p) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    std::vector<void*>& list = c.free[size];
    if (c.held + size <= c.limit && (size >= kSmall || list.size() < kSmallPerClass)) {
      list.push_back(p);
      c.held += size;
      return;
    }
  }
  std::free(p);
}

}  // namespace th::detail::cpu
