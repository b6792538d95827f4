// A backend is a handful of entry points over Storage. Kernels are instantiated from the
// op lists (core/elementwise_list.hpp); adding an op never adds an entry point here.
#pragma once
#include <string>
#include <vector>

#include "core/storage.hpp"
#include "core/elementwise_list.hpp"

namespace th::detail {

#define THETA_ENUM_ENTRY(name, ...) name,
enum class UnaryKind : unsigned char { THETA_UNARY_OPS(THETA_ENUM_ENTRY) };
enum class BinaryKind : unsigned char { THETA_BINARY_OPS(THETA_ENUM_ENTRY) };
#undef THETA_ENUM_ENTRY
/// The op's name ("tanh", "add"), from the same list: generated kernels call the formula
/// functions by it (u_tanh, b_add).
inline const char* unary_name(UnaryKind k) {
#define THETA_NAME_ENTRY(name, ...) #name,
  static constexpr const char* names[] = {THETA_UNARY_OPS(THETA_NAME_ENTRY)};
  return names[static_cast<int>(k)];
}
inline const char* binary_name(BinaryKind k) {
  static constexpr const char* names[] = {THETA_BINARY_OPS(THETA_NAME_ENTRY)};
#undef THETA_NAME_ENTRY
  return names[static_cast<int>(k)];
}
enum class ReduceKind : unsigned char { sum, prod, max, min };

/// One 2-d convolution (lib/ops/nn.cpp): x (N, C, H, W), filters (O, C / G, KH, KW), y (N, O,
/// OH, OW); padding, stride and dilation per spatial axis, G groups.
struct ConvGeom {
  std::int64_t N = 0, C = 0, H = 0, W = 0;
  std::int64_t O = 0, KH = 0, KW = 0;
  std::int64_t OH = 0, OW = 0;
  std::int64_t ph = 0, pw = 0, sh = 1, sw = 1, dh = 1, dw = 1, G = 1;
  bool flip = true;  // true convolution (filters read reversed), else cross-correlation
};

/// The factorizations a backend may run with its own solver (Backend::factor).
enum class Factor : unsigned char { cholesky, solve, inverse, slogdet };

struct Backend {
  virtual ~Backend() = default;
  virtual std::shared_ptr<Buffer> alloc(std::size_t bytes) = 0;
  /// Gives the hollow buffer `b` (see hollow()) new memory of `bytes`, as alloc would.
  virtual void refill(Buffer& b, std::size_t bytes) {
    std::shared_ptr<Buffer> n = alloc(bytes);
    b.data = n->data, b.bytes = n->bytes, b.free_fn = n->free_fn;
    n->free_fn = nullptr;  // the memory is b's now
  }
  /// dst = src converted to dst.dtype; same shape, any strides (dst may be a view).
  virtual void copy(const Storage& src, const Storage& dst) = 0;
  virtual void fill(const Storage& dst, double value) = 0;
  /// y = f(x); x and y have y's dtype and shape (x may be a broadcast view).
  virtual void unary(UnaryKind k, const Storage& x, const Storage& y) = 0;
  /// y = f(a, b); a and b are views of y's shape in one compute dtype (y may be boolean).
  virtual void binary(BinaryKind k, const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y = c ? a : b; c boolean, a and b of y's dtype, all views of y's shape.
  virtual void where(const Storage& c, const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y (a view of x's shape with stride 0 on reduced axes) accumulates x; y is pre-filled.
  virtual void reduce(ReduceKind k, const Storage& x, const Storage& y) = 0;
  /// y[i] = arg max/min of x[i, :] over x's last axis (x is 2-d, y int64 contiguous).
  virtual void arg_reduce(bool is_max, const Storage& x, const Storage& y) = 0;
  /// y = a @ b over the last two axes; a, b broadcast views of y's batch shape.
  virtual void gemm(const Storage& a, const Storage& b, const Storage& y) = 0;
  /// y = take(x, idx, axis); x contiguous-able, idx int64 contiguous.
  virtual void gather(const Storage& x, const Storage& idx, std::int64_t axis, const Storage& y) = 0;
  /// y (pre-zeroed) += scatter of g at idx along axis.
  virtual void scatter_add(const Storage& g, const Storage& idx, std::int64_t axis, const Storage& y) = 0;
  /// col (K x N*OH*OW, K = C/G * KH * KW, contiguous) := the patches of group `group` of x
  /// (contiguous): column n * OH*OW + oh * OW + ow, row (c, i, j) holding tap (i, j) of
  /// channel c, or tap (KH-1-i, KW-1-j) when g.flip (so the filters multiply it as stored);
  /// zeros where a tap falls in the padding. Convolution is then one GEMM per group.
  virtual void im2col(const Storage& x, const ConvGeom& g, std::int64_t group, const Storage& col) = 0;
  /// x (contiguous) += col folded back onto group `group`'s channels (im2col's adjoint).
  virtual void col2im(const Storage& col, const ConvGeom& g, std::int64_t group, const Storage& x) = 0;
  /// A factorization by this device's own solver (cuSOLVER on CUDA) of `a`, a contiguous
  /// batch of n x n row-major matrices of a float dtype, which it overwrites; false when the
  /// backend has none (the op then runs on the host: the CPU's LAPACK). cholesky: a := L,
  /// lower, its upper triangle zeroed; solve: b (contiguous, a batch of n x k, or one n
  /// vector) := a^-1 b; inverse: b (a batch of n x n) := a^-1; slogdet: b (batch x 2) :=
  /// (sign, log|det a|) per matrix. info (one per matrix): > 0 where it is singular (not
  /// positive definite for cholesky), else 0.
  virtual bool factor(Factor, const Storage& a, const Storage& b, std::vector<int>& info) {
    (void)a, (void)b, (void)info;
    return false;
  }
};

/// One instruction of a fused elementwise chain (lib/freeze/rewrite_fuse.cpp); an operand
/// < 0 is external input (-1 - operand), otherwise the result of instruction `operand`.
/// The CPU runs the list in cache-sized blocks (cpu/fused.cpp); CUDA turns it into source
/// for one NVRTC kernel (cuda/fused.cpp).
/// Two more kinds (unary false, code < 0) take value a as it is: the no-op that
/// broadcast_like(a, b) and sum_to_like(a, b) are when b, read for its shape only, has the
/// kernel's full output shape (checked at run time by fused_inputs_fit).
struct FusedInstr {
  bool unary;
  int code;  // UnaryKind or BinaryKind, or one of the identities below
  int a, b;  // b unused for unary
  static constexpr int kBroadcastLike = -1, kSumToLike = -2;
  bool identity() const { return !unary && code < 0; }
};

/// Whether a fused chain can run as one kernel on these inputs, writing the results of
/// instructions `outs` (several when chains that read the same inputs were merged) into
/// buffers of `out`'s shape and device: each value input is either one element
/// (broadcast) or of that shape and contiguous, all of `dtype`; each shape-only operand has
/// exactly that shape; every sum_to_like's value, and every output, depends on some input of
/// that shape (so the sum_to_like is a no-op and the output truly has that shape). When
/// false, the chain's steps run one by one. `scalar[k]` is then set for one-element inputs.
/// With `period`, a value input may also be a contiguous row broadcast
/// over the leading dimensions (a bias: its shape the output's trailing dimensions):
/// period[k] is then its size (element i of the output reads element i % period), else 0.
/// With `columns` too, a contiguous column broadcast over the trailing dimensions (a row
/// maximum or sum kept with keepdims: its shape the output's leading dimensions, then 1s;
/// or, leading 1s first, some middle dimensions: a (C, 1, 1) bias over (N, C, H, W)):
/// period[k] is then minus the number of times each value repeats (element i reads
/// element (i / -period) % size).
bool fused_inputs_fit(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
                      const std::vector<int>& outs, const Storage& out, std::vector<bool>& scalar,
                      std::vector<std::int64_t>* period = nullptr, bool columns = false);

/// The backend of a device: the CPU's, or CUDA's (th::DeviceError when this build has no
/// CUDA backend or the device does not exist).
Backend& backend_for(Device d);
Backend& cpu_backend();

/// `s` on `device`: itself when it is there already, else a contiguous copy (same dtype).
Storage transfer(const Storage& s, Device device);

/// The CUDA caching allocator's counters (all zero without a CUDA backend).
struct DeviceMemoryStats {
  std::int64_t device_mallocs = 0;  // blocks obtained from cudaMalloc
  std::int64_t cache_hits = 0;      // allocations served from freed blocks
  std::size_t bytes_cached = 0;     // freed bytes held for reuse
};
DeviceMemoryStats cuda_memory_stats();
/// Number of CUDA devices (0 without a driver, a GPU or a CUDA backend).
int cuda_device_count() noexcept;
/// Waits until all work theta queued on `device` has finished (benchmarks time with it).
void cuda_synchronize(Device device);

/// Runs a fused chain on the GPU (one generated kernel, compiled once per chain and dtype);
/// false when the inputs do not fit (the same rule as cpu::run_fused) or no CUDA backend.
bool cuda_run_fused(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
                    const std::vector<int>& out_instr, const std::vector<const Storage*>& outs);
/// The CUDA source of that kernel (`scalar[k]`: input k is one broadcast element; `outs`:
/// the instructions written out, by default the last; `period[k]` > 0: input k is a row of
/// that size repeated over the output), and its
/// compilation by NVRTC to PTX for compute capability `arch` (75, 90, ...): both work
/// without a GPU; th::DeviceError with NVRTC's log when the source does not compile.
std::string cuda_fused_source(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                              std::vector<int> outs = {}, const std::vector<std::int64_t>& period = {});
std::string cuda_compile_ptx(const std::string& source, int arch);

}  // namespace th::detail
