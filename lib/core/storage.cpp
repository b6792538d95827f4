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

void set_contiguous_strides(const Shape& shape, Shape& strides) {
  strides.resize(shape.size());
  std::int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = acc;
    acc *= shape[i];
  }
}

Shape contiguous_strides(const Shape& s) {
  Shape st;
  set_contiguous_strides(s, st);
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

namespace {
thread_local Storage* t_offer = nullptr;
}  // namespace

void offer_for_reuse(Storage* s) { t_offer = s; }

void hollow(Buffer& b) {
  if (b.free_fn) b.free_fn(b.data, b.bytes);
  b.data = nullptr;
  b.bytes = 0;
}

void renew_storage(Storage& s, DType dtype, const Shape& shape, Device device) {
  const std::size_t bytes = std::max<std::size_t>(static_cast<std::size_t>(shape_size(shape)), 1) * dtype_size(dtype);
  if (s.buf && s.buf.use_count() == 1 && s.buf->device == device) {
    if (!s.buf->data) backend_for(device).refill(*s.buf, bytes);
    else if (s.buf->bytes < bytes || s.buf->bytes > 2 * bytes) s.buf.reset();
  } else {
    s.buf.reset();
  }
  s.dtype = dtype;
  s.offset = 0;
  // (a warm frozen step's output has its last call's shape: nothing to copy; the strides
  // are written in place, into the vector's capacity)
  if (!same_dims(s.shape, shape)) s.shape = shape;
  set_contiguous_strides(shape, s.strides);
  if (!s.buf) s.buf = backend_for(device).alloc(bytes);
}

Storage alloc_storage(DType dtype, const Shape& shape, Device device) {
  Storage s;
  if (Storage* offered = t_offer) {
    t_offer = nullptr;
    s = std::move(*offered);
  }
  renew_storage(s, dtype, shape, device);
  return s;
}

namespace {
// `s`'s buffer, dtype and offset, with shape and strides left to the caller (a plain copy
// would copy both vectors only to have them replaced). An offered storage gives its vectors
// and stays on offer with its buffer: a view made before an op's output is allocated does
// not take the buffer the output could have reused.
Storage same_buffer(const Storage& s) {
  Storage v;
  if (Storage* offered = t_offer) {
    v.shape.swap(offered->shape);
    v.strides.swap(offered->strides);
  }
  v.buf = s.buf;
  v.dtype = s.dtype;
  v.offset = s.offset;
  return v;
}
}  // namespace

Storage view_of(const Storage& s) {
  Storage v = same_buffer(s);
  v.shape = s.shape;
  v.strides = s.strides;
  return v;
}

namespace {
void broadcast_layout(const Storage& s, const Shape& shape, Storage& v) {
  std::size_t lead = shape.size() - s.shape.size();
  v.shape = shape;
  v.strides.assign(shape.size(), 0);
  for (std::size_t i = 0; i < s.shape.size(); ++i)
    v.strides[lead + i] = (s.shape[i] == 1 && shape[lead + i] != 1) ? 0 : s.strides[i];
}
}  // namespace

Storage broadcast_view(const Storage& s, const Shape& shape) {
  Storage v = same_buffer(s);
  broadcast_layout(s, shape, v);
  return v;
}

void broadcast_view_into(const Storage& s, const Shape& shape, Storage& v) {
  v.buf = borrowed(s.buf);
  v.dtype = s.dtype;
  v.offset = s.offset;
  broadcast_layout(s, shape, v);
}

Storage reshape_view(const Storage& s, const Shape& shape) {
  Storage c = s.contiguous() ? same_buffer(s) : contiguous_as(s, s.dtype);
  c.shape = shape;
  set_contiguous_strides(shape, c.strides);
  return c;
}

Storage& copy_to_scratch(const Storage& s, DType dtype, Storage& scratch) {
  struct Restore {  // the offer the op's output is to take, back on offer afterwards
    Storage* outer = t_offer;
    ~Restore() { t_offer = outer; }
  } restore;
  t_offer = &scratch;
  Storage d = alloc_storage(dtype, s.shape, s.device());
  backend_for(s.device()).copy(s, d);
  scratch = std::move(d);
  return scratch;
}

void release_scratch(Storage& scratch) {
  if (!scratch.buf) return;
  if (scratch.buf->device.type != Device::Type::cpu) scratch.buf.reset();
  else if (scratch.buf->data && scratch.buf->bytes > (64u << 10) && scratch.buf.use_count() == 1) hollow(*scratch.buf);
}

Storage contiguous_as(const Storage& s, DType dtype) {
  if (s.dtype == dtype && s.contiguous()) return s;
  Storage d = alloc_storage(dtype, s.shape, s.device());
  backend_for(s.device()).copy(s, d);
  return d;
}

}  // namespace th::detail
