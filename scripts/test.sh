#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DCREMA_WERROR=ON
scripts/install_test_references.sh ||
  echo "test.sh: onnxruntime/tensorboard could not be installed; the tests that read crema's files with them will be skipped"
cd build
ctest --output-on-failure --timeout 1200
