// scaled_dot_product_attention (API.md section 16): PyTorch's softmax(q k^T * scale + mask) v
// as one step with two outputs (the result and each query's log-sum-exp, kept for the
// backward pass), its gradient one step with three (dq, dk, dv), both on the blocked kernels
// of cpu/attention.hpp: no (Lq x Lk) matrix is held for a head. A float mask's own gradient
// (rarely asked for) is written out in theta's ops. Operands on another device are computed
// on the host (docs/gpu.md).
#include <cmath>
#include <limits>

#include "core/dispatch.hpp"
#include "cpu/attention.hpp"
#include "ops/op.hpp"
#include "theta/nn.hpp"

namespace th::detail {

namespace {

const Tensor none{};

// attrs: keepdims = a scale given (attrs.scale), else 1/sqrt(d) when it runs; all = causal;
// axis = the mask's kind (0 none, 1 boolean, 2 additive)
enum MaskKind { kNoMask = 0, kBoolMask = 1, kAddMask = 2 };

std::vector<Meta> attention_parts(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Shape &q = in[0].shape, &k = in[1].shape, &v = in[2].shape;
  if (q.size() < 2 || k.size() != q.size() || v.size() != q.size())
    throw_shape(op, "q, k and v must be (..., L, d) with the same batch dims", in);
  for (std::size_t i = 0; i + 2 < q.size(); ++i)
    if ((q[i] >= 0 && k[i] >= 0 && q[i] != k[i]) || (q[i] >= 0 && v[i] >= 0 && q[i] != v[i]) ||
        (k[i] >= 0 && v[i] >= 0 && k[i] != v[i]))
      throw_shape(op, "q, k and v must have the same batch dims", in);
  const std::size_t n = q.size();
  auto differ = [](std::int64_t x, std::int64_t y) { return x >= 0 && y >= 0 && x != y; };
  if (differ(q[n - 1], k[n - 1]))
    throw_shape(op, "q and k must have the same feature size d (" + std::to_string(q[n - 1]) + " vs " + std::to_string(k[n - 1]) + ")", in);
  if (differ(k[n - 2], v[n - 2]))
    throw_shape(op, "k and v must have the same length Lk (" + std::to_string(k[n - 2]) + " vs " + std::to_string(v[n - 2]) + ")", in);
  if (!is_floating(in[0].dtype) || in[1].dtype != in[0].dtype || in[2].dtype != in[0].dtype)
    throw_type(op, "q, k and v must be float32 or float64, all one dtype", in);
  if (a.axis != kNoMask) {
    if (in.size() < 4) throw_shape(op, "the mask operand is missing", in);
    const Shape& m = in[3].shape;
    Shape want(q.begin(), q.end() - 1);
    want.push_back(k[n - 2]);
    bool fits = m.size() <= want.size();
    for (std::size_t i = 0; fits && i < m.size(); ++i) {
      const std::int64_t have = m[m.size() - 1 - i], need = want[want.size() - 1 - i];
      fits = have == 1 || differ(have, need) == false;
    }
    if (!fits) throw_shape(op, "the mask does not broadcast to (..., Lq, Lk) = " + shape_str(want), in);
    if (a.axis == kAddMask && in[3].dtype != in[0].dtype)
      throw_type(op, "an additive mask must have q's dtype (or be boolean)", in);
  }
  Shape o(q.begin(), q.end() - 1), lse(q.begin(), q.end() - 1);
  o.push_back(v[n - 1]);
  return {{in[0].dtype, o}, {in[0].dtype, lse}};
}

struct Prepared {
  cpu::AttentionGeom g;
  cpu::AttentionMask mask;
  Storage q, k, v, m;
};

// The operands on the host, contiguous, and the kernel's view of them.
Prepared prepare(const std::vector<const Storage*>& in, const Attrs& a, DType dt) {
  Prepared p;
  p.q = on_host(*in[0], dt), p.k = on_host(*in[1], dt), p.v = on_host(*in[2], dt);
  const Shape &qs = p.q.shape, &ks = p.k.shape;
  const std::size_t n = qs.size();
  p.g.B = 1;
  for (std::size_t i = 0; i + 2 < n; ++i) p.g.B *= qs[i];
  p.g.Lq = qs[n - 2], p.g.d = qs[n - 1], p.g.Lk = ks[n - 2], p.g.dv = p.v.shape[n - 1];
  p.g.scale = a.keepdims ? a.scale : 1.0 / std::sqrt(double(p.g.d));
  p.g.causal = a.all;
  if (a.axis != kNoMask) {
    p.m = on_host(*in[3], a.axis == kBoolMask ? DType::boolean : dt);
    const Shape& ms = p.m.shape;
    // strides of the mask against (batch..., Lq, Lk), 0 where it broadcasts
    std::vector<std::int64_t> st(n, 0);
    std::int64_t s = 1;
    for (std::size_t i = ms.size(); i-- > 0;) {
      const std::size_t t = n - ms.size() + i;
      if (ms[i] != 1) st[t] = s;
      s *= ms[i];
    }
    p.mask.data = p.m.bytes();
    p.mask.boolean = a.axis == kBoolMask;
    p.mask.row = st[n - 2], p.mask.col = st[n - 1];
    p.mask.batch.assign(std::size_t(p.g.B), 0);
    for (std::int64_t b = 0; b < p.g.B; ++b) {
      std::int64_t rest = b, off = 0;
      for (std::size_t i = n - 2; i-- > 0;) {
        off += (rest % qs[i]) * st[i];
        rest /= qs[i];
      }
      p.mask.batch[std::size_t(b)] = off;
    }
  }
  return p;
}

Storage forward_attention(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  std::vector<Meta> metas;
  for (const Storage* s : in) metas.push_back(meta_of(*s));
  const std::vector<Meta> outs = attention_parts(op, metas, a);
  const DType dt = outs[0].dtype;
  const Prepared p = prepare(in, a, dt);
  Storage out = alloc_storage(dt, outs[0].shape, th::cpu()), lse = alloc_storage(dt, outs[1].shape, th::cpu());
  THETA_DISPATCH_FLOAT(dt, T, {
    cpu::attention_forward<T>(p.g, p.q.data<T>(), p.k.data<T>(), p.v.data<T>(), p.mask, out.data<T>(), lse.data<T>());
  })
  const Device dev = in[0]->device();
  return make_tuple({to_device(std::move(out), dev), to_device(std::move(lse), dev)});
}

// attention_grad(q, k, v, [mask], out, lse, dout) -> (dq, dk, dv)
std::vector<Meta> attention_grad_parts(const Op&, const std::vector<Meta>& in, const Attrs&) {
  return {{in[0].dtype, in[0].shape}, {in[1].dtype, in[1].shape}, {in[2].dtype, in[2].shape}};
}

Storage forward_attention_grad(const Op&, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
  const DType dt = in[0]->dtype;
  const Prepared p = prepare(in, a, dt);
  const std::size_t at = a.axis != kNoMask ? 4 : 3;
  const Storage out = on_host(*in[at], dt), lse = on_host(*in[at + 1], dt), dout = on_host(*in[at + 2], dt);
  Storage dq = alloc_storage(dt, p.q.shape, th::cpu()), dk = alloc_storage(dt, p.k.shape, th::cpu()),
          dv = alloc_storage(dt, p.v.shape, th::cpu());
  THETA_DISPATCH_FLOAT(dt, T, {
    cpu::attention_backward<T>(p.g, p.q.data<T>(), p.k.data<T>(), p.v.data<T>(), p.mask, out.data<T>(), lse.data<T>(),
                               dout.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
  })
  const Device dev = in[0]->device();
  return make_tuple({to_device(std::move(dq), dev), to_device(std::move(dk), dev), to_device(std::move(dv), dev)});
}

std::vector<Tensor> vjp_attention_grad(const Op& op, const VjpCtx& c);

const Op op_attention_grad{"scaled_dot_product_attention_grad", {6, 7}, 0, &infer_tuple, &forward_attention_grad,
                           &vjp_attention_grad, 0, false, nullptr, &attention_grad_parts};

// The op's scale as a tensor: the one given, else 1/sqrt(d).
Tensor attention_scale(const VjpCtx& c) {
  const Tensor& q = c.x[0];
  return c.attrs.keepdims ? scalar_const(c.attrs.scale, q.dtype()) : 1.0 / sqrt(count(q, Axes(-1), q.dtype()));
}

// The scores softmax(q k^T * scale + mask) of the op's operands, written out in theta's ops
// (the L x L matrix the kernels avoid; only a gradient's gradient builds it).
Tensor written_out_probabilities(const VjpCtx& c) {
  Tensor S = matmul(c.x[0], swap_last(c.x[1])) * attention_scale(c);
  const double minus_inf = -std::numeric_limits<double>::infinity();
  if (c.attrs.axis == kAddMask) S = S + c.x[3];
  if (c.attrs.axis == kBoolMask) S = where(c.x[3], S, minus_inf);
  if (c.attrs.all) S = where(tril(ones_like(S)) > 0.0, S, minus_inf);  // causal: no keys after the query
  return softmax(S, -1);
}

// The gradient's gradient (grad of grad through attention): the first gradient written out in
// theta's ops from q, k, v, the mask and dout (P = softmax(S), dv = P^T dout, dS = P (dout
// v^T - rowsum(dout * P v)), dq = s dS k, dk = s dS^T q), differentiated by the tape against
// the parts' gradients. out and lse are functions of q, k and v that the written-out form
// recomputes, so they get none.
std::vector<Tensor> vjp_attention_grad(const Op&, const VjpCtx& c) {
  const std::size_t at = c.attrs.axis != kNoMask ? 4 : 3;
  const Tensor &q = c.x[0], &k = c.x[1], &v = c.x[2], &dout = c.x[at + 2];
  const Tensor scale = attention_scale(c);
  const Tensor P = written_out_probabilities(c);
  const Tensor dS = P * (matmul(dout, swap_last(v)) - sum(dout * matmul(P, v), Axes(-1), true));
  const Tensor written[3] = {matmul(dS, k) * scale, matmul(swap_last(dS), q) * scale, matmul(swap_last(P), dout)};
  std::vector<Tensor> ys, seeds, wrt{q, k, v, dout};
  for (std::size_t i = 0; i < 3; ++i)
    if (const Tensor& h = part_grad(c, i)) ys.push_back(written[i]), seeds.push_back(h);
  if (ys.empty()) return {};
  const bool mask_grad = c.attrs.axis == kAddMask;
  if (mask_grad) wrt.push_back(c.x[3]);
  const std::vector<Tensor> g = backward(ys, seeds, wrt, true);
  std::vector<Tensor> r(c.x.size());
  r[0] = g[0], r[1] = g[1], r[2] = g[2], r[at + 2] = g[3];
  if (mask_grad) r[3] = g[4];
  return r;
}

std::vector<Tensor> vjp_attention(const Op& op, const VjpCtx& c) {
  const Tensor &g = part_grad(c, 0), &g_lse = part_grad(c, 1);
  std::vector<Tensor> r(c.x.size());
  const bool mask_grad = c.attrs.axis == kAddMask && c.needs.size() > 3 && c.needs[3];
  if (g) {
    const std::vector<Tensor> y = outputs_of(op, c);
    std::vector<Tensor> args(c.x.begin(), c.x.end());
    args.push_back(y[0]);
    args.push_back(y[1]);
    args.push_back(g);
    r = apply_parts(op_attention_grad, std::move(args), c.attrs);
    r.resize(c.x.size());
    // the additive mask's gradient, dS = P (dP - rowsum(dout * out)), written out
    if (mask_grad) r[3] = written_out_probabilities(c) * (matmul(g, swap_last(c.x[2])) - sum(g * y[0], Axes(-1), true));
  }
  if (g_lse) {  // lse is the kernels' own output; only a gradient's gradient reaches it
    const Tensor &q = c.x[0], &k = c.x[1], scale = attention_scale(c);
    const Tensor dS = expand_dims(g_lse, -1) * written_out_probabilities(c);  // d lse / dS = P
    auto add = [&](std::size_t i, const Tensor& t) { r[i] = r[i] ? r[i] + t : t; };
    add(0, matmul(dS, k) * scale);
    add(1, matmul(swap_last(dS), q) * scale);
    if (mask_grad) add(3, dS);
  }
  return r;
}

const Op op_attention{"scaled_dot_product_attention", {3, 4}, 0, &infer_tuple, &forward_attention, &vjp_attention, 0,
                      false, nullptr, &attention_parts};

}  // namespace

}  // namespace th::detail

namespace th {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                                    std::optional<double> scale) {
  const char* name = "scaled_dot_product_attention";
  detail::node_of(q, name);
  detail::node_of(k, name);
  detail::node_of(v, name);
  detail::Attrs a;
  a.all = causal;
  a.keepdims = bool(scale);
  a.scale = scale.value_or(0.0);
  std::vector<Tensor> in{q, k, v};
  if (mask) {
    a.axis = detail::node_of(mask, name).dtype == DType::boolean ? detail::kBoolMask : detail::kAddMask;
    in.push_back(mask);
  }
  return detail::apply_parts(detail::op_attention, std::move(in), std::move(a))[0];
}

}  // namespace th
