#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA device: the GPU tests (with every kernel
# launch waited for, so a fault names its own launch), then GPU step times of LeNet,
# CIFAR-10 quick and the LSTM benchmark net beside the CPU's, and AlexNet's, each in
# FP32 and under precision tf32. Run from a built tree
# (scripts/build.sh).
#
#   bash scripts/gpu_tests.sh [FASHION_MNIST_DIR]
#
# FASHION_MNIST_DIR: a copy of /usr/share/datasets/fashion-mnist for a node that cannot
# install dataset-fashion-mnist; without the data the two LeNet training tests skip.
# CREMA_BUILD names the build directory (build/ by default; scripts/gpu_check.sh runs
# the bundle's build-gpu/).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CREMA_BUILD:-build}
if [[ ! -x $build/crema || ! -x $build/tests/crema_tests ]]; then
  echo "gpu_tests: no build in $build/; run scripts/build.sh first" >&2
  exit 2
fi
if [[ $# -ge 1 && ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  mkdir -p /usr/share/datasets/fashion-mnist
  cp "$1"/*.gz /usr/share/datasets/fashion-mnist/
fi
"$build/crema" --version
"$build/crema" device || { echo "gpu_tests: no usable CUDA device" >&2; exit 1; }

status=0
(cd "$build" && CREMA_CUDA_SYNC=1 ctest -R GPU --output-on-failure --timeout 1200) || status=$?

for model in lenet_b64 cifar10_quick_b100 lstm_b32 alexnet_b32; do
  for where in "--gpu 0" "--gpu 0 --precision tf32" ""; do
    [[ $model == alexnet_b32 && -z $where ]] && continue  # seconds per step on the CPU
    echo "== $model ${where:-CPU}"
    "$build/crema" time --model "configs/bench/$model.yaml" --iterations 20 $where 2>&1 |
      grep -E "Average (Forward pass|Backward pass|Forward-Backward)" || status=1
  done
done
exit $status
