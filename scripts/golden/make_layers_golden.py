#!/usr/bin/env python3
"""Golden forward/backward data for tests/test_golden.cpp, computed by PyTorch (float64).

The net, with Caffe semantics written out in PyTorch:
  data (2,3,6,6) -> Convolution 4@3x3 pad 1 -> BatchNorm (TRAIN: batch statistics, eps 1e-5)
  -> Scale with bias (per channel) -> PReLU (per channel) -> MAX Pooling 2x2/2
  -> Deconvolution 2@2x2 stride 2 -> ELU (alpha 0.5) -> LRN across 3 channels (alpha 0.01, beta 0.75)
  -> InnerProduct 5 -> SoftmaxWithLoss (mean over the batch)
Writes tests/data/golden/layers.h5:
  data, label                  the input batch
  init/<layer>/<i>             parameters, Caffe's blob layouts
  loss                         the loss
  grad/data                    d loss / d data
  grad/<layer>/<i>             d loss / d parameter
Run: python3 scripts/golden/make_layers_golden.py   (needs torch, h5py, numpy; test-time only)
"""
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "golden", "layers.h5")
rng = np.random.default_rng(7)
f32 = lambda a: np.asarray(a, dtype=np.float32)

data = f32(rng.normal(0, 1, size=(2, 3, 6, 6)))
label = f32([1, 3])
init = {
    "conv1": [f32(rng.normal(0, 0.3, size=(4, 3, 3, 3))), f32(rng.normal(0, 0.1, size=(4,)))],
    "scale1": [f32(rng.uniform(0.5, 1.5, size=(4,))), f32(rng.normal(0, 0.1, size=(4,)))],
    "prelu1": [f32(rng.uniform(0.1, 0.4, size=(4,)))],
    "deconv1": [f32(rng.normal(0, 0.3, size=(4, 2, 2, 2))), f32(rng.normal(0, 0.1, size=(2,)))],
    "ip1": [f32(rng.normal(0, 0.1, size=(5, 72))), f32(rng.normal(0, 0.1, size=(5,)))],
}

p = {k: [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in vs] for k, vs in init.items()}
x = torch.tensor(data, dtype=torch.float64, requires_grad=True)
h = F.conv2d(x, p["conv1"][0], p["conv1"][1], padding=1)
h = F.batch_norm(h, None, None, training=True, eps=1e-5)
h = h * p["scale1"][0].view(1, -1, 1, 1) + p["scale1"][1].view(1, -1, 1, 1)
h = F.prelu(h, p["prelu1"][0])
h = F.max_pool2d(h, 2, 2)
h = F.conv_transpose2d(h, p["deconv1"][0], p["deconv1"][1], stride=2)
h = F.elu(h, alpha=0.5)
h = F.local_response_norm(h, size=3, alpha=0.01, beta=0.75, k=1.0)
logits = F.linear(h.reshape(2, -1), p["ip1"][0], p["ip1"][1])
loss = F.cross_entropy(logits, torch.tensor(label, dtype=torch.long))
loss.backward()

with h5py.File(out, "w") as f:
    f.create_dataset("data", data=data)
    f.create_dataset("label", data=label)
    for k, vs in init.items():
        for i, v in enumerate(vs):
            f.create_dataset(f"init/{k}/{i}", data=v)
            f.create_dataset(f"grad/{k}/{i}", data=p[k][i].grad.numpy().astype(np.float32))
    f.create_dataset("loss", data=np.array([loss.item()]))
    f.create_dataset("grad/data", data=x.grad.numpy().astype(np.float32))
    f.attrs["generator"] = f"PyTorch {torch.__version__}, float64, scripts/golden/make_layers_golden.py"
print("loss", loss.item())
