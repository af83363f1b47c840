#!/usr/bin/env python3
"""LeNet forward+backward time, crema vs PyTorch on this machine, interleaved.

  python3 scripts/bench/lenet_vs_pytorch.py [--rounds 3] [--iterations 50] [--threads N]

Runs `crema time` on configs/bench/lenet_b64.yaml (DummyData, batch 64) and the same net in
PyTorch (pip `torch`, same thread count, forward + backward, after warm-up), alternating the two
`--rounds` times, and prints the median ms per forward+backward pass of each and their ratio.
PyTorch is a benchmark peer only; crema never needs it.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def crema_ms(iterations, threads):
    out = subprocess.run(
        [os.path.join(ROOT, "build", "crema"), "time", "--model", os.path.join(ROOT, "configs/bench/lenet_b64.yaml"),
         "--iterations", str(iterations), "--threads", str(threads)],
        capture_output=True, text=True, check=True).stderr
    return float(re.search(r"Average Forward-Backward: ([0-9.]+) ms", out).group(1))


def torch_ms(iterations, threads):
    import torch
    import torch.nn as nn
    torch.set_num_threads(threads)
    net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2),
                        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    x = torch.rand(64, 1, 28, 28)
    y = torch.full((64,), 3, dtype=torch.long)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(iterations + 5):
        t = time.perf_counter()
        net.zero_grad(set_to_none=False)
        loss_fn(net(x), y).backward()
        if i >= 5:  # warm-up
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("PyTorch is not installed: pip install torch")
    c, t = [], []
    for _ in range(args.rounds):
        c.append(crema_ms(args.iterations, args.threads))
        t.append(torch_ms(args.iterations, args.threads))
    cm, tm = statistics.median(c), statistics.median(t)
    print(f"LeNet b64 forward+backward, {args.threads} threads, median of {args.rounds} interleaved rounds")
    print(f"  crema   {cm:8.2f} ms   (rounds: {', '.join(f'{v:.2f}' for v in c)})")
    print(f"  PyTorch {tm:8.2f} ms   (rounds: {', '.join(f'{v:.2f}' for v in t)})")
    print(f"  crema / PyTorch = {cm / tm:.2f}")


if __name__ == "__main__":
    main()
