// Scratch of a size known only at run time, for hot loops: on the stack up to N values (the
// usual case: a tensor's dims, a fused chain's instructions), on the heap beyond.
#pragma once
#include <array>
#include <cstddef>
#include <vector>

namespace th::detail {

/// n values of T (uninitialised when on the stack, zero when on the heap: initialise them).
template <class T, std::size_t N>
class StackOrHeap {
 public:
  explicit StackOrHeap(std::size_t n) : heap_(n > N ? n : 0) {}
  T* data() { return heap_.empty() ? stack_.data() : heap_.data(); }
  StackOrHeap(const StackOrHeap&) = delete;
  StackOrHeap& operator=(const StackOrHeap&) = delete;

 private:
  std::array<T, N> stack_;
  std::vector<T> heap_;
};

}  // namespace th::detail
