// Checkpoints (API.md section 14): shared variables saved to and restored from an .npz by
// name, all-or-nothing on load.
#include <set>

#include "theta/error.hpp"
#include "theta/io.hpp"

namespace th {

namespace {
std::string name_of(const Shared& s, const char* what) {
  if (!s) throw ValueError(std::string(what) + ": an empty shared variable in the list");
  if (s.name().empty())
    throw ValueError(std::string(what) + ": a shared variable without a name (give th::shared a name to checkpoint it)");
  return s.name();
}
}  // namespace

void save_params(const std::string& path, const std::vector<Shared>& params) {
  std::map<std::string, Tensor> named;
  for (const Shared& s : params) {
    const std::string n = name_of(s, "save_params");
    if (named.count(n))
      throw ValueError("save_params: two shared variables are named '" + n +
                       "' (name them apart: th::shared(value, name), th::RandomStreams(seed, name))");
    named[n] = s.get_value().to(cpu());
  }
  save_npz(path, named);
}

void load_params(const std::string& path, const std::vector<Shared>& params, bool allow_new_shapes) {
  const std::map<std::string, Tensor> named = load_npz(path);
  std::vector<Tensor> values;
  std::set<std::string> seen;
  for (const Shared& s : params) {
    const std::string n = name_of(s, "load_params");
    if (!seen.insert(n).second) throw ValueError("load_params: two shared variables are named '" + n + "'");
    const auto it = named.find(n);
    if (it == named.end()) throw IOError("load_params: '" + path + "' has no entry '" + n + "'");
    const Tensor& v = it->second;
    if (v.dtype() != s.dtype() || v.ndim() != s.ndim())
      throw TypeError("load_params: '" + n + "' is " + dtype_name(s.dtype()) + " with " + std::to_string(s.ndim()) +
                      " dimensions; '" + path + "' holds " + dtype_name(v.dtype()) + " of shape " + shape_str(v.shape()));
    if (!allow_new_shapes) {
      const Shape now = s.get_value().shape();
      if (now != v.shape())
        throw ShapeError("load_params: size mismatch for '" + n + "': '" + path + "' holds shape " + shape_str(v.shape()) +
                         ", the shared variable has shape " + shape_str(now) +
                         " (a checkpoint of another architecture? load_params(path, params, "
                         "/*allow_new_shapes=*/true) replaces the shape on purpose)");
    }
    values.push_back(v.to(s.device()));
  }
  for (std::size_t i = 0; i < params.size(); ++i) Shared(params[i]).set_value(values[i]);
}

}  // namespace th
