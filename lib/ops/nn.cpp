// Neural-network ops (API.md section 9). conv2d is one family of three ops that are each
// other's gradients (Theano's AbstractConv2d with its _gradInputs and _gradWeights):
//   conv2d(x, w) = y,   conv2d_grad_input(gy, w, x) = dx,   conv2d_grad_filters(x, gy, w) = dw
// (the last operand read for its shape only), so gradients of gradients stay convolutions.
// Pooling likewise: pool_2d, pool_2d_grad (its gradient) and pool_2d_select (max pooling's
// gradient differentiated again). Kernels: lib/cpu/conv.cpp; other devices go through the
// host. The rest of this file is composites (var, std, losses) and shape_of.
#include "theta/nn.hpp"

#include <cmath>

#include "core/dispatch.hpp"
#include "cpu/conv.hpp"
#include "cpu/dnnl.hpp"
#include "ops/conv.hpp"
#include "ops/conv_chain.hpp"
#include "ops/op.hpp"

namespace th::detail {

namespace {

const Tensor none{};

void need_rank(const Op& op, const std::vector<Meta>& in, std::size_t i, std::size_t rank, const char* what) {
  if (in[i].shape.size() != rank)
    throw_shape(op, std::string(what) + " must be " + std::to_string(rank) + "-d, got " +
                        std::to_string(in[i].shape.size()) + "-d",
                in);
}

DType float_type(const Op& op, const std::vector<Meta>& in, std::size_t a, std::size_t b) {
  const DType d = promote_types(in[a].dtype, in[b].dtype);
  if (!is_floating(d)) throw_type(op, "operands must be float32 or float64", in);
  return d;
}

// ---- conv2d ------------------------------------------------------------------------------
// attrs.axes: pad rows, pad cols (Padding::kFull / kHalf resolved against the filter),
// stride rows, cols, dilation rows, cols, groups, flip.
enum ConvMode { kForward = 0, kGradInput = 1, kGradFilters = 2 };

std::int64_t resolve_pad(std::int64_t code, std::int64_t k, std::int64_t dil) {
  const std::int64_t dk = (k - 1) * dil + 1;
  return code == Padding::kFull ? dk - 1 : code == Padding::kHalf ? dk / 2 : code;
}

// One spatial output size, or -1 when a size is not known yet; ShapeError when the
// (dilated) filter does not fit the padded input.
std::int64_t conv_out(const Op& op, const std::vector<Meta>& in, std::int64_t n, std::int64_t k, std::int64_t code,
                      std::int64_t stride, std::int64_t dil, const char* axis) {
  if (n < 0 || k < 0) return -1;
  const std::int64_t pad = resolve_pad(code, k, dil), dk = (k - 1) * dil + 1;
  if (n + 2 * pad < dk)
    throw_shape(op, std::string("the filter's ") + axis + " (" + std::to_string(dk) + " after dilation) exceed the input's " +
                        std::to_string(n) + " plus padding " + std::to_string(2 * pad),
                in);
  return (n + 2 * pad - dk) / stride + 1;
}

// The output shape of conv2d(x, w), checking channels and groups where known.
Shape conv_shape(const Op& op, const std::vector<Meta>& in, const Shape& x, const Shape& w, const Attrs& a) {
  const std::int64_t G = a.axes[6];
  if (x[1] >= 0 && w[1] >= 0 && x[1] != w[1] * G)
    throw_shape(op, "the filters take " + std::to_string(w[1]) + " channels per group (x " + std::to_string(G) +
                        " groups) but the input has " + std::to_string(x[1]),
                in);
  if (w[0] >= 0 && w[0] % G != 0)
    throw_shape(op, std::to_string(w[0]) + " output channels do not split into " + std::to_string(G) + " groups", in);
  return {x[0], w[0], conv_out(op, in, x[2], w[2], a.axes[0], a.axes[2], a.axes[4], "rows"),
          conv_out(op, in, x[3], w[3], a.axes[1], a.axes[3], a.axes[5], "columns")};
}

// Operand positions of x, w and the output gradient gy for each mode (-1: none).
struct ConvRoles {
  int x, w, gy;
};
ConvRoles roles(int mode) {
  if (mode == kForward) return {0, 1, -1};
  if (mode == kGradInput) return {2, 1, 0};
  return {0, 2, 1};
}

// conv2d_transpose: the input gradient of a convolution with no third operand; the
// convolution's input shape comes from the output gradient's, the filters' and the output
// padding (attrs.axes[8], [9]), as PyTorch's ConvTranspose2d: (n - 1) stride - 2 pad +
// dilated filter + output_padding.
Shape transposed_shape(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const Shape& gy = in[0].shape;
  const Shape& w = in[1].shape;
  const std::int64_t G = a.axes[6];
  if (gy[1] >= 0 && w[0] >= 0 && gy[1] != w[0])
    throw_shape(op, "the filters take " + std::to_string(w[0]) + " input channels but the input has " + std::to_string(gy[1]),
                in);
  if (w[0] >= 0 && w[0] % G != 0)
    throw_shape(op, std::to_string(w[0]) + " input channels do not split into " + std::to_string(G) + " groups", in);
  Shape x{gy[0], w[1] < 0 ? -1 : w[1] * G, -1, -1};
  for (std::size_t k = 0; k < 2; ++k) {
    const std::int64_t n = gy[2 + k], kk = w[2 + k];
    if (n < 0 || kk < 0) continue;
    const std::int64_t dil = a.axes[4 + k], dk = (kk - 1) * dil + 1, pad = resolve_pad(a.axes[k], kk, dil);
    const std::int64_t size = (n - 1) * a.axes[2 + k] - 2 * pad + dk + a.axes[8 + k];
    if (size < 1)
      throw_shape(op, std::string("the output's ") + (k ? "columns" : "rows") + " would number " + std::to_string(size) +
                          " (the padding " + std::to_string(pad) + " on each side exceeds what the filters add)",
                  in);
    x[2 + k] = size;
  }
  return x;
}

// The conv family's attributes as the public functions make them (a saved function's file
// is untrusted): 8 entries (10 for conv2d_transpose's output padding, 9 for conv2d_fused's
// relu flag), padding >= 0 or a border code, strides, dilations and groups >= 1.
void check_conv_attrs(const Op& op, const std::vector<Meta>& in, const Attrs& a, std::size_t want) {
  bool ok = a.axes.size() == want;
  for (std::size_t k = 0; ok && k < 2; ++k)
    ok = (a.axes[k] >= 0 || a.axes[k] == Padding::kFull || a.axes[k] == Padding::kHalf) && a.axes[2 + k] >= 1 &&
         a.axes[4 + k] >= 1 && a.axes[k] < (std::int64_t(1) << 32) && a.axes[2 + k] < (std::int64_t(1) << 32) &&
         a.axes[4 + k] < (std::int64_t(1) << 32);
  ok = ok && a.axes[6] >= 1 && a.axes[6] < (std::int64_t(1) << 32) && (a.axes[7] == 0 || a.axes[7] == 1);
  for (std::size_t k = 8; ok && k < want; ++k) ok = a.axes[k] >= 0 && a.axes[k] < (std::int64_t(1) << 32);
  if (!ok) throw_shape(op, "invalid convolution attributes (" + std::to_string(a.axes.size()) + " entries)", in);
}

// The conv family's shape and dtype rule, without checking the attributes (infer_conv does).
Meta conv_meta(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  const ConvRoles r = roles(op.code);
  const bool transposed = op.code == kGradInput && in.size() == 2;
  for (std::size_t i = 0; i < in.size(); ++i) need_rank(op, in, i, 4, i == std::size_t(r.w) ? "filters" : "input");
  const DType d = float_type(op, in, 0, 1);
  if (transposed) return {d, transposed_shape(op, in, a)};
  const Shape y = conv_shape(op, in, in[std::size_t(r.x)].shape, in[std::size_t(r.w)].shape, a);
  if (op.code == kForward) return {d, y};
  const Shape& gy = in[std::size_t(r.gy)].shape;
  for (std::size_t i = 0; i < 4; ++i)
    if (gy[i] >= 0 && y[i] >= 0 && gy[i] != y[i])
      throw_shape(op, "the output gradient's shape does not match the convolution's output " + shape_str(y), in);
  return {d, in[2].shape};
}

Meta infer_conv(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  check_conv_attrs(op, in, a, op.code == kGradInput && in.size() == 2 ? 10 : 8);
  return conv_meta(op, in, a);
}

ConvGeom geom_of(const Shape& x, const Shape& w, const Shape& y, const Attrs& a) {
  ConvGeom g;
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.O = w[0], g.KH = w[2], g.KW = w[3];
  g.OH = y[2], g.OW = y[3];
  g.ph = resolve_pad(a.axes[0], g.KH, a.axes[4]);
  g.pw = resolve_pad(a.axes[1], g.KW, a.axes[5]);
  g.sh = a.axes[2], g.sw = a.axes[3], g.dh = a.axes[4], g.dw = a.axes[5], g.G = a.axes[6];
  g.flip = a.axes[7] != 0;
  return g;
}

Storage forward_conv(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const ConvRoles r = roles(op.code);
  const Shape& xs = std::size_t(r.x) < in.size() ? in[std::size_t(r.x)]->shape : out.shape;  // (conv2d_transpose: out)
  const Shape& ws = in[std::size_t(r.w)]->shape;
  const Shape ys = op.code == kForward ? out.shape : in[std::size_t(r.gy)]->shape;
  const ConvGeom g = geom_of(xs, ws, ys, a);
  const Device dev = in[0]->device();
  if (dev != th::cpu() && shape_size(xs) && shape_size(ws) && shape_size(ys))
    return conv_through_backend(op.code, contiguous_as(*in[0], out.dtype), contiguous_as(*in[1], out.dtype), g,
                                out.dtype, out.shape);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  if (y.size() == 0) return to_device(y, dev);
  if (shape_size(xs) == 0 || shape_size(ws) == 0 || shape_size(ys) == 0) {  // an empty sum
    cpu_backend().fill(y, 0.0);
    return to_device(y, dev);
  }
  if (op.code == kForward) {
    const Storage x = on_host(*in[0], out.dtype), w = on_host(*in[1], out.dtype);
    cpu::conv_forward(out.dtype, g, x.bytes(), w.bytes(), y.bytes());
  } else if (op.code == kGradInput) {
    const Storage gy = on_host(*in[0], out.dtype), w = on_host(*in[1], out.dtype);
    cpu::conv_backward_input(out.dtype, g, gy.bytes(), w.bytes(), y.bytes());
  } else {
    const Storage x = on_host(*in[0], out.dtype), gy = on_host(*in[1], out.dtype);
    cpu::conv_backward_filters(out.dtype, g, x.bytes(), gy.bytes(), y.bytes());
  }
  return to_device(y, dev);
}

Tensor conv_apply(int mode, const Tensor& a, const Tensor& b, const Tensor& like, const Attrs& attrs);

// A strided view of `s`'s buffer (the backend's GEMM and copy take views).
Storage view_of(const Storage& s, std::int64_t offset, Shape shape, Shape strides) {
  Storage v;
  v.buf = s.buf;
  v.dtype = s.dtype;
  v.offset = s.offset + offset;
  v.shape = std::move(shape);
  v.strides = std::move(strides);
  return v;
}

// y = conv(x, w):              dx = grad_input(g, w, x),    dw = grad_filters(x, g, w)
// y = grad_input(gy, w, x):    dgy = conv(g, w),            dw = grad_filters(g, gy, w)
// y = grad_filters(x, gy, w):  dx = grad_input(gy, g, x),   dgy = conv(x, g)
std::vector<Tensor> vjp_conv(const Op& op, const VjpCtx& c) {
  const Tensor& g = c.g;
  Attrs a = c.attrs;
  a.axes.resize(8);  // (conv2d_transpose's output padding belongs to it alone)
  a.called = nullptr;
  if (op.code == kForward)
    return {c.needs[0] ? conv_apply(kGradInput, g, c.x[1], c.x[0], a) : none,
            c.needs[1] ? conv_apply(kGradFilters, c.x[0], g, c.x[1], a) : none};
  if (op.code == kGradInput) {
    std::vector<Tensor> r{c.needs[0] ? conv_apply(kForward, g, c.x[1], none, a) : none,
                          c.needs[1] ? conv_apply(kGradFilters, g, c.x[0], c.x[1], a) : none};
    if (c.x.size() == 3) r.push_back(none);  // (conv2d_transpose has no third operand)
    return r;
  }
  return {c.needs[0] ? conv_apply(kGradInput, c.x[1], g, c.x[0], a) : none,
          c.needs[1] ? conv_apply(kForward, c.x[0], g, none, a) : none, none};
}

}  // namespace

// Per group: the patches of the whole batch as one (K x N*P) matrix on the device, one GEMM
// with the group's filters, and a strided copy between the GEMM's (Og, N, P) layout and the
// tensors' (N, O, P).
Storage conv_through_backend(int mode, const Storage& a, const Storage& b, const ConvGeom& g, DType dtype,
                             const Shape& out) {
  const Device dev = a.device();
  Backend& be = backend_for(dev);
  const std::int64_t Cg = g.C / g.G, Og = g.O / g.G, K = Cg * g.KH * g.KW, P = g.OH * g.OW, NP = g.N * P;
  Storage y = alloc_storage(dtype, out, dev);
  Storage col = alloc_storage(dtype, {K, NP}, dev);
  Storage rows = alloc_storage(dtype, {Og, NP}, dev);
  // rows <-> the group's output gradient/values in (N, O, P): (Og, N, P) strided views
  auto group_view = [&](const Storage& t, std::int64_t grp) {
    return view_of(t, grp * Og * P, {Og, g.N, P}, {P, g.O * P, 1});
  };
  const Storage rows3 = view_of(rows, 0, {Og, g.N, P}, {NP, P, 1});
  if (mode == kGradInput) be.fill(y, 0.0);
  for (std::int64_t grp = 0; grp < g.G; ++grp) {
    const Storage wg = view_of(mode == kGradFilters ? y : b, grp * Og * K, {Og, K}, {K, 1});
    if (mode == kForward) {  // y[:, group] = W_g @ col
      be.im2col(a, g, grp, col);
      be.gemm(wg, col, rows);
      be.copy(rows3, group_view(y, grp));
    } else if (mode == kGradInput) {  // dx += fold(W_g^T @ gy[:, group])
      be.copy(group_view(a, grp), rows3);
      be.gemm(view_of(b, grp * Og * K, {K, Og}, {1, K}), rows, col);
      be.col2im(col, g, grp, y);
    } else {  // dW_g = gy[:, group] @ col^T
      be.im2col(a, g, grp, col);
      be.copy(group_view(b, grp), rows3);
      Storage dwg = alloc_storage(dtype, {Og, K}, dev);
      be.gemm(rows, view_of(col, 0, {NP, K}, {1, NP}), dwg);
      be.copy(dwg, wg);
    }
  }
  return y;
}

namespace {

const Op op_conv{"conv2d", {2, 2}, kForward, &infer_conv, &forward_conv, &vjp_conv};
const Op op_conv_grad_input{"conv2d_grad_input", {2, 3}, kGradInput, &infer_conv, &forward_conv, &vjp_conv, 0b100};
const Op op_conv_grad_filters{"conv2d_grad_filters", {3, 3}, kGradFilters, &infer_conv, &forward_conv, &vjp_conv, 0b100};

Tensor conv_apply(int mode, const Tensor& a, const Tensor& b, const Tensor& like, const Attrs& attrs) {
  if (mode == kForward) return apply(op_conv, {a, b}, attrs);
  return apply(mode == kGradInput ? op_conv_grad_input : op_conv_grad_filters, {a, b, like}, attrs);
}

// ---- conv2d_fused: a convolution with its epilogue, made by a freeze-time rewrite
// (freeze/rewrite_conv_fuse.cpp) from relu?(conv2d(x, w) [* scale] + shift):
// operands x, w, [scale,] shift; attrs.axes the convolution's, then 1 for a relu. float32 on
// the CPU with per-channel scale and shift runs as one oneDNN primitive (the scale folded
// into the filters, the shift as its bias, the relu as its post-op); anything else runs the
// ops it replaced, one after the other, with their own kernels.

// The epilogue's steps after the convolution, on `z` (of the convolution's meta).
Storage epilogue(Storage z, const std::vector<const Storage*>& in, bool relu) {
  auto apply2 = [](const Op& op, const Storage& a, const Storage& b) {
    const Meta m = op.infer(op, {meta_of(a), meta_of(b)}, {});
    return op.forward(op, {&a, &b}, {}, m);
  };
  if (in.size() == 4) z = apply2(binary_op(BinaryKind::mul), z, *in[2]);
  z = apply2(binary_op(BinaryKind::add), z, *in.back());
  if (relu) {
    const Op& r = unary_op(UnaryKind::relu);
    const Meta m = r.infer(r, {meta_of(z)}, {});
    z = r.forward(r, {&z}, {}, m);
  }
  return z;
}

// One value per output channel of a (N, O, OH, OW) result: O elements (or 1), every other
// axis of the broadcast shape 1, contiguous, float32 on the CPU.
bool per_channel(const Storage& v, std::int64_t O) {
  if (v.dtype != DType::float32 || v.device() != th::cpu() || !v.contiguous() || v.shape.size() > 4) return false;
  const std::int64_t n = shape_size(v.shape);
  if (n == 1) return true;
  if (n != O || v.shape.size() < 3) return false;
  return v.shape[v.shape.size() - 3] == O;
}

Meta infer_conv_fused(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  check_conv_attrs(op, in, a, 9);
  Meta m = conv_meta(op, {in[0], in[1]}, a);
  if (in.size() == 4) m = binary_op(BinaryKind::mul).infer(binary_op(BinaryKind::mul), {m, in[2]}, {});
  return binary_op(BinaryKind::add).infer(binary_op(BinaryKind::add), {m, in.back()}, {});
}

}  // namespace

bool conv_dnnl_geometry(const Meta& x, const Meta& w, const Attrs& a, const Meta& out, ConvGeom& g) {
  const Meta cm = conv_meta(op_conv, {x, w}, a);
  if (!(out.dtype == DType::float32 && cm.dtype == DType::float32 && same_dims(out.shape, cm.shape) &&
        shape_size(out.shape) > 0 && shape_size(x.shape) > 0))
    return false;
  g = geom_of(x.shape, w.shape, cm.shape, a);
  return cpu::dnnl_takes(0, g);
}

bool fused_conv_operands(const Meta& x, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out,
                         FusedConvOperands& r) {
  const Storage& w = *in[1];
  if (!conv_dnnl_geometry(x, meta_of(w), a, out, r.g)) return false;
  const bool fits = per_channel(*in.back(), r.g.O) && (in.size() == 3 || per_channel(*in[2], r.g.O));
  if (!fits) return false;
  r.relu = a.axes.size() > 8 && a.axes[8] != 0;
  r.w = on_host(w, DType::float32);
  const std::int64_t K = w.size() / r.g.O;
  r.bias.resize(std::size_t(r.g.O));
  const float* shift = in.back()->data<float>();
  for (std::int64_t o = 0; o < r.g.O; ++o) r.bias[std::size_t(o)] = shift[in.back()->size() == 1 ? 0 : o];
  r.filters = r.w.data<float>();
  if (in.size() == 4) {  // the scale folded into each output channel's filters
    const float* sc = in[2]->data<float>();
    r.scaled.resize(std::size_t(w.size()));
    for (std::int64_t o = 0; o < r.g.O; ++o)
      for (std::int64_t k = 0; k < K; ++k)
        r.scaled[std::size_t(o * K + k)] = r.filters[o * K + k] * sc[in[2]->size() == 1 ? 0 : o];
    r.filters = r.scaled.data();
  }
  return true;
}

namespace {

Storage forward_conv_fused(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const bool relu = a.axes.size() > 8 && a.axes[8] != 0;
  const Meta cm = conv_meta(op, {meta_of(*in[0]), meta_of(*in[1])}, a);
  FusedConvOperands f;
  if (in[0]->device() == th::cpu() && fused_conv_operands(meta_of(*in[0]), in, a, out, f)) {
    const Storage xs = on_host(*in[0], DType::float32);
    Storage y = alloc_storage(DType::float32, out.shape, th::cpu());
    if (cpu::dnnl_conv_epilogue(f.g, xs.data<float>(), f.filters, f.bias.data(), f.relu, y.data<float>())) return y;
  }
  return epilogue(forward_conv(op_conv, {in[0], in[1]}, a, cm), in, relu);
}

const Op op_conv_fused{"conv2d_fused", {3, 4}, kForward, &infer_conv_fused, &forward_conv_fused, nullptr};

// conv2d_transpose(x, w): conv2d_grad_input without the shape operand (see transposed_shape).
Tensor conv_transpose_apply(const Tensor& x, const Tensor& w, Attrs attrs) {
  return apply(op_conv_grad_input, {x, w}, std::move(attrs));
}

// ---- pool_2d -----------------------------------------------------------------------------
// attrs.axes: window rows, cols, stride rows, cols, pad rows, cols, ignore_border, mode.
enum PoolOpKind { kPool = 0, kPoolGrad = 1, kPoolSelect = 2 };

std::int64_t pool_out(std::int64_t n, std::int64_t ws, std::int64_t st, std::int64_t pad, bool ignore_border) {
  if (n < 0) return -1;
  const std::int64_t r = n + 2 * pad;
  if (ignore_border) return r < ws ? 0 : (r - ws) / st + 1;
  if (st >= ws) return (r - 1) / st + 1;
  return std::max<std::int64_t>(0, (r - 1 - ws + st) / st) + 1;
}

Shape pool_shape(const Op& op, const std::vector<Meta>& in, const Shape& x, const Attrs& a) {
  if (x.size() < 2) throw_shape(op, "pools the last two axes: the input needs at least 2 dimensions", in);
  Shape y = x;
  const std::size_t n = x.size();
  const bool ib = a.axes[6] != 0;
  for (std::size_t k = 0; k < 2; ++k) {
    const std::int64_t d = x[n - 2 + k];
    if (d >= 0 && ib && d + 2 * a.axes[4 + k] < a.axes[k])
      throw_shape(op, std::string("the window's ") + (k ? "columns" : "rows") + " (" + std::to_string(a.axes[k]) +
                          ") exceed the input's " + std::to_string(d) + " plus padding " +
                          std::to_string(2 * a.axes[4 + k]),
                  in);
    y[n - 2 + k] = pool_out(d, a.axes[k], a.axes[2 + k], a.axes[4 + k], ib);
  }
  return y;
}

Meta infer_pool(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (!is_floating(in[0].dtype)) throw_type(op, "the input must be float32 or float64", in);
  // (the attributes as pool_2d makes them: a saved function's file is untrusted)
  bool attrs_ok = a.axes.size() == 8 && a.axes[7] >= 0 && a.axes[7] <= 3 && (a.axes[6] == 0 || a.axes[6] == 1);
  for (std::size_t k = 0; attrs_ok && k < 2; ++k)
    attrs_ok = a.axes[k] >= 1 && a.axes[2 + k] >= 1 && a.axes[4 + k] >= 0 && a.axes[4 + k] < a.axes[k] &&
               a.axes[k] < (std::int64_t(1) << 32) && a.axes[2 + k] < (std::int64_t(1) << 32);
  if (!attrs_ok) throw_shape(op, "invalid pooling attributes (" + std::to_string(a.axes.size()) + " entries)", in);
  const Shape y = pool_shape(op, in, in[0].shape, a);
  if (op.code == kPool) return {in[0].dtype, y};
  // pool_grad(x, gy): x's shape; pool_select(x, gx): y's shape, gx of x's shape.
  const Shape& want = op.code == kPoolGrad ? y : in[0].shape;
  const Shape& got = in[1].shape;
  bool ok = got.size() == want.size();
  for (std::size_t i = 0; ok && i < got.size(); ++i) ok = got[i] < 0 || want[i] < 0 || got[i] == want[i];
  if (!ok) throw_shape(op, "the gradient operand must have shape " + shape_str(want), in);
  return {in[0].dtype, op.code == kPoolGrad ? in[0].shape : y};
}

cpu::PoolGeom pool_geom(const Shape& x, const Shape& y, const Attrs& a) {
  cpu::PoolGeom g;
  const std::size_t n = x.size();
  g.planes = 1;
  for (std::size_t i = 0; i + 2 < n; ++i) g.planes *= x[i];
  g.H = x[n - 2], g.W = x[n - 1], g.OH = y[n - 2], g.OW = y[n - 1];
  g.wh = a.axes[0], g.ww = a.axes[1], g.sh = a.axes[2], g.sw = a.axes[3], g.ph = a.axes[4], g.pw = a.axes[5];
  g.kind = cpu::PoolKind(a.axes[7]);
  return g;
}

Storage forward_pool(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage x = on_host(*in[0], out.dtype);
  const Shape& ys = op.code == kPoolGrad ? in[1]->shape : out.shape;
  const cpu::PoolGeom g = pool_geom(x.shape, ys, a);
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  if (op.code == kPool) {
    cpu::pool_forward(out.dtype, g, x.bytes(), y.bytes());
  } else {
    const Storage s = on_host(*in[1], out.dtype);
    if (op.code == kPoolGrad) cpu::pool_backward(out.dtype, g, x.bytes(), s.bytes(), y.bytes());
    else cpu::pool_select(out.dtype, g, x.bytes(), s.bytes(), y.bytes());
  }
  return to_device(y, in[0]->device());
}

const Op& pool_op(int kind);

// y = pool(x):            dx = pool_grad(x, g)
// y = pool_grad(x, gy):   dgy = pool_select(x, g) for max, pool(g) otherwise (linear in gy)
// y = pool_select(x, gx): dgx = pool_grad(x, g)
// x gets no gradient through pool_grad or pool_select (piecewise constant in x).
std::vector<Tensor> vjp_pool(const Op& op, const VjpCtx& c) {
  if (op.code == kPool) return {apply(pool_op(kPoolGrad), {c.x[0], c.g}, c.attrs)};
  if (!c.needs[1]) return {none, none};
  if (op.code == kPoolGrad) {
    const bool max = c.attrs.axes[7] == int(cpu::PoolKind::max);
    return {none, max ? apply(pool_op(kPoolSelect), {c.x[0], c.g}, c.attrs) : apply(pool_op(kPool), {c.g}, c.attrs)};
  }
  return {none, apply(pool_op(kPoolGrad), {c.x[0], c.g}, c.attrs)};
}

const Op op_pool{"pool_2d", {1, 1}, kPool, &infer_pool, &forward_pool, &vjp_pool};
const Op op_pool_grad{"pool_2d_grad", {2, 2}, kPoolGrad, &infer_pool, &forward_pool, &vjp_pool};
const Op op_pool_select{"pool_2d_select", {2, 2}, kPoolSelect, &infer_pool, &forward_pool, &vjp_pool};

const Op& pool_op(int kind) { return kind == kPool ? op_pool : kind == kPoolGrad ? op_pool_grad : op_pool_select; }

// ---- one_hot, shape_of, shape-valued operands ----------------------------------------------
// one_hot(labels[, like]): attrs.axis classes (or like's last dimension), attrs.dtype.
Meta infer_one_hot(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (is_floating(in[0].dtype) || in[0].dtype == DType::boolean)
    throw_type(op, "labels must be integers (int32 or int64)", in);
  Shape s = in[0].shape;
  if (in.size() == 1) {
    s.push_back(a.axis);
    return {a.dtype, s};
  }
  const Shape& like = in[1].shape;
  if (like.size() != s.size() + 1)
    throw_shape(op, "labels of rank " + std::to_string(s.size()) + " need class scores of rank " +
                        std::to_string(s.size() + 1),
                in);
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] >= 0 && like[i] >= 0 && s[i] != like[i])
      throw_shape(op, "labels and class scores disagree in dimension " + std::to_string(i), in);
  return {in[1].dtype, like};
}

Storage forward_one_hot(const Op& op, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  const Storage labels = on_host(*in[0], DType::int64);
  const std::int64_t n = out.shape.back(), rows = labels.size();
  const std::int64_t* lp = labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < rows; ++i)
    if (lp[i] < 0 || lp[i] >= n)
      throw ValueError(std::string(op.name) + ": label " + std::to_string(lp[i]) + " at flat index " +
                       std::to_string(i) + " is outside [0, " + std::to_string(n) + ")");
  Storage y = alloc_storage(out.dtype, out.shape, th::cpu());
  cpu_backend().fill(y, 0.0);
  THETA_DISPATCH_ALL(out.dtype, T, {
    T* yp = y.data<T>();
    for (std::int64_t i = 0; i < rows; ++i) yp[i * n + lp[i]] = T(1);
  })
  return to_device(y, in.size() > 1 ? in[1]->device() : in[0]->device());
}

const Op op_one_hot{"one_hot", {1, 2}, 0, &infer_one_hot, &forward_one_hot, nullptr, 0b11};

const Op op_shape_of{
    "shape_of", {1, 1}, 0,
    [](const Op&, const std::vector<Meta>& in, const Attrs&) {
      return Meta{DType::int64, {std::int64_t(in[0].shape.size())}};
    },
    [](const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
      Storage y = alloc_storage(DType::int64, out.shape, th::cpu());
      std::copy(in[0]->shape.begin(), in[0]->shape.end(), y.data<std::int64_t>());
      return y;
    },
    nullptr, 0b1, true};

// reshape_by(x, shape): attrs unused; the target shape is read at run time.
const Op op_reshape_by{
    "reshape", {2, 2}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs&) {
      return Meta{in[0].dtype, Shape(std::size_t(shape_operand_rank(op, in[1], in)), -1)};
    },
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs&, const Meta&) {
      const std::vector<Meta> metas{meta_of(*in[0]), meta_of(*in[1])};
      Shape s = shape_operand_values(op, *in[1], metas);
      std::int64_t known = 1, open = -1;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1 && open < 0) open = std::int64_t(i);
        else if (s[i] < 0) throw_shape(op, "bad target shape " + shape_str(s), metas);
        else known *= s[i];
      }
      const std::int64_t n = in[0]->size();
      if (open >= 0 && known > 0 && n % known == 0) s[std::size_t(open)] = n / known;
      if (shape_size(s) != n || (open >= 0 && known == 0))
        throw_shape(op, "cannot reshape " + std::to_string(n) + " elements into " + shape_str(s), metas);
      return reshape_view(*in[0], s);
    },
    [](const Op&, const VjpCtx& c) -> std::vector<Tensor> { return {reshape_like(c.g, c.x[0]), none}; }, 0b10, false,
    "reshape_by"};

const Op op_zeros_by{
    "zeros", {1, 1}, 0,
    [](const Op& op, const std::vector<Meta>& in, const Attrs& a) {
      return Meta{a.dtype, Shape(std::size_t(shape_operand_rank(op, in[0], in)), -1)};
    },
    [](const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta&) {
      const Shape s = shape_operand_values(op, *in[0], {meta_of(*in[0])});
      for (auto d : s)
        if (d < 0) throw_shape(op, "negative dimension in " + shape_str(s), {meta_of(*in[0])});
      Storage y = alloc_storage(a.dtype, s, th::cpu());
      cpu_backend().fill(y, 0.0);
      return y;
    },
    nullptr, 0b1};

// log p where p = softmax(z): log_softmax(z) (no log of an underflowed 0); for a softmax
// written out, e / sum(e, axis, keepdims) with e = exp(zs): zs - log(sum).
Tensor log_probabilities(const Tensor& p) {
  const Node& n = *p.node();
  if (n.op == &softmax_op(false) && n.inputs.size() == 1) return apply(softmax_op(true), {n.inputs[0]}, n.attrs);
  if (n.op == &binary_op(BinaryKind::div) && n.inputs.size() == 2) {
    const Node& e = *n.inputs[0].node();
    const Node& s = *n.inputs[1].node();
    if (e.op == &unary_op(UnaryKind::exp) && s.op == &reduce_op(ReduceKind::sum) && s.attrs.keepdims &&
        !s.inputs.empty() && s.inputs[0].node() == n.inputs[0].node())
      return e.inputs[0] - log(n.inputs[1]);
  }
  return log(p);
}

// Lasagne's fan-in and fan-out of a weight shape.
std::pair<double, double> fans(const Shape& s, const char* what) {
  if (s.empty()) throw ValueError(std::string(what) + ": a weight needs at least one dimension");
  for (auto d : s)
    if (d <= 0) throw ValueError(std::string(what) + ": dimensions must be positive, got " + shape_str(s));
  if (s.size() == 1) return {double(s[0]), double(s[0])};
  if (s.size() == 2) return {double(s[0]), double(s[1])};
  double field = 1;
  for (std::size_t i = 2; i < s.size(); ++i) field *= double(s[i]);
  return {double(s[1]) * field, double(s[0]) * field};
}

}  // namespace

const Op& conv_op() { return op_conv; }
const Op& pool_2d_op() { return op_pool; }
const Op& conv_fused_op() { return op_conv_fused; }

namespace {
Storage forward_shape_twin(const Op&, const std::vector<const Storage*>& in, const Attrs&, const Meta& out) {
  return zero_broadcast(out.dtype, out.shape, in[0]->device());
}
// (the shape rules of conv2d and pool_2d, the values of neither: shape_twin in ops/op.hpp)
const Op op_conv_shape{"conv2d_shape", {2, 2}, kForward, &infer_conv, &forward_shape_twin, nullptr, ~0u, true};
const Op op_pool_shape{"pool_2d_shape", {1, 1}, kPool, &infer_pool, &forward_shape_twin, nullptr, ~0u, true};
}  // namespace

const Op* shape_twin(const Op& op) {
  if (&op == &op_conv) return &op_conv_shape;
  if (&op == &op_pool) return &op_pool_shape;
  return nullptr;
}

const Op* twin_origin(const Op& op) {
  if (&op == &op_conv_shape) return &op_conv;
  if (&op == &op_pool_shape) return &op_pool;
  return nullptr;
}

Tensor reshape_by(const Tensor& x, const Tensor& shape) { return apply(op_reshape_by, {x, shape}); }

Tensor zeros_by(const Tensor& shape, std::optional<DType> dtype) {
  Attrs a;
  a.dtype = dtype.value_or(floatX());
  return apply(op_zeros_by, {shape}, std::move(a));
}

}  // namespace th::detail

namespace th {

namespace {
// conv2d's options as the conv family's attributes (see infer_conv), checked; `extra` (the
// output padding of conv2d_transpose) appended. `op` names the user's function in errors.
detail::Attrs conv_attrs(const char* op, const Tensor& input, const Tensor& filters, const ConvOptions& o,
                         const std::array<std::int64_t, 2>* output_padding = nullptr) {
  const auto bad = [&](const std::string& what) {
    throw ValueError(std::string(op) + ": " + what + ": " +
                     detail::describe({detail::meta_of(input), detail::meta_of(filters)}));
  };
  detail::node_of(input, op);
  detail::node_of(filters, op);
  for (auto p : {o.border_mode.rows, o.border_mode.cols})
    if (p < 0 && p != Padding::kFull && p != Padding::kHalf) bad("padding must be >= 0");
  for (auto s : o.subsample)
    if (s < 1) bad("subsample (stride) must be >= 1");
  for (auto d : o.filter_dilation)
    if (d < 1) bad("filter_dilation must be >= 1");
  if (o.num_groups < 1) bad("num_groups must be >= 1");
  detail::Attrs a;
  a.axes = {o.border_mode.rows, o.border_mode.cols, o.subsample[0], o.subsample[1],
            o.filter_dilation[0], o.filter_dilation[1], o.num_groups, o.filter_flip ? 1 : 0};
  if (output_padding)
    for (int k = 0; k < 2; ++k) {
      const std::int64_t p = (*output_padding)[k];
      if (p < 0 || p >= std::max(o.subsample[k], o.filter_dilation[k]))
        bad("output_padding " + std::to_string(p) + " must be >= 0 and smaller than the stride or the dilation");
      a.axes.push_back(p);
    }
  return a;
}
}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& filters, const ConvOptions& o) {
  return detail::conv_apply(detail::kForward, input, filters, Tensor(), conv_attrs("conv2d", input, filters, o));
}

Tensor conv2d_transpose(const Tensor& input, const Tensor& filters, const ConvOptions& o,
                        std::array<std::int64_t, 2> output_padding) {
  detail::Attrs a = conv_attrs("conv2d_transpose", input, filters, o, &output_padding);
  a.called = "conv2d_transpose";  // (errors, frozen ones too, name what the user called)
  return detail::conv_transpose_apply(input, filters, std::move(a));
}

Tensor pool_2d(const Tensor& x, std::array<std::int64_t, 2> ws, const PoolOptions& o) {
  const std::array<std::int64_t, 2> st = o.stride.value_or(ws);
  const auto bad = [&](const std::string& what) {
    throw ValueError("pool_2d: " + what + ": " + detail::describe({detail::meta_of(x)}));
  };
  detail::node_of(x, "pool_2d");
  for (int k = 0; k < 2; ++k) {
    if (ws[k] < 1) bad("window sizes must be >= 1");
    if (st[k] < 1) bad("strides must be >= 1");
    if (o.pad[k] < 0 || o.pad[k] >= ws[k]) bad("padding must be >= 0 and smaller than the window");
  }
  if (!o.ignore_border && (o.pad[0] || o.pad[1])) bad("padding needs ignore_border=true");
  detail::Attrs a;
  a.axes = {ws[0], ws[1], st[0], st[1], o.pad[0], o.pad[1], o.ignore_border ? 1 : 0, std::int64_t(o.mode)};
  return detail::apply(detail::op_pool, {x}, a);
}

// y = sum((x - mean(x))^2) / (n - ddof)
Tensor var(const Tensor& x, Axes axis, bool keepdims, std::int64_t ddof) {
  const Tensor xf = detail::to_float(x, "var");
  const Tensor dev = xf - mean(xf, axis, true);
  const DType f = detail::node_of(xf, "var").dtype;
  return sum(dev * dev, axis, keepdims) / (detail::count(xf, axis, f) - double(ddof));
}

Tensor std(const Tensor& x, Axes axis, bool keepdims, std::int64_t ddof) { return sqrt(var(x, axis, keepdims, ddof)); }

Tensor one_hot(const Tensor& labels, std::int64_t n, std::optional<DType> dtype) {
  if (n < 0) throw ValueError("one_hot: the number of classes must be >= 0, got " + std::to_string(n));
  detail::Attrs a;
  a.axis = n;
  a.dtype = dtype.value_or(floatX());
  return detail::apply(detail::op_one_hot, {labels}, std::move(a));
}

Tensor categorical_crossentropy(const Tensor& p, const Tensor& targets) {
  const detail::Node& pn = detail::node_of(p, "categorical_crossentropy");
  const detail::Node& tn = detail::node_of(targets, "categorical_crossentropy");
  if (!is_floating(pn.dtype))
    throw TypeError("categorical_crossentropy: p must hold probabilities (float32 or float64): " +
                    detail::describe({detail::meta_of(p), detail::meta_of(targets)}));
  if (pn.shape.empty())
    throw ShapeError("categorical_crossentropy: p needs a class axis (at least 1-d): " +
                     detail::describe({detail::meta_of(p), detail::meta_of(targets)}));
  const Tensor logp = detail::log_probabilities(p);
  if (!is_floating(tn.dtype) && tn.dtype != DType::boolean) {
    // log p's dtype and shape (not p: the stable form never computes the probabilities)
    const Tensor mask = detail::apply(detail::op_one_hot, {targets, logp});
    return -sum(mask * logp, -1);
  }
  if (tn.shape.size() != pn.shape.size())
    throw ShapeError("categorical_crossentropy: one-hot or probability targets need p's rank: " +
                     detail::describe({detail::meta_of(p), detail::meta_of(targets)}));
  return -sum(targets * logp, -1);
}

Tensor binary_crossentropy(const Tensor& p, const Tensor& targets) {
  const detail::Node& pn = detail::node_of(p, "binary_crossentropy");
  detail::node_of(targets, "binary_crossentropy");
  if (pn.op == &detail::unary_op(detail::UnaryKind::sigmoid)) {  // log p = -softplus(-z), log(1 - p) = -softplus(z)
    const Tensor& z = pn.inputs[0];
    return targets * softplus(-z) + (1.0 - targets) * softplus(z);
  }
  return -(targets * log(p) + (1.0 - targets) * log(1.0 - p));
}

Tensor shape_of(const Tensor& x) { return detail::apply(detail::op_shape_of, {x}); }

namespace init {
namespace {
Tensor scaled(Tensor t, double k, std::optional<DType> dtype) {
  Tensor r = t * k;
  const DType d = dtype.value_or(floatX());
  return r.dtype() == d ? r : r.astype(d);
}
}  // namespace

Tensor glorot_uniform(const Shape& shape, std::uint64_t seed, double gain, std::optional<DType> dtype) {
  const auto [in, out] = detail::fans(shape, "init::glorot_uniform");
  const double a = gain * std::sqrt(6.0 / (in + out));
  return scaled(random::uniform(shape, -1, 1, seed, DType::float64), a, dtype);
}
Tensor glorot_normal(const Shape& shape, std::uint64_t seed, double gain, std::optional<DType> dtype) {
  const auto [in, out] = detail::fans(shape, "init::glorot_normal");
  return scaled(random::normal(shape, seed, DType::float64), gain * std::sqrt(2.0 / (in + out)), dtype);
}
Tensor he_uniform(const Shape& shape, std::uint64_t seed, double gain, std::optional<DType> dtype) {
  const auto [in, out] = detail::fans(shape, "init::he_uniform");
  (void)out;
  return scaled(random::uniform(shape, -1, 1, seed, DType::float64), gain * std::sqrt(3.0 / in), dtype);
}
Tensor he_normal(const Shape& shape, std::uint64_t seed, double gain, std::optional<DType> dtype) {
  const auto [in, out] = detail::fans(shape, "init::he_normal");
  (void)out;
  return scaled(random::normal(shape, seed, DType::float64), gain * std::sqrt(1.0 / in), dtype);
}
}  // namespace init

}  // namespace th
