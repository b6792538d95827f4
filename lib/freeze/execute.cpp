// The executor: one call of a frozen Program on a frame (arguments in, shared values read,
// the steps run, results and updates out), with the frames pooled between calls and the
// shared variables' lock stripes held for a call that updates them.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <cmath>
#include <mutex>
#include <optional>
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

namespace th::detail {

namespace {

// The lock stripes of shared variables (program.hpp: lock_stripe).
std::mutex g_stripes[kStripes];
}  // namespace

std::mutex& stripe_mutex(std::size_t k) { return g_stripes[k]; }

namespace {

std::string input_label(const Program& p, std::size_t i) {
  return "input " + std::to_string(i) + (p.input_names[i].empty() ? "" : " '" + p.input_names[i] + "'");
}

// The argument as the input's declared dtype, into `into` (assigned: its vectors reused).
void convert_argument(const Program& p, std::size_t i, const Tensor& arg, Storage& into) {
  const Storage& v = value_of(arg, "function call");
  const Meta& want = p.input_meta[i];
  if (v.shape.size() != want.shape.size())
    throw TypeError("function: " + input_label(p, i) + " expects a " + std::to_string(want.shape.size()) +
                    "-d tensor, got shape " + shape_str(v.shape));
  for (std::size_t d = 0; d < v.shape.size(); ++d)  // sizes fixed when the input was declared (an ONNX model's)
    if (want.shape[d] >= 0 && v.shape[d] != want.shape[d])
      throw ShapeError("function: " + input_label(p, i) + " has the fixed shape " + shape_str(want.shape) + ", got " +
                       shape_str(v.shape));
  if (v.dtype == want.dtype) {
    assign_view(into, v);
    return;
  }
  Storage c = contiguous_as(v, want.dtype);
  bool ok = lossless(v.dtype, want.dtype) || p.options.allow_input_downcast;
  if (!ok && v.shape.empty()) {  // a 0-d value that converts exactly is fine (a C++ literal 0.5)
    Storage back = transfer(contiguous_as(c, v.dtype), th::cpu()), orig = transfer(v, th::cpu());
    ok = std::memcmp(back.bytes(), orig.bytes(), dtype_size(v.dtype)) == 0;
  }
  if (!ok)
    throw TypeError("function: " + input_label(p, i) + " is " + dtype_name(want.dtype) + " but got a " +
                    dtype_name(v.dtype) + " argument, which would lose precision (convert it, or set "
                    "options.allow_input_downcast)");
  into = std::move(c);
}

// The stripes of a call's shared variables, locked in index order for the whole call.
struct StripeLocks {
  const std::vector<std::size_t>& stripes;
  explicit StripeLocks(const std::vector<std::size_t>& s) : stripes(s) {
    for (std::size_t k : stripes) g_stripes[k].lock();
  }
  ~StripeLocks() {
    for (std::size_t k = stripes.size(); k-- > 0;) g_stripes[stripes[k]].unlock();
  }
  StripeLocks(const StripeLocks&) = delete;
  StripeLocks& operator=(const StripeLocks&) = delete;
};

// A fused step in one pass (cpu::run_fused, or one generated kernel on a GPU); false when
// its inputs do not allow it (on different devices, broadcasting other than of single
// elements, strided views, or shapes that do not broadcast: the members then run one by one
// and raise the usual error). `reduced`: its folded sums and their tail were computed too
// (on the CPU; otherwise the caller runs them).
// With `fit` (CPU calls whose layouts equal the frame's last call): a known fit is
// taken as is, else the one found is stored there.
// The results are written into their slots in place, each slot's buffer from the last call
// taken over when it may be; when the pass refuses, the members overwrite them.
bool run_fused(const Step& s, std::vector<Storage>& vals, cpu::FusedFit* fit, bool& reduced) {
  // reused: this runs for every fused step
  thread_local std::vector<const Storage*> in, outs;
  thread_local cpu::FusedEpilogue epi;
  thread_local Storage like;  // the pass's shape (no buffer)
  static const Shape scalar;
  in.clear();
  reduced = false;
  const Device device = s.in.empty() ? th::cpu() : vals[s.in[0]].device();
  const bool on_cpu = device.type == Device::Type::cpu;
  for (std::size_t slot : s.in) in.push_back(&vals[slot]);
  if (fit && fit->known) {
    if (!fit->fits) return false;
  } else {
    Shape& shape = fit ? fit->shape : like.shape;
    shape.clear();
    bool ok = true;
    for (const Storage* v : in) ok = ok && v->device() == device && broadcast_into(shape, v->shape) < 0;
    if (!ok) {
      if (fit) fit->known = true, fit->fits = false;
      return false;
    }
  }
  if (fit && !same_dims(like.shape, fit->shape)) like.shape = fit->shape;
  const Shape& shape = like.shape;
  const Fused& f = *s.fused;
  outs.clear();
  for (std::size_t k = 0; k < f.out_slots.size(); ++k) {
    Storage& y = vals[f.out_slots[k]];
    const bool unread = on_cpu && !f.unread.empty() && f.unread[k];  // only reduced: never written
    if (!unread) renew_storage(y, f.dtype, shape, device);
    outs.push_back(unread ? nullptr : &y);
  }
  epi.sum_instr.clear();
  epi.sums.clear();
  epi.tail_outs.clear();
  epi.tail = &f.tail;
  if (on_cpu) {
    for (const Fused::Reduction& r : f.reductions) {
      renew_storage(vals[r.step.out], f.dtype, scalar, device);
      epi.sums.push_back(&vals[r.step.out]);
      epi.sum_instr.push_back(f.out_instr[r.head]);
    }
    for (const Step& t : f.tail_steps) {
      renew_storage(vals[t.out], f.dtype, scalar, device);
      epi.tail_outs.push_back(&vals[t.out]);
    }
  }
  const bool done = on_cpu ? cpu::run_fused(f.code, f.dtype, in, f.out_instr, outs, like, fit, &epi)
                           : cuda_run_fused(f.code, f.dtype, in, f.out_instr, outs);
  reduced = done && on_cpu;
  if (done && fit && fit->native && f.native.kernel.load(std::memory_order_relaxed) != fit->native)
    f.native.kernel.store(fit->native, std::memory_order_relaxed);
  return done;
}

}  // namespace

namespace {
// A last call's result node the caller let go of, made a plain constant again, as
// make_constant leaves a node (the caller may have named or recorded it).
void reset_result_node(Node& n) {
  n.kind = NodeKind::constant;
  n.recorded = false;
  if (!n.name.empty()) n.name.clear();
}

// `r` := a constant tensor holding `v`: in r's node when nothing else holds it (the caller
// let go of the last call's result; `alone`: known so since the call started), its fields
// assigned in place; else in a new node.
void set_result(Tensor& r, bool alone, const Storage& v) {
  const std::shared_ptr<Node>& node = r.node();
  if (!node || !(alone || held_alone(node)) || !node->value) {
    r = make_constant(v);
    return;
  }
  Node& n = *node;
  reset_result_node(n);
  n.dtype = v.dtype;
  if (!same_dims(n.shape, v.shape)) n.shape = v.shape;
  assign_view(*n.value, v);
}

// The frame a call runs on, from the program's pool (a new one when every frame is in use
// by another call). On the way out, exception or not, each value is let go of unless the
// frame keeps it for the next call (retire_all), and the frame goes back to the pool.
struct Lease {
  const Program& p;
  std::unique_ptr<Frame> f;
  bool completed = false;  // counted in p.calls
  explicit Lease(const Program& prog) : p(prog) {
    // (acquire: the last call's writes to the frame, on whichever thread, come before ours)
    f.reset(p.hot.exchange(nullptr, std::memory_order_acquire));
    if (!f) {
      std::lock_guard<std::mutex> lock(p.frames_mu);
      if (!p.frames.empty()) f = std::move(p.frames.back()), p.frames.pop_back();
    }
    if (!f) f = std::make_unique<Frame>();
  }
  ~Lease() {
    offer_for_reuse(nullptr);
    retire_all(p, *f);
    for (Storage& v : f->fresh) v.buf.reset();
    if (completed) p.calls.fetch_add(1, std::memory_order_relaxed);
    Frame* none = nullptr;
    if (p.hot.compare_exchange_strong(none, f.get(), std::memory_order_release, std::memory_order_relaxed)) {
      f.release();  // the program's now
      return;
    }
    std::lock_guard<std::mutex> lock(p.frames_mu);
    p.frames.push_back(std::move(f));
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
};

// One call of a program on a frame, in the order execute() takes its parts: the values
// in (arguments, shared values, constants), the buffers of the last call taken back, the
// steps, then the results and updates out.
class Call {
 public:
  Call(const Program& p, Frame& fr) : p_(p), fr_(fr), vals_(fr.vals) {}

  // The arguments, converted to the inputs' dtypes (before any lock is taken).
  void arguments(const Tensor* const* args, std::size_t n) {
    vals_.resize(p_.slots);
    fr_.alias.resize(p_.slots, kNoSlot);
    fr_.exposed.resize(p_.slots, 0);
    fr_.retired.assign(p_.slots, 0);
    for (std::size_t i = 0; i < n; ++i) convert_argument(p_, i, *args[i], vals_[p_.input_slots[i]]);
  }

  // The shared values; the device the call runs on (the GPU its arguments or shared
  // variables live on), with the function's constants there (copied to a GPU once and kept:
  // no host traffic on later calls).
  void shared_and_constants() {
    if (!p_.shared.empty()) {
      std::lock_guard<std::mutex> lock(shared_values_mutex());
      for (const auto& [s, n] : p_.shared) assign_view(vals_[s], *n->value);
    }
    for (std::size_t s : p_.input_slots)
      if (vals_[s].device() != th::cpu()) device_ = vals_[s].device();
    for (const auto& sh : p_.shared)
      if (vals_[sh.first].device() != th::cpu()) device_ = vals_[sh.first].device();
    if (device_ == th::cpu() || p_.constants.empty()) {
      for (const auto& [s, v] : p_.constants)
        if (vals_[s].buf != v.buf) vals_[s] = v;  // a frame keeps the constants (retire)
      return;
    }
    std::lock_guard<std::mutex> lock(p_.device_constants_mu);
    std::vector<Storage>& on = p_.device_constants[device_.index];
    if (on.empty())
      for (const auto& c : p_.constants) on.push_back(transfer(c.second, device_));
    for (std::size_t i = 0; i < on.size(); ++i) vals_[p_.constants[i].first] = on[i];
  }

  // A result of this frame's last call that the caller has let go of gives its buffer back
  // to the slot it came from, for the step writing it (an output that is an argument, a
  // shared value or a constant is not written by a step: its buffer is not the frame's,
  // and the result lets go of it).
  // Then kept buffers others may have seen are taken once this thread is ordered after
  // their last use, else let go of (a step must not write a buffer another thread reads).
  void take_back() {
    fr_.results.resize(p_.outputs.size());
    fr_.result_alone.assign(p_.outputs.size(), 0);
    for (std::size_t i = 0; i < p_.outputs.size(); ++i) {
      const std::size_t s = p_.outputs[i];
      const std::shared_ptr<Node>& node = fr_.results[i].node();
      if (!node || !held_alone(node) || !node->value) continue;
      fr_.result_alone[i] = 1;
      if (p_.made[s] && !vals_[s].buf && fr_.alias[s] == kNoSlot) {
        vals_[s].buf = std::move(node->value->buf);
        fr_.exposed[s] = 1;  // views of it may have gone elsewhere
      } else {
        // the frame kept it too, it is a view of another slot's, or it is an argument's,
        // shared value's or constant's (let go of: the update that replaced a returned
        // shared value writes into its buffer next)
        node->value->buf.reset();
      }
    }
    for_held(p_, fr_.fell_back, [&](std::size_t s) {
      if (fr_.exposed[s] && p_.made[s]) {  // (the arguments and shared values are in place already)
        if (!held_alone(vals_[s].buf)) vals_[s].buf.reset();
        fr_.exposed[s] = 0;
      }
    });
  }

  // Same argument and shared-value shapes and strides as this frame's last complete CPU
  // call: every step sees the layouts it saw then, so its output meta is the one recorded
  // then and its kernel runs without the op's shape rule (which accepted these shapes), and
  // a fused step's fit is the one found then. Otherwise the rules run and the metas and
  // fits are recorded (used once the call completes).
  void compare_layouts() {
    guard_ = p_.options.mode != Mode::fast || config().mode != Mode::fast;
    same_ = fr_.known && !guard_ && device_ == th::cpu();
    std::size_t q = 0;
    auto key = [&](const Storage& v) {
      for (const Shape* part : {&v.shape, &v.strides}) {
        if (q == fr_.layouts.size()) fr_.layouts.emplace_back();
        if (!same_dims(fr_.layouts[q], *part)) {
          same_ = false;
          fr_.layouts[q] = *part;
        }
        ++q;
      }
    };
    for (std::size_t s : p_.input_slots) key(vals_[s]);
    for (const auto& sh : p_.shared) key(vals_[sh.first]);
    fr_.known = false;  // until this call completes
    fr_.out_meta.resize(p_.slots);
    fr_.fits.resize(p_.steps.size());
    if (!same_)
      for (cpu::FusedFit& f : fr_.fits) f.known = false;
  }

  // The steps, each one's dead values retired after it. The profile times every step of
  // one call in kProfileEvery of each frame (its first included): one clock read per step.
  void steps() {
    std::vector<double>& ticks = fr_.ticks;
    timed_ = fr_.calls++ % kProfileEvery == 0;
    if (timed_) ticks.assign(p_.steps.size(), 0.0);
    std::uint64_t t0 = timed_ ? profile_clock() : 0;
    for (std::size_t k = 0; k < p_.steps.size(); ++k) {
      const Step& s = p_.steps[k];
      if (same_ && p_.shape_only[k] && has_value(vals_[s.out])) {
        // its value from the last call, which had these shapes: the frame kept it
      } else if (!s.fused) {
        run_one(s);
      } else if (guard_) {
        fr_.fell_back = true;
        for (const Step& m : s.fused->members) run_one(m);  // one op at a time, each checked
        run_epilogue(*s.fused);
      } else if (!run_chain(s, device_ == th::cpu() ? &fr_.fits[k] : nullptr)) {
        p_.fallbacks[k].fetch_add(1, std::memory_order_relaxed);
      }
      for (std::size_t dead : p_.release[k]) retire(p_, fr_, dead);
      if (timed_) {
        const std::uint64_t t1 = profile_clock();
        ticks[k] = double(t1 - t0);
        t0 = t1;
      }
    }
  }

  // The updates' new values, then the results, then the updates applied: nothing after
  // the first update is applied may throw, so a call that throws changes no shared value.
  Result finish() {
    // every new value is computed before any is applied (ranks and dtypes were checked
    // when freezing; ranks cannot change at run time)
    std::vector<Storage>& fresh = fr_.fresh;
    fresh.resize(p_.updates.size());
    for (std::size_t i = 0; i < p_.updates.size(); ++i) {
      const auto& [n, s] = p_.updates[i];
      if (vals_[s].dtype == n->dtype) assign_view(fresh[i], vals_[s]);
      else fresh[i] = contiguous_as(vals_[s], n->dtype);
    }
    // The frame keeps the small results (a loss, a metric) to reuse; a large one is the
    // caller's alone, so that its memory goes when the caller lets go of it.
    for (std::size_t i = 0; i < p_.outputs.size(); ++i)
      set_result(fr_.results[i], fr_.result_alone[i], vals_[p_.outputs[i]]);
    Result result(fr_.results.data(), fr_.results.size(), p_.single);
    for (Tensor& r : fr_.results)
      if (r.node()->value->buf && r.node()->value->buf->bytes > kKeepBytes) r = Tensor();
    if (!fresh.empty()) apply_updates();
    return result;
  }

  // This call had the layouts of the frame's last complete call (a warm CPU call).
  bool warm() const { return same_; }

  // After a completed call: the profile's share, and whether the next call may take the
  // recorded metas and fits.
  void completed() {
    if (timed_) {
      std::lock_guard<std::mutex> lock(p_.prof_mu);
      for (std::size_t k = 0; k < fr_.ticks.size(); ++k) p_.prof_ticks[k] += fr_.ticks[k];
      ++p_.timed_calls;
    }
    fr_.known = device_ == th::cpu() && !guard_;
  }

 private:
  void apply_updates() {
    std::vector<Storage>& fresh = fr_.fresh;
    std::lock_guard<std::mutex> lock(shared_values_mutex());
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      Node& n = *p_.updates[i].first;
      if (!n.value) {
        n.value = fresh[i];
        continue;
      }
      // the new buffer swapped in, the layout assigned into the vectors already there
      Storage& cur = *n.value;
      cur.buf.swap(fresh[i].buf);
      assign_layout(cur, fresh[i]);
    }
    // The replaced buffers go to the slots that computed the new values: the next call
    // writes its update into the buffer this call retired (retire_all keeps it when nothing
    // else holds it), so updates alternate between two buffers without allocating. The
    // others leave with `fresh` when the call ends.
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      const std::size_t s = p_.updates[i].second;
      if (p_.made[s] && fresh[i].buf && vals_[s].buf == p_.updates[i].first->value->buf) {
        vals_[s].buf = std::move(fresh[i].buf);
        fr_.exposed[s] = 1;  // it was a shared value: any thread may have read it
      }
    }
  }

  // A step whose output meta is known: its kernel, straight (inlined, as run_one, into the
  // step loop: a warm call of a small function is mostly this path).
  __attribute__((always_inline)) void run_known(const Step& s, const Meta& out) {
    OperandScratch scratch;
    std::vector<const Storage*>& in = scratch.values();
    for (std::size_t slot : s.in) in.push_back(&vals_[slot]);
    offer_for_reuse(&vals_[s.out]);  // the slot's value from the last call
    vals_[s.out] = s.op->forward(*s.op, in, s.attrs, out);
    offer_for_reuse(nullptr);
    note_output(fr_, s);
  }

  // A step through its op's shape rule (its output meta recorded in `inferred`).
  void run_step(const Step& s, Meta* inferred) {
    OperandScratch scratch;
    std::vector<const Storage*>& in = scratch.values();
    std::vector<Meta>& metas = scratch.metas(s.in.size());
    for (std::size_t j = 0; j < s.in.size(); ++j) {
      const Storage& v = vals_[s.in[j]];
      in.push_back(&v);
      metas[j].dtype = v.dtype;
      metas[j].shape = v.shape;
      metas[j].name = s.names[j];
    }
    offer_for_reuse(&vals_[s.out]);  // the slot's value from the last call
    vals_[s.out] = run_op(*s.op, in, metas, s.attrs, inferred);
    offer_for_reuse(nullptr);
    note_output(fr_, s);
    if (guard_) check_finite(*s.op, vals_[s.out], metas);
  }

  // A step run op by op (also a fused step's member when the pass falls back): with the
  // layouts of the last call, its output meta from then; else the shape rule's, recorded.
  __attribute__((always_inline)) void run_one(const Step& s) {
    if (same_) run_known(s, fr_.out_meta[s.out]);
    else run_step(s, &fr_.out_meta[s.out]);
  }

  // A chain that computes nothing (broadcast_like / sum_to_like of one value, as th::grad
  // writes for operands that might broadcast) whose result has that value's shape and dtype
  // at this call: the value itself, its buffer shared (a view, in the memory plan's terms:
  // note_output records the owner, so retiring frees nothing of the caller's and no step
  // writes into it; renew_storage takes a buffer over only when nothing else holds it).
  // Otherwise (a real broadcast or sum) the pass runs.
  bool alias_plumbing(const Step& s) {
    const Fused& f = *s.fused;
    if (f.out_slots.size() != 1 || !f.reductions.empty() || !f.tail.empty() || f.out_instr.size() != 1) return false;
    int o = f.out_instr[0];
    while (o >= 0) {
      const FusedInstr& in = f.code[std::size_t(o)];
      if (!in.identity()) return false;
      o = in.a;
    }
    const std::size_t src = s.in[std::size_t(-1 - o)];
    const Storage& v = vals_[src];
    if (!v.buf || !v.buf->data || v.dtype != f.dtype || !v.contiguous()) return false;
    for (std::size_t slot : s.in)  // every operand (the shape-only ones too) of v's very shape: no broadcast, no sum
      if (vals_[slot].device() != v.device() || !same_dims(vals_[slot].shape, v.shape)) return false;
    vals_[s.out] = v;
    fr_.alias[s.out] = fr_.alias[src] == kNoSlot ? src : fr_.alias[src];
    return true;
  }

  // A fused step's sums and the steps on them, one by one (after its chains ran so).
  void run_epilogue(const Fused& f) {
    for (const Fused::Reduction& r : f.reductions) run_one(r.step);
    for (const Step& t : f.tail_steps) run_one(t);
  }

  // A fused step in one pass where its inputs fit; else a merged step's chains one by one
  // (each fused where it fits), else its ops one by one. False when it did not run as one
  // pass (the profile counts those calls).
  bool run_chain(const Step& s, cpu::FusedFit* fit) {
    if (!s.fused) {
      run_one(s);
      return true;
    }
    if (alias_plumbing(s)) return true;
    bool reduced = false;
    bool one_pass = true;
    if (run_fused(s, vals_, fit, reduced)) {  // its results in buffers of their own
      for (std::size_t o : s.fused->out_slots) fr_.alias[o] = kNoSlot;
      if (reduced) {
        for (const Fused::Reduction& r : s.fused->reductions) fr_.alias[r.step.out] = kNoSlot;
        for (const Step& t : s.fused->tail_steps) fr_.alias[t.out] = kNoSlot;
      }
    } else {
      one_pass = false;
      fr_.fell_back = true;
      if (s.fused->parts.empty())
        for (const Step& m : s.fused->members) run_one(m);
      else
        for (const Step& part : s.fused->parts) run_chain(part, nullptr);
    }
    if (!reduced) run_epilogue(*s.fused);
    return one_pass;
  }

  const Program& p_;
  Frame& fr_;
  std::vector<Storage>& vals_;
  Device device_ = th::cpu();
  bool guard_ = false;  // NaN guard or debug mode: every op checked, nothing fused
  bool same_ = false;   // the layouts of this frame's last complete call (compare_layouts)
  bool timed_ = false;  // the profile times this call's steps
};
}  // namespace

namespace {
// A call by the whole program's compiled code (freeze/whole.hpp), when it is ready, no other
// call is running it, and the arguments and shared values have the layouts it was planned
// for; nothing (and nothing done) otherwise, and the interpreter runs the call. As the
// interpreter: the shared variables' stripes held for the whole call, the shared values
// read under them or under the values' lock, every new value computed before any is
// applied (under the values' lock), the results' tensors and buffers and the updates' spare
// buffers reused only when nothing else holds them.
std::optional<Result> run_whole(const Program& p, const Tensor* const* args) {
  Whole* w = p.whole.load(std::memory_order_acquire);
  if (!w || !w->kernel) return std::nullopt;
  const cpu::NativeProgramFn fn = cpu::program_fn(*w->kernel);
  const Config& cfg = config();
  if (!fn || cfg.mode != Mode::fast || p.options.mode != Mode::fast || cfg.native == NativeMode::off) return std::nullopt;
  // One call at a time runs it: a training call holds its variables' stripes anyway (and
  // reads their values under them alone: their writers hold them too), others take `busy`.
  const bool striped = !p.stripes.empty();
  std::optional<StripeLocks> held;
  if (striped) held.emplace(p.stripes);
  else if (w->busy.exchange(true, std::memory_order_acquire)) return std::nullopt;
  struct Busy {
    std::atomic<bool>* b;
    ~Busy() {
      if (b) b->store(false, std::memory_order_release);
    }
  } busy{striped ? nullptr : &w->busy};
  void** table = w->table.data();
  auto fits = [](const Storage& v, const Whole::In& in) {
    return v.dtype == in.dtype && v.buf && v.buf->data && v.buf->device.type == Device::Type::cpu &&
           same_dims(v.shape, in.shape) && same_dims(v.strides, in.strides);
  };
  for (std::size_t i = 0; i < w->args.size(); ++i) {
    const Node* node = args[i]->node().get();
    if (!node || !node->value || !fits(*node->value, w->args[i])) return std::nullopt;
    table[w->args[i].ref] = node->value->bytes();
  }
  struct Holds {  // without the stripes: the shared values' buffers, held while the call reads them
    std::vector<Whole::In>* vars;
    ~Holds() {
      if (vars)
        for (Whole::In& v : *vars) v.hold.reset();
    }
  } holds{striped ? nullptr : &w->vars};
  if (!w->vars.empty()) {
    std::unique_lock<std::mutex> lock(shared_values_mutex(), std::defer_lock);
    if (!striped) lock.lock();
    for (Whole::In& v : w->vars) {
      if (!v.node->value || !fits(*v.node->value, v)) return std::nullopt;
      if (!striped) v.hold = v.node->value->buf;
      table[v.ref] = v.node->value->bytes();
    }
  }
  // The results: last call's tensor and buffer when the caller let go of both, else new.
  for (std::size_t i = 0; i < w->outs.size(); ++i) {
    const Whole::Out& o = w->outs[i];
    Tensor& r = w->results[i];
    const std::shared_ptr<Node>& node = r.node();
    if (node && held_alone(node) && node->value && held_alone(node->value->buf)) {
      reset_result_node(*node);
    } else {
      r = make_constant(alloc_storage(o.dtype, o.shape, th::cpu()));
    }
    table[o.ref] = r.node()->value->bytes();
  }
  for (Whole::Out& u : w->updates) {
    if (!held_alone(u.spare)) u.spare = alloc_storage(u.dtype, u.shape, th::cpu()).buf;
    table[u.ref] = u.spare->data;
  }
  for (const auto& [v, of] : w->views) table[v] = table[of];
  const std::int64_t calls = w->calls.load(std::memory_order_relaxed);
  const bool timed = calls % std::int64_t(kProfileEvery) == 0;
  const std::uint64_t t0 = timed ? profile_clock() : 0;
  fn(table);
  if (timed) {
    w->ticks.store(w->ticks.load(std::memory_order_relaxed) + (profile_clock() - t0), std::memory_order_relaxed);
    w->timed.store(w->timed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  if (!w->updates.empty()) {
    std::lock_guard<std::mutex> lock(shared_values_mutex());
    for (Whole::Out& u : w->updates) {
      Node& n = *u.node;
      if (!n.value) n.value.emplace();
      Storage& cur = *n.value;
      cur.buf.swap(u.spare);  // the replaced buffer is the next call's spare, when nothing else holds it
      cur.dtype = u.dtype;
      cur.offset = 0;
      if (!same_dims(cur.shape, u.shape)) cur.shape = u.shape;
      if (!same_dims(cur.strides, u.strides)) cur.strides = u.strides;
    }
  }
  Result result(w->results.data(), w->results.size(), p.single);
  for (Tensor& r : w->results)  // a large result is the caller's alone (as the interpreter's)
    if (r.node()->value->buf->bytes > kKeepBytes) r = Tensor();
  w->calls.store(calls + 1, std::memory_order_relaxed);  // (profile() adds them to the interpreter's)
  return result;
}
}  // namespace

Result execute(const Program& p, const Tensor* const* args, std::size_t n) {
  if (n != p.input_slots.size())
    throw TypeError("function: expected " + std::to_string(p.input_slots.size()) + " arguments, got " +
                    std::to_string(n));
  if (p.whole.load(std::memory_order_relaxed))
    if (std::optional<Result> r = run_whole(p, args)) return std::move(*r);
  Lease lease(p);
  Call call(p, *lease.f);
  call.arguments(args, n);
  const StripeLocks held(p.stripes);  // until the updates are applied
  call.shared_and_constants();
  call.take_back();
  call.compare_layouts();
  call.steps();
  Result result = call.finish();
  lease.completed = true;
  call.completed();
  // A warm call (the layouts of the last): the program may run whole (freeze/whole.hpp).
  if (call.warm() && p.whole_state.load(std::memory_order_relaxed) == 0) plan_whole(p, *lease.f);
  if (const Whole* w = p.whole.load(std::memory_order_acquire); w && w->kernel) cpu::native_heat(*w->kernel, w->work);
  return result;
}

}  // namespace th::detail
