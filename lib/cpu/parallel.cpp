// A small fixed pool: one region at a time, the calling thread takes chunk 0.
#include "cpu/parallel.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// Waking a sleeping thread costs ~10 us on bare metal and 50-70 us on some VMs (the idle
// vCPU halts; the wake-up goes through the hypervisor): on the 2-core AMD EPYC (Zen 3) VM a
// relu(x + b) over 1000 x 256 floats took 45 us on one thread and 96 us on two. A training
// step runs its parallel kernels microseconds apart, so a worker that finished its chunk
// polls for the next region for up to kSpin before it sleeps, and the caller polls for the
// workers' chunks as long before it sleeps: back-to-back regions pay no wake-up, and an idle
// pool burns at most kSpin per thread after its last region (test_threads bounds it).
constexpr std::chrono::microseconds kSpin{100};

// Polls `done` (with the CPU's pause hint) until it holds or kSpin has passed.
template <class Done>
bool poll(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
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
    bool sleepers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      f_ = &f, n_ = n, parts_ = parts;
      pending_.store(parts - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);  // (publishes f_, n_, parts_, pending_)
      sleepers = sleepers_ > 0;
    }
    if (sleepers) wake_.notify_all();
    f(0, chunk(0));
    if (!poll([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      caller_sleeps_ = true;
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
      caller_sleeps_ = false;
    }
    f_ = nullptr;
    return true;
  }

 private:
  std::int64_t chunk(int i) const { return n_ * (i + 1) / parts_; }

  void loop(int i) {
    std::uint64_t seen = 0;
    auto fresh = [&] { return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      if (!poll(fresh)) {
        std::unique_lock<std::mutex> lock(mu_);
        ++sleepers_;
        wake_.wait(lock, fresh);
        --sleepers_;
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      (*f_)(n_ * i / parts_, chunk(i));
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);  // (the caller sets caller_sleeps_ under it, then checks pending_)
        if (caller_sleeps_) done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex region_, mu_;
  std::condition_variable wake_, done_;
  const std::function<void(std::int64_t, std::int64_t)>* f_ = nullptr;
  std::int64_t n_ = 0;
  int parts_ = 1;
  std::atomic<int> pending_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  int sleepers_ = 0;           // workers waiting on wake_ (under mu_)
  bool caller_sleeps_ = false;  // the caller waits on done_ (under mu_)
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
