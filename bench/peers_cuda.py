#!/usr/bin/python3
"""PyTorch CUDA peers of the GPU workloads (bench/cuda_workloads.cpp); prints RESULT lines.
  python3 bench/peers_cuda.py [W1 W2 W3]
Timings end with torch.cuda.synchronize(), as theta's end with a device synchronisation."""
import statistics
import sys
import time

import torch

import peers  # bench/peers.py, beside this file


def median_us(f, units, runs=5):
    t = []
    for _ in range(runs):
        a = time.perf_counter()
        f()
        torch.cuda.synchronize()
        t.append((time.perf_counter() - a) * 1e6 / units)
    return statistics.median(t)


def result(workload, impl, us):
    print(f"RESULT {workload} {impl} {us:.4f}", flush=True)


dev = torch.device("cuda")


def seed_data():
    x, y = peers.seed_data()  # the same data as the CPU peers
    return torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)


def w1():
    X, Y = seed_data()
    steps = 2000

    def eager_loop():
        w = torch.zeros(4, dtype=torch.float64, device=dev, requires_grad=True)
        for _ in range(steps):
            cost = ((X @ w - Y) ** 2).mean()
            (g,) = torch.autograd.grad(cost, w)
            with torch.no_grad():
                w -= 0.1 * g
    eager_loop()
    result("W1_gpu", "torch_eager", median_us(eager_loop, steps))


def w2(batch, hidden, name):
    g = torch.Generator(device="cpu").manual_seed(1)
    def init(a, b):
        return ((torch.rand(a, b, generator=g) - 0.5) * 0.1).to(dev).requires_grad_()
    params = [init(784, hidden), init(hidden, hidden), init(hidden, 10)]
    params += [torch.zeros(hidden, device=dev, requires_grad=True), torch.zeros(hidden, device=dev, requires_grad=True),
               torch.zeros(10, device=dev, requires_grad=True)]
    W1, W2, W3, b1, b2, b3 = params
    X = torch.rand(batch, 784, generator=g).to(dev)
    labels = torch.tensor([(i * 7) % 10 for i in range(batch)], device=dev)
    onehot = torch.nn.functional.one_hot(labels, 10).float()

    def step():
        h1 = torch.tanh(X @ W1 + b1)
        h2 = torch.tanh(h1 @ W2 + b2)
        loss = -(onehot * torch.log_softmax(h2 @ W3 + b3, 1)).sum(1).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr in zip(params, grads):
                p -= 0.01 * gr

    def loop():
        for _ in range(20):
            step()
    loop()
    result(name, "torch_eager", median_us(loop, 20))


def w3():
    n = 100_000_000
    g = torch.Generator(device="cpu").manual_seed(1)
    a, b, c = ((torch.rand(n, generator=g) * 2 - 1).to(dev) for _ in range(3))

    def fwd():
        return torch.tanh(a * b + c) * 0.5 + torch.sigmoid(a)
    fwd()
    result("W3_gpu", "torch_forward", median_us(fwd, 1))
    av = a.clone().requires_grad_()

    def both():
        y = torch.tanh(av * b + c) * 0.5 + torch.sigmoid(av)
        (ga,) = torch.autograd.grad(y.sum(), av)
        return y, ga
    both()
    result("W3_gpu", "torch_forward_backward", median_us(both, 1))
    dst = torch.empty_like(a)
    result("W3_gpu", "torch_copy", median_us(lambda: dst.copy_(a), 1))


if __name__ == "__main__":
    if not torch.cuda.is_available():
        print("peers_cuda.py: no CUDA device", file=sys.stderr)
        sys.exit(0)
    want = sys.argv[1:] or ["W1", "W2", "W3"]
    if "W1" in want:
        w1()
    if "W2" in want:
        w2(256, 512, "W2_gpu_256")
        w2(4096, 4096, "W2_gpu_4096")
    if "W3" in want:
        w3()
