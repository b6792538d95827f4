// The hardware-side peers: OpenBLAS called directly (W4) and hand-written C++ loops as the
// limit (W1 step as plain loops; W3 fused into one pass over memory on all cores, OpenMP).
//   ./bench_baseline [W1 W3 W4]
#include <cblas.h>

#include <cmath>
#include <random>
#include <vector>

#include "harness.hpp"

namespace {

void w1() {
  std::vector<double> x, y;
  bench::seed_data(x, y);
  const int steps = 10000;
  bench::result("W1", "cpp_loop", bench::median_us([&] {
    double w[4] = {0, 0, 0, 0};
    volatile double cost = 0;
    for (int s = 0; s < steps; ++s) {
      double g[4] = {0, 0, 0, 0}, c = 0;
      for (int i = 0; i < 125; ++i) {
        const double* xi = &x[std::size_t(i) * 4];
        const double r = xi[0] * w[0] + xi[1] * w[1] + xi[2] * w[2] + xi[3] * w[3] - y[std::size_t(i)];
        c += r * r;
        for (int k = 0; k < 4; ++k) g[k] += r * xi[k];
      }
      cost = c / 125;
      for (int k = 0; k < 4; ++k) w[k] -= 0.1 * 2 * g[k] / 125;
    }
  }, steps));
}

void w3() {
  const std::size_t n = 10'000'000;
  std::vector<float> a(n), b(n), c(n), y(n), ga(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (std::size_t i = 0; i < n; ++i) a[i] = u(rng), b[i] = u(rng), c[i] = u(rng);
  auto fwd = [&] {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i)
      y[i] = std::tanh(a[i] * b[i] + c[i]) * 0.5f + 1.0f / (1.0f + std::exp(-a[i]));
  };
  auto both = [&] {
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i) {
      const float t = std::tanh(a[i] * b[i] + c[i]), s = 1.0f / (1.0f + std::exp(-a[i]));
      y[i] = t * 0.5f + s;
      ga[i] = 0.5f * (1 - t * t) * b[i] + s * (1 - s);
    }
  };
  fwd(), both();
  bench::result("W3", "cpp_fused_forward", bench::median_us(fwd, 1));
  bench::result("W3", "cpp_fused_forward_backward", bench::median_us(both, 1));
}

template <class T>
void gemm(int n, const T* A, const T* B, T* C) {
  if constexpr (std::is_same_v<T, double>)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
}

template <class T>
void w4(const char* dt) {
  for (int n : {512, 1024, 2048}) {
    std::vector<T> A(std::size_t(n) * n), B(A.size()), C(A.size());
    std::mt19937 rng(1);
    std::uniform_real_distribution<T> u(-1, 1);
    for (auto& v : A) v = u(rng);
    for (auto& v : B) v = u(rng);
    gemm(n, A.data(), B.data(), C.data());
    std::string w = "W4_" + std::string(dt) + "_" + std::to_string(n);
    bench::result(w.c_str(), "openblas", bench::median_us([&] { gemm(n, A.data(), B.data(), C.data()); }, 1,
                                                          n >= 2048 ? 3 : 5));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::wanted(argc, argv, "W1")) w1();
  if (bench::wanted(argc, argv, "W3")) w3();
  if (bench::wanted(argc, argv, "W4")) w4<double>("float64"), w4<float>("float32");
}
