// String tensors' copy and conversion kernel (core/text.hpp): text moves as its pointers;
// numbers become text and text numbers one element at a time.
#include "core/text.hpp"

#include "cpu/strided.hpp"

namespace th::detail {

void copy_text(const Storage& x, const Storage& y) {
  const DType from = x.dtype, to = y.dtype;
  // one element at (d, q): the direction is chosen once, not per element
  const auto each = [&](auto one) {
    cpu::for_each_strided<2>(y.shape, {&y, &x}, [&one](char** p, const std::int64_t* s, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i) one(p[0] + i * s[0], p[1] + i * s[1]);
    });
  };
  if (from == DType::string && to == DType::string)
    each([](char* d, const char* q) { *reinterpret_cast<Text*>(d) = *reinterpret_cast<const Text*>(q); });
  else if (to == DType::string)
    each([from](char* d, const char* q) { *reinterpret_cast<Text*>(d) = intern(number_text(q, from)); });
  else
    each([to](char* d, const char* q) { text_number(text_of(*reinterpret_cast<const Text*>(q)), d, to, "astype"); });
}

}  // namespace th::detail
