#!/usr/bin/env bash
# Configures and builds crema into build/ (Release). Extra arguments go to cmake,
# e.g. scripts/build.sh -DCREMA_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$jobs"
