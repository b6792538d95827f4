// Random draws (API.md section 10): one op, random_draw(state[, shape]), whose values are a
// pure function of (the stream's seed, the draw's id, the call counter, the element index)
// through Philox-4x32-10 (Salmon et al., SC'11): the same on any number of threads. The
// state is an ordinary shared variable; freezing adds its update (lib/freeze/freeze.cpp).
// Distributions other than the three base kinds are composites over them.
#include "theta/random.hpp"

#include <cmath>

#include "core/dispatch.hpp"
#include "core/philox.hpp"
#include "cpu/parallel.hpp"
#include "ops/op.hpp"
#include "theta/nn.hpp"

namespace th::detail {

namespace {

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Philox key_of(std::uint64_t seed, std::int64_t id) {
  const std::uint64_t k = splitmix64(seed ^ splitmix64(std::uint64_t(id) + 1));
  return {std::uint32_t(k), std::uint32_t(k >> 32)};
}

double u53(std::uint32_t hi, std::uint32_t lo) { return double(((std::uint64_t(hi) << 32) | lo) >> 11) * 0x1p-53; }
float u24(std::uint32_t w) { return float(w >> 8) * 0x1p-24f; }

// Standard normals from two uniforms in (0, 1] and [0, 1) (Box-Muller).
void box_muller(double u1, double u2, double& z0, double& z1) {
  const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * M_PI * u2;
  z0 = r * std::cos(t), z1 = r * std::sin(t);
}

enum DrawKind : std::int64_t { kUniform = 0, kNormal = 1, kPermutation = 2 };

// Elements [lo, hi) of draw `kind`: element i reads block i / per of the stream, so any
// partition of the elements over threads gives the same numbers.
template <class T>
void fill(DrawKind kind, const Philox& ph, std::uint64_t calls, T* y, std::int64_t lo, std::int64_t hi) {
  std::uint32_t w[4];
  const bool f32 = std::is_same_v<T, float>;
  const std::int64_t per = f32 ? 4 : 2;  // elements per block
  for (std::int64_t i = lo; i < hi; ++i) {
    const std::int64_t j = i % per;
    if (i == lo || j == 0) ph.block(std::uint64_t(i / per), calls, w);
    if (kind == kUniform) {
      y[i] = f32 ? T(u24(w[j])) : T(u53(w[2 * j], w[2 * j + 1]));
      continue;
    }
    double z0, z1;
    if (f32) {  // words (0, 1) make elements 0 and 1, words (2, 3) elements 2 and 3
      const std::int64_t p = j / 2;
      box_muller((double(w[2 * p]) + 1.0) * 0x1p-32, double(w[2 * p + 1]) * 0x1p-32, z0, z1);
      y[i] = T(j % 2 ? z1 : z0);
    } else {
      box_muller(1.0 - u53(w[0], w[1]), u53(w[2], w[3]), z0, z1);
      y[i] = T(j ? z1 : z0);
    }
  }
}

// attrs: axes {kind}, axis the draw's id, dtype, shape (when no shape operand); with
// attrs.all the second operand is a tensor whose shape and device the draw takes (dropout's
// mask lives where its x does), else an int64 vector of the shape's values.
Meta infer_draw(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (in[0].dtype != DType::int64 || in[0].shape.size() != 1 || (in[0].shape[0] >= 0 && in[0].shape[0] != 2))
    throw_type(op, "the state must be an int64 pair (seed, calls)", in);
  if (in.size() == 1) return {a.dtype, a.shape};
  if (a.all) return {a.dtype, in[1].shape};
  return {a.dtype, Shape(std::size_t(shape_operand_rank(op, in[1], in)), -1)};
}

Storage forward_draw(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage st = on_host(*in[0], DType::int64);
  const std::uint64_t seed = std::uint64_t(st.data<std::int64_t>()[0]), calls = std::uint64_t(st.data<std::int64_t>()[1]);
  Shape shape = a.all ? in[1]->shape : a.shape;
  if (in.size() > 1 && !a.all) {
    const std::vector<Meta> metas{meta_of(*in[0]), meta_of(*in[1])};
    shape = shape_operand_values(op, *in[1], metas);
    for (auto d : shape)
      if (d < 0) throw_shape(op, "negative dimension in the shape " + shape_str(shape), metas);
  }
  (void)out;
  const Philox ph = key_of(seed, a.axis);
  const auto kind = DrawKind(a.axes.at(0));
  Storage y = alloc_storage(a.dtype, shape, th::cpu());
  const std::int64_t n = y.size();
  if (kind == kPermutation) {  // Fisher-Yates, one 64-bit number per position
    std::int64_t* p = y.data<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = i;
    std::uint32_t w[4];
    for (std::int64_t i = n - 1; i > 0; --i) {
      ph.block(std::uint64_t(i / 2), calls, w);
      const std::uint64_t r = (std::uint64_t(w[2 * (i % 2)]) << 32) | w[2 * (i % 2) + 1];
      std::swap(p[i], p[std::int64_t(r % std::uint64_t(i + 1))]);
    }
    return y;
  }
  cpu::parallel_for(n, 40, [&](std::int64_t lo, std::int64_t hi) {
    THETA_DISPATCH_FLOAT(a.dtype, T, fill(kind, ph, calls, y.data<T>(), lo, hi));
  });
  // drawn on the host (the same numbers everywhere), then moved to the like operand's device
  return a.all ? to_device(std::move(y), in[1]->device()) : y;
}

const Op op_draw{"random_draw", {1, 2}, 0, &infer_draw, &forward_draw, nullptr, 0b11};

DType float_dtype(std::optional<DType> d, const char* what) {
  const DType r = d.value_or(floatX());
  if (!is_floating(r)) throw TypeError(std::string(what) + ": the dtype must be float32 or float64, got " + dtype_name(r));
  return r;
}

Tensor as_tensor(const TensorOrNumber& v, DType dtype) { return v.is_tensor() ? v.tensor() : scalar_const(v.number(), dtype); }

}  // namespace

const Op& random_draw_op() { return op_draw; }

}  // namespace th::detail

namespace th {

struct RandomStreams::Impl {
  std::int64_t next_id = 0;
  Shared state;
};

RandomStreams::RandomStreams(std::uint64_t seed, const std::string& name) : impl_(std::make_shared<Impl>()) {
  impl_->state = shared(tensor(std::vector<std::int64_t>{std::int64_t(seed), 0}, {2}), name + ".state");
}

void RandomStreams::seed(std::uint64_t s) {
  impl_->next_id = 0;
  impl_->state.set_value(tensor(std::vector<std::int64_t>{std::int64_t(s), 0}, {2}));
}

Shared RandomStreams::state() const { return impl_->state; }

namespace {
// A draw of the shape `shape` gives, or (with `like`) of like's shape on like's device.
Tensor draw(RandomStreams::Impl& s, std::int64_t kind, const ShapeArg& shape, DType dtype, const char* what,
            const Tensor& like = Tensor()) {
  detail::Attrs a;
  a.axes = {kind};
  a.axis = s.next_id++;
  a.dtype = dtype;
  if (like) {
    a.all = true;
    return detail::apply(detail::op_draw, {s.state, like}, std::move(a));
  }
  if (shape.fixed()) {
    for (auto d : *shape.fixed())
      if (d < 0) throw ValueError(std::string(what) + ": negative dimension in the shape " + shape_str(*shape.fixed()));
    a.shape = *shape.fixed();
    return detail::apply(detail::op_draw, {s.state}, std::move(a));
  }
  return detail::apply(detail::op_draw, {s.state, shape.tensor()}, std::move(a));
}
}  // namespace

Tensor RandomStreams::uniform(const ShapeArg& shape, const TensorOrNumber& low, const TensorOrNumber& high,
                              std::optional<DType> dtype) {
  const DType d = detail::float_dtype(dtype, "RandomStreams::uniform");
  if (!low.is_tensor() && !high.is_tensor() && !(low.number() <= high.number()))
    throw ValueError("RandomStreams::uniform: low (" + std::to_string(low.number()) + ") must not exceed high (" +
                     std::to_string(high.number()) + ")");
  Tensor u = draw(*impl_, detail::kUniform, shape, d, "RandomStreams::uniform");
  if (!low.is_tensor() && !high.is_tensor()) {
    if (low.number() == 0 && high.number() == 1) return u;
    return u * (high.number() - low.number()) + low.number();
  }
  const Tensor lo = detail::as_tensor(low, d), hi = detail::as_tensor(high, d);
  return u * (hi - lo) + lo;
}

Tensor RandomStreams::normal(const ShapeArg& shape, const TensorOrNumber& mean, const TensorOrNumber& stddev,
                             std::optional<DType> dtype) {
  const DType d = detail::float_dtype(dtype, "RandomStreams::normal");
  if (!stddev.is_tensor() && !(stddev.number() >= 0))
    throw ValueError("RandomStreams::normal: stddev must be >= 0, got " + std::to_string(stddev.number()));
  Tensor z = draw(*impl_, detail::kNormal, shape, d, "RandomStreams::normal");
  if (!mean.is_tensor() && !stddev.is_tensor()) {
    if (mean.number() == 0 && stddev.number() == 1) return z;
    return z * stddev.number() + mean.number();
  }
  return z * detail::as_tensor(stddev, d) + detail::as_tensor(mean, d);
}

Tensor RandomStreams::binomial(const ShapeArg& shape, std::int64_t n, const TensorOrNumber& p, DType dtype) {
  if (n < 0) throw ValueError("RandomStreams::binomial: n must be >= 0, got " + std::to_string(n));
  if (!p.is_tensor() && !(p.number() >= 0 && p.number() <= 1))
    throw ValueError("RandomStreams::binomial: p must be in [0, 1], got " + std::to_string(p.number()));
  Tensor total;
  for (std::int64_t t = 0; t < std::max<std::int64_t>(n, 1); ++t) {
    const Tensor u = draw(*impl_, detail::kUniform, shape, DType::float64, "RandomStreams::binomial");
    const Tensor hit = cast(p.is_tensor() ? u < p.tensor() : u < p.number(), dtype);
    total = total ? total + hit : hit;
  }
  return n == 0 ? total * 0 : total;
}

Tensor RandomStreams::integers(const ShapeArg& shape, std::int64_t low, std::int64_t high) {
  if (!(low < high))
    throw ValueError("RandomStreams::integers: low (" + std::to_string(low) + ") must be below high (" +
                     std::to_string(high) + ")");
  const Tensor u = draw(*impl_, detail::kUniform, shape, DType::float64, "RandomStreams::integers");
  // floor(u * span) < span: u < 1 and span < 2^53 keep the product below span
  return cast(minimum(cast(u * double(high - low), DType::int64), high - low - 1) + low, DType::int64);
}

Tensor RandomStreams::permutation(std::int64_t n) {
  if (n < 0) throw ValueError("RandomStreams::permutation: n must be >= 0, got " + std::to_string(n));
  return draw(*impl_, detail::kPermutation, Shape{n}, DType::int64, "RandomStreams::permutation");
}

Tensor dropout(const Tensor& x, const TensorOrNumber& p, RandomStreams& srng) {
  const detail::Node& n = detail::node_of(x, "dropout");
  if (!is_floating(n.dtype)) throw TypeError("dropout: x must be float32 or float64: " + detail::describe({detail::meta_of(x)}));
  if (!p.is_tensor()) {
    const double q = p.number();
    if (!(q >= 0 && q <= 1))
      throw ValueError("dropout: p must be in [0, 1], got " + std::to_string(q) + ": " +
                       detail::describe({detail::meta_of(x)}));
    if (q == 0) return x;
  }
  // one uniform per element of x, of x's shape and on x's device
  const Tensor u = draw(*srng.impl_, detail::kUniform, {}, n.dtype, "dropout", x);
  if (!p.is_tensor()) {
    if (p.number() == 1) return where(u < 2.0, x * 0.0, 0.0);  // everything dropped (shape and recording kept)
    return where(u >= p.number(), x * (1.0 / (1.0 - p.number())), 0.0);
  }
  return where(u >= p.tensor(), x / (1.0 - p.tensor()), 0.0);
}

}  // namespace th
