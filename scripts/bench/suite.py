#!/usr/bin/env python3
"""crema against PyTorch and BVLC Caffe on six networks: ms per training step and SGEMM fraction.

  python3 scripts/bench/suite.py [--nets lenet,alexnet] [--rounds 3] [--iterations 20] [--threads N]
                                 [--out docs/benchmarks.md | --no-write] [--crema build/crema]

For each network of configs/bench (LeNet b64, CIFAR-10 quick b100, AlexNet b32, ResNet-18 b16, an
MLP b256, an LSTM over 32 sequences), alternating crema and PyTorch for --rounds rounds (the order flips every round, so a
drifting machine load hits both alike), it runs
  - `crema time --model configs/bench/<net>.yaml --iterations N --threads T`: forward+backward, the
    median of its per-iteration lines, and its per-layer averages;
  - scripts/bench/torch_twins.py: the same network in PyTorch (pip `torch`, same shapes, same
    thread count), forward+backward and forward+backward+SGD step (momentum 0.9), median of N steps
    after warm-up, in a fresh process;
and once per round scripts/bench/sgemm.py: the best 2048^3 cblas_sgemm of the OpenBLAS crema links.
It prints a markdown table of medians over the rounds (the crema/PyTorch ratio is the median of the
per-round ratios) and writes it, with the machine and the command, to --out (docs/benchmarks.md).
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
MATMUL_TYPES = ("Convolution", "InnerProduct", "LSTM")
BUSY_LOAD = 0.5  # 1-minute load average above which the machine is not idle enough to compare


@dataclass
class Net:
    title: str
    config: str  # under configs/bench
    batch: int
    caffe_ms: float | None = None  # BVLC Caffe CPU median, forward+backward (issue 6), at caffe_batch
    caffe_batch: int | None = None


NETS = {
    "lenet": Net("LeNet", "lenet_b64.yaml", 64, 19.3, 64),
    "cifar10_quick": Net("CIFAR-10 quick", "cifar10_quick_b100.yaml", 100, 159.7, 100),
    "alexnet": Net("AlexNet", "alexnet_b32.yaml", 32, 644.0, 16),
    "resnet18": Net("ResNet-18", "resnet18_b16.yaml", 16),
    "mlp": Net("MLP 784-1024-1024-10", "mlp_b256.yaml", 256),
    "lstm": Net("LSTM 64-256, 20 steps", "lstm_b32.yaml", 32),
}


@dataclass
class Rounds:
    """One network's measurements, one entry per round."""
    crema_ms: list = field(default_factory=list)  # forward+backward, median of crema's iterations
    matmul_ms: list = field(default_factory=list)  # crema's Convolution+InnerProduct fwd+bwd, averaged
    torch_ms: list = field(default_factory=list)  # forward+backward
    torch_step_ms: list = field(default_factory=list)  # forward+backward+SGD step
    ratio: list = field(default_factory=list)  # crema_ms / torch_ms of the same round
    bf16_ms: list = field(default_factory=list)  # crema with --precision bf16 (--bf16), forward+backward
    flops: int = 0  # Convolution+InnerProduct FLOPs of one training step (from the PyTorch twin)


def run(args, env=None):
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{shlex.join(args)} failed (exit {out.returncode}):\n{(out.stderr or out.stdout)[-3000:]}")
    return out


def crema_time(crema, net, iterations, threads, precision="fp32"):
    """crema's log parsed: step ms, per-layer ms and type and first top shape."""
    args = [crema, "time", "--model", os.path.join(ROOT, "configs", "bench", net.config),
            "--iterations", str(iterations), "--threads", str(threads), "--precision", precision]
    log = run(args).stderr
    steps = [float(v) for v in re.findall(r"Iteration: \d+ forward-backward time: ([0-9.]+) ms", log)]
    if len(steps) != iterations:
        sys.exit(f"{shlex.join(args)}: expected {iterations} 'Iteration: ... forward-backward time' lines, "
                 f"found {len(steps)}; has crema time's log format changed?")
    layers = {}  # name -> {"type", "shape", "ms"}
    current = None
    for line in log.splitlines():
        if m := re.search(r"Setting up (\S+) \((\w+)\)", line):
            current = layers.setdefault(m.group(1), {"type": m.group(2), "shape": None, "ms": 0.0})
        elif (m := re.search(r"Top shape: ([\d ]*)\(", line)) and current is not None and current["shape"] is None:
            current["shape"] = [int(v) for v in m.group(1).split()]
        elif m := re.search(r"\]\s+(\S+)\t(?:forward|backward): ([0-9.]+) ms", line):
            layers[m.group(1)]["ms"] += float(m.group(2))
    return statistics.median(steps), layers


def helper(script, *args, env=None):
    """Runs scripts/bench/<script> in a fresh Python process; returns the JSON of its last line."""
    return json.loads(run([sys.executable, os.path.join(HERE, script), *map(str, args)], env).stdout.splitlines()[-1])


def check_twin(net, crema_layers, twin_layers):
    """The PyTorch twin must have crema's Convolution/InnerProduct layers with the same top shapes."""
    crema_matmul = {n: l["shape"] for n, l in crema_layers.items() if l["type"] in MATMUL_TYPES}
    twin = {n: l["shape"] for n, l in twin_layers.items()}
    if crema_matmul != twin:
        diff = sorted(f"{n}: crema {crema_matmul.get(n)} vs PyTorch {twin.get(n)}"
                      for n in set(crema_matmul) | set(twin) if crema_matmul.get(n) != twin.get(n))
        sys.exit(f"configs/bench/{net.config} and its PyTorch twin in torch_twins.py differ:\n  " + "\n  ".join(diff))


def measure(keys, args):
    results = {k: Rounds() for k in keys}
    sgemm_runs, native_runs, info = [], [], {}
    for r in range(args.rounds):
        sgemm_args = ("sgemm.py", "--crema", args.crema, "--threads", args.threads, "--repeats", 3)
        s = helper(*sgemm_args)
        sgemm_runs.append(s["gflops"])
        info["blas"] = f"{s['config']} ({s['library']})"
        if "OPENBLAS_CORETYPE" in os.environ:
            # The environment pins OpenBLAS's kernels (and so what crema's own BLAS calls get); the
            # machine's SGEMM throughput is what the library reaches with its own choice.
            native = helper(*sgemm_args, env={k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"})
            native_runs.append(native["gflops"])
            info["native_kernel"] = native["config"].split(" MAX_THREADS")[0].split()[-1]
        for key in keys:
            net, res = NETS[key], results[key]
            print(f"round {r + 1}/{args.rounds}: {net.title}", file=sys.stderr, flush=True)
            # Flip the order every round so that load drifting over a round favours neither side.
            for side in (("crema", "torch") if r % 2 == 0 else ("torch", "crema")):
                if side == "crema":
                    ms, layers = crema_time(args.crema, net, args.iterations, args.threads)
                    if args.bf16:
                        res.bf16_ms.append(crema_time(args.crema, net, args.iterations, args.threads, "bf16")[0])
                else:
                    twin = helper("torch_twins.py", key, "--iterations", args.iterations, "--threads", args.threads)
            check_twin(net, layers, twin["layers"])
            info["torch"] = twin["torch"]
            res.crema_ms.append(ms)
            res.matmul_ms.append(sum(l["ms"] for l in layers.values() if l["type"] in MATMUL_TYPES))
            res.torch_ms.append(twin["fwd_bwd_ms"])
            res.torch_step_ms.append(twin["step_ms"])
            res.ratio.append(ms / twin["fwd_bwd_ms"])
            res.flops = sum(l["flops"] for l in twin["layers"].values())
    info["sgemm_env"] = max(sgemm_runs)
    info["sgemm"] = max(sgemm_runs + native_runs)
    info["sgemm_native"] = max(native_runs) if native_runs else None
    return results, info


def table(keys, results, sgemm_gflops, threads):
    med = statistics.median
    lines = [
        f"| net | batch | crema ms/step (fwd+bwd) | PyTorch ms (fwd+bwd) | PyTorch ms (fwd+bwd+SGD step) "
        f"| crema / PyTorch | crema img/s | PyTorch img/s | crema conv+ip GFLOP/s (% of SGEMM {sgemm_gflops:.0f}) "
        f"| conv+ip FLOPs over crema's whole step, % of SGEMM | BVLC Caffe ms (batch) | crema speed-up vs Caffe |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    bf16 = all(results[k].bf16_ms for k in keys)
    if bf16:
        lines[0] += " crema bf16 ms/step | crema bf16 / PyTorch fp32 |"
        lines[1] += "--:|--:|"
    for key in keys:
        net, res = NETS[key], results[key]
        crema_ms, torch_ms = med(res.crema_ms), med(res.torch_ms)
        gflops = res.flops / (med(res.matmul_ms) / 1000) / 1e9
        step_gflops = res.flops / (crema_ms / 1000) / 1e9  # as issue 6's AlexNet criterion counts
        caffe, speedup = "–", "–"
        if net.caffe_ms is not None:
            caffe = f"{net.caffe_ms:g} (b{net.caffe_batch})"
            # Per image, since Caffe's AlexNet figure is at batch 16.
            speedup = f"{(net.caffe_ms / net.caffe_batch) / (crema_ms / net.batch):.2f}×"
        lines.append(f"| {net.title} | {net.batch} | {crema_ms:.1f} | {torch_ms:.1f} | {med(res.torch_step_ms):.1f} "
                     f"| **{med(res.ratio):.2f}** | {net.batch / crema_ms * 1000:.0f} | {net.batch / torch_ms * 1000:.0f} "
                     f"| {gflops:.0f} ({100 * gflops / sgemm_gflops:.0f}%) | {100 * step_gflops / sgemm_gflops:.0f}% "
                     f"| {caffe} | {speedup} |")
        if bf16:
            lines[-1] += f" {med(res.bf16_ms):.1f} | {med(res.bf16_ms) / torch_ms:.2f} |"
    return "\n".join(lines)


def rounds_detail(keys, results):
    lines = ["| net | crema ms per round | PyTorch ms per round (fwd+bwd) | crema / PyTorch per round |",
             "|---|---|---|---|"]
    for key in keys:
        res = results[key]
        lines.append(f"| {NETS[key].title} | {', '.join(f'{v:.1f}' for v in res.crema_ms)} "
                     f"| {', '.join(f'{v:.1f}' for v in res.torch_ms)} | {', '.join(f'{v:.2f}' for v in res.ratio)} |")
    return "\n".join(lines)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        found = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def git_commit():
    out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def document(keys, args, results, info, command, started, seconds, loads):
    busy = (" — **the machine was busy**: other jobs shared the cores, which slows multi-threaded runs by "
            "large and unequal factors (PyTorch's spinning OpenMP threads most); rerun on an idle machine"
            if loads[0] > BUSY_LOAD else " (idle before; the figure after counts the suite's own threads)")
    sgemm_text = f"{info['sgemm_env']:.0f} GFLOP/s"
    if info["sgemm_native"] is not None:
        sgemm_text = (f"{info['sgemm_native']:.0f} GFLOP/s with OpenBLAS's own kernels ({info['native_kernel']}), "
                      f"{info['sgemm_env']:.0f} with this environment's OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} "
                      f"(what crema's own OpenBLAS calls get); the % columns divide by the higher")
    built = datetime.datetime.fromtimestamp(os.path.getmtime(args.crema), datetime.timezone.utc)
    env = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith(("OPENBLAS_", "OMP_", "MKL_")))
    bf16_text = ("- **crema bf16** (`--bf16`): `crema time --precision bf16`, timed in the same rounds right after\n"
                 "  the fp32 run: convolutions and inner products on bfloat16 inputs with fp32 accumulation, the\n"
                 "  rest fp32 (README, *CPU engines*); compared with PyTorch's fp32 step, not like for like.\n"
                 if args.bf16 else "")
    return f"""# Benchmarks

Written by `scripts/bench/suite.py`; run it again to refresh this page on your machine.

What each column measures:

- **crema ms/step**: `crema time` (forward + backward of the TRAIN net, no solver update, which is
  small next to them), the median of its per-iteration times; configs in `configs/bench/` (DummyData
  with constant fillers, filled once, so no step pays for making data; SoftmaxWithLoss).
- **PyTorch**: the same network in PyTorch (`scripts/bench/torch_twins.py`: same layer shapes, the
  suite checks them against crema's log; same thread count; the same constant input and label),
  median over timed steps after warm-up. *fwd+bwd* is the like-for-like figure, and
  *crema / PyTorch* compares it (median of the per-round ratios); *fwd+bwd+SGD step* adds
  `optimizer.step()` (SGD, momentum 0.9). Images per second are batch / fwd+bwd (for the LSTM:
  sequences of 20 steps).
- **conv+ip GFLOP/s**: the Convolution, InnerProduct and LSTM matrix-product FLOPs of one training
  step (forward 2·MACs, from the shapes; backward the weight gradient plus the input gradient,
  which the first layer, fed by the data, does not need: 3× forward, 2× for that layer, though an
  LSTM's recurrent products always take 3×; biases and the LSTM's gate arithmetic left out) divided
  by crema's per-layer forward+backward time of those layers; as a fraction of the machine's
  SGEMM throughput (2048³ `cblas_sgemm` of the OpenBLAS crema links, best of {3 * args.rounds} calls
  at {args.threads} threads; see the machine notes below). SGEMM's 2048³ multiply-adds count as 2·2048³ FLOPs, and so do the
  layers' (AlexNet's forward is 0.72 G multiply-adds = 1.45 GFLOP per image). The next column
  divides the same FLOPs by crema's whole step instead (every other layer's time included).
- **BVLC Caffe**: the `caffe time` CPU medians of issue 6 on this kind of machine (forward +
  backward, DummyData); AlexNet's is at batch 16, so its speed-up is per image.
{bf16_text}
Networks: LeNet (batch 64, as `configs/fashion_mnist/lenet.yaml`), CIFAR-10 quick (batch 100,
Caffe's `cifar10_quick_train_test.prototxt`; pooling in Caffe's ceil mode, the PyTorch twin uses
`ceil_mode=True`), AlexNet (batch 32 at 227×227, Caffe's `bvlc_alexnet`, grouped convolutions and
LRN), ResNet-18 (batch 16 at 224×224, torchvision's topology; BatchNorm + Scale is PyTorch's
BatchNorm2d; pool1 3×3/2 pad 1 with `round_mode: FLOOR`, 112 → 56 as PyTorch; Caffe's default ceil
mode would give 57), MLP (batch 256, 784 → 1024 → ReLU → 1024 → ReLU → 10), LSTM (Caffe's LSTM
layer, 32 streams × 20 timesteps of 64 inputs, 256 units, then a 10-way InnerProduct at every step;
PyTorch's `nn.LSTM` + `nn.Linear`).

{table(keys, results, info['sgemm'], args.threads)}

Per round ({args.rounds} rounds, {args.iterations} timed iterations each side, crema and PyTorch
alternating, order flipped every round):

{rounds_detail(keys, results)}

Machine and run:

- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {args.threads} threads for each side
- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f}{busy}
- crema: `{os.path.relpath(args.crema, ROOT)}` built {built:%Y-%m-%d %H:%M} UTC, tree at commit {git_commit()}
- BLAS: {info['blas']}; SGEMM 2048³ at {args.threads} threads: {sgemm_text}
- PyTorch {info['torch']}, Python {platform.python_version()}{f"; environment: `{env}`" if env else ""}
- date: {started:%Y-%m-%d %H:%M} UTC, the suite took {seconds / 60:.1f} min
- command: `{command}`
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated subset of {', '.join(NETS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per run, each side")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--crema", default=os.path.join(ROOT, "build", "crema"))
    parser.add_argument("--bf16", action="store_true",
                        help="also time crema with --precision bf16 (needs AVX512-BF16 or AMX); extra columns")
    args = parser.parse_args()
    keys = [k.strip() for k in args.nets.split(",") if k.strip()]
    unknown = [k for k in keys if k not in NETS]
    if unknown or not keys:
        parser.error(f"--nets: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(NETS)}")
    if args.rounds < 1 or args.iterations < 1 or args.threads < 1:
        parser.error("--rounds, --iterations and --threads must be positive")
    if not os.access(args.crema, os.X_OK):
        sys.exit(f"{args.crema} is not an executable crema; build it (scripts/build.sh) or pass --crema")
    if importlib.util.find_spec("torch") is None:  # the twins import it, each in its own process
        sys.exit("PyTorch is not installed: pip install torch (a benchmark peer only)")

    started, t0, load_before = datetime.datetime.now(datetime.timezone.utc), time.monotonic(), os.getloadavg()[0]
    if load_before > BUSY_LOAD:
        print(f"warning: load average {load_before:.2f} before the suite: other jobs share the cores, and "
              "multi-threaded runs (PyTorch's spinning OpenMP threads most) slow down by large, unequal factors",
              file=sys.stderr)
    built = os.path.getmtime(args.crema)
    results, info = measure(keys, args)
    if os.path.getmtime(args.crema) != built:
        sys.exit(f"{args.crema} was rebuilt while the suite ran: its rounds mix two binaries; run it again")
    seconds, load_after = time.monotonic() - t0, os.getloadavg()[0]
    print(table(keys, results, info["sgemm"], args.threads))
    print(f"\n{args.threads} threads, {args.rounds} rounds x {args.iterations} iterations, "
          f"{seconds / 60:.1f} min; {info['blas']}; PyTorch {info['torch']}")
    if not args.no_write:
        command = "python3 " + shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(document(keys, args, results, info, command, started, seconds, (load_before, load_after)))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
