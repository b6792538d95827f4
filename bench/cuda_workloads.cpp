// theta's side of the GPU benchmarks (issue 5), one process, on cuda:0:
//   ./bench_cuda [W1 W2 W3]   (default: all; prints RESULT lines, see harness.hpp)
// W1 the seed regression step, frozen, data and weights on the GPU; W2 the MLP step in
// float32 (784-512-512-10 at batch 256, and 784-4096-4096-10 at batch 4096); W3 the
// elementwise chain over 10^8 float32, forward and forward + gradient, and the device-to-
// device copy bandwidth measured in the same process (the W3 target is a fraction of it).
// Timings end with a device synchronisation, so they cover the GPU work.
#include <theta/theta.hpp>

#include <cuda_runtime.h>

#include <cstdio>

#include "core/backend.hpp"
#include "harness.hpp"
#include "mlp.hpp"

namespace {

const th::Device gpu = th::cuda();
void sync() { th::detail::cuda_synchronize(gpu); }

void w1() {
  std::vector<double> xv, yv;
  bench::seed_data(xv, yv);
  const th::Tensor X = th::tensor(xv, {125, 4}).to(gpu), Y = th::tensor(yv, {125}).to(gpu);
  auto x = th::dmatrix("x");
  auto y = th::dvector("y");
  auto w = th::shared(th::zeros({4}).to(gpu), "w");
  auto cost = th::mean(th::sqr(th::dot(x, w) - y));
  auto train = th::function({x, y}, cost, {{w, w - 0.1 * th::grad(cost, w)}});
  const int steps = 2000;
  train(X, Y);
  sync();
  bench::result("W1_gpu", "theta_frozen", bench::median_us([&] {
    for (int i = 0; i < steps; ++i) train(X, Y);
    sync();
  }, steps));
}

void w2(std::int64_t batch, std::int64_t hidden, const char* name) {
  bench::MlpStep m = bench::mlp_step(batch, hidden, gpu);
  m.step(m.x, m.onehot);
  sync();
  bench::result(name, "theta_frozen", bench::median_us([&] {
    for (int i = 0; i < 20; ++i) m.step(m.x, m.onehot);
    sync();
  }, 20));
}

void w3() {
  const std::int64_t n = 100'000'000;
  using th::DType;
  th::Tensor A = th::random::uniform({n}, -1, 1, 1, DType::float32).to(gpu),
             B = th::random::uniform({n}, -1, 1, 2, DType::float32).to(gpu),
             C = th::random::uniform({n}, -1, 1, 3, DType::float32).to(gpu);
  auto a = th::fvector("a"), b = th::fvector("b"), c = th::fvector("c");
  auto y = th::tanh(a * b + c) * 0.5f + th::sigmoid(a);
  auto fwd = th::function({a, b, c}, y);
  auto both = th::function({a, b, c}, {y, th::grad(th::sum(y), a)});
  fwd(A, B, C), both(A, B, C);
  sync();
  bench::result("W3_gpu", "theta_forward", bench::median_us([&] { fwd(A, B, C); sync(); }, 1));
  bench::result("W3_gpu", "theta_forward_backward", bench::median_us([&] { both(A, B, C); sync(); }, 1));
  // The copy the device can do: n float32 read and written by cudaMemcpy.
  void *src = nullptr, *dst = nullptr;
  const std::size_t bytes = std::size_t(n) * sizeof(float);
  if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) return;
  cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
  bench::result("W3_gpu", "cuda_memcpy_d2d", bench::median_us([&] {
    cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
  }, 1));
  cudaFree(src);
  cudaFree(dst);
}

}  // namespace

int main(int argc, char** argv) {
  if (!th::cuda_available()) {
    std::fprintf(stderr, "bench_cuda: no CUDA device\n");
    return 0;
  }
  if (bench::wanted(argc, argv, "W1")) w1();
  if (bench::wanted(argc, argv, "W2")) {
    w2(256, 512, "W2_gpu_256");
    w2(4096, 4096, "W2_gpu_4096");
  }
  if (bench::wanted(argc, argv, "W3")) w3();
}
