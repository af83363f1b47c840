#!/usr/bin/env bash
# Test-time references, never needed to build, train or use crema: ONNX's checker and
# onnxruntime check and run the models `crema convert … -o X.onnx` exports, and
# TensorBoard's own reader reads the events crema writes. Installed from PyPI into a virtual environment, build/pyref, which the
# tests use when it exists. Where this fails (offline, no python3-venv), those checks
# report themselves skipped and everything else still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/pyref
if "$venv/bin/python3" -c 'import onnxruntime, onnx, tensorboard, numpy' 2>/dev/null; then
  echo "install_test_references: already in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --timeout 60 onnxruntime onnx tensorboard numpy
echo "install_test_references: onnx, onnxruntime and tensorboard in $venv"
