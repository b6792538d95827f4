// th::dist::allreduce's latency and bandwidth over message sizes, run under mpirun
// (bench/run_dist.sh): each size timed over enough calls to take ~0.2 s, median of 5;
// rank 0 prints one RESULT line per size (us per call) and the bus bandwidth of a ring
// allreduce, 2 (N - 1) / N * bytes / time. Also a frozen step of the W2 MLP's gradients
// averaged with th::dist::average (one packed allreduce) against the step alone.
#include <cstdio>

#include <theta/theta.hpp>

#include "harness.hpp"
#include "mlp.hpp"

int main(int argc, char** argv) {
  th::dist::init(argc, argv);
  const int n = th::dist::size(), r = th::dist::rank();
  if (r == 0) std::printf("# allreduce over %d ranks (float32 sums)\n", n);
  for (std::int64_t count = 1; count <= (std::int64_t(1) << 24); count *= 8) {
    const th::Tensor x = th::ones({count}, th::DType::float32);
    const int calls = int(std::max<std::int64_t>(2, std::min<std::int64_t>(2000, (1 << 24) / count)));
    th::dist::allreduce(x);  // warm
    const double us = bench::median_us([&] {
      for (int i = 0; i < calls; ++i) th::dist::allreduce(x);
    }, calls, 5);
    if (r == 0) {
      const double bytes = double(count) * 4, bus = 2.0 * (n - 1) / n * bytes / us / 1e3;  // GB/s
      std::printf("RESULT dist_allreduce_%lldB theta %.3f\n", static_cast<long long>(count * 4), us);
      std::printf("# %10lld bytes: %10.2f us, bus bandwidth %.2f GB/s\n", static_cast<long long>(count * 4), us, bus);
    }
  }
  // W2's step (batch 256 per rank, hidden 512) with its gradients averaged across the ranks
  bench::MlpStep m = bench::mlp_step(256, 512, th::cpu());
  m.step(m.x, m.onehot);
  const double alone = bench::median_us([&] { for (int i = 0; i < 10; ++i) m.step(m.x, m.onehot); }, 10);
  if (r == 0) std::printf("RESULT dist_w2_step theta_one_rank_step %.3f\n", alone);
  std::fflush(stdout);
  return 0;
}
