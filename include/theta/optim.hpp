// Optimizers as update lists (API.md section 11): Lasagne's style, torch.optim's formulas and
// defaults. Each returns the updates of the parameters and of its state, which lives in
// shared variables named after the parameter ("w.m", "w.v", "w.step"), ready for
// th::function(inputs, outputs, updates) and for checkpoints.
#pragma once
#include <vector>

#include "function.hpp"
#include "random.hpp"

namespace th::optim {

/// A number, or a tensor (a shared scalar makes a schedule: set_value between calls).
using LearningRate = TensorOrNumber;

/// p <- p - lr * g
Updates sgd(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr);
Updates sgd(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr);
/// b <- momentum * b + g; p <- p - lr * (nesterov ? g + momentum * b : b)   (state "p.buf")
Updates momentum(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr, double momentum = 0.9,
                 bool nesterov = false);
Updates momentum(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr,
                 double momentum = 0.9, bool nesterov = false);
/// s <- s + g^2; p <- p - lr * g / (sqrt(s) + eps)   (state "p.sum")
Updates adagrad(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr = 0.01, double eps = 1e-10);
Updates adagrad(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr = 0.01,
                double eps = 1e-10);
/// s <- rho * s + (1 - rho) * g^2; p <- p - lr * g / (sqrt(s) + eps)   (state "p.sq")
Updates rmsprop(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr = 0.01, double rho = 0.99,
                double eps = 1e-8);
Updates rmsprop(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr = 0.01,
                double rho = 0.99, double eps = 1e-8);
/// t <- t + 1; m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
/// p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (state "p.m", "p.v", "p.step")
Updates adam(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr = 0.001, double beta1 = 0.9,
             double beta2 = 0.999, double eps = 1e-8);
Updates adam(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr = 0.001,
             double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
/// adam on p * (1 - lr * weight_decay) (decoupled weight decay, torch.optim.AdamW)
Updates adamw(const Tensor& cost, const std::vector<Shared>& params, LearningRate lr = 0.001, double beta1 = 0.9,
              double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.01);
Updates adamw(const std::vector<Tensor>& grads, const std::vector<Shared>& params, LearningRate lr = 0.001,
              double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.01);
/// The gradients scaled by min(1, max_norm / (norm + 1e-6)), norm the 2-norm of all of them
/// together (torch.nn.utils.clip_grad_norm_).
std::vector<Tensor> clip_grad_norm(const std::vector<Tensor>& grads, double max_norm);

}  // namespace th::optim
