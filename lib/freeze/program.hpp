// The frozen form of a function: an immutable list of steps over numbered value slots,
// built by freeze() from the recorded graph (lib/freeze/freeze.cpp) and run by execute()
// (lib/freeze/execute.cpp); lib/freeze/function.cpp is th::Function over them.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "cpu/fused.hpp"
#include "ops/op.hpp"
#include "theta/function.hpp"

namespace th::detail {

struct Fused;
struct Whole;  // freeze/whole.hpp
void delete_whole(Whole* w);

struct Step {
  const Op* op;
  Attrs attrs;
  std::vector<std::size_t> in;     // input slots
  std::size_t out;                 // output slot
  std::vector<std::string> names;  // operand display names, for run-time errors
  std::shared_ptr<const Fused> fused = {};  // set on fused steps (op is then fused_op())
};

/// A fused elementwise chain (rewrite_fuse.cpp): the kernel program over the step's inputs,
/// the slots it writes (out_slots, with the instructions whose results they get in
/// out_instr; the step's `out` among them; several
/// when chains reading the same inputs were merged), and the original steps, run one by
/// one when the inputs do not fit the fused kernel (non-scalar broadcasting, strided views)
/// or when the NaN guard must check every op. A merged step keeps its chains as `parts`
/// and falls back to them first.
struct Fused {
  /// The native-tier record (cpu/native.hpp) this step's CPU pass last used, for debugprint
  /// and profile: set by the calls; a copied step starts without one.
  struct NativeSeen {
    mutable std::atomic<cpu::NativeKernel*> kernel{nullptr};
    NativeSeen() = default;
    NativeSeen(const NativeSeen&) {}
    NativeSeen& operator=(const NativeSeen&) { return *this; }
  };
  std::vector<FusedInstr> code;
  DType dtype;
  std::vector<Step> members;
  std::vector<std::size_t> out_slots;
  std::vector<int> out_instr;
  std::vector<Step> parts;
  /// Whole sums of the chain's results folded into the step (rewrite_fuse_reduce.cpp): slot
  /// step.out gets the sum of out_slots[head]'s values; `step` is the original sum, run
  /// after the chain when the step does not run as one CPU pass (a fallback, the NaN guard,
  /// a GPU).
  struct Reduction {
    std::size_t head;
    Step step;
  };
  std::vector<Reduction> reductions;
  /// Elementwise steps on one-element values after the sums (a mean's division), moved in
  /// by rewrite_fuse_reduce.cpp: `tail` computes them on the CPU (operands >= 0: the sums,
  /// then earlier tail results; < 0: the step's inputs, one element each); `tail_steps` are
  /// the original steps, run after the sums when the step does not run as one CPU pass.
  std::vector<FusedInstr> tail;
  std::vector<Step> tail_steps;
  /// Per head: read by nothing but folded reductions, so the CPU pass leaves it unwritten.
  std::vector<bool> unread;
  NativeSeen native;
};

/// The Op of fused steps (it is never run itself).
const Op& fused_op();
/// A step's name in debugprint, to_dot and profiles: its op, or "fused[mul add tanh]".
std::string step_name(const Step& s);

/// A call's working state: the slots' values and the executor's scratch. Programs keep a
/// pool of them between calls (one per concurrent call), so a repeated call reuses the
/// vectors and the small buffers its steps wrote last time (plan_memory's `keep`).
struct Frame {
  std::vector<Storage> vals;
  std::vector<double> ticks;  // each step's time in this call (profile_clock ticks)
  std::vector<Storage> fresh;
  // The last complete CPU call's argument and shared-value layouts, and the meta of each
  // slot a step wrote in it: a call with the same layouts runs the steps' kernels (fused
  // steps' members too, when a pass falls back) without shape rules and its fused steps
  // without checking their inputs' fit again.
  bool known = false;
  std::vector<Shape> layouts;  // each argument's and shared value's shape, then strides
  std::vector<Meta> out_meta;  // per slot
  // Per slot: the slot owning the buffer its value is a view of (kNoSlot: its own), and
  // whether its last reader ran in this call (memory_plan.cpp: retire).
  std::vector<std::size_t> alias;
  std::vector<char> retired;
  // Per slot: its kept buffer may have been seen by other threads (it was a result, an
  // update's value or shared with one when the call ended): the next call takes it only
  // after held_alone() (storage.hpp) orders their reads before its writes.
  std::vector<char> exposed;
  std::vector<cpu::FusedFit> fits;  // per fused step: its inputs' fit in that call
  std::uint64_t calls = 0;          // calls made with this frame (the profile samples them)
  // The tensors this frame's last call returned: one the caller has let go of (held by the
  // frame alone) is the next call's result again, its buffer back in its slot for the step
  // that writes it (a warm call allocates no tensor, list or buffer for its results).
  std::vector<Tensor> results;
  std::vector<char> result_alone;  // per result: found held by the frame alone in this call
  // A fused pass of this frame's ran op by op (its inputs did not fit, or the NaN guard): its
  // members' slots may hold values, so the walks over held slots take p.held_fallback too.
  bool fell_back = false;
};

/// The profile times the steps of one call in this many of each frame's calls.
constexpr std::uint64_t kProfileEvery = 16;

struct Program {
  std::size_t slots = 0;
  std::vector<std::size_t> input_slots;
  std::vector<Meta> input_meta;  // declared dtype and rank
  std::vector<std::string> input_names;
  std::vector<std::pair<std::size_t, Storage>> constants;
  std::vector<std::pair<std::size_t, std::shared_ptr<Node>>> shared;  // read at each call
  std::vector<Step> steps;
  std::vector<std::size_t> outputs;
  bool single = false;
  std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> updates;  // shared node <- slot
  std::vector<std::size_t> stripes;  // lock stripes held for a whole call (functions with updates)
  std::vector<DType> slot_dtype;     // static dtype of every slot
  std::vector<Shape> slot_shape;     // static shape of every slot (-1: known at run time)
  std::vector<std::pair<std::string, int>> rewrites;  // freeze-time rewrites that fired, with counts
  std::vector<std::vector<std::size_t>> release;     // per step: slots no later step reads (plan_memory)
  std::vector<char> made;                            // slots steps write (their buffers may stay with a frame)
  std::vector<std::size_t> held;                     // slots a call may leave holding a value, constants aside,
  std::vector<std::size_t> held_fallback;            // but for these, written only when a fused pass runs op by op
  std::vector<char> exposable;                       // outputs and updates' slots: their values leave the call
  std::vector<char> shape_only;                      // per step: its value depends on its operands' shapes alone
  std::vector<char> constant_slot;                   // slots holding constants (the program's own buffers)
  mutable std::mutex frames_mu;
  mutable std::vector<std::unique_ptr<Frame>> frames;  // idle frames, for the next calls
  // The last idle frame, taken and given back without the lock (one call at a time, the
  // common case, touches no mutex for its frame); owned by the program while it is here.
  mutable std::atomic<Frame*> hot{nullptr};
  Options options;
  mutable std::mutex device_constants_mu;
  mutable std::map<int, std::vector<Storage>> device_constants;  // constants copied to each GPU used
  mutable std::mutex prof_mu;
  mutable std::vector<double> prof_ticks;  // per step, in profile_clock() ticks
  // per step: the calls in which its fused pass did not fit its inputs and ran op by op
  std::unique_ptr<std::atomic<std::uint64_t>[]> fallbacks;
  std::uint64_t ticks0 = 0;                // profile_clock() and steady time at freeze: their
  std::chrono::steady_clock::time_point time0;  // rates give the ticks' length
  // The native tier's whole-program plan (freeze/whole.hpp), made once after a warm call
  // (whole_state 0: not tried yet; 1: tried, `whole` set when done), owned by the program.
  mutable std::atomic<int> whole_state{0};
  mutable std::atomic<Whole*> whole{nullptr};
  mutable std::atomic<std::int64_t> calls = 0;
  mutable std::int64_t timed_calls = 0;  // the calls whose steps were timed (prof_mu)

  Program() = default;
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program() {
    delete hot.load();
    delete_whole(whole.load());
  }
};

/// Calls of functions with updates hold the locks of every shared variable they read or
/// write for the whole call (read, compute, apply), taken in index order, so concurrent
/// training calls are serializable and never lose an update: kStripes mutexes, a shared
/// variable's picked by its node's address (Program::stripes, freeze/execute.cpp).
constexpr std::size_t kStripes = 64;
inline std::size_t lock_stripe(const Node* n) { return (reinterpret_cast<std::uintptr_t>(n) >> 4) % kStripes; }
/// Stripe k's mutex. Shared::set_value holds its variable's too: a call holding a stripe
/// is the only writer of its variables' values, and reads them without the values' lock.
std::mutex& stripe_mutex(std::size_t k);

/// A new slot of the given static type (rewrites that add steps use it).
std::size_t new_slot(Program& p, DType dtype, Shape shape);

/// The profile's clock: the CPU's time-stamp counter where there is one (a few ns to read,
/// where steady_clock takes ~20), else steady_clock's nanoseconds.
std::uint64_t profile_clock();

/// Fills p.release, p.made, p.held, p.exposable and p.shape_only from the final steps
/// (lib/freeze/memory_plan.cpp).
void plan_memory(Program& p);
/// Largest buffer a frame keeps whole between calls.
constexpr std::size_t kKeepBytes = 64 * 1024;
constexpr std::size_t kNoSlot = std::size_t(-1);
/// Notes how `s`'s output came out in frame `f`: a view sharing the buffer of one of its
/// operands (then that buffer's owner slot is recorded), or a buffer of its own.
void note_output(Frame& f, const Step& s);
/// Slot `slot`'s value's call is over in frame `f` (its last reader ran; lib/freeze/memory_plan.cpp).
void retire(const Program& p, Frame& f, std::size_t slot);
/// The call is over: every value not kept for the next call is let go of.
void retire_all(const Program& p, Frame& f);
/// fn(slot) for each slot a call may leave holding a value (p.held; with `wide`, also
/// p.held_fallback).
template <class Fn>
void for_held(const Program& p, bool wide, Fn&& fn) {
  for (std::size_t s : p.held) fn(s);
  if (wide)
    for (std::size_t s : p.held_fallback) fn(s);
}
/// Whether `v` holds a value (not nothing, not a hollow buffer).
inline bool has_value(const Storage& v) { return v.buf && v.buf->data; }

std::shared_ptr<Program> freeze(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, bool single,
                                const Updates& updates, const Options& options);
Result execute(const Program& p, const Tensor* const* args, std::size_t n);
/// Whether a `from` value converts to `to` without losing precision (arguments, updates).
bool lossless(DType from, DType to);
/// The last part of freezing, after the steps are final (also for a loaded program): the
/// lock stripes of its shared variables, the memory plan, the profile's counters.
void finish_program(Program& p);

}  // namespace th::detail
