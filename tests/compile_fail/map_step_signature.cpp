// Must NOT compile: a th::map step that returns an int. ctest (compile_fail_map_step)
// checks that the compiler's message is the one static_assert naming the expected signature,
// not a page of std::function template errors.
#include <theta/theta.hpp>

int main() {
  const th::Tensor x = th::dvector("x");
  th::map([](const std::vector<th::Tensor>&) { return 1; }, {x});
}
