#!/usr/bin/env python3
"""LeNet trained from PNG files (ImageData) against the same job from IDX files (Data).

  python3 scripts/bench/images_vs_idx.py [--iterations 10000] [--speed-iterations 1000] [--rounds 5]

Writes the Fashion-MNIST PNGs and list files once (datasets/fashion_mnist_png.py, into
runs/fashion_mnist_png), then
  1. accuracy: trains configs/fashion_mnist/lenet_solver.yaml (IDX) and lenet_images_solver.yaml
     (PNG) for --iterations with the same seed and prints both final test accuracies (0 skips it);
  2. throughput: alternates the two for --rounds pairs of --speed-iterations training iterations
     (no test pass) and prints the median PNG/IDX ratio of iterations per second, each pair run
     back to back, since these shared machines drift by 10-40% over minutes.
With the same seed both read the same samples in the same order, and PNG is lossless, so their
accuracies should agree closely.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG = os.path.join(ROOT, "runs", "fashion_mnist_png")
LINE_TIME = re.compile(r"^I\d{4} (\d\d):(\d\d):(\d\d\.\d+)", re.M)


def seconds(line_stamp):
    h, m, s = line_stamp
    return int(h) * 3600 + int(m) * 60 + float(s)


def train(solver, iterations, threads, out_dir, test):
    # Without a test, test_interval lies beyond the run: throughput of training alone.
    interval = iterations if test else iterations + 1
    args = [os.path.join(ROOT, "build", "crema"), "train", os.path.join(ROOT, "configs/fashion_mnist", solver),
            "--threads", str(threads), "--set", f"max_iter={iterations}", "--set", f"test_interval={interval}",
            "--set", "snapshot=0", "--set", "snapshot_after_train=false",
            "--set", f"snapshot_prefix={out_dir}/{solver.replace('.yaml', '')}"]
    log = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if log.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{log.stderr[-3000:]}")
    text = log.stderr
    found = re.findall(r"Test net output #\d+: accuracy = ([0-9.]+)", text)
    accuracy = float(found[-1]) if found else float("nan")
    # From "Solving" (setup done) to "Optimization Done.": the training loop with its test passes.
    start = next(l for l in text.splitlines() if "Solving " in l)
    end = next(l for l in text.splitlines() if "Optimization Done." in l)
    secs = seconds(LINE_TIME.match(end).groups()) - seconds(LINE_TIME.match(start).groups())
    waits = [float(w) for w in re.findall(r"data wait ([0-9.e+-]+) ms/iter", text)]
    return accuracy, iterations / secs, statistics.mean(waits) if waits else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10000, help="accuracy runs (0: skip)")
    parser.add_argument("--speed-iterations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="crema --threads (compute)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(PNG, "train.txt")):
        subprocess.run([sys.executable, os.path.join(ROOT, "datasets/fashion_mnist_png.py"), PNG], check=True)
    solvers = (("IDX", "lenet_solver.yaml"), ("PNG", "lenet_images_solver.yaml"))
    with tempfile.TemporaryDirectory() as out_dir:
        accuracy = {}
        if args.iterations > 0:
            for name, solver in solvers:
                accuracy[name] = train(solver, args.iterations, args.threads, out_dir, True)[0]
                print(f"{name}: test accuracy after {args.iterations} iterations {accuracy[name]:.4f}", flush=True)
        ratios, speed = [], {"IDX": [], "PNG": []}
        for r in range(args.rounds):
            pair = {}
            for name, solver in solvers if r % 2 == 0 else reversed(solvers):
                _, ips, wait = train(solver, args.speed_iterations, args.threads, out_dir, False)
                pair[name] = ips
                speed[name].append(ips)
                print(f"round {r + 1} {name}: {ips:.2f} iter/s, data wait {wait:.3f} ms/iter", flush=True)
            ratios.append(pair["PNG"] / pair["IDX"])
    if accuracy:
        print(f"accuracy IDX {accuracy['IDX']:.4f}, PNG {accuracy['PNG']:.4f}: "
              f"difference {100 * (accuracy['PNG'] - accuracy['IDX']):+.2f} points")
    if ratios:
        print(f"throughput IDX {statistics.median(speed['IDX']):.2f} iter/s, PNG {statistics.median(speed['PNG']):.2f} "
              f"iter/s (medians); PNG/IDX per pair {', '.join(f'{x:.3f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
