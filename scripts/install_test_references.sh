#!/usr/bin/env bash
# Test-time references, never needed to build, train or use crema: Graphviz, ONNX's checker and
# onnxruntime check and run the models `crema convert … -o X.onnx` exports, and
# TensorBoard's own reader reads the events crema writes. Installed from PyPI into a virtual environment, build/pyref, which the
# tests use when it exists. Where this fails (offline, no python3-venv), those checks
# report themselves skipped and everything else still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Graphviz renders the graphs `crema convert … -o X.dot` writes (crema does not use it).
if ! command -v dot >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi  # never waits for a password: a test reference is optional
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null ||
    echo "install_test_references: graphviz could not be installed; the test that renders a graph will skip that step"
fi
venv=build/pyref
if "$venv/bin/python3" -c 'import onnxruntime, onnx, tensorboard, numpy' 2>/dev/null; then
  echo "install_test_references: already in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --timeout 60 onnxruntime onnx tensorboard numpy
echo "install_test_references: onnx, onnxruntime and tensorboard in $venv"
