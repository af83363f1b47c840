#!/usr/bin/env bash
# Installs everything crema needs to build, test and train, from Debian's packages.
# Safe to run twice. The CUDA toolkit and cuDNN are optional: when /usr/local/cuda
# (or nvcc on PATH) is present, the build compiles the GPU backend too.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcli11-dev libyaml-cpp-dev libspdlog-dev
  libhdf5-dev hdf5-tools
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  doctest-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev liblmdb-dev
  ocl-icd-opencl-dev opencl-c-headers
  dataset-fashion-mnist
  python3-venv
)
# python3-venv: scripts/install_test_references.sh puts the tests' reference readers
# (onnxruntime, TensorBoard) in a virtual environment; crema itself needs no Python.
# ocl-icd-opencl-dev: Debian's libdnnl is built with an OpenCL GPU runtime, and its CMake
# package asks for the OpenCL headers and link library even though crema uses only its CPU engine.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages already installed"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
