// Whole programs for the native tier (freeze/whole.hpp): the plan (which value lives where,
// for the layouts of a warm call) and the generated C++ (one function over a table of data
// pointers: each step as the interpreter's CPU kernel runs it, from the same text).
#include "freeze/whole.hpp"

#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/formula_source.hpp"
#include "cpu/pairwise.hpp"
#include "freeze/optimize.hpp"
#include "freeze/program.hpp"
#include "ops/op.hpp"
#include "theta/config.hpp"

namespace th::detail {

namespace {

// Fused passes up to this many elements: above it the interpreter's threads and its
// compiled chains do as well, and the call's overhead no longer matters.
constexpr std::int64_t kWholeElements = std::int64_t(1) << 16;

// A double as an exact C++ literal.
std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

class Planner {
 public:
  Planner(const Program& p, const Frame& f, Whole& w) : p_(p), f_(f), w_(w), ref_(p.slots, kNone) {}

  // The plan and its source; "" when it was made, else why not.
  std::string plan() {
    std::size_t q = 0;  // f.layouts: each argument's shape and strides, then each shared value's
    for (std::size_t i = 0; i < p_.input_slots.size(); ++i, q += 2) {
      const std::size_t s = p_.input_slots[i];
      const DType d = p_.input_meta[i].dtype;
      if (!contiguous(f_.layouts[q], f_.layouts[q + 1])) return "input " + std::to_string(i) + " is a strided view";
      w_.args.push_back({value(s, d, f_.layouts[q]), d, f_.layouts[q], f_.layouts[q + 1]});
      vals_.back().strides = f_.layouts[q + 1];
    }
    for (const auto& [s, n] : p_.shared) {
      if (!contiguous(f_.layouts[q], f_.layouts[q + 1])) return "shared '" + n->name + "' is a strided view";
      w_.vars.push_back({value(s, n->dtype, f_.layouts[q]), n->dtype, f_.layouts[q], f_.layouts[q + 1], n.get()});
      vals_.back().strides = f_.layouts[q + 1];
      q += 2;
    }
    for (const auto& [s, v] : p_.constants) {
      if (!v.buf || !v.buf->data || v.device() != th::cpu()) return "a constant is not on the CPU";
      fixed(s, v, const_cast<char*>(v.bytes()));
    }
    src_ << "extern \"C\" __attribute__((visibility(\"default\"))) void theta_program(void* const* p) {\n"
            "  using namespace th::detail;\n  using namespace th::detail::cpu;\n";
    for (std::size_t k = 0; k < p_.steps.size(); ++k) {
      const Step& s = p_.steps[k];
      std::string why;
      if (p_.shape_only[k]) why = shape_only(s);
      else if (s.fused) why = fused(k, s);
      else if (is_view(s)) why = view(s);
      else if (s.op == &reduce_op(ReduceKind::sum) || s.op == &sum_to_like_op()) why = whole_sum(s);
      else if (const auto ins = fused_instr_of(p_, s)) why = elementwise(k, s, *ins);
      else why = product(s);
      if (!why.empty()) return "step " + std::to_string(k) + " (" + step_name(s) + "): " + why;
    }
    src_ << "}\n";
    // Results and updates' new values: computed into a buffer of the call's (a view of a
    // step's value, reshaped: that value computed into it, in the view's shape).
    auto take = [&](std::size_t slot, Kind kind) -> std::size_t {
      const std::size_t r = ref_[slot];
      if (r == kNone) return kNone;
      const std::size_t at = kind_[r] == Kind::alias ? alias_[r] : r;
      if (kind_[at] != Kind::made) return kNone;
      kind_[at] = kind;
      return at;
    };
    for (std::size_t o : p_.outputs) {
      const std::size_t r = take(o, Kind::result);
      if (r == kNone) return "an output is not computed by a step of its own";
      const Storage& v = vals_[ref_[o]];
      w_.outs.push_back({r, v.dtype, v.shape, v.strides});
    }
    for (const auto& [n, s] : p_.updates) {
      if (ref_[s] == kNone || vals_[ref_[s]].dtype != n->dtype) return "update '" + n->name + "' converts its value";
      const std::size_t r = take(s, Kind::update);
      if (r == kNone) return "update '" + n->name + "' is not computed by a step of its own";
      const Storage& v = vals_[ref_[s]];
      w_.updates.push_back({r, n->dtype, v.shape, v.strides, n.get()});
    }
    w_.results.resize(w_.outs.size());
    w_.table.assign(vals_.size(), nullptr);
    for (std::size_t r = 0; r < vals_.size(); ++r) {
      if (kind_[r] == Kind::made) {  // an intermediate value: a buffer of the plan's own
        w_.owned.push_back(alloc_storage(vals_[r].dtype, vals_[r].shape, th::cpu()));
        w_.table[r] = w_.owned.back().bytes();
      } else if (kind_[r] == Kind::fixed) {
        w_.table[r] = fixed_[r];
      }
    }
    // Views: another value's data (its own, or a call's: then copied at each call).
    for (std::size_t r = 0; r < vals_.size(); ++r) {
      if (kind_[r] != Kind::alias) continue;
      const Kind of = kind_[alias_[r]];
      if (of == Kind::made || of == Kind::fixed) w_.table[r] = w_.table[alias_[r]];
      else w_.views.push_back({r, alias_[r]});
    }
    std::ostringstream head;
    head << "// theta native tier: a whole program of " << p_.steps.size()
         << " steps (generated by lib/freeze/whole.cpp)\n#include <cstdint>\n"
         << formula_source() << "\n" << pairwise_source() << "\n";
    if (gemv_) head << gemv_reference_source() << "\n";
    w_.source = head.str() + fns_.str() + src_.str();
    w_.work = work_;
    return "";
  }

 private:
  static constexpr std::size_t kNone = std::size_t(-1);
  enum class Kind { arg, fixed, made, result, update, alias };

  static bool contiguous(const Shape& shape, const Shape& strides) {
    Storage v;
    v.shape = shape;
    v.strides = strides;
    return v.contiguous();
  }

  // A new value for slot s (its layout: this dtype and shape, contiguous unless given).
  std::size_t value(std::size_t s, DType d, const Shape& shape, Kind kind = Kind::arg) {
    Storage v;
    v.dtype = d;
    v.shape = shape;
    v.strides = contiguous_strides(shape);
    vals_.push_back(v);
    kind_.push_back(kind);
    fixed_.push_back(nullptr);
    alias_.push_back(kNone);
    if (s != kNone) ref_[s] = vals_.size() - 1;
    return vals_.size() - 1;
  }
  // A value whose data does not change from call to call (a constant, a shape-only step's).
  void fixed(std::size_t s, const Storage& v, void* data) {
    const std::size_t r = value(s, v.dtype, v.shape, Kind::fixed);
    vals_[r].strides = v.strides;
    fixed_[r] = data;
  }
  // Value `r`'s data as `T*` in the generated code.
  static std::string at(std::size_t r, const char* t, bool writes = false) {
    return std::string("static_cast<") + (writes ? "" : "const ") + t + "*>(p[" + std::to_string(r) + "])";
  }

  // Its value is the one the planned call found (it depends on the shapes alone): a copy.
  std::string shape_only(const Step& s) {
    const Storage& v = f_.vals[s.out];
    if (!has_value(v) || v.device() != th::cpu()) return "its value was not kept";
    Storage c = v;
    const std::int64_t elements = std::int64_t((v.buf->bytes + dtype_size(v.dtype) - 1) / dtype_size(v.dtype));
    c.buf = alloc_storage(v.dtype, {elements}, th::cpu()).buf;
    std::memcpy(c.buf->data, v.buf->data, v.buf->bytes);
    w_.owned.push_back(c);
    fixed(s.out, c, c.bytes());
    return "";
  }

  // A fused pass as cpu::run_fused runs it with a native chain (cpu/fused.cpp:
  // native_blocks, finish_block, run_typed's sums and tail), for inputs of the fit found.
  std::string fused(std::size_t k, const Step& s) {
    const Fused& fu = *s.fused;
    const cpu::FusedFit& fit = f_.fits[k];
    if (!fit.known || !fit.fits || !fit.native_known) return "its inputs did not fit one pass";
    if (fu.dtype != DType::float32 && fu.dtype != DType::float64) return "not float32 or float64";
    for (std::int64_t per : fit.period)
      if (per) return "an input repeats a row or a column";
    const std::int64_t total = shape_size(fit.shape);
    if (total < 1 || total > kWholeElements) return std::to_string(total) + " elements";
    for (const FusedInstr& t : fu.tail)
      if (t.identity()) return "an identity in its tail";
    const char* t = c_type_name(fu.dtype);
    const std::size_t m = fu.code.size();
    // Each input's value, its data the block's (a broadcast one: its one element).
    std::vector<std::size_t> in(s.in.size());
    for (std::size_t e = 0; e < s.in.size(); ++e) {
      in[e] = ref_[s.in[e]];
      if (in[e] == kNone) return "an input is not planned";
    }
    // What the pass writes (the interpreter's record of it, cpu::FusedFit::written): each
    // read output's instruction in place, the other summed values into scratch blocks.
    const std::vector<char>& written = fit.written;
    std::vector<std::size_t> dst(m, kNone);  // per written instruction: its output value, or scratch
    std::vector<char> scratch(m, 0);         // dst is a scratch block (the same for every block)
    for (std::size_t j = 0; j < fu.out_slots.size(); ++j) {
      if (!fu.unread.empty() && fu.unread[j]) continue;
      const std::size_t i = std::size_t(fu.out_instr[j]);
      if (dst[i] != kNone) return "two outputs of one instruction";
      dst[i] = value(fu.out_slots[j], fu.dtype, fit.shape, Kind::made);
    }
    const std::int64_t width = std::min(cpu::kPairwiseBlock, total), blocks = (total + cpu::kPairwiseBlock - 1) / cpu::kPairwiseBlock;
    for (std::size_t i = 0; i < m; ++i)
      if (written[i] && dst[i] == kNone) dst[i] = value(kNone, fu.dtype, {width}, Kind::made), scratch[i] = 1;
    std::vector<int> sums;
    for (const Fused::Reduction& r : fu.reductions) sums.push_back(fu.out_instr[r.head]);
    const std::string chain = "chain" + std::to_string(k);
    cpu::chain_function_source(fns_, "static inline void " + chain, fu.code, fu.dtype, fit.scalar, written);
    work_ += total * std::int64_t(m);
    // The block loop.
    src_ << "  {  // step " << k << ": " << step_name(s) << "\n    using T = " << t << ";\n    const void* in["
         << std::max<std::size_t>(1, in.size()) << "];\n    void* out[" << m << "];\n";
    for (std::size_t j = 0; j < sums.size(); ++j) src_ << "    T part" << j << "[" << blocks << "];\n";
    src_ << "    for (std::int64_t blk = 0; blk < " << blocks << "; ++blk) {\n      const std::int64_t off = blk * "
         << cpu::kPairwiseBlock << ", n = " << total << " - off < " << cpu::kPairwiseBlock << " ? " << total
         << " - off : " << cpu::kPairwiseBlock << ";\n";
    for (std::size_t e = 0; e < in.size(); ++e)
      src_ << "      in[" << e << "] = " << at(in[e], t) << (fit.scalar[e] ? "" : " + off") << ";\n";
    std::vector<std::size_t> out_index(m, 0);
    std::size_t j = 0;
    for (std::size_t i = 0; i < m; ++i) {
      if (!written[i]) continue;
      src_ << "      out[" << j << "] = " << at(dst[i], t, true) << (scratch[i] ? "" : " + off") << ";\n";
      out_index[i] = j++;
    }
    src_ << "      " << chain << "(in, out, n);\n";
    for (std::size_t q = 0; q < sums.size(); ++q)
      src_ << "      part" << q << "[blk] = pairwise(static_cast<const T*>(out[" << out_index[std::size_t(sums[q])]
           << "]), n, [](T x, T y) { return T(x + y); });\n";
    src_ << "    }\n";
    // The sums into 0, as the eager sum does, then the tail on one-element values.
    const std::size_t nv = sums.size() + fu.tail.size();
    if (nv) src_ << "    T v[" << nv << "];\n";
    for (std::size_t q = 0; q < sums.size(); ++q) {
      const std::size_t out = value(fu.reductions[q].step.out, fu.dtype, {}, Kind::made);
      src_ << "    v[" << q << "] = T(T(0) + combine_blocks(part" << q << ", " << blocks
           << ", [](T x, T y) { return T(x + y); }));\n    *" << at(out, t, true) << " = v[" << q << "];\n";
    }
    for (std::size_t q = 0; q < fu.tail.size(); ++q) {
      const FusedInstr& ins = fu.tail[q];
      auto operand = [&](int o) {
        return o < 0 ? "*" + at(in[std::size_t(-1 - o)], t) : "v[" + std::to_string(o) + "]";
      };
      const std::size_t out = value(fu.tail_steps[q].out, fu.dtype, {}, Kind::made);
      src_ << "    v[" << sums.size() + q << "] = ";
      if (ins.unary) src_ << "u_" << unary_name(UnaryKind(ins.code)) << "<T>(" << operand(ins.a) << ")";
      else src_ << "b_" << binary_name(BinaryKind(ins.code)) << "<T>(" << operand(ins.a) << ", " << operand(ins.b) << ")";
      src_ << ";\n    *" << at(out, t, true) << " = v[" << sums.size() + q << "];\n";
    }
    src_ << "  }\n";
    return "";
  }

  // A view op over a contiguous value that keeps it contiguous (a reshape, a no-op
  // sum_to_like or broadcast_like): the same data.
  bool is_view(const Step& s) const {
    if (is_reshape(*s.op)) return true;
    if (s.op != &sum_to_like_op() && s.op != &broadcast_like_op()) return false;
    const std::size_t r = ref_[s.in[0]];
    return r != kNone && same_dims(vals_[r].shape, f_.out_meta[s.out].shape);
  }
  std::string view(const Step& s) {
    const std::size_t r = ref_[s.in[0]];
    if (r == kNone) return "an input is not planned";
    const Meta& out = f_.out_meta[s.out];
    if (!vals_[r].contiguous() || out.dtype != vals_[r].dtype || shape_size(out.shape) != shape_size(vals_[r].shape))
      return "a view of a strided value";
    const std::size_t v = value(s.out, out.dtype, out.shape, Kind::alias);
    alias_[v] = alias_[r] == kNone ? r : alias_[r];
    return "";
  }

  // A sum of a whole contiguous value into one element, in theta's order (cpu/reduce.cpp:
  // the pairwise sums of its blocks, combined, added to 0).
  std::string whole_sum(const Step& s) {
    const std::size_t r = ref_[s.in[0]];
    if (r == kNone) return "an input is not planned";
    const Storage& x = vals_[r];
    const Meta& out = f_.out_meta[s.out];
    std::size_t axes = 0;  // the axes summed over (sum_to_like: those where `like` broadcasts)
    if (s.op == &sum_to_like_op()) {
      const std::size_t lead = x.shape.size() - out.shape.size();
      for (std::size_t i = 0; i < x.shape.size(); ++i)
        if (i < lead || (out.shape[i - lead] == 1 && x.shape[i] != 1)) ++axes;
    } else {
      axes = s.attrs.axes.size();
    }
    if (axes != x.shape.size() || shape_size(out.shape) != 1) return "not a sum of every axis";
    if (x.dtype != out.dtype || (out.dtype != DType::float32 && out.dtype != DType::float64) || !x.contiguous())
      return "not a float sum of a contiguous value";
    const std::int64_t n = shape_size(x.shape), blocks = (n + cpu::kPairwiseBlock - 1) / cpu::kPairwiseBlock;
    if (n > kWholeElements) return std::to_string(n) + " elements";
    const char* t = c_type_name(out.dtype);
    const std::size_t y = value(s.out, out.dtype, out.shape, Kind::made);
    work_ += n;
    src_ << "  {  // " << step_name(s) << "\n    using T = " << t << ";\n    const T* x = " << at(r, t) << ";\n";
    if (n == 0) {
      src_ << "    *" << at(y, t, true) << " = T(0);\n  }\n";
      return "";
    }
    src_ << "    T part[" << blocks << "];\n    for (std::int64_t blk = 0; blk < " << blocks
         << "; ++blk) {\n      const std::int64_t off = blk * " << cpu::kPairwiseBlock << ";\n      part[blk] = pairwise(x + off, "
         << n << " - off < " << cpu::kPairwiseBlock << " ? " << n << " - off : " << cpu::kPairwiseBlock
         << ", [](T a, T b) { return T(a + b); });\n    }\n    *" << at(y, t, true)
         << " = T(T(0) + combine_blocks(part, " << blocks << ", [](T a, T b) { return T(a + b); }));\n  }\n";
    return "";
  }

  // An elementwise op on its own (cpu/elementwise.cpp: the same formula per element), its
  // operands of its result's shape or single elements.
  std::string elementwise(std::size_t k, const Step& s, const FusedInstr& ins) {
    if (ins.identity()) return "a broadcast";
    const Meta& out = f_.out_meta[s.out];
    const std::int64_t n = shape_size(out.shape);
    if (n > kWholeElements) return std::to_string(n) + " elements";
    std::vector<bool> scalar;
    std::vector<std::size_t> in;
    for (std::size_t slot : s.in) {
      const std::size_t r = ref_[slot];
      if (r == kNone) return "an input is not planned";
      const Storage& v = vals_[r];
      const bool one = shape_size(v.shape) == 1;
      if (v.dtype != out.dtype || (!one && (!same_dims(v.shape, out.shape) || !v.contiguous())))
        return "its operands broadcast";
      scalar.push_back(one);
      in.push_back(r);
    }
    const FusedInstr code{ins.unary, ins.code, -1, -2};
    const std::string fn = "op" + std::to_string(k);
    cpu::chain_function_source(fns_, "static inline void " + fn, {code}, out.dtype, scalar, {1});
    const std::size_t y = value(s.out, out.dtype, out.shape, Kind::made);
    work_ += n;
    src_ << "  {  // " << step_name(s) << "\n    const void* in[] = {";
    for (std::size_t e = 0; e < in.size(); ++e) src_ << (e ? ", " : "") << "p[" << in[e] << "]";
    src_ << "};\n    void* out[] = {p[" << y << "]};\n    " << fn << "(in, out, " << n << ");\n  }\n";
    return "";
  }

  // A matrix-vector product (matmul, matmul_t, matmul_acc) as the small GEMV kernel runs it
  // (ops/linalg.cpp: small_product), with matmul_acc's combination after it.
  std::string product(const Step& s) {
    std::vector<const Storage*> in;
    for (std::size_t slot : s.in) {
      if (ref_[slot] == kNone) return "an input is not planned";
      in.push_back(&vals_[ref_[slot]]);
    }
    const Meta& out = f_.out_meta[s.out];
    SmallProduct sp;
    if (!small_product(*s.op, in, s.attrs, out, sp)) return "no native form";
    const char* t = c_type_name(out.dtype);
    const std::size_t a = ref_[s.in[std::size_t(sp.matrix)]], x = ref_[s.in[std::size_t(1 - sp.matrix)]];
    const std::size_t c = sp.acc ? ref_[s.in[2]] : kNone;
    const std::size_t y = value(s.out, out.dtype, out.shape, Kind::made);
    gemv_ = true;
    work_ += sp.g.rows * sp.g.cols;
    src_ << "  {  // " << step_name(s) << "\n    using T = " << t << ";\n    gemv_reference::"
         << (sp.g.trans ? "cols" : "rows") << "<T, " << sp.g.rows << ", " << sp.g.cols << ", " << sp.g.lda << ">("
         << at(a, t) << ", " << at(x, t) << ", " << at(y, t, true) << ");\n";
    if (sp.acc) {
      const char* comb = sp.how == 0 ? "wrap_sub(c[i], q)" : sp.how == 1 ? "wrap_add(c[i], q)" : "wrap_add(q, c[i])";
      src_ << "    const T* c = " << at(c, t) << ";\n    T* y = " << at(y, t, true) << ";\n    const T k = static_cast<T>("
           << exact(sp.scale) << ");\n    for (std::int64_t i = 0; i < " << shape_size(out.shape)
           << "; ++i) {\n      const T q = wrap_mul(y[i], k);\n      y[i] = " << comb << ";\n    }\n";
    }
    src_ << "  }\n";
    return "";
  }

  const Program& p_;
  const Frame& f_;
  Whole& w_;
  std::vector<std::size_t> ref_;  // per slot: its value in the plan, or kNone
  std::vector<Storage> vals_;     // per value: its layout (no buffer)
  std::vector<Kind> kind_;
  std::vector<void*> fixed_;      // per fixed value: its data
  std::vector<std::size_t> alias_;  // per view: the value whose data it is
  bool gemv_ = false;             // the source has matrix-vector products
  std::int64_t work_ = 0;         // element operations per call
  std::ostringstream fns_, src_;  // the chains' functions; theta_program
};

}  // namespace

void plan_whole(const Program& p, const Frame& f) {
  if (config().native == NativeMode::off || p.whole_state.load(std::memory_order_relaxed) != 0) return;
  int untried = 0;
  if (!p.whole_state.compare_exchange_strong(untried, 1)) return;
  auto w = std::make_unique<Whole>();
  Planner planner(p, f, *w);
  w->why = planner.plan();
  if (w->why.empty()) w->kernel = cpu::native_program(w->source);
  p.whole.store(w.release(), std::memory_order_release);
}

std::string whole_state_line(const Program& p) {
  const Whole* w = p.whole.load(std::memory_order_acquire);
  if (!w || !w->kernel) return "";
  return cpu::native_state_line(*w->kernel);
}

void delete_whole(Whole* w) { delete w; }

}  // namespace th::detail
