#!/usr/bin/env python3
"""The PyTorch twins of the configs/bench networks, timed as one training step each.

  python3 scripts/bench/torch_twins.py NET [--iterations 20] [--threads N]

NET is one of lenet, cifar10_quick, alexnet, resnet18, mlp, lstm. Prints one JSON line: the median ms
of forward+backward and of forward+backward+SGD step over --iterations timed steps (after warm-up),
and, for every Convolution/InnerProduct/LSTM layer, its crema layer name, output shape and the FLOPs
it does in one training step. suite.py runs this in a fresh process per measurement, so PyTorch's
threads never share a process with crema's timing or with the SGEMM measurement.

Each twin has the shapes of its crema config (suite.py checks them against crema's log), not its
initialisation: the timing does not depend on the weights' values. PyTorch is a benchmark peer
only; crema never needs it.
"""
import argparse
import json
import statistics
import time
from collections import OrderedDict

import torch
import torch.nn as nn

# Warm-up before timing: at least this many steps and this many seconds (first steps create
# oneDNN primitives and grow the allocator's pools).
WARMUP_STEPS, WARMUP_SECONDS = 3, 0.5


def seq(*named):
    """nn.Sequential whose Conv2d/Linear modules carry their crema layer name (the key)."""
    net = nn.Sequential(OrderedDict(named))
    for name, module in named:
        module.crema_name = name
    return net


def lenet():
    return seq(("conv1", nn.Conv2d(1, 20, 5)), ("pool1", nn.MaxPool2d(2, 2)),
               ("conv2", nn.Conv2d(20, 50, 5)), ("pool2", nn.MaxPool2d(2, 2)), ("flatten", nn.Flatten()),
               ("ip1", nn.Linear(800, 500)), ("relu1", nn.ReLU(inplace=True)), ("ip2", nn.Linear(500, 10)))


def cifar10_quick():
    # Caffe pools in ceil mode: 32 -> 16 -> 8 -> 4 (floor mode would give 15 -> 7 -> 3).
    return seq(("conv1", nn.Conv2d(3, 32, 5, padding=2)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
               ("relu1", nn.ReLU(inplace=True)),
               ("conv2", nn.Conv2d(32, 32, 5, padding=2)), ("relu2", nn.ReLU(inplace=True)),
               ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
               ("conv3", nn.Conv2d(32, 64, 5, padding=2)), ("relu3", nn.ReLU(inplace=True)),
               ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)), ("flatten", nn.Flatten()),
               ("ip1", nn.Linear(64 * 4 * 4, 64)), ("ip2", nn.Linear(64, 10)))


def alexnet():
    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # alpha/size, as Caffe's LRN

    return seq(("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU(inplace=True)), ("norm1", lrn()),
               ("pool1", nn.MaxPool2d(3, 2)),
               ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU(inplace=True)),
               ("norm2", lrn()), ("pool2", nn.MaxPool2d(3, 2)),
               ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
               ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU(inplace=True)),
               ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU(inplace=True)),
               ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
               ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(0.5)),
               ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(0.5)),
               ("fc8", nn.Linear(4096, 1000)))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock; `name` is the crema prefix (res2a, ...) of its convolutions."""

    def __init__(self, name, cin, cout, stride):
        super().__init__()

        def conv_bn(suffix, cin, cout, k, stride):
            conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
            conv.crema_name = f"{name}_{suffix}"
            return nn.Sequential(conv, nn.BatchNorm2d(cout))  # BatchNorm2d = crema's BatchNorm + Scale

        self.branch2a = conv_bn("branch2a", cin, cout, 3, stride)
        self.branch2b = conv_bn("branch2b", cout, cout, 3, 1)
        self.branch1 = conv_bn("branch1", cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        y = self.branch2b(torch.relu_(self.branch2a(x)))
        return torch.relu_(y + self.branch1(x))


def resnet18():
    # MaxPool2d 3/2 pad 1 floors 112 -> 56; the crema config asks for round_mode FLOOR to match.
    conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
    conv1.crema_name = "conv1"
    layers = [conv1, nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, padding=1)]
    cin = 64
    for stage, cout in zip((2, 3, 4, 5), (64, 128, 256, 512)):
        for block in "ab":
            stride = 2 if stage > 2 and block == "a" else 1
            layers.append(BasicBlock(f"res{stage}{block}", cin, cout, stride))
            cin = cout
    fc = nn.Linear(512, 1000)
    fc.crema_name = "fc1000"
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def mlp():
    return seq(("flatten", nn.Flatten()), ("fc1", nn.Linear(784, 1024)), ("relu1", nn.ReLU(inplace=True)),
               ("fc2", nn.Linear(1024, 1024)), ("relu2", nn.ReLU(inplace=True)), ("fc3", nn.Linear(1024, 10)))


class SequenceClassifier(nn.Module):
    """LSTM 64 -> 256 over (T, N, 64), a 10-way Linear at every step; rows (T*N, 10) for the loss."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(64, 256)
        self.lstm.crema_name = "lstm1"
        self.fc = nn.Linear(256, 10)
        self.fc.crema_name = "fc1"

    def forward(self, x):
        return self.fc(self.lstm(x)[0]).reshape(-1, 10)


def lstm():
    return SequenceClassifier()


# name -> (builder, input shape of the crema config's DummyData: (N, C, H, W), or (T, N, I) for lstm)
NETS = {
    "lenet": (lenet, (64, 1, 28, 28)),
    "cifar10_quick": (cifar10_quick, (100, 3, 32, 32)),
    "alexnet": (alexnet, (32, 3, 227, 227)),
    "resnet18": (resnet18, (16, 3, 224, 224)),
    "mlp": (mlp, (256, 1, 28, 28)),
    "lstm": (lstm, (20, 32, 64)),
}


def layer_flops(model, x):
    """{crema name: (output shape, FLOPs of one training step)} for every Conv2d, Linear and LSTM.

    Forward is 2*MACs; backward computes the weight gradient (as many FLOPs as forward) and, unless
    the layer's input needs no gradient (the first layer, fed by the data), the input gradient too.
    An LSTM's recurrent products always need both (the gradient flows back through time). Bias
    terms and the LSTM's gate arithmetic are left out (a few per cent at most)."""
    found = {}

    def hook(module, inputs, output):
        if isinstance(module, nn.LSTM):
            steps, streams, _ = inputs[0].shape
            gates = 4 * module.hidden_size * steps * streams
            input_passes = 3 if inputs[0].requires_grad else 2
            found[module.crema_name] = (list(output[0].shape), 2 * gates * (module.input_size * input_passes +
                                                                           module.hidden_size * 3))
            return
        if isinstance(module, nn.Conv2d):
            macs = output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        else:
            macs = output.numel() * module.in_features
        passes = 3 if inputs[0].requires_grad else 2
        found[module.crema_name] = (list(output.shape), 2 * macs * passes)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM))]
    model(x)
    for h in handles:
        h.remove()
    return found


def time_steps(model, x, iterations):
    """Median ms of forward+backward and of forward+backward+SGD step (momentum 0.9)."""
    with torch.no_grad():
        rows = model(x).shape[0]  # the batch, or every timestep of every stream
    y = torch.full((rows,), 3, dtype=torch.long)  # the configs' constant label
    loss_fn = nn.CrossEntropyLoss()  # = SoftmaxWithLoss, averaged over the batch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fwd_bwd, full = [], []
    warm_until = time.perf_counter() + WARMUP_SECONDS
    step = 0
    while len(fwd_bwd) < iterations:
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        loss_fn(model(x), y).backward()
        t1 = time.perf_counter()
        optimizer.step()
        t2 = time.perf_counter()
        step += 1
        if step > WARMUP_STEPS and t0 > warm_until:
            fwd_bwd.append((t1 - t0) * 1000)
            full.append((t2 - t0) * 1000)
    return statistics.median(fwd_bwd), statistics.median(full)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", choices=sorted(NETS))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1701)
    build, shape = NETS[args.net]
    model = build().train()
    x = torch.full(shape, 0.5)  # the configs' constant DummyData input
    layers = layer_flops(model, x)
    fwd_bwd_ms, step_ms = time_steps(model, x, args.iterations)
    print(json.dumps({"torch": torch.__version__, "fwd_bwd_ms": fwd_bwd_ms, "step_ms": step_ms,
                      "layers": {name: {"shape": s, "flops": f} for name, (s, f) in layers.items()}}))


if __name__ == "__main__":
    main()
