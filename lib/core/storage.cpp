// Strided storage helpers: allocation, broadcast and reshape views, contiguous copies.
#include "core/storage.hpp"

#include "core/backend.hpp"
#include "theta/error.hpp"

namespace th::detail {

std::int64_t shape_size(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  std::int64_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::int64_t Storage::size() const { return shape_size(shape); }

bool Storage::contiguous() const {
  std::int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && strides[i] != acc) return false;
    acc *= shape[i];
  }
  return true;
}

Storage alloc_storage(DType dtype, const Shape& shape, Device device) {
  Storage s;
  s.dtype = dtype;
  s.shape = shape;
  s.strides = contiguous_strides(shape);
  std::size_t n = static_cast<std::size_t>(shape_size(shape));
  s.buf = backend_for(device).alloc(std::max<std::size_t>(n, 1) * dtype_size(dtype));
  return s;
}

Storage broadcast_view(const Storage& s, const Shape& shape) {
  Storage v = s;
  std::size_t lead = shape.size() - s.shape.size();
  v.shape = shape;
  v.strides.assign(shape.size(), 0);
  for (std::size_t i = 0; i < s.shape.size(); ++i)
    v.strides[lead + i] = (s.shape[i] == 1 && shape[lead + i] != 1) ? 0 : s.strides[i];
  return v;
}

Storage reshape_view(const Storage& s, const Shape& shape) {
  Storage c = s.contiguous() ? s : contiguous_as(s, s.dtype);
  c.shape = shape;
  c.strides = contiguous_strides(shape);
  return c;
}

Storage contiguous_as(const Storage& s, DType dtype) {
  if (s.dtype == dtype && s.contiguous()) return s;
  Storage d = alloc_storage(dtype, s.shape, s.device());
  backend_for(s.device()).copy(s, d);
  return d;
}

}  // namespace th::detail
