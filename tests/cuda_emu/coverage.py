#!/usr/bin/env python3
"""Which of crema's CUDA kernels the GPU tests never launch (tests/cuda_emu/README.md).

    rm -f /tmp/launches; (cd build-emu && CREMA_EMU_LAUNCH_LOG=/tmp/launches ctest -R "GPU|CUDA emulation")
    python3 tests/cuda_emu/coverage.py /tmp/launches

The log holds each launched kernel's offset in the executable that launched it and that
executable's path; its symbol table (nm) names them, and every `__global__` function
of engine/cuda and layers/cuda is listed as launched or never launched. A template
kernel counts as launched when any of its instantiations was. Exit status 0 always: a
report, not a test.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNEL = re.compile(r"__global__\s+void\s+(\w+)\s*\(")


def kernels_in_sources():
    found = {}
    for path in sorted((ROOT / "engine/cuda").glob("*.cu")) + sorted((ROOT / "layers/cuda").glob("*.cu")):
        for name in KERNEL.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, path.relative_to(ROOT).as_posix())
    return found


def base_name(demangled):
    """The function's own name: the last identifier before its template or parameter list."""
    depth, cut = 0, len(demangled)
    for i, ch in enumerate(demangled):  # the parameter list is the first '(' outside <>
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and not demangled.startswith("(anonymous", i):
            cut = i
            break
    head = demangled[:cut]
    depth, end = 0, len(head)
    for i in range(len(head) - 1, -1, -1):  # drop a trailing template argument list
        if head[i] == ">":
            depth += 1
        elif head[i] == "<":
            depth -= 1
            if depth == 0:
                end = i
                break
        elif depth == 0:
            break
    return re.split(r"::", head[:end])[-1]


def symbols(binary):
    out = subprocess.run(["nm", "-C", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            table[int(parts[0], 16)] = parts[2]
    return table


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    log = pathlib.Path(sys.argv[1])
    offsets = {}  # executable -> offsets launched from it
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            parts = line.split(" ", 2)
            if len(parts) >= 2:
                offsets.setdefault(parts[1], set()).add(int(parts[0], 16))
    launched = set()
    for binary, launched_offsets in offsets.items():
        table = symbols(binary)
        launched |= {base_name(table[o]) for o in launched_offsets if o in table}
    kernels = kernels_in_sources()
    never = [k for k in kernels if k not in launched]
    print(f"{len(kernels) - len(never)} of {len(kernels)} kernels launched by the tests")
    for k in never:
        print(f"never launched: {k} ({kernels[k]})")


if __name__ == "__main__":
    main()
