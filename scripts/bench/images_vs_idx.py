#!/usr/bin/env python3
"""LeNet trained from PNG files (ImageData) against the same job from IDX files (Data).

  python3 scripts/bench/images_vs_idx.py [--iterations 10000] [--rounds 1] [--threads N]

Writes the Fashion-MNIST PNGs and list files once (datasets/fashion_mnist_png.py, into
runs/fashion_mnist_png), then runs configs/fashion_mnist/lenet_solver.yaml (IDX) and
lenet_images_solver.yaml (PNG) for the same iterations and seed, alternating `--rounds` times,
and prints each one's final test accuracy, training throughput (iterations per second of the
whole run, test passes included, setup excluded) and the PNG/IDX throughput ratio. With the same
seed both read the same samples in the same order, so their accuracies should agree closely.
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


def train(solver, iterations, threads, out_dir):
    args = [os.path.join(ROOT, "build", "crema"), "train", os.path.join(ROOT, "configs/fashion_mnist", solver),
            "--threads", str(threads), "--set", f"max_iter={iterations}", "--set", f"test_interval={iterations}",
            "--set", "snapshot=0", "--set", f"snapshot_prefix={out_dir}/{solver.replace('.yaml', '')}"]
    log = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if log.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{log.stderr[-3000:]}")
    text = log.stderr
    accuracy = float(re.findall(r"Test net output #\d+: accuracy = ([0-9.]+)", text)[-1])
    # From "Solving" (setup done) to "Optimization Done.": the training loop with its test passes.
    start = next(l for l in text.splitlines() if "Solving " in l)
    end = next(l for l in text.splitlines() if "Optimization Done." in l)
    secs = seconds(LINE_TIME.match(end).groups()) - seconds(LINE_TIME.match(start).groups())
    waits = [float(w) for w in re.findall(r"data wait ([0-9.e+-]+) ms/iter", text)]
    return accuracy, iterations / secs, statistics.mean(waits) if waits else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="crema --threads (compute)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(PNG, "train.txt")):
        subprocess.run([sys.executable, os.path.join(ROOT, "datasets/fashion_mnist_png.py"), PNG], check=True)
    results = {"IDX": [], "PNG": []}
    with tempfile.TemporaryDirectory() as out_dir:
        for r in range(args.rounds):
            for name, solver in (("IDX", "lenet_solver.yaml"), ("PNG", "lenet_images_solver.yaml")):
                acc, ips, wait = train(solver, args.iterations, args.threads, out_dir)
                results[name].append((acc, ips, wait))
                print(f"round {r + 1} {name}: accuracy {acc:.4f}, {ips:.2f} iter/s, data wait {wait:.3f} ms/iter",
                      flush=True)
    idx_ips = statistics.median(x[1] for x in results["IDX"])
    png_ips = statistics.median(x[1] for x in results["PNG"])
    idx_acc = statistics.median(x[0] for x in results["IDX"])
    png_acc = statistics.median(x[0] for x in results["PNG"])
    print(f"IDX: accuracy {idx_acc:.4f}, {idx_ips:.2f} iter/s")
    print(f"PNG: accuracy {png_acc:.4f}, {png_ips:.2f} iter/s")
    print(f"accuracy difference (PNG - IDX): {100 * (png_acc - idx_acc):+.2f} points; "
          f"throughput PNG/IDX: {png_ips / idx_ips:.3f}")


if __name__ == "__main__":
    main()
