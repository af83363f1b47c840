#!/usr/bin/env python3
"""Checks an ONNX model crema exported with ONNX's own checker (full_check: shape inference
too), runs it in onnxruntime and compares its outputs with crema's.
Usage: onnx_check.py MODEL.onnx DIR TOLERANCE
DIR holds <name>.f32 for every graph input (crema's input) and every graph output (crema's
forward), raw little-endian float32 in the declared shapes. Each output must agree within
TOLERANCE, measured as max |onnx − crema| / max(1, max |crema|). Exit 0 when all agree;
used by tests/test_onnx.cpp, which skips it where onnxruntime is not installed.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model, folder, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])
    onnx.checker.check_model(onnx.load(model), full_check=True)  # the format and every shape, by ONNX itself
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    load = lambda name, shape: np.fromfile(os.path.join(folder, name + ".f32"), dtype="<f4").reshape(shape)
    # A symbolic dimension (the batch "N") takes the size the file holds.
    feeds = {i.name: load(i.name, [d if isinstance(d, int) else -1 for d in i.shape]) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    worst = 0.0
    for name, got in zip(names, session.run(names, feeds)):
        want = load(name, got.shape)
        err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
        worst = max(worst, err)
        print(f"{name} {list(got.shape)}: normalised error {err:.3g}")
    print(f"{len(names)} outputs compared; {'agree' if worst <= tolerance else 'DIFFER'} (worst {worst:.3g}, tolerance {tolerance:g})")
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
