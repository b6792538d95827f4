// What an operation is: its name, shape and dtype rule, forward kernel call and VJP, side
// by side. Each op family lives in one file of lib/ops/ and defines its Op objects there;
// apply() runs an op eagerly or records it symbolically.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.hpp"
#include "core/node.hpp"
#include "core/attrs.hpp"
#include "cpu/gemv_small.hpp"
#include "theta/error.hpp"

namespace th::detail {

/// Static (or concrete) facts about an operand: -1 dims are unknown until run time.
struct Meta {
  DType dtype = DType::float64;
  Shape shape;
  std::string_view name;
};

struct VjpCtx {
  const std::vector<Tensor>& x;   // inputs
  const Tensor& y;                // output
  const Tensor& g;                // gradient of the output
  const Attrs& attrs;
  const std::vector<bool>& needs;  // which inputs need a gradient
  /// For an op with several outputs (scan: its result is a tuple that scan_part ops read),
  /// the gradient of each output (empty where none); g is then empty.
  const std::vector<Tensor>* parts = nullptr;
};

struct Op {
  using InferFn = Meta (*)(const Op& op, const std::vector<Meta>& in, const Attrs& a);
  using ForwardFn = Storage (*)(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out);
  using VjpFn = std::vector<Tensor> (*)(const Op& op, const VjpCtx& c);
  /// An op with several outputs: their metas (dtype, static or concrete shape) from the
  /// operands'; throws as infer does. Its value is a tuple (make_tuple), read by part steps.
  using PartsFn = std::vector<Meta> (*)(const Op& op, const std::vector<Meta>& in, const Attrs& a);
  /// How many operands the op takes: [least, most], most -1 for no limit.
  struct Operands {
    int least, most;
  };
  /// Every Op registers itself (saved functions name their ops: op_by_key below).
  Op(const char* name_, Operands operands_, int code_, InferFn infer_, ForwardFn forward_, VjpFn vjp_,
     unsigned any_device_ = 0, bool shape_only_ = false, const char* key_ = nullptr, PartsFn parts_ = nullptr);
  /// An op that is not registered: a stand-in that only names an operation in errors.
  struct Unlisted {};
  Op(Unlisted, const char* name_, InferFn infer_, ForwardFn forward_, int code_ = 0, PartsFn parts_ = nullptr)
      : name(name_), operands{0, -1}, code(code_), infer(infer_), forward(forward_), vjp(nullptr), key(name_), parts(parts_) {}
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  const char* name;
  /// Its operand counts (a saved function's steps are checked against them before any of
  /// the op's code reads an operand).
  Operands operands;
  int code;  // selects the kernel within a family (UnaryKind, BinaryKind, ReduceKind, ...)
  /// Shape and dtype rule; throws th::ShapeError/TypeError naming the op and operands.
  Meta (*infer)(const Op& op, const std::vector<Meta>& in, const Attrs& a);
  /// Computes the output (whose concrete meta is `out`) from concrete inputs.
  Storage (*forward)(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out);
  /// Gradients of the inputs (an empty Tensor where none); nullptr: not differentiable.
  std::vector<Tensor> (*vjp)(const Op& op, const VjpCtx& c);
  /// Operands (bit i: operand i) that may live on any device: indices read on the host,
  /// operands read for their shape only. The others must share one device.
  unsigned any_device = 0;
  /// The output depends on the operands' shapes alone (count, broadcast_shape): a frozen
  /// call with the last call's layouts keeps the last value.
  bool shape_only = false;
  /// The op's name in saved functions: its name, unless another op has that name too.
  const char* key;
  /// Set for an op with several outputs (see PartsFn; apply_parts records one).
  PartsFn parts = nullptr;
};

/// The op a saved function names `key` (Op::key; the registry refuses two ops of one key),
/// or nullptr. Every op family is linked in by this call.
const Op* op_by_key(const std::string& key);
/// All registered ops.
std::vector<const Op*> all_ops();

/// The user's name, or for an unnamed op result "op(input names)" (for run-time errors).
std::string display_name(const Node& n, int depth = 2);

// ---- several outputs: one step, its value a tuple, each output a `part` step ----------------
/// A tuple: an empty (0-element) CPU storage whose buffer carries the parts. The executor
/// keeps, moves and frees it like any value and reads no element of it.
Storage make_tuple(std::vector<Storage> parts);
bool is_tuple(const Storage& s);
/// Part i of tuple `t`; th::ValueError naming `op` when `t` is no tuple or has no part i.
const Storage& tuple_part(const Op& op, const Storage& t, std::size_t i);
/// part(tuple): output attrs.part of a multi-output op, of dtype attrs.dtype and static shape
/// attrs.shape. th::grad hands the gradients of all of a tuple's parts to its op's VJP at
/// once (VjpCtx::parts), as for scan_part.
const Op& part_op();
/// The shape rule of an op with several outputs (its Op::parts checks the operands): a tuple.
Meta infer_tuple(const Op& op, const std::vector<Meta>& in, const Attrs& a);
/// Whether `op` reads one output of a tuple (part, scan_part).
bool is_part(const Op& op);
/// Runs or records op (one with Op::parts) once and returns its outputs, each a part.
std::vector<Tensor> apply_parts(const Op& op, std::vector<Tensor> inputs, Attrs attrs = {});
/// In a multi-output op's VJP: its outputs as tensors (parts of c.y), of the metas op.parts
/// gives for c.x.
std::vector<Tensor> outputs_of(const Op& op, const VjpCtx& c);
/// The gradient of output i in a multi-output op's VJP (an empty Tensor where none).
const Tensor& part_grad(const VjpCtx& c, std::size_t i);

/// Runs `op` on `inputs`: computes it now when every input is concrete, and records it
/// when an input is recorded or symbolic.
Tensor apply(const Op& op, std::vector<Tensor> inputs, Attrs attrs = {});

/// Whether `op` takes string operands (cast, string_normalize; ops/text.cpp): apply() refuses
/// them to every other op.
bool takes_text(const Op& op);

/// ONNX's StringNormalizer (ops/text.cpp): the strings of x (a vector, or a matrix of one
/// row) that are not stopwords (matched exactly, or ignoring ASCII case), their case changed
/// (0 kept, 1 lower, 2 upper; ASCII); one empty string when none is left.
Tensor string_normalize(const Tensor& x, const Tensor& stopwords, int case_change, bool case_sensitive);

/// Recomputes a recorded node's value from its inputs' values (used by executors); the
/// output's meta that the op's rule gave is stored in `*inferred` when asked for.
Storage run_op(const Op& op, const std::vector<const Storage*>& in, const std::vector<Meta>& metas,
               const Attrs& a, Meta* inferred = nullptr);

/// One op call's operand metas and values, in per-thread vectors reused from call to call
/// (one set per nesting level: an op's kernel may itself run ops), for apply() and the
/// frozen executor: a repeated call assigns shapes into existing capacity.
class OperandScratch {
 public:
  OperandScratch();
  ~OperandScratch();
  OperandScratch(const OperandScratch&) = delete;
  OperandScratch& operator=(const OperandScratch&) = delete;
  /// n metas (their contents are the last call's: assign every field).
  std::vector<Meta>& metas(std::size_t n);
  /// Empty at the start of the lease.
  std::vector<const Storage*>& values();
  struct Impl;  // the per-thread vectors (ops/apply.cpp)

 private:
  Impl* s_;
};

/// The metas (dtype, static shape, name) of `ts`, nodes checked as `op`'s operands, in
/// `scratch`'s reused vectors: a shape rule or an error message run before apply() without
/// allocating once warm.
std::vector<Meta>& scratch_metas(OperandScratch& scratch, const Op& op,
                                 std::initializer_list<std::reference_wrapper<const Tensor>> ts);

/// nan_guard: th::ValueError naming `op`, its operands and the first NaN/Inf in `out`.
void check_finite(const Op& op, const Storage& out, const std::vector<Meta>& metas);

Meta meta_of(const Tensor& t);
Meta meta_of(const Storage& s, std::string_view name = {});

// ---- error text: "<op>: <what>: <shapes/dtypes> [<names>]" ---------------------------------
std::string describe(const std::vector<Meta>& in);
std::string message(const Op& op, const std::string& what, const std::vector<Meta>& in);
[[noreturn]] void throw_shape(const Op& op, const std::string& what, const std::vector<Meta>& in);
[[noreturn]] void throw_type(const Op& op, const std::string& what, const std::vector<Meta>& in);

// ---- shared shape helpers -------------------------------------------------------------------
/// numpy broadcasting of static shapes (-1 unknown), or ShapeError.
Shape broadcast_shapes(const Op& op, const std::vector<Meta>& in);
/// acc := the numpy broadcast of acc and s (a -1 dim takes the other's size); returns the
/// dim of s that does not broadcast (acc then partly updated), or -1.
long broadcast_into(Shape& acc, const Shape& s);
/// Normalises a possibly negative axis against `ndim`, or ShapeError.
std::int64_t norm_axis(const Op& op, std::int64_t axis, std::int64_t ndim, const std::vector<Meta>& in);
/// x reduced by `k` over the sorted `axes` into a new storage of `shape`, dtype x's: the
/// kept dims in order, with or without the reduced ones as 1s (any shape of that many
/// elements). max and min start from each line's first element (x has none empty there).
Storage reduce_over(ReduceKind k, const Storage& x, const std::vector<std::int64_t>& axes, const Shape& shape);
/// A contiguous shape seen around `axis` as outer x n x inner elements: lines of n elements
/// `inner` apart (sort, cumsum, softmax walk them).
struct AxisLines {
  std::int64_t outer = 1, n = 1, inner = 1;
  AxisLines(const Shape& s, std::int64_t axis) {
    for (std::int64_t i = 0; i < std::int64_t(s.size()); ++i)
      (i < axis ? outer : i == axis ? n : inner) *= s[std::size_t(i)];
  }
};
/// Sorted, normalised, unique axes (all axes when `all`).
std::vector<std::int64_t> norm_axes(const Op& op, const Axes& axes, std::int64_t ndim,
                                    const std::vector<Meta>& in);

// ---- internal building blocks used by VJPs and composites ------------------------------------
/// A 0-d constant of `dtype`.
Tensor scalar_const(double v, DType dtype);
/// A C++ number next to tensor `t`, with numpy's weak-scalar dtype rule.
Tensor weak_scalar(double v, const Tensor& t);
/// `g` summed down to `like`'s shape (undoes broadcasting; the engine's one place for it).
Tensor sum_to_like(const Tensor& g, const Tensor& like);
/// `x` broadcast to `like`'s shape (zero-copy).
Tensor broadcast_like(const Tensor& x, const Tensor& like);
/// `x` reshaped to `like`'s shape.
Tensor reshape_like(const Tensor& x, const Tensor& like);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
/// Number of elements over `axes` of x (all when `all`), as a 0-d tensor of `dtype`.
Tensor count(const Tensor& x, const Axes& axes, DType dtype);
/// Zeros of `like`'s shape in `dtype`.
Tensor zeros_like(const Tensor& like, DType dtype);
/// x, or x cast to floatX when it is an integer or boolean tensor (ops that compute in floats).
Tensor to_float(const Tensor& x, const char* what);
/// x with its last two axes swapped (matrix transpose over a batch).
Tensor swap_last(const Tensor& x);
/// `s` as host kernels read it: on the CPU, contiguous, in `dtype` (itself when it is already).
Storage on_host(const Storage& s, DType dtype);
/// A host kernel's result `y` moved to `device` (the device its operands came from).
Storage to_device(Storage y, Device device);
/// The length of a shape operand (an integer vector of known length, e.g. th::shape_of(x)),
/// or th::ShapeError naming `op`.
std::int64_t shape_operand_rank(const Op& op, const Meta& shape, const std::vector<Meta>& in);
/// The values of a shape operand, read on the host.
Shape shape_operand_values(const Op& op, const Storage& shape, const std::vector<Meta>& in);
/// The elementwise ops themselves (freeze-time rewrites build steps from them).
const Op& unary_op(UnaryKind k);
const Op& binary_op(BinaryKind k);
const Op& stop_gradient_op();
const Op& cast_op();
const Op& to_op();
const Op& where_op();
const Op& sum_to_like_op();
const Op& broadcast_like_op();
const Op& broadcast_shape_op();
/// A zero-copy zero tensor of `shape` (one element, stride 0) on `dev`: the value of ops that
/// stand for a shape (broadcast_shape, shape twins).
Storage zero_broadcast(DType dtype, const Shape& shape, Device dev);
/// The shape twin of an op whose output shape follows from its operands' shapes and attrs
/// (conv2d -> conv2d_shape, pool_2d -> pool_2d_shape), else nullptr: the same operands and
/// attrs, its value a zero_broadcast of the op's output shape. rewrite_like_shapes.cpp gives
/// it to the readers of the op's output that need only its shape (a gradient's sum_to_like).
const Op* shape_twin(const Op& op);
/// The op whose shape twin `op` is, else nullptr.
const Op* twin_origin(const Op& op);
/// The reductions sum/prod/max/min, and count (freeze-time rewrites match them).
const Op& reduce_op(ReduceKind k);
const Op& count_op();
const Op& transpose_op();
/// reshape, reshape_like, expand_dims or squeeze: a view of the same elements in another shape.
bool is_reshape(const Op& op);
const Op& matmul_op();
/// conv2d, and conv2d_fused: a convolution with its epilogue relu?(conv [* scale] + shift),
/// made by a freeze-time rewrite only (no gradient; lib/ops/nn.cpp).
const Op& conv_op();
const Op& conv_fused_op();
/// pool_2d (forward).
const Op& pool_2d_op();
/// matmul with operands read transposed (attrs.transpose), made by freeze-time rewrites
/// only (no gradient).
const Op& matmul_t_op();
/// c -/+ k * (a @ b) in one step (attrs: see lib/ops/linalg.cpp), made by freeze-time
/// rewrites only (no gradient).
const Op& matmul_acc_op();
/// How a matmul, matmul_t or matmul_acc step with operands of these layouts (shapes,
/// strides, dtypes; no values needed) and result `out` runs on the CPU when it is one small
/// GEMV kernel (cpu/gemv_small.hpp): the kernel's arguments, which operand is the matrix,
/// and for matmul_acc the combination after it (forward_matmul_acc: with k = scale, c - p*k
/// for how 0, c + p*k for 1, p*k + c for 2, c the third operand). False when the step takes
/// another path. The native tier's whole programs (freeze/whole.cpp) compile exactly this.
struct SmallProduct {
  cpu::SmallGemv g;
  int matrix = 0;
  bool acc = false;
  double scale = 0;
  int how = 0;
};
bool small_product(const Op& op, const std::vector<const Storage*>& in, const Attrs& attrs, const Meta& out,
                   SmallProduct& sp);
/// split_part(g, x0..xn) (ops/index.cpp): the part attrs.part of g along attrs.axis that
/// concatenate took from x_part (concatenate's VJP; pack_allreduces unpacks with it).
const Op& split_part_op();
/// scan_part(tuple) (ops/scan.cpp): output attrs.part of a scan; th::grad hands the gradients
/// of all of a scan's parts to the scan's VJP at once (VjpCtx::parts).
const Op& scan_part_op();
/// scan itself (attrs.all: it also saves values for a backward pass, outputs from
/// scan_user_outputs(attrs) on; a frozen function no backward pass reads drops it).
const Op& scan_op();
std::size_t scan_user_outputs(const Attrs& scan_attrs);
/// Gradients of sum(ys[i] * seeds[i]) with respect to each of `wrt` (lib/tape/grad.cpp).
/// partial: each wrt taken as independent of the others (no gradient flows on past a wrt to
/// what it was computed from): an op's VJP that differentiates its value written out in
/// theta's ops (attention's and cumprod's gradient steps) gets its operands' partial
/// derivatives, and the outer sweep carries them on (a node passed as several wrt gets its
/// gradient at the first, none at the others).
std::vector<Tensor> backward(const std::vector<Tensor>& ys, const std::vector<Tensor>& seeds,
                             const std::vector<Tensor>& wrt, bool partial = false);
/// `outs` rebuilt with each node of `replace` swapped for its tensor (the ops above it
/// applied again, symbolically); nodes that reach no replaced node are kept as they are.
std::vector<Tensor> clone_graph(const std::vector<Tensor>& outs,
                                const std::vector<std::pair<Tensor, Tensor>>& replace);
/// random_draw(state[, shape]) (ops/random.cpp): freezing adds its state's update.
const Op& random_draw_op();
/// tri_mask(x) (ops/extra.cpp, with tril/triu): each matrix's strictly lower (attrs.axis 1) or
/// upper (0) triangle plus its diagonal times attrs.scale, zeros elsewhere; its own adjoint.
const Op& tri_mask_op();
/// Ones on the diagonal of each (..., m, n) matrix of x's shape, zeros elsewhere (x's dtype).
Tensor identity_like(const Tensor& x);
/// numpy's take_along_axis (ops/extra.cpp; indices in range; differentiable in x).
Tensor take_along_axis(const Tensor& x, const Tensor& indices, std::int64_t axis);
/// Zeros of like's shape with `values` added at `indices` along axis (take_along_axis's adjoint).
Tensor put_along_axis(const Tensor& values, const Tensor& indices, const Tensor& like, std::int64_t axis);
/// softmax (false) or log_softmax (true) along attrs.axis (ops/softmax.cpp).
const Op& softmax_op(bool log);
/// max(x) over `axis` (kept, no gradient), infinities (all -inf lines) replaced by 0: what a
/// stable exp(x - m) subtracts (softmax on other backends, logsumexp).
Tensor stable_shift(const Tensor& x, const Axes& axis);
/// The elementwise primitives by kind (the public functions call these).
Tensor unary(UnaryKind k, const Tensor& x);
Tensor binary(BinaryKind k, const Tensor& a, const Tensor& b);

}  // namespace th::detail
