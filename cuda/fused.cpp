// Fused elementwise kernels for the GPU, generated at run time as Theano generated its GPU
// elementwise code: a fused chain (freeze/rewrite_fuse.cpp) becomes the source of one CUDA
// kernel, built from the same formula text as every other kernel (core/elementwise_list.hpp
// stringified, core/scalar_math.hpp embedded), compiled once by NVRTC to a cubin for the
// device (PTX without a GPU, for the tests), loaded with cudaLibraryLoadData and launched on
// theta's stream. Compiled kernels are cached by source and architecture.
#include <nvrtc.h>

#include <map>
#include <mutex>
#include <sstream>

#include "cuda/runtime.hpp"
#include "core/backend.hpp"
#include "core/formula_source.hpp"
#include "theta/error.hpp"

namespace th::detail {

namespace {

// NVRTC has no system headers: the few std:: names scalar_math.hpp uses, for floats.
const char* const kPrelude = R"(
namespace std {
using ::exp; using ::expm1; using ::erf; using ::log; using ::log1p; using ::sqrt; using ::sin; using ::cos; using ::tanh; using ::pow;
using ::asin; using ::acos; using ::atan;
template <class A, class B> constexpr bool is_same_v = false;
template <class A> constexpr bool is_same_v<A, A> = true;
template <class T> constexpr bool is_integral_v = false;
template <class T> struct make_unsigned;
template <class T> using make_unsigned_t = typename make_unsigned<T>::type;
}
)";

std::string operand(int v) {
  return v < 0 ? "x" + std::to_string(-1 - v) : "t" + std::to_string(v);
}

struct Compiled {
  std::string image;  // cubin (or PTX)
  cudaLibrary_t library = nullptr;
  cudaKernel_t kernel = nullptr;
};

std::string nvrtc_compile(const std::string& source, int arch, bool cubin) {
  auto check = [](nvrtcResult r, const char* call) {
    if (r != NVRTC_SUCCESS) throw DeviceError(std::string("NVRTC: ") + call + " failed: " + nvrtcGetErrorString(r));
  };
  nvrtcProgram prog;
  check(nvrtcCreateProgram(&prog, source.c_str(), "theta_fused.cu", 0, nullptr, nullptr), "nvrtcCreateProgram");
  const std::string target = std::string(cubin ? "--gpu-architecture=sm_" : "--gpu-architecture=compute_") +
                             std::to_string(arch);
  const char* opts[] = {target.c_str(), "--std=c++17", "-default-device"};
  const nvrtcResult r = nvrtcCompileProgram(prog, 3, opts);
  if (r != NVRTC_SUCCESS) {
    std::size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    nvrtcGetProgramLog(prog, log.data());
    nvrtcDestroyProgram(&prog);
    throw DeviceError("NVRTC: the fused kernel does not compile for " + target + ":\n" + log);
  }
  std::size_t n = 0;
  std::string image;
  if (cubin) {
    check(nvrtcGetCUBINSize(prog, &n), "nvrtcGetCUBINSize");
    image.resize(n);
    check(nvrtcGetCUBIN(prog, image.data()), "nvrtcGetCUBIN");
  } else {
    check(nvrtcGetPTXSize(prog, &n), "nvrtcGetPTXSize");
    image.resize(n);
    check(nvrtcGetPTX(prog, image.data()), "nvrtcGetPTX");
  }
  nvrtcDestroyProgram(&prog);
  return image;
}

// The compute capability of `device` (75, 90, ...), asked of the driver once per device.
int arch_of(int device) {
  static std::mutex mu;
  static std::map<int, int> archs;
  std::lock_guard<std::mutex> lock(mu);
  auto it = archs.find(device);
  if (it != archs.end()) return it->second;
  int major = 0, minor = 0;
  THETA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  THETA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return archs[device] = major * 10 + minor;
}

// What a chain's source is made of (the instructions, dtype, scalar and row inputs, the
// instructions written out), as a short key: cheap to build on every call, where the
// source itself (with the embedded scalar math) is long.
std::string chain_key(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                      const std::vector<int>& outs, const std::vector<std::int64_t>& period) {
  std::string key(1, char(dtype));
  auto put = [&](std::int64_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const FusedInstr& in : code) put(in.unary), put(in.code), put(in.a), put(in.b);
  put(-1);
  for (std::size_t k = 0; k < scalar.size(); ++k) put(scalar[k] ? -1 : k < period.size() ? period[k] : 0);
  put(-1);
  for (int o : outs) put(o);
  return key;
}

// The kernel of a chain (see chain_key) for `device`: its source generated, compiled and
// loaded on first use.
cudaKernel_t kernel_for(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                        const std::vector<int>& outs, const std::vector<std::int64_t>& period, int device) {
  static std::mutex mu;
  static std::map<std::pair<std::string, int>, Compiled> cache;  // NOTE: libraries live until exit
  const int arch = arch_of(device);
  std::lock_guard<std::mutex> lock(mu);
  Compiled& c = cache[{chain_key(code, dtype, scalar, outs, period), arch}];
  if (!c.kernel) {
    c.image = nvrtc_compile(cuda_fused_source(code, dtype, scalar, outs, period), arch, true);
    THETA_CUDA_CHECK(cudaLibraryLoadData(&c.library, c.image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
    THETA_CUDA_CHECK(cudaLibraryGetKernel(&c.kernel, c.library, "theta_fused"));
  }
  return c.kernel;
}

}  // namespace

std::string cuda_fused_source(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                              std::vector<int> outs, const std::vector<std::int64_t>& period) {
  if (dtype != DType::float32 && dtype != DType::float64)
    throw TypeError("internal: fused CUDA kernels are float32 or float64");
  if (outs.empty()) outs.push_back(int(code.size()) - 1);
  std::ostringstream os;
  os << kPrelude << formula_source() << "namespace th::detail {\n";
  os << "using T = " << c_type_name(dtype) << ";\n";
  os << "extern \"C\" __global__ void theta_fused(";
  for (std::size_t k = 0; k < scalar.size(); ++k) os << "const T* __restrict__ p" << k << ", ";
  for (std::size_t k = 0; k < outs.size(); ++k) os << "T* __restrict__ out" << k << ", ";
  os << "long long n) {\n";
  os << "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;"
        " i += (long long)gridDim.x * blockDim.x) {\n";
  std::vector<bool> read(scalar.size(), false);
  for (const FusedInstr& in : code) {
    if (in.a < 0) read[std::size_t(-1 - in.a)] = true;
    if (!in.unary && !in.identity() && in.b < 0) read[std::size_t(-1 - in.b)] = true;
  }
  for (std::size_t k = 0; k < scalar.size(); ++k)  // shape-only inputs are not read
    if (read[k]) {
      os << "    const T x" << k << " = p" << k;
      if (scalar[k]) os << "[0];\n";
      else if (k < period.size() && period[k] > 0) os << "[i % " << period[k] << "LL];  // a row\n";
      else os << "[i];\n";
    }
  for (std::size_t j = 0; j < code.size(); ++j) {
    const FusedInstr& in = code[j];
    os << "    const T t" << j << " = ";
    if (in.identity()) os << operand(in.a) << ";  // " << (in.code == FusedInstr::kSumToLike ? "sum_to_like" : "broadcast_like") << ", a no-op here\n";
    else if (in.unary) os << "u_" << unary_name(UnaryKind(in.code)) << "(" << operand(in.a) << ");\n";
    else os << "b_" << binary_name(BinaryKind(in.code)) << "(" << operand(in.a) << ", " << operand(in.b) << ");\n";
  }
  for (std::size_t k = 0; k < outs.size(); ++k) os << "    out" << k << "[i] = t" << outs[k] << ";\n";
  os << "  }\n}\n}  // namespace th::detail\n";
  return os.str();
}

std::string cuda_compile_ptx(const std::string& source, int arch) { return nvrtc_compile(source, arch, false); }

bool cuda_run_fused(const std::vector<FusedInstr>& code, DType dtype, const std::vector<const Storage*>& inputs,
                    const std::vector<int>& out_instr, const std::vector<const Storage*>& outs) {
  const Storage& out = *outs[0];
  const std::int64_t n = out.size();
  std::vector<bool> scalar;
  std::vector<std::int64_t> period;  // NOTE: baked into the source: one kernel per row size
  if (!fused_inputs_fit(code, dtype, inputs, out_instr, out, scalar, &period)) return false;
  if (n == 0) return true;
  const int device = out.device().index;
  cudaKernel_t k = kernel_for(code, dtype, scalar, out_instr, period, device);
  cuda::DeviceGuard g(device);
  std::vector<const void*> ptrs;
  for (const Storage* s : inputs) ptrs.push_back(s->bytes());
  std::vector<void*> ys;
  for (const Storage* s : outs) ys.push_back(s->bytes());
  long long count = n;
  std::vector<void*> args;
  for (auto& p : ptrs) args.push_back(&p);
  for (auto& y : ys) args.push_back(&y);
  args.push_back(&count);
  const int threads = 256;
  const long long blocks = std::min<long long>((count + threads - 1) / threads, 65536);
  THETA_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(unsigned(blocks)), dim3(threads),
                                    args.data(), 0, cuda::stream(device)));
  return true;
}

}  // namespace th::detail
