// Gaussian-process regression whose kernel hyperparameters are learned by the gradient of
// the log marginal likelihood (Rasmussen & Williams, algorithm 2.1): cholesky and
// triangular solves inside one frozen training function, Adam on the log-parameters.
// Data: noisy samples of sin(3x) on [-2, 2] (seeded). Prints the learned hyperparameters
// and the predictive mean and standard deviation on a grid.
//   ./build/samples/gaussian_process [--points N] [--steps N]
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include <theta/theta.hpp>

#include "options.hpp"

namespace {

// k(a, b) = s2 exp(-(a_i - b_j)^2 / (2 l^2)) for column a (n, 1) and row b (1, m)
th::Tensor rbf(const th::Tensor& a, const th::Tensor& b, const th::Tensor& log_l, const th::Tensor& log_s2) {
  const th::Tensor d = a - b;
  return th::exp(log_s2 - d * d * 0.5 * th::exp(-2.0 * log_l));
}

void usage(std::ostream& os) {
  os << "usage: gaussian_process [--points N] [--steps N] [--noise X] [--seed N]\n"
        "Fits a Gaussian process with an RBF kernel to N noisy samples of sin(3x), learning the\n"
        "length scale, signal variance and noise variance by Adam on the negative log marginal\n"
        "likelihood, then prints the predictive mean and deviation on a grid.\n"
        "  --points N  training points (default 40)\n"
        "  --steps N   Adam steps (default 300)\n"
        "  --noise X   the data's noise standard deviation (default 0.1)\n"
        "  --seed N    the data's seed (default 1)\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t n = 40;
  int steps = 300;
  double noise = 0.1;
  std::uint64_t seed = 1;
  sample::parse_options("gaussian_process", argc, argv, usage,
                        {{"--points", &n}, {"--steps", &steps}, {"--noise", &noise}, {"--seed", &seed}});
  if (n < 2 || steps < 0 || !(noise > 0)) {
    std::cerr << "gaussian_process: --points must be >= 2, --steps >= 0, --noise > 0\n";
    return 2;
  }

  const th::Tensor X = th::random::uniform({n}, -2, 2, seed);
  const th::Tensor Y = th::sin(3.0 * X) + noise * th::random::normal({n}, seed + 1);

  th::Shared log_l = th::shared(th::tensor(0.0), "log_lengthscale");
  th::Shared log_s2 = th::shared(th::tensor(0.0), "log_signal_variance");
  th::Shared log_n2 = th::shared(th::tensor(-1.0), "log_noise_variance");

  const th::Tensor x = th::dvector("x"), y = th::dvector("y");
  const th::Tensor xc = th::expand_dims(x, 1), xr = th::expand_dims(x, 0);
  // K + noise I (the identity: x's points compared with themselves; the points are distinct)
  const th::Tensor I = th::cast(xc == xr, th::DType::float64);
  const th::Tensor K = rbf(xc, xr, log_l, log_s2) + th::exp(log_n2) * I;
  const th::Tensor L = th::linalg::cholesky(K);
  const th::Tensor alpha = th::linalg::solve_triangular(th::transpose(L), th::linalg::solve_triangular(L, th::expand_dims(y, 1), true), false);
  const th::Tensor log_diag = th::log(th::sum(L * I, 1));
  const th::Tensor count = th::sum(th::cast(th::shape_of(x), th::DType::float64));
  // -log p(y | X) = y^T K^-1 y / 2 + log det L + n log(2 pi) / 2
  const th::Tensor nll = 0.5 * th::sum(th::expand_dims(y, 1) * alpha) + th::sum(log_diag) + 0.5 * std::log(2 * M_PI) * count;
  const th::Function train = th::function({x, y}, {nll}, th::optim::adam(nll, {log_l, log_s2, log_n2}, 0.05));

  std::printf("Gaussian process on %lld noisy samples of sin(3x) (noise sd %.3f)\n", static_cast<long long>(n), noise);
  for (int s = 0; s <= steps; ++s) {
    const double v = train(X, Y)[0].item<double>();
    if (s % 50 == 0 || s == steps)
      std::printf("step %4d  -log p(y|X) %9.4f  lengthscale %.4f  signal sd %.4f  noise sd %.4f\n", s, v,
                  std::exp(log_l.get_value().item<double>()), std::exp(0.5 * log_s2.get_value().item<double>()),
                  std::exp(0.5 * log_n2.get_value().item<double>()));
  }

  // prediction at a grid: mean = K*^T alpha, var = k(x*, x*) - |L^-1 K*|^2
  const th::Tensor g = th::dvector("grid");
  const th::Tensor Ks = rbf(xc, th::expand_dims(g, 0), log_l, log_s2);
  const th::Tensor mean = th::sum(Ks * alpha, 0);
  const th::Tensor v = th::linalg::solve_triangular(L, Ks, true);
  const th::Tensor sd = th::sqrt(th::maximum(th::exp(log_s2) - th::sum(v * v, 0), 0.0));
  const th::Function predict = th::function({x, y, g}, {mean, sd});
  const th::Tensor grid = th::linspace(-2, 2, 9);
  const th::Result r = predict(X, Y, grid);
  const auto gv = grid.to_vector<double>(), mv = r[0].to_vector<double>(), sv = r[1].to_vector<double>();
  std::printf("\n     x   sin(3x)      mean        sd\n");
  double se = 0;
  for (std::size_t i = 0; i < gv.size(); ++i) {
    std::printf("%6.2f  %8.4f  %8.4f  %8.4f\n", gv[i], std::sin(3 * gv[i]), mv[i], sv[i]);
    se += (mv[i] - std::sin(3 * gv[i])) * (mv[i] - std::sin(3 * gv[i]));
  }
  const double rmse = std::sqrt(se / double(gv.size()));
  std::printf("RMSE of the mean against sin(3x) on the grid: %.4f\n", rmse);
  if (steps >= 100 && n >= 20 && rmse > 0.25) {
    std::fprintf(stderr, "gaussian_process: the fit is off (RMSE %.4f > 0.25)\n", rmse);
    return 1;
  }
  return 0;
}
