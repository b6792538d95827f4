#!/usr/bin/python3
"""Reads RESULT lines (bench/run.sh's output) on stdin and prints every measurement and the
ratio table of the speed targets (theta's median over the peer's, same run). A workload
measured in several rounds uses the median of its rounds."""
import collections
import datetime
import os
import platform
import statistics
import sys

TARGETS = [  # (label, workload, theta impl, peer impl, target ratio)
    ("W1 frozen step vs numpy hand-written gradient", "W1", "theta_frozen", "numpy", 0.25),
    ("W1 frozen step vs torch.jit.trace of the step", "W1", "theta_frozen", "torch_jit_trace", 0.10),
    ("W1 frozen step vs a plain C++ loop", "W1", "theta_frozen", "cpp_loop", 4),
    ("W1 eager step vs libtorch eager", "W1", "theta_eager", "libtorch_eager", 0.5),
    ("W2 frozen MLP step vs libtorch eager", "W2", "theta_frozen", "libtorch_eager", 0.9),
    ("W3 forward vs hand-fused C++ (all cores)", "W3", "theta_forward", "cpp_fused_forward", 1.2),  # issue 21
    ("W3 forward+backward vs hand-fused C++", "W3", "theta_forward_backward", "cpp_fused_forward_backward", 1.3),
] + [(f"W4 GEMM {dt} n={n} vs OpenBLAS direct", f"W4_{dt}_{n}", "theta", "openblas", 1.05)
     for dt in ("float64", "float32") for n in (512, 1024, 2048)] + [
    ("W5 recorded add + backward vs libtorch", "W5_recorded", "theta", "libtorch", 0.25),
    ("W5 unrecorded add vs libtorch", "W5_unrecorded", "theta", "libtorch", 0.5),
    ("W6 MLP 784-256-10 epoch (SGD, batch 100) vs libtorch", "W6", "theta_epoch", "libtorch_epoch", 0.8),
    ("W7 CNN epoch (Adam, batch 100) vs libtorch", "W7_epoch", "theta", "libtorch", 0.6),  # issue 27
    ("W7L LeNet-size CNN step (Adam, batch 100) vs libtorch", "W7L_step", "theta", "libtorch", 0.8),  # issue 27
    ("W7B batch-normalized CNN step (Adam, batch 100) vs libtorch", "W7B_step", "theta", "libtorch", 0.8),  # issue 27
] + [(f"{w} conv2d forward + gradients vs libtorch", w, "theta", "libtorch", 1.0)
     for w in ("W7_conv1_100x1x28x28_32x5x5", "W7_conv2_100x32x14x14_64x5x5", "W7_conv3_32x64x28x28_64x3x3",
               "W7L_conv1_100x1x28x28_16x5x5", "W7L_conv2_100x16x12x12_32x5x5", "W7B_conv1_100x1x28x28_32x3x3",
               "W7B_conv2_100x32x28x28_32x3x3", "W7B_conv3_100x32x14x14_64x3x3")] + [
    ("W7L max pool 2x2 gradient, 100x16x24x24, vs copying its input once", "W7L_pool_grad", "theta", "copy", 2.0)]
TARGETS.append(("W8 GRU 50 steps, batch 32, hidden 256, forward+backward vs torch::nn::GRU", "W8", "theta_frozen",
                "libtorch", 1.0))
TARGETS.append(("W8 freezing a 1000-step scan vs a 10-step one", "W8_freeze", "theta_1000_steps", "theta_10_steps", 1.0))
TARGETS.append(("S1 save 100 MB of weights vs writing the bytes", "S1_save_100MB", "theta", "cpp_stream", 1.5))
TARGETS.append(("S1 load 100 MB of weights vs reading the bytes", "S1_load_100MB", "theta", "cpp_stream", 1.5))
TARGETS.append(("W9 slogdet + solve, value and gradient, n=512 vs torch.linalg", "W9", "theta_frozen", "torch_linalg", 1.2))
TARGETS.append(("W10 transformer LM training step (samples/transformer_lm's model, AdamW) vs libtorch", "W10", "theta",
                "libtorch", 0.8))  # issue 28
for L in (512, 2048, 4096):  # issue 28: the goals are at 4096
    TARGETS.append((f"A1 attention layer step, batch 4, 8 heads, d 64, L={L}, vs libtorch written out", f"A1_{L}",
                    "theta", "libtorch", 1.0))
TARGETS.append(("O1 load + freeze a 100 MB ONNX model vs libtorch loading the same weights (torch::load)",
                "O1_load_100MB", "theta", "libtorch", 1.0))  # issue 30
for b in (1, 100):
    TARGETS.append((f"O2 PyTorch's CNN exported to ONNX, forward, batch {b}, vs the module in libtorch", f"O2_cnn_b{b}",
                    "theta", "libtorch", 1.0))
TARGETS.append(("A1 peak memory of that step beyond its inputs, L=4096 (MiB)", "A1_mem_4096", "theta", "libtorch", 0.1))
ACCURACY = [("W6 test accuracy after one epoch", "W6_test_accuracy", 0.01),
            ("W7 test accuracy after the timed steps", "W7_test_accuracy", None),
            ("W10 loss of the 50th step (same weights and batches)", "W10_loss", 0.01)]


# GPU (bench/run_cuda.sh, --gpu): (label, workload, theta impl, peer impl, target ratio).
GPU_TARGETS = [
    ("W2 frozen MLP step, batch 256, vs PyTorch CUDA eager", "W2_gpu_256", "theta_frozen", "torch_eager", 0.9),
    ("W2 frozen MLP step, batch 4096 hidden 4096, vs PyTorch CUDA eager", "W2_gpu_4096", "theta_frozen",
     "torch_eager", 0.9),
]
N_W3_GPU = 100_000_000


def gpu_table(us):
    print("\n| target | theta | reference | value | target | met |\n| --- | --- | --- | --- | --- | --- |")
    w1 = us.get(("W1_gpu", "theta_frozen"))
    if w1 is not None:
        print(f"| W1 frozen step on the GPU | {w1:.3f} us | torch eager {us.get(('W1_gpu', 'torch_eager'), '-')} us "
              f"| {w1:.3f} us | <= 10 us | {'yes' if w1 <= 10 else 'NO'} |")
    for label, w, mine, peer, target in GPU_TARGETS:
        a, b = us.get((w, mine)), us.get((w, peer))
        if a is None or b is None:
            print(f"| {label} | {a or '-'} | {b or '-'} | not measured | <= {target} | - |")
            continue
        print(f"| {label} | {a:.1f} us | {b:.1f} us | {a / b:.3f} | <= {target} | {'yes' if a / b <= target else 'NO'} |")
    copy = us.get(("W3_gpu", "cuda_memcpy_d2d"))
    for impl, arrays in (("theta_forward", 4), ("theta_forward_backward", 5)):  # a, b, c read; y (and dy/da) written
        t = us.get(("W3_gpu", impl))
        if t is None or copy is None:
            print(f"| W3 {impl} bandwidth | - | - | not measured | >= 0.8 of copy | - |")
            continue
        bw, copy_bw = arrays * 4 * N_W3_GPU / t / 1e3, 2 * 4 * N_W3_GPU / copy / 1e3  # GB/s
        print(f"| W3 {impl.replace('theta_', '')} ({arrays} arrays of 10^8 float32) | {bw:.0f} GB/s | copy "
              f"{copy_bw:.0f} GB/s | {bw / copy_bw:.3f} | >= 0.8 | {'yes' if bw / copy_bw >= 0.8 else 'NO'} |")


def cpu_name():
    """The model name, and since VMs often hide the model ("AMD EPYC"), the family and the
    widest vector unit too: the same kernels meet a target on one and miss it on another."""
    info = {}
    for line in open("/proc/cpuinfo"):
        if ":" in line:
            key, value = (p.strip() for p in line.split(":", 1))
            info.setdefault(key, value)
            if key == "flags":
                break
    flags = set(info.get("flags", "").split())
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, {simd})"


def main():
    gpu = "--gpu" in sys.argv[1:]
    runs = collections.defaultdict(list)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "RESULT":
            runs[(parts[1], parts[2])].append(float(parts[3]))
    us = {k: statistics.median(v) for k, v in runs.items()}
    cpu = cpu_name()
    print(f"\n# theta benchmarks, {datetime.date.today()}, {platform.node()}: {cpu}, {os.cpu_count()} cores, "
          f"threads {os.environ.get('THETA_BENCH_THREADS', '?')}")
    print("\n| workload | implementation | median (us) |\n| --- | --- | --- |")
    for (w, impl), v in sorted(us.items()):
        print(f"| {w} | {impl} | {v:.3f} |")
    if gpu:
        gpu_table(us)
        return
    freeze = us.get(("F1_freeze_1000_nodes", "theta"))
    if freeze is not None:
        print(f"\nFreezing a 1000-node graph: {freeze / 1000:.2f} ms (target < 50 ms: {'yes' if freeze < 50000 else 'NO'})")
    load = us.get(("S1_load_w2", "theta"))
    if load is not None:
        print(f"\nLoading W2's saved training function: {load / 1000:.2f} ms (target < 10 ms: {'yes' if load < 10000 else 'NO'})")
    largest = us.get(("O1_load_largest", "theta"))
    if largest is not None:
        print(f"\nLoading and freezing the largest PyTorch-converted ONNX test model: {largest / 1000:.2f} ms")
    raw = us.get(("O1_load_100MB", "cpp_stream"))
    if raw is not None:
        print(f"Reading the 100 MB ONNX file's bytes into a warm buffer: {raw / 1000:.1f} ms (the floor; a load "
              "allocates and fills new memory)")
    print("\n| target | theta (us) | peer (us) | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |")
    for label, w, mine, peer, target in TARGETS:
        a, b = us.get((w, mine)), us.get((w, peer))
        if a is None or b is None:
            print(f"| {label} | {a or '-'} | {b or '-'} | not measured | <= {target} | - |")
            continue
        r = a / b
        print(f"| {label} | {a:.3f} | {b:.3f} | {r:.3f} | <= {target} | {'yes' if r <= target else 'NO'} |")
    for label, w, within in ACCURACY:
        a, b = us.get((w, "theta")), us.get((w, "libtorch"))
        if a is None or b is None:
            continue
        met = "-" if within is None else ("yes" if abs(a - b) <= within else "NO")
        print(f"| {label} | {a:.4f} | {b:.4f} | {a - b:+.4f} | {'within ' + str(within) if within else 'reported'} | {met} |")


if __name__ == "__main__":
    main()
