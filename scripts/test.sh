#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs every test, then the
# GPU tests once more on the CUDA emulation (tests/cuda_emu/README.md), which runs
# crema's kernels and its CUDA, cuBLAS and cuDNN calls on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DCREMA_WERROR=ON
scripts/install_test_references.sh ||
  echo "test.sh: onnxruntime/tensorboard could not be installed; the tests that read crema's files with them will be skipped"
(cd build && ctest --output-on-failure --timeout 1200)

# The emulation needs only the CUDA toolkit's and cuDNN's headers, no driver or library.
# It is built under AddressSanitizer and UBSan: each device block is of the exact size asked
# for, the rest poisoned, so that a kernel's access past its data stops the test.
if [[ -f /usr/local/cuda/include/cuda_runtime.h && -f /usr/local/cuda/include/cudnn.h ]]; then
  cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DCREMA_CUDA_EMULATION=ON -DCREMA_WERROR=ON \
    -DCREMA_SANITIZE=address,undefined
  cmake --build build-emu -j"$(nproc 2>/dev/null || echo 2)"
  rm -f build-emu/launches.log  # which kernels the tests launch, for the coverage line below
  (cd build-emu && CREMA_EMU_LAUNCH_LOG="$PWD/launches.log" ctest -j2 -R "GPU|CUDA emulation" --output-on-failure \
    --timeout 1200)
  python3 tests/cuda_emu/coverage.py build-emu/launches.log
else
  echo "test.sh: no CUDA headers under /usr/local/cuda/include, so the GPU tests did not run on the CUDA emulation"
fi
