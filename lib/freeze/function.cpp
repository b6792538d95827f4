// The public face of frozen functions: th::placeholder, th::shared and Shared, Result,
// Function (calls, shared_variables, profile) and th::function, over freeze/freeze.cpp and
// freeze/execute.cpp.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <cmath>
#include <mutex>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/backend.hpp"
#include "core/stack_or_heap.hpp"
#include "cpu/fused.hpp"
#include "cpu/native.hpp"
#include "freeze/optimize.hpp"
#include "freeze/program.hpp"
#include "freeze/whole.hpp"
#include "ops/subprograms.hpp"

namespace th {

Tensor placeholder(DType dtype, std::int64_t ndim, std::string name) {
  if (ndim < 0) throw ValueError("placeholder: ndim must be non-negative, got " + std::to_string(ndim));
  return detail::make_leaf(detail::NodeKind::placeholder, dtype, Shape(std::size_t(ndim), -1), std::nullopt,
                           std::move(name));
}

Shared shared(const Tensor& value, std::string name) {
  // THETA_FLAGS=device=cuda puts shared variables on the GPU, as Theano's device flag did.
  const detail::Storage v = detail::transfer(detail::value_of(value, "shared"), config().device);
  // NOTE: sizes may change with set_value, so only the rank is static. Values are immutable:
  // sharing the caller's storage is a copy.
  return Shared(detail::make_leaf(detail::NodeKind::shared, v.dtype, Shape(v.shape.size(), -1), v, std::move(name)));
}

Tensor Shared::get_value() const {
  std::lock_guard<std::mutex> lock(detail::shared_values_mutex());
  return detail::make_constant(*detail::node_of(*this, "get_value").value);
}

void Shared::set_value(const Tensor& value) {
  detail::Node& n = detail::node_of(*this, "set_value");
  const detail::Storage& v = detail::value_of(value, "set_value");
  if (v.dtype != n.dtype || v.shape.size() != n.shape.size())
    throw TypeError("set_value: '" + n.name + "' is " + dtype_name(n.dtype) + " with " +
                    std::to_string(n.shape.size()) + " dimensions; got " + dtype_name(v.dtype) + " of shape " +
                    shape_str(v.shape));
  // (its stripe first, as a training call takes them: no call is using the value meanwhile)
  const std::lock_guard<std::mutex> stripe(detail::stripe_mutex(detail::lock_stripe(&n)));
  const std::lock_guard<std::mutex> lock(detail::shared_values_mutex());
  n.value = v;
}

Result::Result(std::vector<Tensor> values, bool single) : n_(values.size()), single_(single) {
  if (n_ <= kInline) std::move(values.begin(), values.end(), few_.begin());
  else many_ = std::move(values);
}

Result::Result(const Tensor* first, std::size_t n, bool single) : n_(n), single_(single) {
  if (n_ <= kInline) std::copy(first, first + n, few_.begin());
  else many_.assign(first, first + n);
}

const Tensor& Result::operator[](std::size_t i) const {
  if (i >= n_)
    throw std::out_of_range("function result: output " + std::to_string(i) + " of " + std::to_string(n_));
  return begin()[i];
}

Result::operator Tensor() const {
  if (!single_)
    throw ValueError("function result: the function was made with a list of " + std::to_string(n_) +
                     " outputs; index it (result[0])");
  return (*this)[0];
}

std::ostream& operator<<(std::ostream& os, const Result& r) {
  if (r.single()) return os << r[0];
  os << "[";
  for (std::size_t i = 0; i < r.size(); ++i) os << (i ? ", " : "") << r[i];
  return os << "]";
}

std::vector<Shared> Function::shared_variables() const {
  std::vector<Shared> r;
  auto add = [&](const std::shared_ptr<detail::Node>& n) {
    for (const Shared& s : r)
      if (s.node() == n) return;
    r.push_back(Shared(Tensor(n)));
  };
  // the program's, then those its sub-programs read or update (an ifelse branch's weights,
  // the random streams a scan body draws from)
  std::vector<const detail::Program*> todo{p_.get()};
  while (!todo.empty()) {
    const detail::Program& p = *todo.back();
    todo.pop_back();
    for (const auto& [slot, n] : p.shared) add(n);
    for (const auto& [n, slot] : p.updates) add(n);
    for (const detail::Step& s : p.steps) {
      if (const detail::Branches* b = detail::sub_as<detail::Branches>(s.attrs)) {
        todo.push_back(b->then_f.program().get());
        todo.push_back(b->else_f.program().get());
      }
      if (detail::sub_as<detail::ScanBody>(s.attrs) && s.op == &detail::scan_op())
        for (bool save : {false, true})
          if (detail::sub_as<detail::ScanBody>(s.attrs)->has_body(save)) todo.push_back(detail::sub_as<detail::ScanBody>(s.attrs)->body(save).program().get());
    }
  }
  return r;
}

Result Function::call(const std::vector<Tensor>& args) const {
  detail::StackOrHeap<const Tensor*, 8> at(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) at.data()[i] = &args[i];
  return detail::execute(*p_, at.data(), args.size());
}
Result Function::call(const Tensor* const* args, std::size_t n) const { return detail::execute(*p_, args, n); }

std::string Function::profile() const {
  struct Row {
    double sec = 0;
    std::uint64_t fell_back = 0;  // calls in which the op's fused pass ran op by op
    std::string native;           // the native tier's word on it (cpu/native.hpp), if any
  };
  std::vector<std::pair<std::string, Row>> rows;
  std::int64_t calls, timed;
  {
    std::lock_guard<std::mutex> lock(p_->prof_mu);
    calls = p_->calls.load();  // (the interpreter's; a whole program's are added below)
    timed = p_->timed_calls;
    std::unordered_map<std::string, Row> by_op;
    // The ticks' length: elapsed steady time over elapsed ticks since freezing; the timed
    // calls stand for all of them.
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - p_->time0).count();
    const std::uint64_t ticks = detail::profile_clock() - p_->ticks0;
    const double second_per_tick = ticks > 0 ? elapsed / double(ticks) : 0.0;
    // the calls the interpreter ran (a whole program's are timed apart, below)
    const detail::Whole* whole = p_->whole.load(std::memory_order_acquire);
    const std::int64_t whole_calls = whole ? whole->calls.load(std::memory_order_relaxed) : 0;
    const double scale = timed > 0 ? double(calls) / double(timed) : 0.0;
    calls += whole_calls;
    if (whole_calls > 0) {
      const std::int64_t whole_timed = whole->timed.load(std::memory_order_relaxed);
      Row& r = by_op["whole program"];
      r.sec = double(whole->ticks.load(std::memory_order_relaxed)) * second_per_tick *
              (whole_timed > 0 ? double(whole_calls) / double(whole_timed) : 0.0);
      r.native = detail::whole_state_line(*p_);
    }
    for (std::size_t k = 0; k < p_->steps.size(); ++k) {
      Row& r = by_op[detail::step_name(p_->steps[k])];
      r.sec += p_->prof_ticks[k] * second_per_tick * scale;
      r.fell_back += p_->fallbacks[k].load(std::memory_order_relaxed);
      if (const detail::Step& st = p_->steps[k]; st.fused)
        if (const auto* nk = st.fused->native.kernel.load(std::memory_order_relaxed))
          r.native = detail::cpu::native_state_line(*nk);
    }
    rows.assign(by_op.begin(), by_op.end());
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.sec > b.second.sec; });
  double total = 0;
  for (auto& r : rows) total += r.second.sec;
  std::ostringstream os;
  os << "profile: " << calls << " calls (" << timed << " timed), " << p_->steps.size() << " steps, " << total * 1e3
     << " ms in ops\n";
  for (auto& [name, r] : rows) {
    os << "  " << name << ": " << r.sec * 1e3 << " ms (" << (total > 0 ? 100 * r.sec / total : 0) << "%), "
       << (calls ? r.sec * 1e6 / double(calls) : 0) << " us/call";
    if (r.fell_back) os << ", op by op in " << r.fell_back << " calls (its inputs did not fit one pass)";
    if (!r.native.empty()) os << ", " << r.native;
    if (name == "whole program") os << " (every step, as one compiled function)";
    os << "\n";
  }
  if (const detail::Whole* w = p_->whole.load(std::memory_order_acquire); w && !w->why.empty())
    os << "  whole program: interpreted (" << w->why << ")\n";  // why the native tier could not take it all
  return os.str();
}

Function function(const std::vector<Tensor>& inputs, const Tensor& output, const Updates& updates,
                  const Options& options) {
  return Function(detail::freeze(inputs, {output}, true, updates, options));
}
Function function(const std::vector<Tensor>& inputs, std::initializer_list<Tensor> outputs, const Updates& updates,
                  const Options& options) {
  return Function(detail::freeze(inputs, std::vector<Tensor>(outputs), false, updates, options));
}
Function function(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const Updates& updates,
                  const Options& options) {
  return Function(detail::freeze(inputs, outputs, false, updates, options));
}

}  // namespace th
