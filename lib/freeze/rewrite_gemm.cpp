// Transposes folded into the GEMM: a matmul operand made by a transpose that swaps only its
// last two axes is read through the transpose's input with the swap as a flag (matmul_t),
// so the transpose's view is no longer a step (dead code once nothing else reads it). The
// backend then passes the transposed layout to BLAS as its trans flag, as it already did
// for the view. Gradients are full of these: d(x @ w)/dw = x^T @ g.
#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

// Whether a transpose's permutation swaps the last two axes and keeps the others.
bool swaps_last_two(const Attrs& a) {
  const std::size_t n = a.axes.size();
  if (n < 2) return false;
  for (std::size_t i = 0; i + 2 < n; ++i)
    if (a.axes[i] != std::int64_t(i)) return false;
  return a.axes[n - 2] == std::int64_t(n - 1) && a.axes[n - 1] == std::int64_t(n - 2);
}

}  // namespace

int rewrite_gemm_transpose(Program& p) {
  const std::vector<long> made_by = producers(p);
  int fired = 0;
  for (Step& s : p.steps) {
    if (s.op != &matmul_op() && s.op != &matmul_t_op()) continue;
    for (std::size_t i = 0; i < 2; ++i) {
      const long t = made_by[s.in[i]];
      if (t < 0) continue;
      const Step& tr = p.steps[std::size_t(t)];
      if (tr.op != &transpose_op() || !swaps_last_two(tr.attrs)) continue;
      s.in[i] = tr.in[0];
      s.names[i] = tr.names[0];
      s.attrs.transpose ^= 1u << i;  // a transpose of a transposed read is a plain read
      s.op = s.attrs.transpose ? &matmul_t_op() : &matmul_op();
      ++fired;
    }
  }
  return fired;
}

}  // namespace th::detail
