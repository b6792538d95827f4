// Gradients are full of broadcast_like(x, like) and sum_to_like(g, like) steps, whose `like`
// is a forward value read for its shape only. Two rewrites, from a static shape class per
// slot (the set of slots whose broadcast it is, and its rank; elementwise ops unite their
// operands' sets, so equal classes mean equal shapes at run time):
//  - a step whose operand already has its like's class is a no-op: dropped;
//  - broadcast_like(reshape(x), like) reads x itself when x is one element;
//  - a `like` (or a count's operand, also read for its shape only) made by an elementwise
//    step is replaced by what its class is made of (one slot of that rank, or a zero-copy
//    broadcast_shape of the sources), so the forward value is no longer kept alive for its
//    shape, elementwise fusion can absorb it, and chains that needed only its shape no
//    longer wait for it (a mean's gradient and its forward then merge into one pass);
//  - a `like` made by a convolution or a pooling (or a class source so made) is replaced by
//    its shape twin (ops/op.hpp): the same shape rule, no values. A pooling's gradient then
//    no longer runs the pooling, and in training a convolution's output has one reader left,
//    its bias addition, so the conv epilogue rewrite folds bias and relu into it.
#include <algorithm>
#include <map>
#include <set>

#include "freeze/optimize.hpp"

namespace th::detail {

namespace {

struct ShapeClass {
  std::set<std::size_t> sources;
  std::size_t rank = 0;
  bool operator==(const ShapeClass& o) const { return rank == o.rank && sources == o.sources; }
};

bool is_unary(const Op* op) {
#define THETA_IS(name, ...) \
  if (op == &unary_op(UnaryKind::name)) return true;
  THETA_UNARY_OPS(THETA_IS)
#undef THETA_IS
  return op == &cast_op() || op == &stop_gradient_op();
}

bool is_binary(const Op* op) {
#define THETA_IS(name, ...) \
  if (op == &binary_op(BinaryKind::name)) return true;
  THETA_BINARY_OPS(THETA_IS)
#undef THETA_IS
  return false;
}

}  // namespace

int rewrite_like_shapes(Program& p) {
  std::vector<ShapeClass> cls(p.slots);
  for (std::size_t s = 0; s < p.slots; ++s) {
    cls[s].rank = p.slot_shape[s].size();
    const Storage* c = constant_of(p, s);
    if (!(c && c->size() == 1)) cls[s].sources = {s};  // a one-element constant broadcasts nothing up
  }
  const std::vector<long> made_by = producers(p);
  int fired = 0;
  std::vector<Step> out;
  // An operand read for its shape only and made by an elementwise step: replaced by what its
  // class is made of (one slot of that rank, or a zero-copy broadcast_shape of the sources,
  // one step per class).
  std::map<std::pair<std::set<std::size_t>, std::size_t>, std::size_t> made_shapes;
  // A slot made by an op with a shape twin (conv2d, pool_2d): the twin's slot, one per slot,
  // so that a shape-only reader no longer keeps (or, read by nothing else, makes) the value.
  std::map<std::size_t, std::size_t> twins;
  auto twin_of = [&](std::size_t slot) {
    const long maker = slot < made_by.size() ? made_by[slot] : -1;  // (slots made here have no twin)
    if (maker < 0) return slot;
    const Step& m = p.steps[std::size_t(maker)];
    const Op* twin = shape_twin(*m.op);
    if (!twin) return slot;
    const auto known = twins.find(slot);
    if (known != twins.end()) return known->second;
    const std::size_t t = new_slot(p, p.slot_dtype[slot], p.slot_shape[slot]);
    const ShapeClass same = cls[slot];
    cls.push_back(same);
    out.push_back(Step{twin, m.attrs, m.in, t, m.names});
    twins[slot] = t;
    return t;
  };
  auto shape_source = [&](std::size_t& like) {
    const long maker = like < made_by.size() ? made_by[like] : -1;
    const ShapeClass lc = cls[like];  // a copy: cls grows below
    if (maker >= 0 && shape_twin(*p.steps[std::size_t(maker)].op)) {
      like = twin_of(like);
      return true;
    }
    if (maker < 0 || !(is_unary(p.steps[std::size_t(maker)].op) || is_binary(p.steps[std::size_t(maker)].op)) ||
        lc.sources.empty())
      return false;
    const std::size_t first = *lc.sources.begin();
    if (lc.sources.size() == 1 && cls[first].rank == lc.rank) {
      like = twin_of(first);
      return true;
    }
    const auto key = std::make_pair(lc.sources, lc.rank);
    const auto known = made_shapes.find(key);
    if (known != made_shapes.end() && p.slot_dtype[known->second] == p.slot_dtype[like]) {
      like = known->second;
      return true;
    }
    const std::size_t slot = new_slot(p, p.slot_dtype[like], p.slot_shape[like]);
    cls.push_back(lc);
    Attrs a;
    a.axis = std::int64_t(lc.rank);
    a.dtype = p.slot_dtype[like];
    Step b{&broadcast_shape_op(), a, {}, slot, {}};
    for (std::size_t s : lc.sources) {
      b.in.push_back(twin_of(s));
      b.names.push_back("");
    }
    out.push_back(std::move(b));
    made_shapes[key] = slot;
    like = slot;
    return true;
  };
  // The one-element constant k when `slot` is broadcast_like(k, like) (a gradient's seed
  // of ones, or a scaled one), else none; `like` gets the like.
  auto broadcast_constant = [&](std::size_t slot, std::size_t& like) -> long {
    const long m = made_by[slot];
    if (m < 0 || p.steps[std::size_t(m)].op != &broadcast_like_op()) return -1;
    const std::size_t k = p.steps[std::size_t(m)].in[0];
    const Storage* c = constant_of(p, k);
    like = p.steps[std::size_t(m)].in[1];
    return c && c->size() == 1 ? long(k) : -1;
  };
  for (Step& st : p.steps) {
    const Op* op = st.op;
    ShapeClass& c = cls[st.out];
    const bool like_op = op == &broadcast_like_op() || op == &sum_to_like_op();
    if (is_unary(op) && st.in.size() == 1) {
      c.sources = cls[st.in[0]].sources;
    } else if (is_binary(op) || op == &where_op()) {
      c.sources.clear();
      for (std::size_t i : st.in) c.sources.insert(cls[i].sources.begin(), cls[i].sources.end());
      // A filled operand broadcast_like(k, like), k one element (a gradient's seed of ones,
      // and what it becomes): where the other operand v already has the result's shape, k
      // itself (it broadcasts as it is); else, for 1 * v, v broadcast like the fill (the
      // same values: a multiplication by 1 gives v's bits). Either way one op less for the
      // fused kernel, and no filled tensor made op by op.
      for (std::size_t j = 0; j < 2 && is_binary(op); ++j) {
        std::size_t like = 0;
        const long k = broadcast_constant(st.in[j], like);
        const std::size_t v = st.in[1 - j];
        double one = 0;
        if (k < 0 || p.slot_shape[std::size_t(k)].size() > c.rank) continue;
        if (cls[v].sources == c.sources && cls[v].rank == c.rank) {
          st.in[j] = std::size_t(k);
          st.names[j].clear();
          ++fired;
        } else if (op == &binary_op(BinaryKind::mul) && one_value_constant(p, std::size_t(k), one) && one == 1 &&
                   cls[like] == c && p.slot_dtype[v] == p.slot_dtype[st.out]) {
          st.op = &broadcast_like_op();
          st.in = {v, like};
          st.names = {std::string(st.names[1 - j]), std::string()};
          ++fired;
          break;
        }
      }
    } else if (like_op) {
      c.sources = cls[st.in[1]].sources;
      // broadcast_like(reshape(x), like) with x one element (a reduction's gradient, made
      // 1-d by keep_reduced): broadcasting x itself gives the same, without the reshape.
      if (op == &broadcast_like_op()) {
        const long r = made_by[st.in[0]];
        if (r >= 0 && is_reshape(*p.steps[std::size_t(r)].op)) {
          const std::size_t x = p.steps[std::size_t(r)].in[0];
          const Shape& xs = p.slot_shape[x];
          if (std::all_of(xs.begin(), xs.end(), [](std::int64_t d) { return d == 1; }) &&
              xs.size() <= p.slot_shape[st.in[0]].size()) {
            st.in[0] = x;
            st.names[0] = p.steps[std::size_t(r)].names[0];
            ++fired;
          }
        }
      }
      if (cls[st.in[0]] == cls[st.in[1]] && p.slot_dtype[st.in[0]] == p.slot_dtype[st.out]) {
        replace_uses(p, st.out, st.in[0]);  // only later steps read it
        ++fired;
        continue;
      }
      if (shape_source(st.in[1])) ++fired;
    } else if (op == &count_op()) {  // reads its operand's shape only, too
      c.sources = {st.out};
      if (shape_source(st.in[0])) ++fired;
    } else {
      c.sources = {st.out};
    }
    out.push_back(st);
  }
  p.steps = std::move(out);
  return fired;
}

}  // namespace th::detail
