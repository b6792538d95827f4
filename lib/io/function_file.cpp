// th::save / th::load_function (API.md section 14): a frozen function as one file, the
// format of docs/format.md. A zip archive (uncompressed, like numpy's .npz) holding
// `function.json` (the optimized program: its slots, steps with their ops by key and
// attributes, fused passes, sub-programs, outputs and updates) and one .npy entry per
// constant and per shared variable. Loading rebuilds the program as it was saved (no
// rewrite runs again but conv_chain's, whose steps are saved as their links), so it computes
// bit for bit what the original computed.
//
// A file is untrusted input: every index, count, op, operand count, dtype and sub-program
// is checked before anything is built, and anything wrong is a th::IOError naming it.
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "freeze/optimize.hpp"
#include "freeze/program.hpp"
#include "io/npy.hpp"
#include "ops/op.hpp"
#include "ops/subprograms.hpp"
#include "theta/io.hpp"

namespace th::detail {

namespace {

using json = nlohmann::ordered_json;

constexpr const char* kFormat = "theta.function";
constexpr int kVersion = 3;  // 2: steps' `called` (the user's function name); 3: steps with several outputs (ops/tuple.cpp)
constexpr int kMaxDepth = 16;          // sub-programs inside sub-programs
constexpr std::size_t kMaxRank = 32;
constexpr std::int64_t kMaxDevice = 64;  // (the CUDA backend's per-device tables)
#define THETA_COUNT_ENTRY(name, ...) +1
constexpr int kUnaryKinds = 0 THETA_UNARY_OPS(THETA_COUNT_ENTRY);
constexpr int kBinaryKinds = 0 THETA_BINARY_OPS(THETA_COUNT_ENTRY);
#undef THETA_COUNT_ENTRY

json shape_json(const Shape& s) { return json(s); }

// Attrs::called points at a string that lives as long as the program: a loaded name is
// interned here (an identifier of at most 64 characters; the table holds at most 1024 names,
// so files cannot grow it without bound: past that the op's own name is used).
const char* intern_called(const std::string& name) {
  static std::mutex mu;
  static std::set<std::string>* names = new std::set<std::string>;  // leaked: programs outlive statics
  std::lock_guard<std::mutex> lock(mu);
  const auto it = names->find(name);
  if (it != names->end()) return it->c_str();
  if (names->size() >= 1024) return nullptr;
  return names->insert(name).first->c_str();
}

// ---- writing --------------------------------------------------------------------------------------

struct Writer {
  std::vector<ZipEntry> entries;
  std::deque<Storage> keep;  // the arrays' host values, written from where they are
  std::vector<const Node*> shared_nodes;
  json shared = json::array();
  std::vector<const ScanBody*> loop_ptrs;
  json loops = json::array();
  std::size_t arrays = 0;

  void add(const std::string& name, const Storage& s) { entries.push_back(npy_entry(name, s, keep)); }

  std::string array(const Storage& s) {
    const std::string name = "arrays/" + std::to_string(arrays++) + ".npy";
    add(name, s);
    return name;
  }

  std::size_t shared_index(const std::shared_ptr<Node>& n) {
    for (std::size_t i = 0; i < shared_nodes.size(); ++i)
      if (shared_nodes[i] == n.get()) return i;
    Storage v;
    {
      std::lock_guard<std::mutex> lock(shared_values_mutex());
      v = *n->value;
    }
    const std::string name = "shared/" + std::to_string(shared_nodes.size()) + ".npy";
    add(name, v);
    shared.push_back({{"name", n->name}, {"dtype", int(n->dtype)}, {"ndim", n->shape.size()}, {"array", name}});
    shared_nodes.push_back(n.get());
    return shared_nodes.size() - 1;
  }

  // `which`: the body a scan step runs (0 plain, 1 saving), -1 for its parts.
  std::size_t loop_index(const ScanBody& b, int which_body) {
    std::size_t k = 0;
    while (k < loop_ptrs.size() && loop_ptrs[k] != &b) ++k;
    if (k == loop_ptrs.size()) {
      loop_ptrs.push_back(&b);
      loops.push_back(nullptr);  // (a body may hold scans itself: its index is taken first)
      json l = {{"n_seq", b.n_seq},     {"n_state", b.n_state},       {"n_const", b.n_const},
                {"feed", b.feed},       {"last_only", b.last_only},   {"state_values", b.state_values},
                {"n_user", b.n_user},   {"backwards", b.backwards},   {"n_steps", b.n_steps},
                {"static_steps", b.static_steps}};
      json dt = json::array(), sh = json::array();
      for (DType d : b.out_dtype) dt.push_back(int(d));
      for (const Shape& s : b.out_shape) sh.push_back(shape_json(s));
      l["out_dtype"] = dt;
      l["out_shape"] = sh;
      loops[k] = l;
    }
    // the bodies the steps run (a scan step picks one by its attrs.all)
    const char* which = which_body == 1 ? "saving" : "plain";
    if (which_body >= 0 && !loops[k].contains(which)) {
      const Function& f = b.body(which_body == 1);
      json body = program(*f.program());
      loops[k][which] = std::move(body);
    }
    return k;
  }

  json attrs(const Attrs& a, const Op& op) {
    json j = json::object();
    if (!a.axes.empty()) j["axes"] = a.axes;
    if (!a.shape.empty()) j["shape"] = shape_json(a.shape);
    if (!a.index.empty()) {
      json ix = json::array();
      for (const Index& i : a.index)
        ix.push_back({int(i.kind), i.i, i.start ? json(*i.start) : json(nullptr), i.stop ? json(*i.stop) : json(nullptr),
                      i.step});
      j["index"] = ix;
    }
    if (a.axis) j["axis"] = a.axis;
    if (a.part) j["part"] = a.part;
    if (a.keepdims) j["keepdims"] = true;
    if (a.all) j["all"] = true;
    if (a.dtype != DType::float64) j["dtype"] = int(a.dtype);
    if (a.device != th::cpu()) j["device"] = {int(a.device.type), a.device.index};
    if (a.transpose) j["transpose"] = a.transpose;
    if (a.scale != 0) j["scale"] = a.scale;
    if (a.called) j["called"] = a.called;
    if (const Branches* bp = sub_as<Branches>(a)) {
      const Branches& b = *bp;
      j["branches"] = {{"then", program(*b.then_f.program())}, {"else", program(*b.else_f.program())},
                       {"then_args", b.then_args}, {"else_args", b.else_args}};
    }
    if (const ScanBody* sb = sub_as<ScanBody>(a)) j["loop"] = loop_index(*sb, &op == &scan_op() ? int(a.all) : -1);
    return j;
  }

  static json instrs(const std::vector<FusedInstr>& code) {
    json c = json::array();
    for (const FusedInstr& i : code) c.push_back({i.unary ? 1 : 0, i.code, i.a, i.b});
    return c;
  }

  json step(const Step& s) {
    json j = {{"op", s.op->key}, {"in", s.in}, {"out", s.out}, {"names", s.names}};
    const json a = attrs(s.attrs, *s.op);
    if (!a.empty()) j["attrs"] = a;
    if (s.fused) {
      const Fused& f = *s.fused;
      json members = json::array(), parts = json::array(), reductions = json::array(), tail_steps = json::array();
      for (const Step& m : f.members) members.push_back(step(m));
      for (const Step& m : f.parts) parts.push_back(step(m));
      for (const Fused::Reduction& r : f.reductions) reductions.push_back({r.head, step(r.step)});
      for (const Step& m : f.tail_steps) tail_steps.push_back(step(m));
      std::vector<int> unread(f.unread.begin(), f.unread.end());
      j["fused"] = {{"code", instrs(f.code)},     {"dtype", int(f.dtype)},     {"members", members},
                    {"out_slots", f.out_slots},   {"out_instr", f.out_instr},  {"parts", parts},
                    {"reductions", reductions},   {"tail", instrs(f.tail)},    {"tail_steps", tail_steps},
                    {"unread", unread}};
    }
    return j;
  }

  json program(const Program& p) {
    json slots = json::array(), inputs = json::array(), constants = json::array(), shared_reads = json::array();
    json steps = json::array(), updates = json::array(), rewrites = json::array();
    for (std::size_t s = 0; s < p.slots; ++s) {
      if (p.slot_dtype[s] == DType::string)
        throw TypeError("save: the function computes with text (a string tensor of shape " + shape_str(p.slot_shape[s]) +
                        "); theta's files hold numbers only");
      slots.push_back({int(p.slot_dtype[s]), shape_json(p.slot_shape[s])});
    }
    for (std::size_t i = 0; i < p.input_slots.size(); ++i)
      inputs.push_back({p.input_slots[i], p.input_names[i], int(p.input_meta[i].dtype), shape_json(p.input_meta[i].shape)});
    for (const auto& [slot, v] : p.constants) constants.push_back({slot, array(v)});
    for (const auto& [slot, n] : p.shared) shared_reads.push_back({slot, shared_index(n)});
    for (const Step& s : p.steps)
      for (const Step& u : unchained(s)) steps.push_back(step(u));  // (a conv_chain as its links: chained again at load)
    for (const auto& [n, slot] : p.updates) updates.push_back({shared_index(n), slot});
    for (const auto& [name, count] : p.rewrites) rewrites.push_back({name, count});
    return {{"slots", slots},     {"inputs", inputs},   {"constants", constants}, {"shared", shared_reads},
            {"steps", steps},     {"outputs", p.outputs}, {"single", p.single},  {"updates", updates},
            {"mode", int(p.options.mode)}, {"allow_input_downcast", p.options.allow_input_downcast},
            {"rewrites", rewrites}};
  }
};

// ---- reading --------------------------------------------------------------------------------------

struct Reader {
  std::string where;
  std::unordered_map<std::string, std::string_view> entries;  // (views into the file's bytes)
  std::vector<Shared> shared;
  const json* loops = nullptr;
  std::vector<std::shared_ptr<ScanBody>> loop_bodies;
  std::vector<char> loop_state;  // 0 not built, 1 being built, 2 built

  [[noreturn]] void bad(const std::string& what) const { throw IOError("load_function: '" + where + "': " + what); }

  Storage array(const std::string& name) {
    const auto it = entries.find(name);
    if (it == entries.end()) bad("the array '" + name + "' is missing");
    return value_of(parse_npy(it->second, "'" + where + "' entry '" + name + "'"), "load_function");
  }

  static std::int64_t integer(const json& j, std::int64_t lo, std::int64_t hi, const char* what, const Reader& r) {
    if (!j.is_number_integer()) r.bad(std::string(what) + " is not an integer");
    const std::int64_t v = j.get<std::int64_t>();
    if (v < lo || v > hi) r.bad(std::string(what) + " " + std::to_string(v) + " is out of range");
    return v;
  }
  DType dtype(const json& j) const { return DType(integer(j, 0, int(DType::float64), "a dtype", *this)); }
  const char* called_name(const json& j) const {
    if (!j.is_string()) bad("a step's 'called' is not a string");
    const std::string n = j.get<std::string>();
    if (n.empty() || n.size() > 64 ||
        n.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") != std::string::npos)
      bad("a step's 'called' is not a function name");
    return intern_called(n);
  }
  Shape shape(const json& j) const {
    if (!j.is_array() || j.size() > kMaxRank) bad("a shape is not a list of at most 32 sizes");
    Shape s;
    for (const json& d : j) s.push_back(integer(d, -1, std::numeric_limits<std::int64_t>::max(), "a size", *this));
    return s;
  }
  template <class T>
  std::vector<T> ints(const json& j, std::int64_t lo, std::int64_t hi, const char* what) const {
    if (!j.is_array()) bad(std::string(what) + " is not a list");
    std::vector<T> v;
    for (const json& e : j) v.push_back(T(integer(e, lo, hi, what, *this)));
    return v;
  }

  Attrs attrs(const json& j, const Op& op, int depth) {
    Attrs a;
    if (!j.is_object()) bad("an op's attributes are not an object");
    for (const auto& [k, v] : j.items()) {
      if (k == "axes") a.axes = ints<std::int64_t>(v, -(1 << 20), 1 << 20, "an axis");
      else if (k == "shape") a.shape = shape(v);
      else if (k == "index") {
        if (!v.is_array() || v.size() > kMaxRank) bad("a view's index is not a list");
        for (const json& e : v) {
          if (!e.is_array() || e.size() != 5) bad("a view's index entry is not [kind, i, start, stop, step]");
          const auto kind = Index::Kind(integer(e[0], 0, 2, "an index kind", *this));
          auto opt = [&](const json& x) -> std::optional<std::int64_t> {
            if (x.is_null()) return std::nullopt;
            return integer(x, std::numeric_limits<std::int64_t>::min() / 2, std::numeric_limits<std::int64_t>::max() / 2,
                           "a slice bound", *this);
          };
          Index ix(kind, opt(e[2]), opt(e[3]),
                   integer(e[4], std::numeric_limits<std::int64_t>::min() / 2, std::numeric_limits<std::int64_t>::max() / 2,
                           "a slice step", *this));
          ix.i = integer(e[1], std::numeric_limits<std::int64_t>::min() / 2, std::numeric_limits<std::int64_t>::max() / 2,
                         "an index", *this);
          a.index.push_back(ix);
        }
      } else if (k == "axis") a.axis = integer(v, -(1 << 20), 1 << 20, "an axis", *this);
      else if (k == "part") a.part = integer(v, 0, 1 << 20, "a part", *this);
      else if (k == "keepdims") a.keepdims = v.get<bool>();
      else if (k == "all") a.all = v.get<bool>();
      else if (k == "dtype") a.dtype = dtype(v);
      else if (k == "device") {
        if (!v.is_array() || v.size() != 2) bad("a device is not [type, index]");
        a.device = {Device::Type(integer(v[0], 0, 1, "a device type", *this)),
                    int(integer(v[1], 0, kMaxDevice - 1, "a device index", *this))};
      } else if (k == "transpose") a.transpose = unsigned(integer(v, 0, 3, "a transpose flag", *this));
      else if (k == "scale") {
        if (!v.is_number()) bad("a scale is not a number");
        a.scale = v.get<double>();
      } else if (k == "called") a.called = called_name(v);
      else if (k == "branches") a.sub = branches(v, depth);
      else if (k == "loop") a.sub = loop(std::size_t(integer(v, 0, 1 << 20, "a loop index", *this)), depth);
      else bad("unknown attribute '" + k + "'");
    }
    if (&op == &scan_part_op() || &op == &scan_op()) {
      if (!sub_as<ScanBody>(a)) bad(std::string(op.name) + " without its loop");
      if (&op == &scan_part_op() && std::size_t(a.part) >= sub_as<ScanBody>(a)->out_dtype.size()) bad("scan_part of an output the loop lacks");
      if (&op == &scan_op() && !sub_as<ScanBody>(a)->has_body(a.all)) bad("a scan step without its body");
    }
    if (std::string_view(op.key) == "ifelse" && !sub_as<Branches>(a)) bad("ifelse without its branches");
    return a;
  }

  const Op& op_by_key_checked(const std::string& key) const {
    const Op* op = op_by_key(key);
    if (!op) bad("unknown op '" + key + "' (a file from a newer theta?)");
    return *op;
  }

  std::shared_ptr<const Branches> branches(const json& j, int depth) {
    if (!j.is_object()) bad("ifelse's branches are not an object");
    auto b = std::make_shared<Branches>();
    b->then_f = Function(program(j.at("then"), depth + 1));
    b->else_f = Function(program(j.at("else"), depth + 1));
    b->then_args = ints<std::size_t>(j.at("then_args"), 0, 1 << 20, "a branch argument");
    b->else_args = ints<std::size_t>(j.at("else_args"), 0, 1 << 20, "a branch argument");
    if (b->then_args.size() != b->then_f.program()->input_slots.size() ||
        b->else_args.size() != b->else_f.program()->input_slots.size() || b->then_f.program()->outputs.size() != 1 ||
        b->else_f.program()->outputs.size() != 1)
      bad("an ifelse branch's inputs or outputs do not match");
    return b;
  }

  std::shared_ptr<const ScanBody> loop(std::size_t k, int depth) {
    if (!loops || !loops->is_array() || k >= loops->size()) bad("a loop index is out of range");
    if (loop_state[k] == 2) return loop_bodies[k];
    if (loop_state[k] == 1) bad("a loop contains itself");
    loop_state[k] = 1;
    const json& l = (*loops)[k];
    auto b = std::make_shared<ScanBody>();
    b->n_seq = std::size_t(integer(l.at("n_seq"), 0, 1 << 16, "a count", *this));
    b->n_state = std::size_t(integer(l.at("n_state"), 0, 1 << 16, "a count", *this));
    b->n_const = std::size_t(integer(l.at("n_const"), 0, 1 << 16, "a count", *this));
    if (!l.at("out_dtype").is_array() || !l.at("out_shape").is_array()) bad("a loop's outputs are not lists");
    for (const json& d : l.at("out_dtype")) b->out_dtype.push_back(dtype(d));
    for (const json& s : l.at("out_shape")) b->out_shape.push_back(shape(s));
    const std::size_t n_out = b->out_dtype.size();
    b->feed = ints<int>(l.at("feed"), -1, std::int64_t(b->n_state) - 1, "a fed state");
    b->last_only = ints<char>(l.at("last_only"), 0, 1, "a last-only flag");
    b->state_values = ints<int>(l.at("state_values"), -1, std::int64_t(n_out) - 1, "a state's output");
    b->n_user = std::size_t(integer(l.at("n_user"), 0, std::int64_t(n_out), "the user's outputs", *this));
    b->backwards = l.at("backwards").get<bool>();
    b->n_steps = integer(l.at("n_steps"), -1, std::numeric_limits<std::int64_t>::max(), "a step count", *this);
    b->static_steps = integer(l.at("static_steps"), -1, std::numeric_limits<std::int64_t>::max(), "a step count", *this);
    if (b->out_shape.size() != n_out || b->feed.size() != n_out || b->last_only.size() != n_out ||
        b->state_values.size() != b->n_state)
      bad("a loop's outputs are described inconsistently");
    for (std::size_t o = 0; o < n_out; ++o)
      if (b->last_only[o] && b->feed[o] < 0) bad("a last-only loop output feeds no state");
    if (b->n_seq == 0 && b->n_steps < 0) bad("a loop without sequences has no step count");
    for (const char* which : {"plain", "saving"}) {
      if (!l.contains(which)) continue;
      const bool save = which[0] == 's';
      Function f(program(l.at(which), depth + 1));
      const Program& p = *f.program();
      if (p.input_slots.size() != b->n_seq + b->n_state + b->n_const || p.outputs.size() != (save ? n_out : b->n_user))
        bad("a loop body's inputs or outputs do not match its loop");
      b->preset(save, std::move(f));
    }
    loop_bodies[k] = b;
    loop_state[k] = 2;
    return b;
  }

  // A step, its operands defined before it; its outputs defined after.
  Step step(const json& j, Program& p, std::vector<char>& defined, int depth) {
    if (!j.is_object()) bad("a step is not an object");
    const Op& op = op_by_key_checked(j.at("op").get<std::string>());
    Step s{&op, {}, {}, 0, {}};
    s.in = ints<std::size_t>(j.at("in"), 0, std::int64_t(p.slots) - 1, "a slot");
    s.out = std::size_t(integer(j.at("out"), 0, std::int64_t(p.slots) - 1, "a slot", *this));
    const int n = int(s.in.size());  // checked before any of the op's code reads its operands
    if (n < op.operands.least || (op.operands.most >= 0 && n > op.operands.most))
      bad(std::string("the op '") + op.key + "' has " + std::to_string(n) + " operands");
    for (std::size_t i : s.in)
      if (!defined[i]) bad(std::string("the op '") + op.key + "' reads a slot before it is written");
    if (defined[s.out]) bad("a slot is written twice");
    s.names = j.at("names").get<std::vector<std::string>>();
    if (s.names.size() != s.in.size()) bad("a step's operand names do not match its operands");
    if (j.contains("attrs")) s.attrs = attrs(j.at("attrs"), op, depth);
    if (const Branches* b = sub_as<Branches>(s.attrs))  // ifelse: its branches take operands 1.. by position
      for (const auto* args : {&b->then_args, &b->else_args})
        for (std::size_t i : *args)
          if (i + 1 >= s.in.size()) bad("an ifelse branch takes an operand the step does not have");
    if (!j.contains("attrs") && (&op == &scan_op() || &op == &scan_part_op() || std::string_view(op.key) == "ifelse"))
      bad(std::string(op.name) + " without its attributes");
    if (&op == &fused_op()) {
      if (!j.contains("fused")) bad("a fused step without its chain");
      s.fused = fused(j.at("fused"), s, p, defined, depth);
    } else if (j.contains("fused")) {
      bad("a fused chain on a step of another op");
    }
    defined[s.out] = 1;
    return s;
  }

  std::vector<FusedInstr> instrs(const json& j, std::size_t inputs, std::size_t before) const {
    if (!j.is_array()) bad("a fused chain's code is not a list");
    std::vector<FusedInstr> code;
    for (const json& e : j) {
      if (!e.is_array() || e.size() != 4) bad("a fused instruction is not [unary, code, a, b]");
      FusedInstr f{};
      f.unary = integer(e[0], 0, 1, "a fused instruction kind", *this) != 0;
      f.code = int(integer(e[1], f.unary ? 0 : FusedInstr::kSumToLike, 255, "a fused instruction code", *this));
      if (f.unary ? f.code >= kUnaryKinds : f.code >= kBinaryKinds)
        bad("a fused instruction's code is out of range");
      const std::int64_t lo = -std::int64_t(inputs), hi = std::int64_t(before + code.size()) - 1;
      f.a = int(integer(e[2], lo, hi, "a fused operand", *this));
      f.b = f.unary ? int(integer(e[3], std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), "a fused operand", *this))
                    : int(integer(e[3], lo, hi, "a fused operand", *this));
      code.push_back(f);
    }
    return code;
  }

  std::shared_ptr<const Fused> fused(const json& j, const Step& s, Program& p, std::vector<char>& defined, int depth) {
    auto f = std::make_shared<Fused>();
    f->dtype = dtype(j.at("dtype"));
    f->code = instrs(j.at("code"), s.in.size(), 0);
    if (f->code.empty()) bad("an empty fused chain");
    f->out_slots = ints<std::size_t>(j.at("out_slots"), 0, std::int64_t(p.slots) - 1, "a slot");
    f->out_instr = ints<int>(j.at("out_instr"), 0, std::int64_t(f->code.size()) - 1, "a fused output");
    if (f->out_slots.size() != f->out_instr.size() || f->out_slots.empty()) bad("a fused chain's outputs do not match");
    // members and parts read the step's operands and one another (run when the pass falls back)
    std::vector<char> inner = defined;
    for (const json& m : j.at("members")) f->members.push_back(step(m, p, inner, depth));
    std::vector<char> inner2 = defined;
    for (const json& m : j.at("parts")) f->parts.push_back(step(m, p, inner2, depth));
    for (std::size_t o : f->out_slots) {
      if (!inner[o]) bad("a fused chain's output is not written by its steps");
      defined[o] = 1;
    }
    if (std::find(f->out_slots.begin(), f->out_slots.end(), s.out) == f->out_slots.end())
      bad("a fused step's slot is not among its chain's outputs");
    for (const json& r : j.at("reductions")) {
      if (!r.is_array() || r.size() != 2) bad("a fused reduction is not [head, step]");
      Fused::Reduction red{std::size_t(integer(r[0], 0, std::int64_t(f->out_slots.size()) - 1, "a reduction head", *this)),
                           step(r[1], p, defined, depth)};
      f->reductions.push_back(std::move(red));
    }
    f->tail = instrs(j.at("tail"), s.in.size(), f->reductions.size());
    for (const json& m : j.at("tail_steps")) f->tail_steps.push_back(step(m, p, defined, depth));
    const std::vector<int> unread = ints<int>(j.at("unread"), 0, 1, "an unread flag");
    if (!unread.empty() && unread.size() != f->out_slots.size()) bad("a fused chain's unread flags do not match");
    f->unread.assign(unread.begin(), unread.end());
    return f;
  }

  std::shared_ptr<Program> program(const json& j, int depth) {
    if (depth > kMaxDepth) bad("sub-programs nested too deep");
    if (!j.is_object()) bad("a program is not an object");
    auto p = std::make_shared<Program>();
    const json& slots = j.at("slots");
    if (!slots.is_array() || slots.size() > (1u << 24)) bad("a program's slots are not a list");
    for (const json& s : slots) {
      if (!s.is_array() || s.size() != 2) bad("a slot is not [dtype, shape]");
      new_slot(*p, dtype(s[0]), shape(s[1]));
    }
    std::vector<char> defined(p->slots, 0);
    auto slot = [&](const json& v) { return std::size_t(integer(v, 0, std::int64_t(p->slots) - 1, "a slot", *this)); };
    auto define = [&](std::size_t s) {
      if (defined[s]) bad("a slot is written twice");
      defined[s] = 1;
    };
    for (const json& in : j.at("inputs")) {
      if (!in.is_array() || in.size() != 4) bad("an input is not [slot, name, dtype, shape]");
      const std::size_t s = slot(in[0]);
      define(s);
      p->input_slots.push_back(s);
      p->input_names.push_back(in[1].get<std::string>());
      p->input_meta.push_back(Meta{dtype(in[2]), shape(in[3]), {}});
    }
    for (const json& c : j.at("constants")) {
      if (!c.is_array() || c.size() != 2) bad("a constant is not [slot, array]");
      const std::size_t s = slot(c[0]);
      define(s);
      p->constants.push_back({s, array(c[1].get<std::string>())});
    }
    for (const json& r : j.at("shared")) {
      if (!r.is_array() || r.size() != 2) bad("a shared read is not [slot, index]");
      const std::size_t s = slot(r[0]);
      define(s);
      const std::size_t k = std::size_t(integer(r[1], 0, std::int64_t(shared.size()) - 1, "a shared variable", *this));
      p->shared.push_back({s, shared[k].node()});
    }
    for (const json& st : j.at("steps")) p->steps.push_back(step(st, *p, defined, depth));
    for (const json& o : j.at("outputs")) {
      const std::size_t s = slot(o);
      if (!defined[s]) bad("an output is never written");
      p->outputs.push_back(s);
    }
    p->single = j.at("single").get<bool>();
    if (p->single && p->outputs.size() != 1) bad("a single-output program with " + std::to_string(p->outputs.size()) + " outputs");
    for (const json& u : j.at("updates")) {
      if (!u.is_array() || u.size() != 2) bad("an update is not [index, slot]");
      const std::size_t k = std::size_t(integer(u[0], 0, std::int64_t(shared.size()) - 1, "a shared variable", *this));
      const std::size_t s = slot(u[1]);
      if (!defined[s]) bad("an update's value is never written");
      const Node& target = *shared[k].node();
      if (p->slot_shape[s].size() != target.shape.size() || !lossless(p->slot_dtype[s], target.dtype))
        bad("the update of '" + target.name + "' does not fit its type");
      for (const auto& [n, unused] : p->updates)
        if (n.get() == &target) bad("'" + target.name + "' is updated twice");
      p->updates.push_back({shared[k].node(), s});
    }
    p->options.mode = Mode(integer(j.at("mode"), 0, 2, "a mode", *this));
    p->options.allow_input_downcast = j.at("allow_input_downcast").get<bool>();
    for (const json& r : j.at("rewrites")) p->rewrites.push_back({r.at(0).get<std::string>(), r.at(1).get<int>()});
    chain_convolutions(*p);  // (saved as their links; the same bits either way)
    finish_program(*p);
    return p;
  }
};

}  // namespace

Function load_function_bytes(std::string_view bytes, const std::string& where, bool verify) {
  Reader r;
  r.where = where;
  for (auto& [name, data] : zip_entries(bytes, where, "load_function", verify)) {
    if (r.entries.count(name)) r.bad("the entry '" + name + "' appears twice");
    r.entries.emplace(std::move(name), data);
  }
  const auto it = r.entries.find("function.json");
  if (it == r.entries.end()) r.bad("no function.json entry (not a file th::save wrote)");
  try {
    const json j = json::parse(it->second);
    if (!j.is_object() || j.value("format", "") != kFormat) r.bad("not a theta function file");
    const auto version = Reader::integer(j.at("version"), 0, 1 << 30, "the format version", r);
    if (version > kVersion)
      r.bad("format version " + std::to_string(version) + " is newer than this theta reads (" + std::to_string(kVersion) +
            "); update theta");
    for (const json& s : j.at("shared")) {
      const DType d = r.dtype(s.at("dtype"));
      const Storage v = r.array(s.at("array").get<std::string>());
      if (v.dtype != d || std::int64_t(v.shape.size()) != s.at("ndim").get<std::int64_t>())
        r.bad("the shared variable '" + s.at("name").get<std::string>() + "' has a value of another type");
      r.shared.push_back(th::shared(make_constant(v), s.at("name").get<std::string>()));
    }
    r.loops = &j.at("loops");
    if (!r.loops->is_array()) r.bad("the loops are not a list");
    r.loop_bodies.resize(r.loops->size());
    r.loop_state.assign(r.loops->size(), 0);
    return Function(r.program(j.at("program"), 0));
  } catch (const json::exception& e) {
    r.bad(std::string("malformed function.json: ") + e.what());
  }
}

}  // namespace th::detail

namespace th {

void save(const std::string& path, const Function& f) {
  detail::Writer w;
  detail::json program = w.program(*f.program());
  const detail::json j = {{"format", detail::kFormat}, {"version", detail::kVersion}, {"shared", w.shared},
                            {"loops", w.loops},          {"program", program}};
  std::vector<detail::ZipEntry> entries{{"function.json", j.dump(), nullptr, 0}};
  entries.insert(entries.end(), w.entries.begin(), w.entries.end());
  detail::zip_write(path, entries, "save");
}

Function load_function(const std::string& path) {
  // mapped, not read: the arrays are copied once, from the page cache into their tensors
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IOError("load_function: cannot open '" + path + "'");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return detail::load_function_bytes(detail::read_bytes(path, "load_function"), path);
  }
  const std::size_t size = std::size_t(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return detail::load_function_bytes(detail::read_bytes(path, "load_function"), path);
  ::madvise(map, size, MADV_SEQUENTIAL);
  struct Unmap {
    void* p;
    std::size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, size};
  return detail::load_function_bytes(std::string_view(static_cast<const char*>(map), size), path);
}

}  // namespace th
