// th::Tensor's queries, value access and conversions.
#include <cstring>

#include "core/backend.hpp"
#include "core/node.hpp"
#include "core/text.hpp"
#include "theta/error.hpp"
#include "theta/ops.hpp"

namespace th {

using detail::node_of;
using detail::value_of;

Shape Tensor::shape() const { return value_of(*this, "shape").shape; }
std::int64_t Tensor::ndim() const { return std::int64_t(node_of(*this, "ndim").shape.size()); }
std::int64_t Tensor::size() const { return value_of(*this, "size").size(); }
DType Tensor::dtype() const { return node_of(*this, "dtype").dtype; }
Device Tensor::device() const {
  const detail::Node& n = node_of(*this, "device");
  return n.value ? n.value->device() : Device{};
}
const std::string& Tensor::name() const { return node_of(*this, "name").name; }
bool Tensor::is_symbolic() const { return node_of(*this, "is_symbolic").symbolic; }
bool Tensor::is_recorded() const { return node_of(*this, "is_recorded").recorded; }

void Tensor::copy_to_(void* dst, DType dst_type, std::size_t n, const char* what) const {
  const detail::Storage& v = value_of(*this, what);
  if (std::size_t(v.size()) != n)
    throw ValueError(std::string(what) + ": tensor" + (name().empty() ? "" : " '" + name() + "'") + " of shape " +
                     shape_str(v.shape) + " has " + std::to_string(v.size()) + " elements, not " + std::to_string(n));
  detail::Storage host = v;
  if (v.device() != cpu()) host = detail::transfer(v, cpu());
  detail::Storage c = detail::contiguous_as(host, dst_type);
  if (n) std::memcpy(dst, c.bytes(), n * dtype_size(dst_type));
}

std::vector<std::string> Tensor::to_strings_() const {
  const detail::Storage& v = value_of(*this, "to_vector");
  const detail::Storage c = detail::contiguous_as(v.device() == cpu() ? v : detail::transfer(v, cpu()), DType::string);
  std::vector<std::string> r;
  r.reserve(std::size_t(c.size()));
  for (std::int64_t i = 0; i < c.size(); ++i) r.emplace_back(detail::text_of(c.data<detail::Text>()[i]));
  return r;
}

Tensor Tensor::astype(DType dtype) const { return cast(*this, dtype); }

Tensor& Tensor::requires_grad(bool on) {
  detail::Node& n = node_of(*this, "requires_grad");
  if (n.kind == detail::NodeKind::constant || n.kind == detail::NodeKind::variable) {
    n.recorded = on;
    n.kind = on ? detail::NodeKind::variable : detail::NodeKind::constant;
  } else if (!on) {
    throw ValueError("requires_grad: only a leaf tensor can stop being recorded" +
                     (n.name.empty() ? std::string() : " [" + n.name + "]"));
  }
  return *this;
}

Tensor& Tensor::set_name(std::string name) {
  node_of(*this, "set_name").name = std::move(name);
  return *this;
}

Tensor variable(const Tensor& t, std::string name) {
  const detail::Storage& v = value_of(t, "variable");
  return detail::make_leaf(detail::NodeKind::variable, v.dtype, v.shape, v, name.empty() ? t.name() : std::move(name));
}

}  // namespace th
