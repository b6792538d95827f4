// conv_chain (ops/conv_chain.hpp): the links' shape rules in turn; on the CPU in float32 one
// oneDNN pass (cpu/dnnl.cpp dnnl_chain), else the links one by one.
#include "ops/conv_chain.hpp"

#include "cpu/dnnl.hpp"

namespace th::detail {

namespace {

// A pooling's attrs.axes: window rows, cols, strides, pads, ignore_border, mode (ops/nn.cpp).
bool max_2x2(const Attrs& a) {
  return a.axes.size() == 8 && a.axes[0] == 2 && a.axes[1] == 2 && a.axes[2] == 2 && a.axes[3] == 2 && a.axes[4] == 0 &&
         a.axes[5] == 0 && a.axes[7] == 0;
}

std::vector<Meta> link_operands(const ConvChain::Link& l, const std::vector<Meta>& in, const Meta& prev) {
  std::vector<Meta> m;
  for (std::size_t j = 0; j < l.from.size(); ++j) {
    m.push_back(l.from[j] < 0 ? prev : in[std::size_t(l.from[j])]);
    m.back().name = l.names[j];
  }
  return m;
}

Meta infer_chain(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const ConvChain* chain = sub_as<ConvChain>(a);
  if (!chain || chain->links.empty())  // (a hostile file's step: th::save writes the links)
    throw_shape(op, "a chain without links", in);
  Meta prev;
  for (const ConvChain::Link& l : chain->links) prev = l.op->infer(*l.op, link_operands(l, in, prev), l.attrs);
  return prev;
}

// The links one by one, each with its own op (any dtype, any device).
Storage run_links(const std::vector<const Storage*>& in, const Attrs& a) {
  Storage prev;
  std::vector<const Storage*> ops;
  std::vector<Meta> metas;
  for (const ConvChain::Link& l : sub_as<ConvChain>(a)->links) {
    ops.clear(), metas.clear();
    for (std::size_t j = 0; j < l.from.size(); ++j) {
      ops.push_back(l.from[j] < 0 ? &prev : in[std::size_t(l.from[j])]);
      metas.push_back(Meta{ops.back()->dtype, ops.back()->shape, l.names[j]});
    }
    const Meta out = l.op->infer(*l.op, metas, l.attrs);
    Storage next = l.op->forward(*l.op, ops, l.attrs, out);
    prev = std::move(next);
  }
  return prev;
}

Storage forward_chain(const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const std::vector<ConvChain::Link>& links = sub_as<ConvChain>(a)->links;
  const Storage& x = *in[std::size_t(links.front().from[0])];
  if (out.dtype != DType::float32 || x.dtype != DType::float32 || x.device() != th::cpu() || x.shape.size() != 4 ||
      shape_size(out.shape) == 0 || !cpu::dnnl_built())
    return run_links(in, a);
  // every link's oneDNN form, from the metas the links' rules give
  std::vector<cpu::ChainLink> dl(links.size());
  std::vector<FusedConvOperands> fused(links.size());
  std::vector<Storage> filters(links.size());
  Meta prev{x.dtype, x.shape, {}};
  std::vector<Meta> in_metas;
  for (const Storage* v : in) in_metas.push_back(meta_of(*v));
  std::vector<const Storage*> ops;  // (the previous link's value does not exist yet: nullptr; its meta is prev)
  for (std::size_t i = 0; i < links.size(); ++i) {
    const ConvChain::Link& l = links[i];
    ops.clear();
    for (int f : l.from) ops.push_back(f < 0 ? nullptr : in[std::size_t(f)]);
    const Meta m = l.op->infer(*l.op, link_operands(l, in_metas, prev), l.attrs);
    if (m.dtype != DType::float32) return run_links(in, a);
    cpu::ChainLink& c = dl[i];
    if (l.op == &conv_fused_op()) {
      if (!fused_conv_operands(prev, ops, l.attrs, m, fused[i])) return run_links(in, a);
      c.mode = fused[i].relu ? 4 : 3, c.g = fused[i].g, c.w = fused[i].filters, c.bias = fused[i].bias.data();
      c.g.N = x.shape[0];
    } else if (l.op == &conv_op()) {
      if (!conv_dnnl_geometry(prev, meta_of(*ops[1]), l.attrs, m, c.g)) return run_links(in, a);
      filters[i] = on_host(*ops[1], DType::float32);
      c.mode = 0, c.w = filters[i].data<float>();
      c.g.N = x.shape[0];
    } else {  // a tiling 2 x 2 max pooling
      const Shape& s = prev.shape;
      if (!max_2x2(l.attrs) || 2 * m.shape[2] > s[2] || 2 * m.shape[3] > s[3]) return run_links(in, a);
      c.mode = 5, c.C = s[1], c.H = s[2], c.W = s[3], c.OH = m.shape[2], c.OW = m.shape[3];
    }
    prev = m;
  }
  const Storage xs = on_host(x, DType::float32);
  Storage y = alloc_storage(DType::float32, out.shape, th::cpu());
  if (!cpu::dnnl_chain(dl, x.shape[0], xs.data<float>(), y.data<float>())) return run_links(in, a);
  return y;
}

const Op op_conv_chain{"conv_chain", {1, -1}, 0, &infer_chain, &forward_chain, nullptr};

}  // namespace

const Op& conv_chain_op() { return op_conv_chain; }

bool conv_chain_link(const Op& op, const Attrs& a) {
  return &op == &conv_fused_op() || &op == &conv_op() || (&op == &pool_2d_op() && max_2x2(a));
}

}  // namespace th::detail
