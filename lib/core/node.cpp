// Node lifetime (iterative release of long chains) and small accessors.
#include "core/node.hpp"

#include "theta/error.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define THETA_NODE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define THETA_NODE_ASAN 1
#endif
#endif
#ifdef THETA_NODE_ASAN
#include <sanitizer/asan_interface.h>
#define THETA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define THETA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define THETA_POISON(p, n) ((void)(p), (void)(n))
#define THETA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace th::detail {

namespace {
std::atomic<std::int64_t> g_live{0};
thread_local std::vector<Tensor> t_pending;  // inputs waiting to be released
thread_local bool t_draining = false;
}  // namespace

Node::Node() { g_live.fetch_add(1, std::memory_order_relaxed); }

Node::~Node() {
  for (auto& t : inputs)
    if (t.node() && t.node().use_count() == 1) t_pending.push_back(std::move(t));
  inputs.clear();
  g_live.fetch_sub(1, std::memory_order_relaxed);
  if (t_draining) return;
  t_draining = true;
  while (!t_pending.empty()) {
    Tensor last = std::move(t_pending.back());
    t_pending.pop_back();
  }  // `last` dies here; its inputs are queued instead of recursing
  t_draining = false;
}

namespace {

// Freed blocks of `Size` bytes kept per thread (at most kKeep of them, ~50 MB for nodes) for
// the next new_node(). A block freed on another thread joins that thread's cache. Under
// AddressSanitizer a kept block is poisoned, so a use after free is still reported.
template <std::size_t Size>
struct BlockCache {
  static constexpr std::size_t kKeep = std::size_t(1) << 17;
  std::vector<void*> free;
  ~BlockCache() {
    for (void* p : free) {
      THETA_UNPOISON(p, Size);
      ::operator delete(p);
    }
    gone() = true;
  }
  static bool& gone() {  // (trivial: still readable while the thread's objects are destroyed)
    thread_local bool g = false;
    return g;
  }
  // The thread's cache; null once it was destroyed (nodes released by other thread_locals).
  static BlockCache* get() {
    if (gone()) return nullptr;
    thread_local BlockCache c;
    return &c;
  }
};

// The allocator of new_node()'s shared_ptr: one block holds the node and its control block.
template <class T>
struct NodeAllocator {
  using value_type = T;
  using Cache = BlockCache<sizeof(T)>;
  NodeAllocator() = default;
  template <class U>
  NodeAllocator(const NodeAllocator<U>&) {}
  T* allocate(std::size_t n) {
    Cache* c = n == 1 ? Cache::get() : nullptr;
    if (!c || c->free.empty()) return static_cast<T*>(::operator new(n * sizeof(T)));
    void* p = c->free.back();
    c->free.pop_back();
    THETA_UNPOISON(p, sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) {
    Cache* c = n == 1 ? Cache::get() : nullptr;
    if (!c || c->free.size() >= Cache::kKeep) return ::operator delete(p);
    THETA_POISON(p, sizeof(T));
    c->free.push_back(p);
  }
  template <class U>
  bool operator==(const NodeAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const NodeAllocator<U>&) const { return false; }
};

}  // namespace

std::shared_ptr<Node> new_node() { return std::allocate_shared<Node>(NodeAllocator<Node>()); }

std::mutex& shared_values_mutex() {
  static std::mutex m;  // a shared value is read and replaced whole under it: never torn
  return m;
}

std::int64_t live_nodes() { return g_live.load(std::memory_order_relaxed); }

Node& node_of(const Tensor& t, const char* what) {
  if (!t.node()) throw ValueError(std::string(what) + ": empty tensor (default-constructed th::Tensor)");
  return *t.node();
}

Tensor make_leaf(NodeKind kind, DType dtype, Shape shape, std::optional<Storage> value, std::string name) {
  auto n = new_node();
  n->kind = kind;
  n->dtype = dtype;
  n->shape = std::move(shape);
  n->value = std::move(value);
  n->recorded = kind != NodeKind::constant;
  n->symbolic = kind == NodeKind::placeholder;
  n->name = std::move(name);
  return Tensor(std::move(n));
}

Tensor make_constant(Storage s) {
  DType d = s.dtype;
  Shape shape = s.shape;
  return make_leaf(NodeKind::constant, d, std::move(shape), std::move(s));
}

const Storage& value_of(const Tensor& t, const char* what) {
  Node& n = node_of(t, what);
  if (!n.value)
    throw ValueError(std::string(what) + ": tensor" + (n.name.empty() ? "" : " '" + n.name + "'") +
                     " is symbolic (it depends on a placeholder); its value exists only inside a th::function");
  return *n.value;
}

}  // namespace th::detail
