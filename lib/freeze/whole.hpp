// The native tier's whole programs: a small frozen function (its fused chains, their sums
// and the matrix-vector products around them: a W1-sized training step) compiled as one C++
// function for the argument layouts of its warm calls, and called with a table of data
// pointers, without the interpreter's frame (freeze/whole.cpp plans and generates it;
// execute.cpp's run_whole calls it). The interpreter stays the reference: the generated code
// is built from the text of the kernels it runs (the formulas, pairwise sums, the small
// GEMV kernels), in the same blocks and order, so the results are the same bits.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/node.hpp"
#include "cpu/native.hpp"

namespace th::detail {

struct Program;
struct Frame;

/// A program's whole-program plan, made once (Program::whole), for the layouts of the call
/// it was planned after. Calls with other layouts, or while another call runs it, take the
/// interpreter.
struct Whole {
  std::string why;                       // not planned: why not (the kernel is then null)
  std::string source;                    // the generated translation unit
  cpu::NativeKernel* kernel = nullptr;   // its native-tier record (compiled when hot)
  std::int64_t work = 0;                 // element operations per call (the kernel's heat)
  std::atomic<bool> busy{false};         // a call is running it (one at a time)
  std::vector<void*> table;              // per value: its data (constant entries set when planned)
  // An argument (or a shared value read), as the plan has it: value `ref`, this dtype and
  // shape, contiguous.
  struct In {
    std::size_t ref;
    DType dtype;
    Shape shape, strides;
    Node* node = nullptr;             // a shared value's variable
    std::shared_ptr<Buffer> hold = {};  // a shared value's buffer, held while a call reads it
  };
  std::vector<In> args, vars;
  // A result, or an update's new value: computed into value `ref`, of this dtype and shape.
  struct Out {
    std::size_t ref;
    DType dtype;
    Shape shape, strides;
    Node* node = nullptr;             // an update's variable
    std::shared_ptr<Buffer> spare = {};  // an update's buffer for the next new value
  };
  std::vector<Out> outs, updates;
  std::vector<std::pair<std::size_t, std::size_t>> views;  // (value, of): its data is a call's value's
  std::vector<Tensor> results;  // the last call's results (reused when the caller let go of them)
  std::vector<Storage> owned;   // the program's own values: intermediates, scratch, shape-only values
  std::atomic<std::int64_t> calls{0}, timed{0};  // calls run by it, and those the profile timed
  std::atomic<std::uint64_t> ticks{0};           // the timed calls' profile_clock ticks
};

/// After a complete CPU call on frame `f` that had the layouts of the frame's last call:
/// the first time, plans the whole program for those layouts (Program::whole; a plan
/// records why not where the program has a step it cannot compile), and under
/// native=sync compiles it.
void plan_whole(const Program& p, const Frame& f);
/// What debugprint says of the whole program: "native", "native (cached)", "interpreted:
/// compiling", "interpreted: <why>", or "" (no plan, or not hot yet).
std::string whole_state_line(const Program& p);

}  // namespace th::detail
