// th::einsum (API.md section 16): numpy's subscripts (explicit "->" output or the implicit
// one, repeated indices for diagonals and traces, "..." broadcast) composed of theta's ops,
// so it differentiates (twice, too), freezes and runs on every backend. Each operand first
// loses its repeated indices (diagonals) and the indices nothing else reads (sums); then the
// operands are contracted two at a time, the pair with the smallest result first (numpy's
// greedy order), each pair as one batched matmul (BLAS) when its sizes are known when it
// records, else as a broadcast product summed.
#include <algorithm>
#include <map>
#include <set>

#include "ops/op.hpp"
#include "theta/nn.hpp"

namespace th {

namespace {

using Labels = std::vector<int>;  // a letter's code; ellipsis dims 1000 + position from the right

struct Term {
  Tensor t;
  Labels l;
};

[[noreturn]] void fail(const std::string& spec, const std::vector<Tensor>& ops, const std::string& what, bool shape) {
  std::vector<detail::Meta> m;
  for (const Tensor& t : ops) m.push_back(detail::meta_of(t));
  const std::string msg = "einsum: '" + spec + "': " + what + ": " + detail::describe(m);
  if (shape) throw ShapeError(msg);
  throw ValueError(msg);
}

const Shape& shape_of_t(const Tensor& t) { return detail::node_of(t, "einsum").shape; }

// The labels of one subscript string for an operand of rank `rank` (false: it does not fit).
bool labels_of(const std::string& s, std::size_t rank, Labels& out, bool& has_ellipsis) {
  out.clear();
  has_ellipsis = false;
  std::size_t letters = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s.compare(i, 3, "...") == 0) i += 2;
    else ++letters;
  if (s.find("...") != std::string::npos) {
    has_ellipsis = true;
    if (letters > rank) return false;
  } else if (letters != rank) {
    return false;
  }
  const std::size_t e = rank - letters;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "...") == 0) {
      for (std::size_t k = e; k-- > 0;) out.push_back(1000 + int(k));
      i += 2;
    } else {
      out.push_back(static_cast<unsigned char>(s[i]));
    }
  }
  return true;
}

// x with axes `axes` moved to the end in that order (the others in order before them).
Tensor to_end(const Tensor& x, const std::vector<std::size_t>& axes, Labels& l) {
  std::vector<std::int64_t> perm;
  Labels nl;
  for (std::size_t i = 0; i < l.size(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) perm.push_back(std::int64_t(i)), nl.push_back(l[i]);
  for (std::size_t a : axes) perm.push_back(std::int64_t(a)), nl.push_back(l[a]);
  l = nl;
  bool same = true;
  for (std::size_t i = 0; i < perm.size(); ++i) same = same && perm[i] == std::int64_t(i);
  return same ? x : transpose(x, perm);
}

// The operand's repeated labels taken as diagonals, the labels `keep` lacks summed away.
void reduce_alone(Term& t, const std::set<int>& keep) {
  for (bool again = true; again;) {
    again = false;
    for (std::size_t i = 0; i < t.l.size() && !again; ++i)
      for (std::size_t j = i + 1; j < t.l.size() && !again; ++j)
        if (t.l[i] == t.l[j]) {  // x[.., i, .., i, ..] -> the diagonal, at the end
          t.t = to_end(t.t, {i, j}, t.l);
          t.t = sum(t.t * detail::identity_like(t.t), Axes(-1));
          t.l.pop_back();
          again = true;
        }
  }
  std::vector<std::int64_t> gone;
  Labels kept;
  for (std::size_t i = 0; i < t.l.size(); ++i)
    if (!keep.count(t.l[i])) gone.push_back(std::int64_t(i));
    else kept.push_back(t.l[i]);
  if (!gone.empty()) t.t = sum(t.t, Axes(gone)), t.l = kept;
}

std::int64_t size_of(const Term& t, int label) {
  const Shape& s = shape_of_t(t.t);
  for (std::size_t i = 0; i < t.l.size(); ++i)
    if (t.l[i] == label) return s[i];
  return 1;
}

// a and b contracted over the labels they share that `keep` (the output and the other
// operands) does not read.
Term contract(const Term& a, const Term& b, const std::set<int>& keep) {
  Labels batch, sum_l, a_only, b_only;
  for (int l : a.l) {
    const bool in_b = std::find(b.l.begin(), b.l.end(), l) != b.l.end();
    if (in_b) (keep.count(l) ? batch : sum_l).push_back(l);
    else a_only.push_back(l);
  }
  for (int l : b.l)
    if (std::find(a.l.begin(), a.l.end(), l) == a.l.end()) b_only.push_back(l);
  auto positions = [](const Term& t, const std::vector<Labels>& groups) {
    std::vector<std::int64_t> p;
    for (const Labels& g : groups)
      for (int l : g) p.push_back(std::int64_t(std::find(t.l.begin(), t.l.end(), l) - t.l.begin()));
    return p;
  };
  bool known = true;  // every size known when it records: one batched matmul
  std::int64_t nb = 1, M = 1, K = 1, N = 1;
  Shape out_shape;
  for (int l : batch) {
    const std::int64_t x = size_of(a, l), y = size_of(b, l);
    known = known && x >= 0 && y >= 0 && x == y;
    nb *= x, out_shape.push_back(x);
  }
  for (int l : a_only) M *= size_of(a, l), known = known && size_of(a, l) >= 0, out_shape.push_back(size_of(a, l));
  for (int l : b_only) N *= size_of(b, l), known = known && size_of(b, l) >= 0, out_shape.push_back(size_of(b, l));
  for (int l : sum_l) {
    const std::int64_t x = size_of(a, l), y = size_of(b, l);
    known = known && x >= 0 && y >= 0 && x == y;
    K *= x;
  }
  Term r;
  r.l = batch;
  r.l.insert(r.l.end(), a_only.begin(), a_only.end());
  r.l.insert(r.l.end(), b_only.begin(), b_only.end());
  if (known) {
    const Tensor at = reshape(transpose(a.t, positions(a, {batch, a_only, sum_l})), {nb, M, K});
    const Tensor bt = reshape(transpose(b.t, positions(b, {batch, sum_l, b_only})), {nb, K, N});
    r.t = reshape(matmul(at, bt), out_shape);
    return r;
  }
  // sizes open until it runs (or broadcast ellipsis dims): a broadcast product, summed
  Tensor at = transpose(a.t, positions(a, {batch, a_only, sum_l})), bt = transpose(b.t, positions(b, {batch, b_only, sum_l}));
  const std::int64_t nbat = std::int64_t(batch.size()), na = std::int64_t(a_only.size()), nbo = std::int64_t(b_only.size());
  for (std::int64_t i = 0; i < nbo; ++i) at = expand_dims(at, nbat + na);  // (batch, a_only, 1.., sum)
  for (std::int64_t i = 0; i < na; ++i) bt = expand_dims(bt, nbat);       // (batch, 1.., b_only, sum)
  Tensor prod = at * bt;
  if (!sum_l.empty()) {
    std::vector<std::int64_t> ax;
    for (std::size_t i = 0; i < sum_l.size(); ++i) ax.push_back(nbat + na + nbo + std::int64_t(i));
    prod = sum(prod, Axes(ax));
  }
  r.t = prod;
  return r;
}

}  // namespace

Tensor einsum(const std::string& spec_in, const std::vector<Tensor>& operands) {
  std::string spec;
  for (char c : spec_in)
    if (c != ' ') spec += c;
  if (operands.empty()) fail(spec_in, operands, "needs at least one operand", false);
  for (const Tensor& t : operands) detail::node_of(t, "einsum");
  const std::size_t arrow = spec.find("->");
  const std::string lhs = spec.substr(0, arrow);
  std::vector<std::string> terms;
  for (std::size_t at = 0;;) {
    const std::size_t c = lhs.find(',', at);
    terms.push_back(lhs.substr(at, c == std::string::npos ? std::string::npos : c - at));
    if (c == std::string::npos) break;
    at = c + 1;
  }
  if (terms.size() != operands.size())
    fail(spec_in, operands, std::to_string(terms.size()) + " subscripts for " + std::to_string(operands.size()) + " operands", false);
  auto valid = [](const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 3, "...") == 0) {
        i += 2;
        continue;
      }
      if (!std::isalpha(static_cast<unsigned char>(s[i]))) return false;
    }
    return s.find("...") == s.rfind("...");
  };
  std::vector<Term> ts;
  std::size_t ellipsis = 0;
  std::map<int, std::int64_t> sizes;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    if (!valid(terms[i])) fail(spec_in, operands, "subscripts are letters and at most one '...' per operand", false);
    Term t{operands[i], {}};
    bool has_e = false;
    const Shape& s = shape_of_t(t.t);
    if (!labels_of(terms[i], s.size(), t.l, has_e))
      fail(spec_in, operands, "operand " + std::to_string(i) + " has subscripts '" + terms[i] + "' but " +
                                  std::to_string(s.size()) + " dimensions", true);
    for (std::size_t k = 0; k < t.l.size(); ++k) {
      const int l = t.l[k];
      if (l >= 1000) {
        ellipsis = std::max(ellipsis, std::size_t(l - 999));
        continue;
      }
      auto [it, fresh] = sizes.emplace(l, s[k]);
      if (!fresh && it->second >= 0 && s[k] >= 0 && it->second != s[k])
        fail(spec_in, operands, "index '" + std::string(1, char(l)) + "' has sizes " + std::to_string(it->second) + " and " +
                                    std::to_string(s[k]), true);
      if (it->second < 0) it->second = s[k];
    }
    ts.push_back(std::move(t));
  }
  Labels out;
  if (arrow != std::string::npos) {
    const std::string rhs = spec.substr(arrow + 2);
    if (!valid(rhs)) fail(spec_in, operands, "the output's subscripts are letters and at most one '...'", false);
    bool has_e = false;
    std::size_t letters = 0;
    for (char c : rhs) letters += std::isalpha(static_cast<unsigned char>(c)) ? 1 : 0;
    labels_of(rhs, letters + (rhs.find("...") != std::string::npos ? ellipsis : 0), out, has_e);
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i] < 1000 && !sizes.count(out[i]))
        fail(spec_in, operands, "output index '" + std::string(1, char(out[i])) + "' is in no operand", false);
      if (std::count(out.begin(), out.end(), out[i]) > 1)
        fail(spec_in, operands, "output index '" + std::string(1, char(out[i])) + "' is repeated", false);
    }
    if (!has_e && ellipsis > 0)
      for (const Term& t : ts)
        for (int l : t.l)
          if (l >= 1000 && size_of(t, l) != 1)
            fail(spec_in, operands, "'...' dims must be in the output (write '...' after '->')", false);
  } else {  // implicit: the broadcast dims, then the indices seen once, in order of their letters
    for (std::size_t k = ellipsis; k-- > 0;) out.push_back(1000 + int(k));
    std::map<int, int> seen;
    for (const Term& t : ts)
      for (int l : t.l)
        if (l < 1000) ++seen[l];
    for (const auto& [l, n] : seen)
      if (n == 1) out.push_back(l);
  }
  // the labels the output and the operands other than i and j read: what reducing or
  // contracting i (and j) must keep
  auto keep_except = [&](std::size_t i, std::size_t j) {
    std::set<int> k(out.begin(), out.end());
    for (std::size_t o = 0; o < ts.size(); ++o)
      if (o != i && o != j) k.insert(ts[o].l.begin(), ts[o].l.end());
    return k;
  };
  for (std::size_t i = 0; i < ts.size(); ++i) reduce_alone(ts[i], keep_except(i, i));
  while (ts.size() > 1) {
    // the pair whose result is smallest (unknown sizes counted as 1024)
    std::size_t bi = 0, bj = 1;
    double best = -1;
    for (std::size_t i = 0; i < ts.size(); ++i)
      for (std::size_t j = i + 1; j < ts.size(); ++j) {
        const std::set<int> k = keep_except(i, j);
        std::set<int> res;
        for (int l : ts[i].l)
          if (k.count(l)) res.insert(l);
        for (int l : ts[j].l)
          if (k.count(l)) res.insert(l);
        double cost = 1;
        for (int l : res) {
          const std::int64_t n = std::max(size_of(ts[i], l), size_of(ts[j], l));
          cost *= n < 0 ? 1024.0 : double(n);
        }
        if (best < 0 || cost < best) best = cost, bi = i, bj = j;
      }
    const std::set<int> k = keep_except(bi, bj);
    Term r = contract(ts[bi], ts[bj], k);
    ts.erase(ts.begin() + std::ptrdiff_t(bj));
    ts[bi] = std::move(r);
  }
  Term& t = ts[0];
  reduce_alone(t, std::set<int>(out.begin(), out.end()));
  std::vector<std::int64_t> perm;
  for (int l : out) {
    const auto it = std::find(t.l.begin(), t.l.end(), l);
    if (it == t.l.end()) {  // an ellipsis dim only some operands had (broadcast): size 1 here
      t.t = expand_dims(t.t, std::int64_t(t.l.size()));
      t.l.push_back(l);
      perm.push_back(std::int64_t(t.l.size() - 1));
    } else {
      perm.push_back(std::int64_t(it - t.l.begin()));
    }
  }
  bool same = perm.size() == t.l.size();
  for (std::size_t i = 0; same && i < perm.size(); ++i) same = perm[i] == std::int64_t(i);
  return same ? t.t : transpose(t.t, perm);
}

}  // namespace th
