#!/usr/bin/env python3
"""Golden data for tests/test_golden.cpp, computed by PyTorch (an independent framework).

A tiny conv net, Caffe semantics written out in PyTorch:
  data (4,1,8,8) -> Convolution 3@3x3 pad 1 -> ReLU -> MAX pool 2x2/2 -> InnerProduct 10
  -> SoftmaxWithLoss (mean over the batch)
trained for STEPS steps of Caffe's SGD (V = m V + lr lr_mult (g + wd decay_mult w); w -= V) with
weights lr_mult 1 / decay_mult 1 and biases lr_mult 2 / decay_mult 0.

Writes, next to tests/data/golden/:
  tiny_init.caffemodel.h5   initial weights in Caffe's HDF5 layout (/data/<layer>/<i>)
  tiny_batch.h5             the batch: data (4,1,8,8) float32, label (4,) float32
  tiny_expected.h5          losses (STEPS,) before each update, and final/<layer>/<i> weights
Run: python3 scripts/golden/make_tiny_sgd.py   (needs torch, h5py, numpy; test-time only)
"""
import os

import h5py
import numpy as np
import torch

STEPS, LR, MOMENTUM, WD = 5, 0.05, 0.9, 5e-4
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "golden")
rng = np.random.default_rng(20261121)

data = rng.uniform(0, 1, size=(4, 1, 8, 8)).astype(np.float32)
label = np.array([3, 7, 1, 3], dtype=np.float32)
init = {
    "conv1": [rng.normal(0, 0.3, size=(3, 1, 3, 3)).astype(np.float32), rng.normal(0, 0.1, size=(3,)).astype(np.float32)],
    "ip1": [rng.normal(0, 0.2, size=(10, 48)).astype(np.float32), rng.normal(0, 0.1, size=(10,)).astype(np.float32)],
}

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
params = {k: [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in vs] for k, vs in init.items()}
x = torch.tensor(data, dtype=torch.float64)
y = torch.tensor(label, dtype=torch.long)
history = {k: [torch.zeros_like(p) for p in ps] for k, ps in params.items()}
lr_mult, decay_mult = [1.0, 2.0], [1.0, 0.0]
losses = []
for step in range(STEPS):
    h = torch.nn.functional.conv2d(x, params["conv1"][0], params["conv1"][1], stride=1, padding=1)
    h = torch.nn.functional.max_pool2d(torch.relu(h), 2, 2)
    logits = torch.nn.functional.linear(h.reshape(4, -1), params["ip1"][0], params["ip1"][1])
    loss = torch.nn.functional.cross_entropy(logits, y)
    losses.append(loss.item())
    for ps in params.values():
        for p in ps:
            p.grad = None
    loss.backward()
    with torch.no_grad():
        for k, ps in params.items():
            for i, p in enumerate(ps):
                g = p.grad + WD * decay_mult[i] * p
                history[k][i] = MOMENTUM * history[k][i] + LR * lr_mult[i] * g
                p -= history[k][i]

with h5py.File(os.path.join(out, "tiny_init.caffemodel.h5"), "w") as f:
    for layer in ["data", "conv1", "relu1", "pool1", "ip1", "loss"]:
        g = f.create_group("data/" + layer)
        for i, v in enumerate(init.get(layer, [])):
            g.create_dataset(str(i), data=v)
with h5py.File(os.path.join(out, "tiny_batch.h5"), "w") as f:
    f.create_dataset("data", data=data)
    f.create_dataset("label", data=label)
with h5py.File(os.path.join(out, "tiny_expected.h5"), "w") as f:
    f.create_dataset("losses", data=np.array(losses, dtype=np.float64))
    for k, ps in params.items():
        for i, p in enumerate(ps):
            f.create_dataset(f"final/{k}/{i}", data=p.detach().numpy().astype(np.float32))
    f.attrs["generator"] = f"PyTorch {torch.__version__}, float64, scripts/golden/make_tiny_sgd.py"
print("losses:", losses)
