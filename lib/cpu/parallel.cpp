// A small fixed pool: one region at a time, the calling thread takes chunk 0.
#include "cpu/parallel.hpp"

#include <cblas.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace th::detail::cpu {

namespace {

int threads_from_env() {
  for (const char* name : {"THETA_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(name)) {
      int n = std::atoi(v);
      if (n > 0) return std::min(n, 256);
    }
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  // false when another region is running (the caller then runs serially).
  bool run(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& f) {
    std::unique_lock<std::mutex> region(region_, std::try_to_lock);
    if (!region.owns_lock()) return false;
    const int parts = size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      f_ = &f, n_ = n, parts_ = parts, pending_ = parts - 1, ++generation_;
    }
    wake_.notify_all();
    f(0, chunk(0));
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    f_ = nullptr;
    return true;
  }

 private:
  std::int64_t chunk(int i) const { return n_ * (i + 1) / parts_; }

  void loop(int i) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(std::int64_t, std::int64_t)>* f;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        f = f_;
      }
      (*f)(n_ * i / parts_, chunk(i));
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex region_, mu_;
  std::condition_variable wake_, done_;
  const std::function<void(std::int64_t, std::int64_t)>* f_ = nullptr;
  std::int64_t n_ = 0;
  int parts_ = 1, pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

// One thread budget: OpenBLAS runs on the calling thread only, from the moment theta's
// kernels are loaded. Its own pool would spin after each call (~0.1 s a worker), taking a
// core from this one; theta cuts its products into chunks on this pool instead (cpu/blas.cpp).
const bool openblas_held = [] {
  openblas_set_num_threads(1);
  return true;
}();

Pool& pool() {
  static Pool p(num_threads());
  return p;
}

}  // namespace

int num_threads() {
  static const int n = threads_from_env();
  return n;
}

void parallel_for(std::int64_t n, std::int64_t cost_per_item,
                  const std::function<void(std::int64_t, std::int64_t)>& f) {
  if (n <= 1 || num_threads() == 1 || n * cost_per_item < kParallelGrain || !pool().run(n, f)) f(0, n);
}

}  // namespace th::detail::cpu
