// The ops that hold frozen sub-programs: ifelse's two branches (ops/control.cpp) and scan's
// body (ops/scan.cpp). Shared with th::save / th::load_function (lib/io/function_file.cpp),
// which write and rebuild them; a loaded one has its programs and counts but not the graphs
// it was built from (those serve th::grad, which a loaded function does not take).
#pragma once
#include <mutex>
#include <optional>
#include <vector>

#include "core/attrs.hpp"
#include "theta/function.hpp"

namespace th::detail {

struct Branches : SubProgram {
  static constexpr Kind kKind = Kind::branches;
  Branches() : SubProgram(kKind) {}
  Tensor then_value, else_value;              // the branches as recorded (for the VJP)
  Function then_f{nullptr}, else_f{nullptr};  // frozen over their placeholders
  std::vector<std::size_t> then_args, else_args;  // which leaves (operands 1..) each takes
};

struct ScanBody : SubProgram {
  static constexpr Kind kKind = Kind::scan;
  ScanBody() : SubProgram(kKind) {}
  // The body's inputs (placeholders) and outputs, for the VJP. Outputs [0, n_user) are the
  // user's, the others values saved for the backward pass.
  std::vector<Tensor> seq_in, state_in, const_in, outs;
  std::size_t n_seq = 0, n_state = 0, n_const = 0;  // the operands: sequences, states, invariants
  std::vector<int> feed;           // per output: the state it feeds, or -1
  std::vector<char> last_only;     // per output: only its last value is kept (foldl, sums)
  std::vector<int> state_values;   // per state: a stacked output holding its values (-1: none)
  std::size_t n_user = 0;
  bool backwards = false;
  std::int64_t n_steps = -1;       // the number of steps when there are no sequences
  std::int64_t static_steps = -1;  // known at construction, else -1
  std::vector<DType> out_dtype;
  std::vector<Shape> out_shape;    // per step (-1: known at run time)

  /// The body frozen over seq_in, state_in, const_in; with `save`, all outputs, else the
  /// user's only. Frozen on first use (or set by preset).
  const Function& body(bool save) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<Function>& f = save ? saving_ : plain_;
    if (!f) {
      if (outs.empty() && n_user > 0)
        throw ValueError("scan: this loaded function has no " + std::string(save ? "saving" : "plain") + " body");
      std::vector<Tensor> in = seq_in;
      in.insert(in.end(), state_in.begin(), state_in.end());
      in.insert(in.end(), const_in.begin(), const_in.end());
      f = function(in, std::vector<Tensor>(outs.begin(), outs.begin() + std::ptrdiff_t(save ? outs.size() : n_user)));
    }
    return *f;
  }
  /// Whether that body is frozen already.
  bool has_body(bool save) const {
    std::lock_guard<std::mutex> lock(mu_);
    return save ? saving_.has_value() : plain_.has_value();
  }
  /// Sets a body (a loaded function's).
  void preset(bool save, Function f) {
    std::lock_guard<std::mutex> lock(mu_);
    (save ? saving_ : plain_) = std::move(f);
  }

 private:
  mutable std::mutex mu_;
  mutable std::optional<Function> plain_, saving_;
};

}  // namespace th::detail
