// Conversions between th::Tensor and xt::xarray.
#pragma once
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "tensor.hpp"

namespace th {

/// A tensor holding a copy of `a` (dtype from T).
template <class T>
Tensor tensor(const xt::xarray<T>& a, std::optional<DType> dtype = std::nullopt) {
  Shape shape(a.shape().begin(), a.shape().end());
  xt::xarray<T> row_major = a;  // NOTE: normalises any layout to contiguous row-major
  std::vector<T> data(row_major.begin(), row_major.end());
  return tensor(data, std::move(shape), dtype);
}

template <class T>
auto Tensor::to_xarray() const {
  std::vector<T> v = to_vector<T>();
  Shape s = shape();
  std::vector<std::size_t> xs(s.begin(), s.end());
  xt::xarray<T> out(xs);
  std::copy(v.begin(), v.end(), out.begin());
  return out;
}

}  // namespace th
