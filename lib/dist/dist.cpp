// th::dist (API.md section 15): MPI's world communicator behind a handful of calls, and
// allreduce as an op. Without MPI (THETA_HAS_MPI unset) or outside mpirun the job has one
// rank and each collective returns its input.
//
// allreduce checks the ranks agree (dtype, rank, sizes) with one small MPI_Allreduce of
// min and max before moving data, so a mismatch is an error on every rank instead of a
// hang or garbage. Its VJP is another allreduce (Horovod's rule).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>

#ifdef THETA_HAS_MPI
#include <mpi.h>
#endif

#include "core/dispatch.hpp"
#include "ops/op.hpp"
#include "theta/dist.hpp"

namespace th::detail {

namespace {

bool g_joined = false;  // MPI initialised by init() (started by mpirun)
int g_rank = 0, g_size = 1;

#ifdef THETA_HAS_MPI
// An exception that leaves main, or any std::terminate, on one rank ends the job on all:
// the others may be waiting in a collective for this one.
[[noreturn]] void terminate_job() {
  std::string why = "terminate called";
  if (const std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      why = x.what();
    } catch (...) {
      why = "an exception that is not a std::exception";
    }
  }
  th::dist::abort(why, 1);
}

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::int32: return MPI_INT32_T;
    case DType::int64: return MPI_INT64_T;
    case DType::float32: return MPI_FLOAT;
    case DType::float64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;
  }
}

void check_mpi(int rc, const char* call) {
  if (rc != MPI_SUCCESS) throw Error(std::string("dist: ") + call + " failed (MPI error " + std::to_string(rc) + ")");
}
#endif

Meta infer_allreduce(const Op& op, const std::vector<Meta>& in, const Attrs& a) {
  if (a.axis < 0 || a.axis > 3) throw_shape(op, "unknown reduction", in);
  if (in[0].dtype == DType::boolean) throw_type(op, "bool tensors are not reduced across ranks; cast them first", in);
  if (th::dist::Op(a.axis) == th::dist::Op::mean && !is_floating(in[0].dtype))
    throw_type(op, "the mean across ranks needs a float tensor", in);
  return in[0];
}

Storage forward_allreduce(const Op& op, const std::vector<const Storage*>& in, const Attrs& a, const Meta& out) {
  const Storage& x = *in[0];
  if (g_size == 1) return x;  // (one rank: the sum, mean, max and min of one value)
#ifdef THETA_HAS_MPI
  // the ranks must agree on the dtype, rank and sizes: one exchange of the maxima of each
  // fact and of its negation (their minima), over a header of a fixed length
  constexpr std::size_t kHeader = 2 + 32;  // dtype, rank, sizes (a tensor has up to 32 axes)
  if (x.shape.size() > 32) throw_shape(op, "more than 32 axes", {meta_of(x)});
  long long both[2 * kHeader], red[2 * kHeader];
  for (std::size_t i = 0; i < kHeader; ++i) {
    const long long v = i == 0 ? static_cast<long long>(x.dtype)
                        : i == 1 ? static_cast<long long>(x.shape.size())
                        : i - 2 < x.shape.size() ? x.shape[i - 2]
                                                 : -1;
    both[i] = v, both[kHeader + i] = -v;
  }
  check_mpi(MPI_Allreduce(both, red, int(2 * kHeader), MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  for (std::size_t i = 0; i < kHeader; ++i)
    if (red[i] != -red[kHeader + i]) {
      const std::string what = i == 0 ? "dtypes" : i == 1 ? "ranks" : "sizes";
      const std::string msg = std::string(op.name) + ": the ranks' tensors differ in their " + what + " (rank " +
                              std::to_string(g_rank) + " has " + std::string(dtype_name(x.dtype)) + " " +
                              shape_str(x.shape) + "); every rank must reduce the same shape and dtype";
      if (i == 0) throw TypeError(msg);
      throw ShapeError(msg);
    }
  Storage y = alloc_storage(out.dtype, x.shape, th::cpu());
  const Storage host = contiguous_as(transfer(x, th::cpu()), x.dtype);
  const auto kind = th::dist::Op(a.axis);
  const MPI_Op mop = kind == th::dist::Op::max ? MPI_MAX : kind == th::dist::Op::min ? MPI_MIN : MPI_SUM;
  if (x.size() > 0)
    check_mpi(MPI_Allreduce(host.bytes(), y.bytes(), int(x.size()), mpi_type(x.dtype), mop, MPI_COMM_WORLD),
              "MPI_Allreduce");
  if (kind == th::dist::Op::mean) {
    THETA_DISPATCH_FLOAT(y.dtype, T, {
      T* p = y.data<T>();
      const T n = T(g_size);
      for (std::int64_t i = 0; i < y.size(); ++i) p[i] /= n;
    })
  }
  return to_device(std::move(y), x.device());
#else
  (void)op, (void)a, (void)out;
  return x;  // (unreachable: without MPI there is one rank)
#endif
}

Tensor make_allreduce(const Tensor& t, th::dist::Op op);

// sum: the sum of the ranks' gradients; mean: their mean; max/min: that sum, where this
// rank held the extreme
std::vector<Tensor> vjp_allreduce(const Op&, const VjpCtx& c) {
  const auto kind = th::dist::Op(c.attrs.axis);
  if (kind == th::dist::Op::sum || kind == th::dist::Op::mean) return {make_allreduce(c.g, kind)};
  return {make_allreduce(c.g, th::dist::Op::sum) * cast(c.x[0] == c.y, node_of(c.g, "allreduce").dtype)};
}

const Op op_allreduce{"allreduce", {1, 1}, 0, &infer_allreduce, &forward_allreduce, &vjp_allreduce};

Tensor make_allreduce(const Tensor& t, th::dist::Op op) {
  Attrs a;
  a.axis = static_cast<std::int64_t>(op);
  return apply(op_allreduce, {t}, std::move(a));
}

}  // namespace

}  // namespace th::detail

namespace th::dist {

void init(int& argc, char**& argv) {
#ifdef THETA_HAS_MPI
  // started by mpirun (Open MPI, or a PMI launcher): join; a plain start stays one rank
  if (detail::g_joined || !(std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK")))
    return;
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  MPI_Comm_rank(MPI_COMM_WORLD, &detail::g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &detail::g_size);
  detail::g_joined = true;
  std::set_terminate(&detail::terminate_job);
  std::atexit([] {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  });
#else
  (void)argc, (void)argv;
#endif
}

int rank() { return detail::g_rank; }
int size() { return detail::g_size; }

bool available() {
#ifdef THETA_HAS_MPI
  return true;
#else
  return false;
#endif
}

Tensor allreduce(const Tensor& t, Op op) { return detail::make_allreduce(t, op); }

// (Horovod's tensor fusion happens when the step is frozen: pack_allreduces in
// lib/freeze/rewrite_dist_pack.cpp makes these one MPI call.)
std::vector<Tensor> average(const std::vector<Tensor>& grads) {
  std::vector<Tensor> r;
  for (const Tensor& g : grads) r.push_back(allreduce(g, Op::mean));
  return r;
}

void broadcast(const std::vector<Shared>& params, int root) {
  if (root < 0 || root >= size())
    throw ValueError("dist::broadcast: root " + std::to_string(root) + " is not a rank (there are " +
                     std::to_string(size()) + ")");
  if (size() == 1) return;
#ifdef THETA_HAS_MPI
  for (Shared p : params) {
    const detail::Storage v = detail::contiguous_as(detail::transfer(detail::value_of(p.get_value(), "broadcast"), th::cpu()),
                                                    p.dtype());
    // the root's shape first (a rank's may differ before: it takes the root's)
    long long nd = static_cast<long long>(v.shape.size());
    detail::check_mpi(MPI_Bcast(&nd, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
    std::vector<long long> shape(v.shape.begin(), v.shape.end());
    shape.resize(std::size_t(nd));
    detail::check_mpi(MPI_Bcast(shape.data(), int(nd), MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
    const Shape s(shape.begin(), shape.end());
    if (std::int64_t(s.size()) != p.ndim())
      throw ShapeError("dist::broadcast: '" + p.name() + "' has rank " + std::to_string(p.ndim()) + " here but " +
                       std::to_string(s.size()) + " on the root");
    detail::Storage y = detail::alloc_storage(v.dtype, s, th::cpu());
    if (rank() == root) detail::cpu_backend().copy(v, y);
    const MPI_Datatype t = p.dtype() == DType::boolean ? MPI_BYTE : detail::mpi_type(p.dtype());
    if (y.size() > 0) detail::check_mpi(MPI_Bcast(y.bytes(), int(y.size()), t, root, MPI_COMM_WORLD), "MPI_Bcast");
    p.set_value(detail::make_constant(y));
  }
#endif
}

void abort(const std::string& why, int code) {
  std::fprintf(stderr, "theta: rank %d: %s\n", detail::g_rank, why.c_str());
  std::fflush(stderr);
#ifdef THETA_HAS_MPI
  if (detail::g_joined) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

}  // namespace th::dist
