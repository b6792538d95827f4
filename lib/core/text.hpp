// String tensors' elements (DType::string): each a pointer to an immutable std::string that
// an intern table keeps for the process (nullptr is ""), so text is moved, viewed and copied
// as 8-byte values by the same strided code as numbers, and equal strings share one pointer.
// Host-only; the operations that take text (astype, th::onnx's StringNormalizer) are listed
// by ops/op.hpp's takes_text(), and apply() refuses text to all others.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "theta/dtype.hpp"

namespace th::detail {

struct Storage;

using Text = const std::string*;

/// The table's copy of `s`, made on first use (thread-safe; never freed: memory grows with
/// the number of distinct strings a process makes).
Text intern(std::string_view s);
inline std::string_view text_of(Text t) { return t ? std::string_view(*t) : std::string_view(); }

/// One element of `dtype` (at `elem`) as text: integers in decimal, floats as the shortest
/// text that reads back to the same value ("nan", "inf", "-inf"), bools "True" / "False"
/// (numpy's str()).
std::string number_text(const char* elem, DType dtype);
/// Text read as one element of `dtype` into `elem` (C's strtod: "NaN", "INF", "+INF",
/// exponents; bools also "True" / "False"); th::ValueError naming `what` and the text when
/// it is no number or has more after it.
void text_number(std::string_view text, char* elem, DType dtype, const char* what);

/// y := x converted, where x or y (or both) is a string tensor: host, strided, any layouts
/// (cpu/text.cpp).
void copy_text(const Storage& x, const Storage& y);

}  // namespace th::detail
