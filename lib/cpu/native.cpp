// The native tier: generating, compiling, caching and loading fused chains' block loops
// (see cpu/native.hpp). One background thread compiles, in the order chains get hot.
#include "cpu/native.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/formula_source.hpp"
#include "theta/config.hpp"

extern char** environ;

#ifndef THETA_BUILD_CXX
#define THETA_BUILD_CXX "c++"
#endif
#ifndef THETA_BUILD_FP_FLAGS
#define THETA_BUILD_FP_FLAGS "-fwrapv -ffp-contract=off -fno-trapping-math -fno-math-errno"
#endif

namespace th::detail::cpu {

namespace {

namespace fs = std::filesystem;

// A chain run interpreted for this many element-instructions is compiled (a 10^6-element
// chain of 4 ops: on its first call; a 1000-element one: after ~1000 calls). Below it the
// compiler's ~0.5 s of one core would not pay back.
constexpr std::int64_t kHotWork = std::int64_t(1) << 22;

// 128 bits of two FNV-1a hashes with different offsets, as hex: the cache's keys and the
// check of an entry's contents (it catches corruption and edits, not a forger).
std::string hash_hex(const std::string& data) {
  std::uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
  for (unsigned char ch : data) {
    h1 = (h1 ^ ch) * 1099511628211ull;
    h2 = (h2 ^ ch) * 0x100000001b3ull;
    h2 ^= h2 >> 29;
  }
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h1),
                static_cast<unsigned long long>(h2));
  return buf;
}

bool read_file(const fs::path& p, std::string& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return bool(in) || in.eof();
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> w;
  std::istringstream ss(s);
  for (std::string x; ss >> x;) w.push_back(x);
  return w;
}

// The compiler's command (THETA_CXX, else the one CMake built theta with) and what
// identifies it in cache keys: its resolved path, size and modification time.
struct Compiler {
  std::vector<std::string> argv;
  std::string identity;  // empty: not found
  std::string flags;
};

// -march for the CPU level the multi-versioned kernels pick here (cpu/multiversion.hpp):
// the same vector width (the bits do not depend on it: every FMA is explicit).
std::string march() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return " -march=x86-64-v4";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return " -march=x86-64-v3";
  return " -march=x86-64";
#else
  return "";
#endif
}

// Read at each build (not once): a program may set THETA_CXX or THETA_CACHE_DIR as it runs.
Compiler compiler() {
  Compiler r;
  const char* env = std::getenv("THETA_CXX");
  r.argv = split_words(env && *env ? env : THETA_BUILD_CXX);
  // Leaked, like the queue: the detached compiling thread may read it after static
  // destructors ran (ASan saw this string freed under it at exit, on a loaded machine).
  static const std::string* const arch = new std::string(march());
  r.flags = "-O3 -std=c++17 -fPIC -shared -fvisibility=hidden -w" + *arch + " " THETA_BUILD_FP_FLAGS;
  if (r.argv.empty()) return r;
  fs::path exe = r.argv[0];
  if (r.argv[0].find('/') == std::string::npos) {  // looked up in PATH, as posix_spawnp will
    const char* path = std::getenv("PATH");
    std::istringstream ss(path ? path : "");
    for (std::string dir; std::getline(ss, dir, ':');)
      if (!dir.empty() && ::access((fs::path(dir) / exe).c_str(), X_OK) == 0) {
        exe = fs::path(dir) / exe;
        break;
      }
  }
  struct stat st {};
  if (::stat(exe.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(exe.c_str(), X_OK) == 0)
    r.identity = exe.string() + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtime);
  return r;
}

fs::path cache_dir() {
  if (const char* d = std::getenv("THETA_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "theta";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "theta";
  return fs::temp_directory_path() / "theta-cache";
}

std::atomic<std::int64_t> g_compiled{0}, g_loaded{0}, g_rejected{0}, g_failed{0};

// Runs the compiler on `src` into `tmp`, its messages into `log`, and (when it succeeded)
// renames `tmp` to `fresh`: the rename is done by a small shell around the compiler, so a
// compilation that outlives its process (a short program that ended first) still leaves its
// result, for the next process to adopt (adopt_fresh). The compiler inherits the calling
// thread's scheduling policy (the background thread's is SCHED_IDLE: see worker). True when
// it succeeded.
bool run_compiler(const Compiler& c, const fs::path& src, const fs::path& tmp, const fs::path& fresh,
                  const fs::path& log) {
  std::vector<std::string> args = {"sh", "-c", "o=$1; d=$2; shift 2; \"$@\" && mv -f -- \"$o\" \"$d\"",
                                   "theta-native", tmp.string(), fresh.string()};
  args.insert(args.end(), c.argv.begin(), c.argv.end());
  for (std::string& f : split_words(c.flags)) args.push_back(std::move(f));
  args.insert(args.end(), {src.string(), "-o", tmp.string()});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A finished compilation's object `fresh` (complete: renamed there after the compiler
// succeeded, maybe by a process that has ended since) becomes the cache entry `so` + `sum`.
// False when there is none (or another process adopted it first).
bool adopt_fresh(const fs::path& fresh, const fs::path& so, const fs::path& sum) {
  std::string bytes;
  if (!read_file(fresh, bytes)) return false;
  static std::atomic<int> serial{0};
  const fs::path tsum = sum.parent_path() / ("tmp-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + "-" +
                                             sum.filename().string());  // (swept as build's temporaries are)
  {
    std::ofstream s(tsum, std::ios::binary);
    s << hash_hex(bytes);
    if (!s.flush()) return false;
  }
  std::error_code ec;
  fs::rename(fresh, so, ec);  // the object first: an entry without its .sum is not one
  if (!ec) fs::rename(tsum, sum, ec);
  if (ec) {
    fs::remove(tsum, ec);
    return false;
  }
  return true;
}

// Loads a verified entry: its entry point `symbol`, or null (with `why`).
NativeFn load(const fs::path& so, const char* symbol, std::string& why) {
  void* h = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    why = std::string("dlopen failed: ") + (e ? e : "?");
    return nullptr;
  }
  void* f = ::dlsym(h, symbol);
  if (!f) why = std::string("the compiled object has no ") + symbol;
  return reinterpret_cast<NativeFn>(f);
}

// Finds the kernel in the disk cache (checking its hash), adopts a compilation an earlier
// process left finished, or compiles it there; the loaded function, or null with k.why set.
NativeFn build(NativeKernel& k) {
  const Compiler c = compiler();
  if (c.identity.empty()) {
    k.why = "no C++ compiler (" + (c.argv.empty() ? std::string("THETA_CXX is empty") : c.argv[0] + " not found") +
            "; set THETA_CXX)";
    return nullptr;
  }
  const std::string source = k.program.empty() ? native_source(k.code, k.dtype, k.scalar, k.written) : k.program;
  const char* symbol = k.program.empty() ? "theta_chain" : "theta_program";
  const std::string key = hash_hex(source + '\0' + c.identity + '\0' + c.flags);
  const fs::path dir = cache_dir(), so = dir / (key + ".so"), sum = dir / (key + ".sum"),
                 fresh = dir / (key + ".new.so");
  // The entry, when it is there and whole (else removed: corrupted or edited entries are
  // rebuilt, never loaded).
  auto cached = [&]() -> NativeFn {
    std::string bytes, want;
    if (!read_file(so, bytes) || !read_file(sum, want)) return nullptr;
    if (want == hash_hex(bytes))
      if (NativeFn f = load(so, symbol, k.why)) {
        k.from_cache = true;
        ++g_loaded;
        return f;
      }
    ++g_rejected;
    std::error_code ec;
    fs::remove(so, ec);
    fs::remove(sum, ec);
    return nullptr;
  };
  if (NativeFn f = cached()) return f;
  if (adopt_fresh(fresh, so, sum))
    if (NativeFn f = cached()) return f;
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Temporaries of compilations that never finished (their process ended first) older than
  // an hour are swept away.
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code age_ec;
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(it->path(), age_ec);
    if (name.rfind("tmp-", 0) == 0 && !age_ec && age > std::chrono::hours(1)) fs::remove(it->path(), age_ec);
  }
  ec.clear();
  static std::atomic<int> serial{0};
  const std::string tmp = "tmp-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + "-" + key;
  const fs::path src = dir / (tmp + ".cpp"), out = dir / (tmp + ".so"), log = dir / (tmp + ".log");
  {
    std::ofstream s(src, std::ios::binary);
    s << source;
    if (!s.flush()) {
      k.why = "the cache directory " + dir.string() + " is not writable (set THETA_CACHE_DIR)";
      fs::remove(src, ec);
      return nullptr;
    }
  }
  const bool ok = run_compiler(c, src, out, fresh, log);
  std::string msg;
  read_file(log, msg);
  fs::remove(src, ec);
  fs::remove(log, ec);
  if (!ok) {
    fs::remove(out, ec);
    const std::string first = msg.substr(0, msg.find('\n'));
    k.why = "the compiler failed (" + c.argv[0] + (first.empty() ? "" : ": " + first.substr(0, 200)) + ")";
    return nullptr;
  }
  adopt_fresh(fresh, so, sum);  // (false when another process adopted the same object first)
  std::string bytes, want;
  if (!read_file(so, bytes) || !read_file(sum, want) || want != hash_hex(bytes)) {
    k.why = "could not store the compiled kernel in " + dir.string();
    return nullptr;
  }
  NativeFn f = load(so, symbol, k.why);
  if (f) ++g_compiled;
  return f;
}

void build_into(NativeKernel& k) {
  NativeFn f = build(k);
  if (f) {
    k.fn.store(f, std::memory_order_release);
    k.state.store(NativeKernel::ready, std::memory_order_release);
  } else {
    ++g_failed;
    k.state.store(NativeKernel::failed, std::memory_order_release);
  }
}

// The compiling thread's queue. Leaked on purpose: the detached thread may still be
// compiling when the process exits, after static destructors have run.
struct Queue {
  std::mutex mu;
  std::condition_variable cv, idle;
  std::deque<NativeKernel*> todo;
  bool busy = false, started = false;
};
Queue& queue() {
  static Queue* q = new Queue;
  return *q;
}

void worker() {
  // SCHED_IDLE, inherited by the compilers it starts (and their cc1plus, as, ld): a
  // background compilation only takes CPU time that nothing else wants, so native=async never
  // slows the program it is meant to speed up (a short program ends before it pays back).
#ifdef SCHED_IDLE
  sched_param sp{};
  sp.sched_priority = 0;
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);  // (where refused: normal priority)
#endif
  Queue& q = queue();
  std::unique_lock<std::mutex> lock(q.mu);
  for (;;) {
    q.cv.wait(lock, [&] { return !q.todo.empty(); });
    NativeKernel* k = q.todo.front();
    q.todo.pop_front();
    q.busy = true;
    lock.unlock();
    build_into(*k);
    lock.lock();
    q.busy = false;
    if (q.todo.empty()) q.idle.notify_all();
  }
}

void enqueue(NativeKernel* k) {
  Queue& q = queue();
  std::lock_guard<std::mutex> lock(q.mu);
  if (!q.started) {
    std::thread(worker).detach();
    q.started = true;
  }
  q.todo.push_back(k);
  q.cv.notify_one();
}

// The kernel records, by chain (`all` keeps every record ever made, forgotten ones too).
// Leaked, as the queue.
struct Table {
  std::mutex mu;
  std::map<std::string, NativeKernel*> by_chain;
  std::vector<std::unique_ptr<NativeKernel>> all;
  std::mutex build_mu;  // synchronous builds, one at a time
};
Table& table() {
  static Table* t = new Table;
  return *t;
}

std::string chain_key(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                      const std::vector<char>& written) {
  std::string key(1, char(dtype));
  auto put = [&](std::int64_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const FusedInstr& in : code) put(in.unary), put(in.code), put(in.a), put(in.b);
  put(-1);
  for (bool s : scalar) put(s);
  put(-1);
  for (char w : written) put(w);
  return key;
}

}  // namespace

void chain_function_source(std::ostream& os, const std::string& name, const std::vector<FusedInstr>& code,
                           DType dtype, const std::vector<bool>& scalar, const std::vector<char>& written) {
  os << name << "(const void* const* in, void* const* out, std::int64_t n) {\n  using namespace th::detail;\n  using T = "
     << c_type_name(dtype) << ";\n";
  for (std::size_t e = 0; e < scalar.size(); ++e) {
    if (scalar[e]) os << "  const T s" << e << " = *static_cast<const T*>(in[" << e << "]);\n";
    else os << "  const T* __restrict x" << e << " = static_cast<const T*>(in[" << e << "]);\n";
  }
  std::size_t j = 0;
  for (std::size_t k = 0; k < code.size(); ++k)
    if (written[k]) os << "  T* __restrict y" << k << " = static_cast<T*>(out[" << j++ << "]);\n";
  auto operand = [&](int o) {
    if (o >= 0) return "t" + std::to_string(o);
    const std::size_t e = std::size_t(-1 - o);
    return scalar[e] ? "s" + std::to_string(e) : "x" + std::to_string(e) + "[i]";
  };
  os << "  for (std::int64_t i = 0; i < n; ++i) {\n";
  for (std::size_t k = 0; k < code.size(); ++k) {
    const FusedInstr& in = code[k];
    os << "    const T t" << k << " = ";
    if (in.identity()) os << operand(in.a);  // a gradient's no-op broadcast_like/sum_to_like
    else if (in.unary) os << "u_" << unary_name(UnaryKind(in.code)) << "<T>(" << operand(in.a) << ")";
    else os << "b_" << binary_name(BinaryKind(in.code)) << "<T>(" << operand(in.a) << ", " << operand(in.b) << ")";
    os << ";\n";
    if (written[k]) os << "    y" << k << "[i] = t" << k << ";\n";
  }
  os << "  }\n}\n";
}

std::string native_source(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                          const std::vector<char>& written) {
  std::ostringstream os;
  os << "// theta native tier: a fused chain of " << code.size() << " instructions over "
     << c_type_name(dtype) << " (generated by lib/cpu/native.cpp)\n#include <cstdint>\n"
     << formula_source() << "\n";
  chain_function_source(os, "extern \"C\" __attribute__((visibility(\"default\"))) void theta_chain", code, dtype,
                        scalar, written);
  return os.str();
}

namespace {
// The record under `key` (made by `init` the first time); under native=sync, compiled or
// loaded before it is returned.
template <class Init>
NativeKernel* record(const std::string& key, Init&& init) {
  Table& t = table();
  NativeKernel* k;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    NativeKernel*& slot = t.by_chain[key];
    if (!slot) {
      t.all.push_back(std::make_unique<NativeKernel>());  // never freed (see NativeKernel)
      slot = t.all.back().get();
      init(*slot);
    }
    k = slot;
  }
  if (th::config().native == NativeMode::sync && k->state.load(std::memory_order_acquire) != NativeKernel::ready) {
    native_wait();  // a queued build of it finishes first
    std::lock_guard<std::mutex> lock(t.build_mu);
    int cold = NativeKernel::cold;
    if (k->state.compare_exchange_strong(cold, NativeKernel::queued)) build_into(*k);  // (at the caller's priority: it waits)
  }
  return k;
}
}  // namespace

NativeKernel* native_kernel(const std::vector<FusedInstr>& code, DType dtype, const std::vector<bool>& scalar,
                            const std::vector<char>& written) {
  if (th::config().native == NativeMode::off) return nullptr;
  return record(chain_key(code, dtype, scalar, written), [&](NativeKernel& k) {
    k.code = code;
    k.dtype = dtype;
    k.scalar = scalar;
    k.written = written;
  });
}

NativeKernel* native_program(const std::string& source) {
  if (th::config().native == NativeMode::off) return nullptr;
  return record("P" + source, [&](NativeKernel& k) { k.program = source; });
}

void native_heat(NativeKernel& k, std::int64_t work) {
  if (k.state.load(std::memory_order_relaxed) != NativeKernel::cold) return;
  if (k.heat.fetch_add(work, std::memory_order_relaxed) + work < kHotWork) return;
  int cold = NativeKernel::cold;
  if (k.state.compare_exchange_strong(cold, NativeKernel::queued)) enqueue(&k);
}

std::string native_state_line(const NativeKernel& k) {
  switch (k.state.load(std::memory_order_acquire)) {
    case NativeKernel::ready:
      return k.from_cache ? "native (cached)" : "native";
    case NativeKernel::queued:
      return "interpreted: compiling";
    case NativeKernel::failed:
      return "interpreted: " + k.why;
    default:
      return "";  // not hot (yet): nothing to say
  }
}

NativeStats native_stats() { return {g_compiled.load(), g_loaded.load(), g_rejected.load(), g_failed.load()}; }

void native_wait() {
  Queue& q = queue();
  std::unique_lock<std::mutex> lock(q.mu);
  q.idle.wait(lock, [&] { return q.todo.empty() && !q.busy; });
}

void native_forget() {
  native_wait();
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  t.by_chain.clear();  // the records stay allocated: frames may still point at them
}

}  // namespace th::detail::cpu
