// Creation functions: literals, fills, ranges and seeded random tensors.
#include <cmath>
#include <cstring>
#include <random>

#include "core/backend.hpp"
#include "core/node.hpp"
#include "core/text.hpp"
#include "theta/config.hpp"
#include "theta/error.hpp"
#include "theta/tensor.hpp"

namespace th {

using detail::make_constant;
using detail::Storage;

namespace {

Tensor from_doubles(const std::vector<double>& v, Shape shape, std::optional<DType> dtype) {
  Tensor t = tensor_from_data(v.data(), DType::float64, std::move(shape));
  DType d = dtype.value_or(floatX());
  return d == DType::float64 ? t : make_constant(detail::contiguous_as(*t.node()->value, d));
}

void check_shape(const Shape& s, const char* what) {
  for (auto d : s)
    if (d < 0) throw ShapeError(std::string(what) + ": negative dimension in shape " + shape_str(s));
}

}  // namespace

Tensor tensor_from_data(const void* data, DType dtype, Shape shape) {
  check_shape(shape, "tensor");
  if (dtype == DType::string)
    throw TypeError("tensor_from_data: string tensors are made from text, th::tensor(std::vector<std::string>, shape)");
  Storage s = detail::alloc_storage(dtype, shape, cpu());
  std::size_t bytes = std::size_t(s.size()) * dtype_size(dtype);
  if (bytes) std::memcpy(s.bytes(), data, bytes);
  return make_constant(detail::transfer(s, config().device));  // THETA_FLAGS=device=cuda: on the GPU
}

Tensor tensor(const std::vector<std::string>& data, Shape shape) {
  check_shape(shape, "tensor");
  if (detail::shape_size(shape) != std::int64_t(data.size()))
    throw ShapeError("tensor: " + std::to_string(data.size()) + " strings do not fill shape " + shape_str(shape));
  Storage s = detail::alloc_storage(DType::string, shape, cpu());  // (host-only)
  for (std::size_t i = 0; i < data.size(); ++i) s.data<detail::Text>()[i] = detail::intern(data[i]);
  return make_constant(std::move(s));
}

Tensor detail::scalar_tensor(double value, std::optional<DType> dtype) { return from_doubles({value}, {}, dtype); }

Tensor tensor(std::initializer_list<ListValue> values, std::optional<DType> dtype) {
  std::vector<double> v;
  for (const ListValue& x : values) v.push_back(x.v);
  return from_doubles(v, {std::int64_t(values.size())}, dtype);
}

Tensor tensor(std::initializer_list<std::initializer_list<double>> values, std::optional<DType> dtype) {
  std::vector<double> v;
  std::int64_t cols = values.size() ? std::int64_t(values.begin()->size()) : 0;
  std::int64_t r = 0;
  for (const auto& row : values) {
    if (std::int64_t(row.size()) != cols)
      throw ShapeError("tensor: ragged nested list: row " + std::to_string(r) + " has " + std::to_string(row.size()) +
                       " elements, row 0 has " + std::to_string(cols));
    v.insert(v.end(), row.begin(), row.end());
    ++r;
  }
  return from_doubles(v, {std::int64_t(values.size()), cols}, dtype);
}

Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> values,
              std::optional<DType> dtype) {
  std::vector<double> v;
  std::int64_t rows = values.size() ? std::int64_t(values.begin()->size()) : 0;
  std::int64_t cols = rows ? std::int64_t(values.begin()->begin()->size()) : 0;
  for (const auto& plane : values) {
    if (std::int64_t(plane.size()) != rows) throw ShapeError("tensor: ragged nested list (3-d)");
    for (const auto& row : plane) {
      if (std::int64_t(row.size()) != cols) throw ShapeError("tensor: ragged nested list (3-d)");
      v.insert(v.end(), row.begin(), row.end());
    }
  }
  return from_doubles(v, {std::int64_t(values.size()), rows, cols}, dtype);
}

Tensor full(const Shape& shape, double value, std::optional<DType> dtype) {
  check_shape(shape, "full");
  Storage s = detail::alloc_storage(dtype.value_or(floatX()), shape, config().device);
  detail::backend_for(s.device()).fill(s, value);
  return make_constant(std::move(s));
}
Tensor zeros(const Shape& shape, std::optional<DType> dtype) { return full(shape, 0, dtype); }
Tensor ones(const Shape& shape, std::optional<DType> dtype) { return full(shape, 1, dtype); }

Tensor arange(double stop, std::optional<DType> dtype) { return arange(0, stop, 1, dtype); }

Tensor arange(double start, double stop, double step, std::optional<DType> dtype) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    throw ValueError("arange: step must be non-zero and bounds finite (start " + std::to_string(start) + ", stop " +
                     std::to_string(stop) + ", step " + std::to_string(step) + ")");
  auto integral = [](double v) { return v == std::floor(v); };
  DType d = dtype.value_or(integral(start) && integral(stop) && integral(step) ? DType::int64 : floatX());
  std::int64_t n = std::max<std::int64_t>(0, std::int64_t(std::ceil((stop - start) / step)));
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i)] = start + double(i) * step;
  return from_doubles(v, {n}, d);
}

Tensor linspace(double a, double b, std::int64_t n, std::optional<DType> dtype) {
  if (n < 0) throw ValueError("linspace: number of samples must be non-negative, got " + std::to_string(n));
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i)] = n == 1 ? a : a + (b - a) * double(i) / double(n - 1);
  if (n > 1) v.back() = b;
  return from_doubles(v, {n}, dtype);
}

Tensor eye(std::int64_t n, std::optional<DType> dtype) {
  if (n < 0) throw ValueError("eye: size must be non-negative, got " + std::to_string(n));
  std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) v[std::size_t(i * n + i)] = 1;
  return from_doubles(v, {n, n}, dtype);
}

namespace random {

Tensor normal(const Shape& shape, std::uint64_t seed, std::optional<DType> dtype) {
  check_shape(shape, "random::normal");
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(detail::shape_size(shape)));
  for (double& x : v) x = dist(gen);
  return from_doubles(v, shape, dtype);
}

Tensor uniform(const Shape& shape, double lo, double hi, std::uint64_t seed, std::optional<DType> dtype) {
  check_shape(shape, "random::uniform");
  if (!(lo <= hi)) throw ValueError("random::uniform: lo must not exceed hi");
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(detail::shape_size(shape)));
  for (double& x : v) x = dist(gen);
  return from_doubles(v, shape, dtype);
}

}  // namespace random

}  // namespace th
