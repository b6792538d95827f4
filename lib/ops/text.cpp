// Operations on text (string tensors, core/text.hpp): ONNX's StringNormalizer. Not
// differentiable; host-only.
#include <algorithm>
#include <cctype>
#include <unordered_set>

#include "core/text.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

std::string with_case(std::string_view s, std::int64_t how) {
  std::string r(s);
  if (how == 1) std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (how == 2) std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return char(std::toupper(c)); });
  return r;
}

// y = the strings of x (a vector, or a matrix of one row) that are not stopwords, their case
// changed (attrs.axis: 0 kept, 1 lower, 2 upper); stopwords match exactly, or ignoring case
// where attrs.keepdims is false. Nothing left: one empty string (ONNX's rule).
const Op op_string_normalize{
    "string_normalize", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      if (in[0].dtype != DType::string || in[1].dtype != DType::string)
        throw_type(op, "takes string tensors (the text and its stopwords)", in);
      const Shape& s = in[0].shape;
      if (!(s.size() == 1 || (s.size() == 2 && s[0] <= 1)) || in[1].shape.size() != 1)
        throw_shape(op, "takes a vector or a matrix of one row of text, and a vector of stopwords", in);
      if (a.axis < 0 || a.axis > 2) throw_shape(op, "case change must be 0 (none), 1 (lower) or 2 (upper)", in);
      return Meta{DType::string, s.size() == 1 ? Shape{-1} : Shape{1, -1}};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
      const Storage x = contiguous_as(*in[0], DType::string), w = contiguous_as(*in[1], DType::string);
      const bool exact = a.keepdims;
      std::unordered_set<std::string> stop;
      for (std::int64_t i = 0; i < w.size(); ++i) stop.insert(with_case(text_of(w.data<Text>()[i]), exact ? 0 : 1));
      std::vector<Text> kept;
      for (std::int64_t i = 0; i < x.size(); ++i) {
        const std::string_view s = text_of(x.data<Text>()[i]);
        if (!stop.count(with_case(s, exact ? 0 : 1))) kept.push_back(intern(with_case(s, a.axis)));
      }
      if (kept.empty()) kept.push_back(nullptr);
      const std::int64_t n = std::int64_t(kept.size());
      Storage y = alloc_storage(DType::string, out.shape.size() == 1 ? Shape{n} : Shape{1, n}, th::cpu());
      std::copy(kept.begin(), kept.end(), y.data<Text>());
      return y;
    },
    nullptr};

}  // namespace

bool takes_text(const Op& op) { return &op == &cast_op() || &op == &op_string_normalize; }

Tensor string_normalize(const Tensor& x, const Tensor& stopwords, int case_change, bool case_sensitive) {
  Attrs a;
  a.axis = case_change;
  a.keepdims = case_sensitive;
  return apply(op_string_normalize, {x, stopwords}, std::move(a));
}

}  // namespace th::detail
