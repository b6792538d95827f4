// torch.optim's update rules written with public ops (so they freeze, fuse and run on any
// backend); state in shared variables named "<param>.<state>". One function per rule; the
// cost overloads take the gradients first.
#include "theta/optim.hpp"

#include <cmath>

#include "core/node.hpp"
#include "theta/autodiff.hpp"
#include "theta/error.hpp"
#include "theta/ops.hpp"

namespace th::optim {

namespace {

std::vector<Tensor> grads_of(const Tensor& cost, const std::vector<Shared>& params) {
  return grad(cost, std::vector<Tensor>(params.begin(), params.end()));
}

std::string name_of(const Shared& p, std::size_t i) { return p.name().empty() ? "param" + std::to_string(i) : p.name(); }

void check(const char* what, const std::vector<Tensor>& grads, const std::vector<Shared>& params) {
  if (grads.size() != params.size())
    throw ValueError(std::string("optim::") + what + ": " + std::to_string(grads.size()) + " gradients for " +
                     std::to_string(params.size()) + " parameters");
  for (std::size_t i = 0; i < params.size(); ++i) {
    const detail::Node& p = detail::node_of(params[i], what);
    const detail::Node& g = detail::node_of(grads[i], what);
    if (p.kind != detail::NodeKind::shared)
      throw TypeError(std::string("optim::") + what + ": parameter " + std::to_string(i) + " is not a th::shared variable");
    if (!is_floating(p.dtype))
      throw TypeError(std::string("optim::") + what + ": parameter '" + name_of(params[i], i) + "' is " +
                      dtype_name(p.dtype) + "; only float parameters are trained");
    if (g.shape.size() != p.shape.size())
      throw ShapeError(std::string("optim::") + what + ": the gradient of '" + name_of(params[i], i) + "' has " +
                       std::to_string(g.shape.size()) + " dimensions, the parameter " + std::to_string(p.shape.size()));
  }
}

// A value in the parameter's dtype (a learning rate tensor or a float64 step count).
Tensor as(const Tensor& t, DType d) { return t.dtype() == d ? t : cast(t, d); }

// lr * x, with lr a number (a weak scalar) or a tensor cast to x's dtype.
Tensor times_lr(const LearningRate& lr, const Tensor& x, DType d) {
  return lr.is_tensor() ? as(lr.tensor(), d) * x : lr.number() * x;
}

// New shared state of p's current shape and dtype, zero-filled.
Shared state_like(const Shared& p, std::size_t i, const char* suffix) {
  const Tensor v = p.get_value();
  return shared(zeros(v.shape(), v.dtype()), name_of(p, i) + "." + suffix);
}

void check_lr(const char* what, const LearningRate& lr) {
  if (!lr.is_tensor() && !(lr.number() >= 0))
    throw ValueError(std::string("optim::") + what + ": the learning rate must be >= 0, got " + std::to_string(lr.number()));
}

Updates adam_rule(const char* what, const std::vector<Tensor>& grads, const std::vector<Shared>& params,
                  const LearningRate& lr, double b1, double b2, double eps, double wd) {
  check(what, grads, params);
  check_lr(what, lr);
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
    throw ValueError(std::string("optim::") + what + ": betas must be in [0, 1), got " + std::to_string(b1) + ", " +
                     std::to_string(b2));
  Updates u;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Shared& p = params[i];
    const DType d = p.dtype();
    Shared m = state_like(p, i, "m"), v = state_like(p, i, "v");
    Shared step = shared(tensor(0.0, DType::float64), name_of(p, i) + ".step");
    const Tensor& g = grads[i];
    const Tensor t = step + 1.0;
    const Tensor m2 = b1 * m + (1 - b1) * g;
    const Tensor v2 = b2 * v + (1 - b2) * (g * g);
    const Tensor bc1 = as(1.0 - pow(b1, t), d), bc2 = as(sqrt(1.0 - pow(b2, t)), d);
    const Tensor base = wd > 0 ? p - times_lr(lr, p, d) * wd : Tensor(p);
    const Tensor upd = base - times_lr(lr, m2, d) / bc1 / (sqrt(v2) / bc2 + eps);
    u.push_back({p, upd});
    u.push_back({m, m2});
    u.push_back({v, v2});
    u.push_back({step, t});
  }
  return u;
}

}  // namespace

Updates sgd(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr) {
  check("sgd", grads, params);
  check_lr("sgd", lr);
  Updates u;
  for (std::size_t i = 0; i < params.size(); ++i) u.push_back({params[i], params[i] - times_lr(lr, grads[i], params[i].dtype())});
  return u;
}

Updates momentum(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr, double mu,
                 bool nesterov) {
  check("momentum", grads, params);
  check_lr("momentum", lr);
  Updates u;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Shared buf = state_like(params[i], i, "buf");
    const Tensor b2 = mu * buf + grads[i];
    const Tensor step = nesterov ? grads[i] + mu * b2 : b2;
    u.push_back({params[i], params[i] - times_lr(lr, step, params[i].dtype())});
    u.push_back({buf, b2});
  }
  return u;
}

// p <- p - lr * g / (sqrt(s') + eps) with s' = next(s, g), s the state "<p>.<suffix>" (adagrad, rmsprop).
template <class Next>
Updates root_scaled(const char* what, const std::vector<Tensor>& grads, const std::vector<Shared>& params,
                    const LearningRate& lr, double eps, const char* suffix, Next next) {
  check(what, grads, params);
  check_lr(what, lr);
  Updates u;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Shared s = state_like(params[i], i, suffix);
    const Tensor s2 = next(s, grads[i]);
    u.push_back({params[i], params[i] - times_lr(lr, grads[i], params[i].dtype()) / (sqrt(s2) + eps)});
    u.push_back({s, s2});
  }
  return u;
}

Updates adagrad(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr, double eps) {
  return root_scaled("adagrad", grads, params, lr, eps, "sum", [](const Tensor& s, const Tensor& g) { return s + g * g; });
}

Updates rmsprop(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr, double rho,
                double eps) {
  return root_scaled("rmsprop", grads, params, lr, eps, "sq",
                     [rho](const Tensor& s, const Tensor& g) { return rho * s + (1 - rho) * (g * g); });
}

Updates adam(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr, double beta1,
             double beta2, double eps) {
  return adam_rule("adam", grads, params, lr, beta1, beta2, eps, 0);
}

Updates adamw(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr, double beta1,
              double beta2, double eps, double weight_decay) {
  return adam_rule("adamw", grads, params, lr, beta1, beta2, eps, weight_decay);
}

Updates sgd(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr) {
  return sgd(grads_of(cost, params), params, lr);
}
Updates momentum(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double mu, bool nesterov) {
  return momentum(grads_of(cost, params), params, lr, mu, nesterov);
}
Updates adagrad(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double eps) {
  return adagrad(grads_of(cost, params), params, lr, eps);
}
Updates rmsprop(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double rho, double eps) {
  return rmsprop(grads_of(cost, params), params, lr, rho, eps);
}
Updates adam(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double beta1, double beta2,
             double eps) {
  return adam(grads_of(cost, params), params, lr, beta1, beta2, eps);
}
Updates adamw(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double beta1, double beta2,
              double eps, double weight_decay) {
  return adamw(grads_of(cost, params), params, lr, beta1, beta2, eps, weight_decay);
}

std::vector<Tensor> clip_grad_norm(const std::vector<Tensor>& grads, double max_norm) {
  if (!(max_norm >= 0)) throw ValueError("optim::clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
  if (grads.empty()) return {};
  Tensor sq;
  for (const Tensor& g : grads) {
    const Tensor s = sum(as(g, DType::float64) * as(g, DType::float64));
    sq = sq ? sq + s : s;
  }
  const Tensor coef = minimum(max_norm / (sqrt(sq) + 1e-6), 1.0);
  std::vector<Tensor> out;
  for (const Tensor& g : grads) out.push_back(g * as(coef, g.dtype()));
  return out;
}

}  // namespace th::optim
