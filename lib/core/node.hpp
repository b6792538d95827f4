// The tape: a Node is one recorded value. A recorded node keeps its op and input
// tensors, so tape entries live exactly as long as the tensors that can reach them.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/storage.hpp"
#include "core/attrs.hpp"
#include "theta/tensor.hpp"

namespace th::detail {

struct Op;

enum class NodeKind : unsigned char {
  constant,     // a value with no history
  variable,     // a recorded leaf (th::variable, requires_grad)
  placeholder,  // a symbolic input
  shared,       // a named, persistent, mutable value
  op,           // the result of an operation
};

struct Node {
  NodeKind kind = NodeKind::constant;
  const Op* op = nullptr;
  std::vector<Tensor> inputs;  // kept only when recorded
  Attrs attrs;
  DType dtype = DType::float64;
  Shape shape;                   // static shape; -1 marks a dimension unknown until run time
  std::optional<Storage> value;  // absent for symbolic nodes
  bool recorded = false;         // operations on it are recorded (and it keeps its inputs)
  bool symbolic = false;         // depends on a placeholder
  std::string name;

  Node();
  ~Node();  // NOTE: iterative, so that a 10^6-long chain does not overflow the stack
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
};

/// A new node (its shared_ptr control block in the same block), from the calling thread's
/// cache of freed node blocks: an eager loop records and frees nodes by the hundred thousand,
/// and blocks glibc returned to the system cost a page fault each time they come back.
std::shared_ptr<Node> new_node();

/// Guards every shared variable's value: a value is read and replaced whole under it.
std::mutex& shared_values_mutex();

/// Live nodes in this process (tests use it to show tape entries are released).
std::int64_t live_nodes();

/// The node of `t`, or th::ValueError("<what>: empty tensor") when `t` is empty.
Node& node_of(const Tensor& t, const char* what);
/// A new leaf (no op): recorded unless a constant, symbolic when a placeholder. The one
/// place leaves are made; `shape` is the static shape (-1 for sizes open until run time).
Tensor make_leaf(NodeKind kind, DType dtype, Shape shape, std::optional<Storage> value, std::string name = "");
/// A constant tensor holding `s`.
Tensor make_constant(Storage s);
/// The concrete value of `t`; th::ValueError naming `what` when symbolic.
const Storage& value_of(const Tensor& t, const char* what);

}  // namespace th::detail
