// Data-parallel training over MPI (API.md section 15). Started by mpirun, each process is a
// rank; allreduce is an operation like any other (eager, recorded, differentiable, frozen).
// Without MPI in this build, or in a program not started by mpirun, size() is 1, rank() is 0
// and every operation here returns its input: the same program runs on one process.
//
//   th::dist::init(argc, argv);
//   th::dist::broadcast(params, 0);                        // every rank starts alike
//   auto grads = th::dist::average(th::grad(cost, params));  // then any optimizer
#pragma once
#include <string>
#include <vector>

#include "function.hpp"
#include "tensor.hpp"

namespace th::dist {

enum class Op { sum, mean, max, min };

/// Joins the job when the program was started by mpirun (MPI_Init_thread); otherwise does
/// nothing. Call once, first thing in main. From then on an exception that leaves main (or
/// std::terminate) on any rank ends the whole job: every rank exits non-zero, none hangs.
void init(int& argc, char**& argv);
/// This process's rank (0 when not distributed).
int rank();
/// The number of ranks (1 when not distributed).
int size();
/// Whether this build has MPI (THETA_MPI).
bool available();

/// The elementwise sum, mean, max or min of `t` over all ranks, on every rank (`t` must
/// have the same shape and dtype on every rank, else a th::ShapeError/TypeError on every
/// rank). Differentiable: the gradient of a sum (mean) is the sum (mean) of the ranks'
/// gradients, as Horovod's; max and min pass it to the ranks holding the extreme.
Tensor allreduce(const Tensor& t, Op op = Op::sum);
/// Sets each shared variable to its value on rank `root` (before training: every rank
/// starts from the same weights).
void broadcast(const std::vector<Shared>& params, int root = 0);
/// allreduce(g, mean) of each gradient: the data-parallel step's gradients (frozen with
/// several ranks, all of one dtype go in one MPI call).
std::vector<Tensor> average(const std::vector<Tensor>& grads);
/// Ends the job on every rank with exit status `code` (MPI_Abort), after printing `why`.
[[noreturn]] void abort(const std::string& why, int code = 1);

}  // namespace th::dist
