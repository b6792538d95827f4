// Eager gradients: record on variables, differentiate, differentiate again.
#include <iostream>

#include <theta/theta.hpp>

int main() {
  auto x = th::variable(th::tensor({1.0, 2.0, 3.0}), "x");
  auto y = th::sum(th::sqr(x) * 3.0 + th::sin(x));
  std::cout << "x            = " << x << "\n";
  std::cout << "y            = sum(3x^2 + sin x) = " << y << "\n";
  auto g = th::grad(y, x);
  std::cout << "dy/dx        = 6x + cos x = " << g << "\n";
  std::cout << "d2y/dx2      = " << th::hessian(y, x) << "\n";

  auto a = th::variable(th::tensor({{1, 2, 3}, {4, 5, 6}}), "a");
  auto b = th::variable(th::tensor({{7, 8}, {9, 10}, {11, 12}}), "b");
  auto c = th::dot(a, b);
  std::cout << "a.dot(b)     =\n" << c << "\n";
  std::cout << "d sum(a.b)/da =\n" << th::grad(th::sum(c), a) << "\n";

  auto s = th::variable(th::tensor(2.0), "s");
  auto dyds = th::grad(th::pow(s, 2) + 3 * s + 4, s);
  std::cout << "d(s^2+3s+4)/ds at 2 = " << dyds << "\n";
  return 0;
}
