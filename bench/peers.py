#!/usr/bin/python3
"""numpy and PyTorch peers of the workloads in bench/README.md; prints RESULT lines.
Run with Debian's /usr/bin/python3 (python3-numpy, python3-torch). Threads: THETA_BENCH_THREADS
(default: all cores) for torch.set_num_threads; numpy's OpenBLAS reads OPENBLAS_NUM_THREADS."""
import os
import statistics
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # the torch peers are skipped, numpy still runs
    torch = None


def median_us(f, units, runs=5):
    t = []
    for _ in range(runs):
        a = time.perf_counter()
        f()
        t.append((time.perf_counter() - a) * 1e6 / units)
    return statistics.median(t)


def result(workload, impl, us):
    print(f"RESULT {workload} {impl} {us:.4f}", flush=True)


def seed_data():
    s = 12345
    vals = []
    for _ in range(500):
        s = (s * 1103515245 + 12345) % 4294967296
        vals.append(s / 4294967296.0)
    x = np.array(vals).reshape(125, 4)
    return x, x @ np.array([3.0, 3.0, 2.0, 2.0])


def w1():
    x, y = seed_data()
    steps = 10000

    def numpy_loop():
        w = np.zeros(4)
        for _ in range(steps):
            r = x @ w - y
            cost = (r * r).mean()
            w -= 0.1 * (2.0 / 125) * (x.T @ r)
        return cost
    result("W1", "numpy", median_us(numpy_loop, steps))
    if torch is None:
        return
    X, Y = torch.from_numpy(x), torch.from_numpy(y)

    def step(w, X, Y):
        cost = ((X @ w - Y) ** 2).mean()
        g = (2.0 / 125) * (X.t() @ (X @ w - Y))  # traced graphs cannot call autograd.grad: hand gradient
        return cost, w - 0.1 * g
    traced = torch.jit.trace(step, (torch.zeros(4, dtype=torch.float64), X, Y))

    def traced_loop():
        w = torch.zeros(4, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(steps):
                _, w = traced(w, X, Y)
    traced_loop()
    result("W1", "torch_jit_trace", median_us(traced_loop, steps))

    def eager_loop():
        w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        for _ in range(steps):
            cost = ((X @ w - Y) ** 2).mean()
            (g,) = torch.autograd.grad(cost, w)
            with torch.no_grad():
                w -= 0.1 * g
    result("W1", "torch_eager", median_us(eager_loop, steps))


def w2():
    if torch is None:
        return
    torch.manual_seed(1)
    batch = 256
    p = [torch.empty(784, 512).uniform_(-0.05, 0.05), torch.zeros(512), torch.empty(512, 512).uniform_(-0.05, 0.05),
         torch.zeros(512), torch.empty(512, 10).uniform_(-0.05, 0.05), torch.zeros(10)]
    for t in p:
        t.requires_grad_(True)
    X = torch.rand(batch, 784)
    labels = torch.arange(batch) * 7 % 10

    def step():
        h1 = torch.tanh(X @ p[0] + p[1])
        h2 = torch.tanh(h1 @ p[2] + p[3])
        loss = torch.nn.functional.cross_entropy(h2 @ p[4] + p[5], labels)
        g = torch.autograd.grad(loss, p)
        with torch.no_grad():
            for t, gt in zip(p, g):
                t -= 0.01 * gt
    step()
    result("W2", "torch_eager", median_us(lambda: [step() for _ in range(20)], 20))


def w3():
    n = 10_000_000
    rng = np.random.default_rng(1)
    a, b, c = (rng.uniform(-1, 1, n).astype(np.float32) for _ in range(3))

    def np_fwd():
        return np.tanh(a * b + c) * np.float32(0.5) + np.float32(1) / (np.float32(1) + np.exp(-a))
    result("W3", "numpy_forward", median_us(np_fwd, 1))
    if torch is None:
        return
    A, B, C = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    with torch.no_grad():
        result("W3", "torch_forward", median_us(lambda: torch.tanh(A * B + C) * 0.5 + torch.sigmoid(A), 1))
    Ag = A.clone().requires_grad_(True)

    def fwd_bwd():
        y = torch.tanh(Ag * B + C) * 0.5 + torch.sigmoid(Ag)
        return torch.autograd.grad(y.sum(), Ag)
    result("W3", "torch_forward_backward", median_us(fwd_bwd, 1))


def w4():
    for dt in ("float64", "float32"):
        for n in (512, 1024, 2048):
            rng = np.random.default_rng(1)
            A, B = rng.uniform(-1, 1, (n, n)).astype(dt), rng.uniform(-1, 1, (n, n)).astype(dt)
            runs = 3 if n >= 2048 else 5
            A @ B
            result(f"W4_{dt}_{n}", "numpy", median_us(lambda: A @ B, 1, runs))
            if torch is not None:
                TA, TB = torch.from_numpy(A), torch.from_numpy(B)
                result(f"W4_{dt}_{n}", "torch", median_us(lambda: TA @ TB, 1, runs))


def w5():
    if torch is None:
        return
    n = 100000

    def unrecorded():
        with torch.no_grad():
            y = torch.ones((), dtype=torch.float64)
            for _ in range(n):
                y = y + 1.0
    result("W5_unrecorded", "torch", median_us(unrecorded, n))

    def recorded():
        x = torch.ones((), dtype=torch.float64, requires_grad=True)
        y = x
        for _ in range(n):
            y = y + 1.0
        torch.autograd.grad(y, x)
    result("W5_recorded", "torch", median_us(recorded, n))


def w9():
    """value and gradient of slogdet(A) + sum(solve(A, B)) at n = 512, float64"""
    if torch is None:
        return
    n = 512
    g = torch.Generator().manual_seed(1)
    A0 = torch.rand(n, n, generator=g, dtype=torch.float64) * 2 - 1 + n ** 0.5 * torch.eye(n, dtype=torch.float64)
    B = torch.rand(n, 8, generator=g, dtype=torch.float64) * 2 - 1

    def step():
        A = A0.clone().requires_grad_(True)
        v = torch.linalg.slogdet(A)[1] + torch.linalg.solve(A, B).sum()
        return torch.autograd.grad(v, A)
    step()
    result("W9", "torch_linalg", median_us(step, 1, 7))


def w6():  # W6/W7 have no Python peer (libtorch runs them)
    pass


w7 = w6


if __name__ == "__main__":
    if torch is not None:
        torch.set_num_threads(int(os.environ.get("THETA_BENCH_THREADS", os.cpu_count())))
    wanted = sys.argv[1:] or ["W1", "W2", "W3", "W4", "W5"]
    for name in wanted:
        globals()[name.lower()]()
