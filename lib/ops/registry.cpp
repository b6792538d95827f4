// The op registry: every Op registers itself when it is constructed, so a saved function
// can name its ops (th::save, th::load_function). Ops are looked up by key (their name, or a
// key of their own where names repeat); two ops of one key would make files ambiguous, so
// the lookup refuses them.
#include <mutex>
#include <unordered_map>

#include "ops/op.hpp"
#include "theta/control.hpp"
#include "theta/dist.hpp"
#include "theta/linalg.hpp"
#include "theta/nn.hpp"

namespace th::detail {

const Op& fused_op();  // (lib/freeze/rewrite_fuse.cpp)

namespace {
struct Registry {
  std::mutex mu;
  std::vector<const Op*> ops;
};
Registry& registry() {
  static Registry r;
  return r;
}

// A static library links an object file only when something refers to it: these references
// bring in every file that defines ops, so a loaded function finds each op it names.
void link_every_family() {
  static const void* volatile keep[] = {
      reinterpret_cast<const void*>(&unary_op(UnaryKind::neg)),
      reinterpret_cast<const void*>(&reduce_op(ReduceKind::sum)),
      reinterpret_cast<const void*>(&matmul_op()),
      reinterpret_cast<const void*>(&transpose_op()),
      reinterpret_cast<const void*>(&random_draw_op()),
      reinterpret_cast<const void*>(&scan_op()),
      reinterpret_cast<const void*>(&fused_op()),
      reinterpret_cast<const void*>(&th::ifelse),
      reinterpret_cast<const void*>(static_cast<Tensor (*)(const Tensor&)>(&th::linalg::inv)),
      reinterpret_cast<const void*>(&th::shape_of),
      reinterpret_cast<const void*>(&part_op()),
      reinterpret_cast<const void*>(static_cast<Tensor (*)(const Tensor&, int)>(&th::cumsum)),
      reinterpret_cast<const void*>(&softmax_op(false)),
      reinterpret_cast<const void*>(&th::scaled_dot_product_attention),
      reinterpret_cast<const void*>(&th::batch_normalization_train),
      reinterpret_cast<const void*>(&th::dist::size),
      reinterpret_cast<const void*>(static_cast<Tensor (*)(const Tensor&, const Tensor&, std::int64_t)>(&th::take)),
      reinterpret_cast<const void*>(&string_normalize),
  };
  (void)keep;
}
}  // namespace

Op::Op(const char* name_, Operands operands_, int code_, InferFn infer_, ForwardFn forward_, VjpFn vjp_,
       unsigned any_device_, bool shape_only_, const char* key_, PartsFn parts_)
    : name(name_), operands(operands_), code(code_), infer(infer_), forward(forward_), vjp(vjp_), any_device(any_device_),
      shape_only(shape_only_), key(key_ ? key_ : name_), parts(parts_) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.ops.push_back(this);
}

std::vector<const Op*> all_ops() {
  link_every_family();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.ops;
}

const Op* op_by_key(const std::string& key) {
  static const std::unordered_map<std::string, const Op*> by_name = [] {
    std::unordered_map<std::string, const Op*> m;
    for (const Op* op : all_ops())
      if (!m.emplace(op->key, op).second) m[op->key] = nullptr;  // ambiguous: refused
    return m;
  }();
  const auto it = by_name.find(key);
  return it == by_name.end() ? nullptr : it->second;
}

}  // namespace th::detail
