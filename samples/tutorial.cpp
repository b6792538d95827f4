// The seed tutorial (../shared/seed-tutorial.txt), cell by cell, in C++: every value the
// notebook shows, ending with linear regression trained by a frozen function with updates.
#include <iostream>

#include <theta/theta.hpp>

namespace {
void section(const char* title) { std::cout << "\n### " << title << "\n"; }
}  // namespace

int main() {
  section("Symbolic mathematics: arithmetic");
  {
    auto x = th::scalar(), y = th::scalar(), z = th::scalar();
    auto result = x * y + z;
    auto result_function = th::function({x, y, z}, result);
    std::cout << "result_function(3, 2, 1) = " << result_function(3, 2, 1) << "\n";  // 7.0
  }
  {
    auto x = th::dvector(), y = th::dvector();
    auto f = th::function({x, y}, x + y);
    std::cout << "f([1,2,3], [4,5,6]) = " << f(th::tensor({1, 2, 3}), th::tensor({4, 5, 6})) << "\n";
    std::cout << "f([1,2,3,-1,-2,-3], [5,6,7,8,9,10]) = "
              << f(th::tensor({1, 2, 3, -1, -2, -3}), th::tensor({5, 6, 7, 8, 9, 10})) << "\n";
    auto g = th::function({x, y}, x.dot(y));
    std::cout << "x.dot(y) at [1,2,3], [4,5,6] = " << g(th::tensor({1, 2, 3}), th::tensor({4, 5, 6})) << "\n";
  }
  {
    auto x = th::dmatrix(), y = th::dmatrix();
    auto f = th::function({x, y}, x + y);
    std::cout << "matrix sum:\n" << f(th::tensor({{1, 2, 3}, {10, 20, 30}}), th::tensor({{4, 5, 6}, {40, 50, 60}})) << "\n";
    std::cout << "another shape:\n"
              << f(th::tensor({{1, 2}, {10, 20}, {100, 200}}), th::tensor({{4, 5}, {40, 50}, {400, 500}})) << "\n";
    std::cout << "single rows:\n" << f(th::tensor({{1, 2, 3}}), th::tensor({{4, 5, 6}})) << "\n";
    // The notebook's cells use `a` and `b` without defining them: matrices, as the text says.
    auto a = th::dmatrix("a"), b = th::dmatrix("b");
    auto mat_mult = th::function({a, b}, a * b);
    std::cout << "element-wise product:\n" << mat_mult(th::tensor({{1, 2}, {3, 4}}), th::tensor({{5, 6}, {7, 8}})) << "\n";
    auto mat_dot = th::function({a, b}, a.dot(b));
    std::cout << "matrix product:\n"
              << mat_dot(th::tensor({{1, 2, 3}, {4, 5, 6}}), th::tensor({{7, 8}, {9, 10}, {11, 12}})) << "\n";
  }

  section("Symbolic mathematics: differentiation and the gradient");
  {
    auto x = th::scalar();
    auto y = th::pow(x, 2) + 3 * x + 4;
    auto f_dydx = th::function({x}, th::grad(y, x));
    std::cout << "d(x^2 + 3x + 4)/dx at 2 = " << f_dydx(2) << "\n";  // 7.0
  }
  {
    auto x = th::dscalar(), y = th::dscalar();
    auto z = th::pow(x, 3) + th::pow(y, 2) + x * y;
    std::cout << "dz/dx at (2, 3) = " << th::function({x, y}, th::grad(z, x))(2, 3) << "\n";             // 15.0
    std::cout << "dz/dy at (2, 3) = " << th::function({x, y}, th::grad(z, y))(2, 3) << "\n";             // 8.0
    std::cout << "grad z at (2, 3) = " << th::function({x, y}, th::grad(z, {x, y}))(2, 3) << "\n";       // [15.0, 8.0]
  }
  {
    auto x = th::dvector();
    auto sum_sqr = th::sum(x.dot(x));
    std::cout << "sum(x.dot(x)) at [1,2,3] = " << th::function({x}, sum_sqr)(std::vector<double>{1, 2, 3}) << "\n";
    auto f_dzdx = th::function({x}, th::grad(sum_sqr, x));
    std::cout << "its gradient at [-2, 3] = " << f_dzdx(std::vector<double>{-2, 3}) << "\n";  // [-4. 6.]

    auto s = th::shared(th::tensor({0, 1, 2}, th::DType::int64), "s");
    auto z = th::sum(th::pow(x, s));
    std::cout << "sum(x**s) at [6,5,4] = " << th::function({x}, z)(std::vector<double>{6, 5, 4}) << "\n";  // 22.0
    auto dzdx = th::function({x}, th::grad(z, x));
    std::cout << "d sum(x**s)/dx at [6,5,4] = " << dzdx(std::vector<double>{6, 5, 4}) << "\n";
    // The notebook evaluates this gradient at [-2, 3], which has the wrong length for s:
    try {
      dzdx(std::vector<double>{-2, 3});
    } catch (const th::ShapeError& e) {
      std::cout << "at [-2, 3]: th::ShapeError: " << e.what() << "\n";
    }
    // `result` in the next cell is undefined; [1, 4, 48] at [3, 2, 4] is the gradient of sum(x**(s+1)).
    auto result = th::sum(th::pow(x, s + 1));
    std::cout << "d sum(x**(s+1))/dx at [3,2,4] = "
              << th::function({x}, th::grad(result, x))(std::vector<double>{3, 2, 4}) << "\n";  // [ 1.  4. 48.]
  }

  section("Linear regression");
  {
    const int n_variables = 3, x_numof = 5, training_steps = 10000;
    th::Tensor x_gen = th::tensor({3, 3, 2, 2});  // (floatX) the notebook's np.random.randint(1, 4, 4)
    std::cout << "x_gen = " << x_gen << "\n";
    // x_train: a column of ones, then the grid product(linspace(0, 1, 5), repeat=3).
    std::vector<double> rows;
    auto grid = th::linspace(0, 1, x_numof).to_vector();
    for (double a : grid)
      for (double b : grid)
        for (double c : grid) rows.insert(rows.end(), {1.0, a, b, c});
    const std::int64_t n = std::int64_t(rows.size()) / (n_variables + 1);
    th::Tensor x_train = th::tensor(rows, {n, n_variables + 1}, th::floatX());
    th::Tensor y_train = th::dot(x_train, x_gen) + th::random::normal({n}, /*seed=*/2, th::floatX()) * 0.001;
    std::cout << "y_train.shape = " << th::shape_str(y_train.shape()) << ", first values "
              << th::view(y_train, th::range(0, 5)) << "\n";

    auto x = th::matrix("x");
    auto y = th::vector("y");
    auto w = th::shared(th::random::normal({n_variables + 1}, /*seed=*/1), "w");
    std::cout << "Initial model (w): " << w.get_value() << "\n";
    auto prediction = th::dot(x, w);
    auto predict = th::function({x}, prediction);
    std::cout << "predict(x_train[0:3]) = " << predict(th::view(x_train, th::range(0, 3))) << "\n";

    auto cost = th::mean(th::sqr(th::dot(x, w) - y));
    auto cost_grad = th::grad(cost, w);
    auto train = th::function({x, y}, {cost}, {{w, w - 0.1 * cost_grad}});
    for (int i = 0; i < training_steps; ++i) {
      auto err = train(x_train, y_train);
      if (i < 5 || (i + 1) % 1000 == 0) std::cout << "step " << i + 1 << " err : " << err << "\n";
    }
    std::cout << "Generating model: " << x_gen << "\n";
    std::cout << "Final model (w): " << w.get_value() << "\n";
    std::cout << "predictions (on x_train): " << predict(x_train) << "\n";
    std::cout << "target values (y_train): " << y_train << "\n";
  }
  return 0;
}
