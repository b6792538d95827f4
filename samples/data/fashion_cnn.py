#!/usr/bin/env python3
"""Makes the files samples/onnx_finetune.cpp and tests/onnx/test_onnx.cpp read: a small CNN
trained briefly by PyTorch on Fashion-MNIST and exported with torch.onnx.export.

  fashion_cnn.onnx            the model: images (N, 1, 28, 28) float32 in [0, 1] -> logits (N, 10)
  fashion_cnn_reference.npz   PyTorch's values on 8 test images, for the gradient test:
                              images, labels, logits, loss (mean cross-entropy) and
                              grad/<initializer name> for every parameter

Run from anywhere with Debian's python3-torch and python3-numpy (apt-get install
python3-torch python3-numpy dataset-fashion-mnist):
  /usr/bin/python3 samples/data/fashion_cnn.py [--train-images 5000] [--data DIR]
The model is trained on a few thousand images only (about 75 % test accuracy), so that
fine-tuning in theta has something to do.
"""
import argparse
import gzip
import os

import numpy as np
import torch


class FashionCNN(torch.nn.Module):
    """conv 5x5 (8) - relu - max-pool 2 - conv 5x5 (16) - relu - max-pool 2 - dense 256 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 5)
        self.conv2 = torch.nn.Conv2d(8, 16, 5)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="the idx.gz files")
    p.add_argument("--train-images", type=int, default=5000, help="images PyTorch trains on (default 5000)")
    p.add_argument("--out", default=here, help="folder to write to (default: this script's)")
    a = p.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    x = torch.from_numpy(idx(f"{a.data}/train-images-idx3-ubyte.gz")[: a.train_images].astype(np.float32) / 255.0)
    y = torch.from_numpy(idx(f"{a.data}/train-labels-idx1-ubyte.gz")[: a.train_images].astype(np.int64))
    xt = torch.from_numpy(idx(f"{a.data}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    yt = torch.from_numpy(idx(f"{a.data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    x = x.unsqueeze(1)

    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(0, len(x), 100):  # one epoch, batch 100
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[s:s + 100]), y[s:s + 100])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"PyTorch: trained on {len(x)} images, test accuracy {acc:.4f}")

    onnx_path = os.path.join(a.out, "fashion_cnn.onnx")
    torch.onnx.export(model, xt[:2], onnx_path, input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)

    # the gradient reference: mean cross-entropy of 8 test images, d/d(every parameter)
    images, labels = xt[:8].clone(), yt[:8].clone()
    model.zero_grad()
    logits = model(images)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    ref = {"images": images.numpy(), "labels": labels.numpy(), "logits": logits.detach().numpy(),
           "loss": np.array(loss.item(), dtype=np.float32)}
    for name, param in model.named_parameters():
        ref["grad/" + name] = param.grad.numpy()
    np.savez(os.path.join(a.out, "fashion_cnn_reference.npz"), **ref)
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes) and fashion_cnn_reference.npz "
          f"(test accuracy {acc:.4f}; loss on the 8 reference images {loss.item():.6f})")


if __name__ == "__main__":
    main()
