// Storage: a strided view of a device buffer. Values are immutable once computed, so
// views (transpose, slice, broadcast, reshape) share buffers freely.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "theta/device.hpp"
#include "theta/dtype.hpp"

#if defined(__SANITIZE_THREAD__)
#define THETA_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THETA_TSAN 1
#endif
#endif

namespace th::detail {

/// Raw device memory, freed by its backend.
struct Buffer {
  void* data = nullptr;
  std::size_t bytes = 0;
  Device device;
  void (*free_fn)(void*, std::size_t) = nullptr;  // gets `data` and `bytes`
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (free_fn) free_fn(data, bytes);
  }
};

/// Strides are in elements; a stride of 0 broadcasts.
struct Storage {
  std::shared_ptr<Buffer> buf;
  DType dtype = DType::float64;
  Shape shape;
  Shape strides;
  std::int64_t offset = 0;

  std::int64_t size() const;
  bool contiguous() const;  // row-major dense from offset
  Device device() const { return buf ? buf->device : Device{}; }
  template <class T>
  T* data() const {
    return static_cast<T*>(buf->data) + offset;
  }
  char* bytes() const { return static_cast<char*>(buf->data) + offset * std::int64_t(dtype_size(dtype)); }
};

/// For a view that lives only while its kernel runs (its storage outlives it): on the CPU,
/// `b` without a share in it (no reference count touched on the way in or out); elsewhere
/// `b` itself (a GPU backend may hold a view past the call). Not for views that are kept.
inline std::shared_ptr<Buffer> borrowed(const std::shared_ptr<Buffer>& b) {
  if (b && b->device.type != Device::Type::cpu) return b;
  return std::shared_ptr<Buffer>(std::shared_ptr<Buffer>(), b.get());
}

/// a == b, as an inline loop: the shapes and strides compared on every frozen call are a
/// few elements long, where operator== costs a call of memcmp.
inline bool same_dims(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

/// `to`'s layout := `from`'s (dtype, offset, shape, strides; not the buffer), the shape and
/// stride vectors written only where they differ: a frozen call's arguments, shared values,
/// results and updates mostly have the last call's layout.
inline void assign_layout(Storage& to, const Storage& from) {
  to.dtype = from.dtype;
  to.offset = from.offset;
  if (!same_dims(to.shape, from.shape)) to.shape = from.shape;
  if (!same_dims(to.strides, from.strides)) to.strides = from.strides;
}

/// `to` := `from` (the same buffer and layout), as assign_layout writes the layout.
inline void assign_view(Storage& to, const Storage& from) {
  to.buf = from.buf;
  assign_layout(to, from);
}

std::int64_t shape_size(const Shape& s);
Shape contiguous_strides(const Shape& s);
/// `strides` := the row-major strides of `shape` (assigned in place: its capacity reused).
void set_contiguous_strides(const Shape& shape, Shape& strides);

/// Whether `p` is held by its holder alone, ready to be written or freed by this thread.
/// use_count() is a relaxed read: when copies were let go of on other threads, their last
/// reads are ordered before our writes through their releasing decrement of the count and
/// an acquire fence after our read (under ThreadSanitizer, which does not model fences, an
/// acquiring increment instead). Call it, not use_count() == 1, on an object other threads
/// may have seen (a function's results, shared values).
template <class T>
bool held_alone(const std::shared_ptr<T>& p) {
  if (!p || p.use_count() != 1) return false;
#if defined(THETA_TSAN)
  const std::shared_ptr<T> order = p;  // NOTE: the point is the acq_rel increment, not the copy
#else
  std::atomic_thread_fence(std::memory_order_acquire);  // (no locked instruction: frozen calls do this often)
#endif
  return true;
}

/// Gives `b`'s memory back (to its device's cache) and keeps the object: a hollow buffer
/// (data null) that alloc_storage can fill again without allocating a new buffer object.
void hollow(Buffer& b);

/// A new contiguous storage on `device`. When a storage was offered for reuse on this
/// thread, it takes that over instead: its shape and stride vectors always, its buffer when
/// nothing else holds it, it is on `device` and its size fits (from `bytes` to twice that)
/// or it is hollow (then filled with new memory).
Storage alloc_storage(DType dtype, const Shape& shape, Device device);
/// `s` := a new contiguous storage on `device`, in place, as alloc_storage makes of an
/// offered storage: its buffer kept when it may be, its vectors reused.
void renew_storage(Storage& s, DType dtype, const Shape& shape, Device device);
/// Offers `*s` to the next alloc_storage on this thread (nullptr withdraws the offer). The
/// frozen-function executor offers each step the value its output slot held on the last
/// call, so a repeated call with the same shapes allocates nothing for it.
void offer_for_reuse(Storage* s);
/// A contiguous copy of `s` (on s's device) as `dtype`, made in `scratch`: an op's
/// per-thread temporary (converted operands, checked indices), whose vectors and buffer are
/// reused call after call, so a warm frozen call allocates nothing for it. The storage on
/// offer for the op's output stays on offer. Held through a ScratchGuard.
Storage& copy_to_scratch(const Storage& s, DType dtype, Storage& scratch);
/// After an op's last read of `scratch`: a buffer over 64 KiB gives its memory back to the
/// allocator's cache (the buffer object stays, refilled next time); a GPU's is let go of.
void release_scratch(Storage& scratch);

/// An op's per-thread storages, for the scope of one call of the op: views (ViewGuard:
/// their buffer references dropped on the way out, their vectors kept for the next call)
/// and scratch copies (ScratchGuard: release_scratch on the way out, thrown or not).
template <void (*Leave)(Storage&)>
class StorageGuard {
 public:
  template <class... S>
  explicit StorageGuard(S&... s) : s_{&s...}, n_(sizeof...(S)) {
    static_assert(sizeof...(S) <= 4, "up to four storages");
  }
  ~StorageGuard() {
    for (std::size_t i = 0; i < n_; ++i) Leave(*s_[i]);
  }
  StorageGuard(const StorageGuard&) = delete;
  StorageGuard& operator=(const StorageGuard&) = delete;

 private:
  Storage* s_[4];  // (no allocation: the guard runs on every call of the op)
  std::size_t n_;
};
inline void drop_buffer(Storage& s) { s.buf.reset(); }
using ViewGuard = StorageGuard<&drop_buffer>;
using ScratchGuard = StorageGuard<&release_scratch>;
/// A view of all of `s` (its buffer, offset, shape and strides), for view ops to reshape:
/// like a copy, but in an offered storage's vectors when there is one.
Storage view_of(const Storage& s);
/// `s` seen with `shape` (numpy broadcasting rules; caller has checked compatibility).
Storage broadcast_view(const Storage& s, const Shape& shape);
/// The same view written into `v` (its vectors reused; its buffer `borrowed`: for a view
/// that lives only while a kernel runs).
void broadcast_view_into(const Storage& s, const Shape& shape, Storage& v);
/// `s` reshaped without copy when its strides allow; otherwise a contiguous copy.
Storage reshape_view(const Storage& s, const Shape& shape);
/// A contiguous copy of `s` converted to `dtype` (or `s` itself if nothing to do).
Storage contiguous_as(const Storage& s, DType dtype);

/// A shape seen as (outer, n, inner) around `axis` (take and its gradient walk it so).
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline AxisSplit split_at(const Shape& s, std::int64_t axis) {
  AxisSplit r;
  for (std::int64_t i = 0; i < axis; ++i) r.outer *= s[std::size_t(i)];
  r.n = s[std::size_t(axis)];
  for (std::size_t i = std::size_t(axis) + 1; i < s.size(); ++i) r.inner *= s[i];
  return r;
}

}  // namespace th::detail
