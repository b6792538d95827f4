// The native tier (Theano's C linker, kept small): a fused elementwise chain that runs often
// becomes C++ source, generated from the formulas' text (core/elementwise_list.hpp,
// core/scalar_math.hpp), compiled by the C++ compiler that built theta (THETA_CXX overrides)
// into a shared object, loaded with dlopen and cached on disk under a hash of the source,
// the compiler and its flags (THETA_CACHE_DIR, else $XDG_CACHE_HOME/theta, else
// ~/.cache/theta). The interpreter (cpu/fused.cpp) stays the reference: it runs a chain
// until its compiled block loop is ready, and keeps running it when there is no compiler, the
// compilation fails or the cache cannot be written. Both compute every element with the same
// formulas and the same roundings (no implicit FMA anywhere), in the same blocks, so the
// results are the same bits.
#pragma once
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace th::detail::cpu {

/// A compiled chain over one block: in[e] points at input e's first element of the block (a
/// broadcast input's one element), out[j] at where the j-th written instruction's results go;
/// n elements.
using NativeFn = void (*)(const void* const* in, void* const* out, std::int64_t n);

/// One distinct chain: its code, dtype, which inputs are broadcast elements and which
/// instructions are written. Made once per process and never freed (frames, programs and the
/// compiling thread hold plain pointers to it).
struct NativeKernel {
  enum State : int { cold, queued, ready, failed };
  std::atomic<NativeFn> fn{nullptr};
  std::atomic<int> state{cold};
  std::atomic<std::int64_t> heat{0};  // element-instructions the interpreter has run for it
  // The chain (its source is generated when it is compiled: most chains never get hot).
  std::vector<FusedInstr> code;
  DType dtype = DType::float32;
  std::vector<bool> scalar;
  std::vector<char> written;
  // A whole program (freeze/whole.cpp): its source, whose entry point `theta_program` is a
  // NativeProgramFn (fn holds it, cast); empty for a chain.
  std::string program;
  std::string why;  // a failed kernel: what went wrong (set before state = failed)
  bool from_cache = false;            // loaded from the disk cache without compiling
};

/// The kernel record of a chain; null when the native tier is off (th::config().native).
/// `scalar[e]`: input e is one broadcast element; `written[k]`: instruction k's results are
/// stored (an output, a streamed output or a summed value). Under native=sync a kernel
/// not compiled yet is compiled (or loaded) before this returns.
NativeKernel* native_kernel(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                            const std::vector<char>& written);
/// A whole program's entry point: p[r] is the data of the program's value r.
using NativeProgramFn = void (*)(void* const* p);
/// A whole program's compiled entry point (NativeKernel::fn holds it as a chain's type), or
/// null while it is not compiled.
inline NativeProgramFn program_fn(const NativeKernel& k) {
  return reinterpret_cast<NativeProgramFn>(reinterpret_cast<void (*)()>(k.fn.load(std::memory_order_acquire)));
}
/// The record of a whole program's source (theta_program); null when the tier is off.
/// Under native=sync compiled (or loaded) before this returns.
NativeKernel* native_program(const std::string& source);
/// Writes a chain's block function, named `name` (e.g. "static void chain3": the text
/// before the parameter list), to `os`: the body of native_source's theta_chain.
void chain_function_source(std::ostream& os, const std::string& name, const std::vector<FusedInstr>& code,
                           DType dtype, const std::vector<bool>& scalar, const std::vector<char>& written);
/// The interpreter ran `work` element-instructions of `k`: past a threshold the kernel is
/// queued for compilation on the background thread (native=async).
void native_heat(NativeKernel& k, std::int64_t work);
/// The C++ source of a chain's block loop (the whole translation unit).
std::string native_source(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                          const std::vector<char>& written);
/// What debugprint says of a step: "native", "native (cached)", "interpreted: compiling",
/// "interpreted: <why>", or nothing ("") while the chain is not hot.
std::string native_state_line(const NativeKernel& k);

/// Counters since the process started (tests and benchmarks read them).
struct NativeStats {
  std::int64_t compiled = 0;  // compiler runs that produced a loaded kernel
  std::int64_t loaded = 0;    // kernels loaded from the disk cache without compiling
  std::int64_t rejected = 0;  // cache entries that failed their hash check (rebuilt)
  std::int64_t failed = 0;    // kernels left to the interpreter (no compiler, compile error, no cache)
};
NativeStats native_stats();
/// Forgets every kernel record (not the loaded code): the next chains are looked up again,
/// as by a new process (tests of the disk cache). Waits for the background thread first.
void native_forget();
/// Waits until the background thread has nothing queued (tests, benchmarks).
void native_wait();

}  // namespace th::detail::cpu
