#!/usr/bin/env python3
"""The machine's SGEMM throughput through the BLAS library crema links, in GFLOP/s.

  python3 scripts/bench/sgemm.py [--crema build/crema] [--threads N] [--size 2048] [--repeats 5]

Finds the OpenBLAS that `ldd CREMA` resolves, calls its cblas_sgemm through ctypes on square
row-major matrices (C = A B, size^3 multiply-adds = 2 size^3 FLOPs) at --threads threads, and prints
one JSON line: the best of --repeats timed calls (after one warm-up call) and the library's
openblas_get_config() text. suite.py runs it in its own process between the network runs.
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CBLAS_ROW_MAJOR, CBLAS_NO_TRANS = 101, 111


def blas_library(crema):
    """Path of the OpenBLAS shared library the crema binary loads."""
    ldd = subprocess.run(["ldd", crema], capture_output=True, text=True)
    if ldd.returncode != 0:
        sys.exit(f"ldd {crema} failed ({ldd.stderr.strip()}); build crema first or pass --crema")
    found = re.search(r"libopenblas[^\s]* => (\S+)", ldd.stdout)
    if not found:
        sys.exit(f"{crema} does not link OpenBLAS (ldd lists no libopenblas); the SGEMM figure would "
                 "not describe crema's BLAS")
    return found.group(1)


def best_gflops(lib_path, threads, size, repeats):
    blas = ctypes.CDLL(lib_path)
    blas.openblas_set_num_threads(threads)
    blas.openblas_get_config.restype = ctypes.c_char_p
    f, n = ctypes.c_float, ctypes.c_int
    blas.cblas_sgemm.argtypes = [n, n, n, n, n, n, f, ctypes.c_void_p, n, ctypes.c_void_p, n, f, ctypes.c_void_p, n]
    # a, b, c: (size, size) row-major; non-zero inputs, though SGEMM speed does not depend on values.
    a = (f * (size * size))(*([0.5] * (size * size)))
    b = (f * (size * size))(*([0.25] * (size * size)))
    c = (f * (size * size))()
    best = float("inf")
    for i in range(repeats + 1):  # call 0 warms up (thread start, page faults)
        t = time.perf_counter()
        blas.cblas_sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, size, size, size, 1.0, a, size, b, size,
                         0.0, c, size)
        if i > 0:
            best = min(best, time.perf_counter() - t)
    if abs(c[0] - 0.125 * size) > 1e-3 * size:  # every entry of C is sum_k 0.5 * 0.25
        sys.exit(f"cblas_sgemm from {lib_path} returned a wrong product ({c[0]}, expected {0.125 * size})")
    return 2.0 * size ** 3 / best / 1e9, blas.openblas_get_config().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crema", default=os.path.join(ROOT, "build", "crema"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    lib = blas_library(args.crema)
    gflops, config = best_gflops(lib, args.threads, args.size, args.repeats)
    print(json.dumps({"gflops": gflops, "library": lib, "config": config}))


if __name__ == "__main__":
    main()
