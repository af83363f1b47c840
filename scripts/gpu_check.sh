#!/usr/bin/env bash
# The GPU check on a machine without crema's Debian packages (see scripts/gpu_bundle.sh,
# which made .gpu/bundle.tar.xz): unpacks the bundle beside this tree, makes the
# bundle's absolute paths (the source tree it was built in) lead here, finds the
# machine's cuBLAS and cuDNN, and runs scripts/gpu_tests.sh on build-gpu/. Needs root
# only where the bundle's source path must be made to point here.
#
#   bash scripts/gpu_check.sh [LOG]      # LOG: also write the whole output there
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 1 ]]; then
  exec > >(tee "$1") 2>&1
fi
here=$(pwd -P)
if [[ ! -f .gpu/bundle.tar.xz ]]; then
  echo "gpu_check: no .gpu/bundle.tar.xz here; make it with scripts/gpu_bundle.sh and bring .gpu along" >&2
  exit 2
fi
unpacked=.gpu/unpacked
rm -rf "$unpacked" && mkdir -p "$unpacked"
tar -C "$unpacked" -xJf .gpu/bundle.tar.xz
rm -rf build-gpu && mv "$unpacked/build-gpu" build-gpu

# The tests find the sources, the crema binary and their ctest files by the paths
# they were built at.
built=$(cat "$unpacked/source_dir")
if [[ "$(cd "$built" 2>/dev/null && pwd -P)" != "$here" ]]; then
  if [[ -e "$built" || -L "$built" ]]; then
    echo "gpu_check: the bundle was built in $built, which exists here and is not this tree" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$built")"
  ln -s "$here" "$built"
fi

# cuBLAS and cuDNN of this machine: the CUDA toolkit's or the Python wheels' (nvidia-*).
libdirs=$(find /usr/local /opt /usr/lib /usr/lib64 \( -name 'libcublas.so.13*' -o -name 'libcublasLt.so.13*' \
  -o -name 'libcudnn.so.9*' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd: -)
export LD_LIBRARY_PATH="$here/$unpacked/lib:$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Names what is missing, cuBLAS and cuDNN included.
missing=$(ldd build-gpu/crema build-gpu/tests/crema_tests | grep 'not found' || true)
if [[ -n $missing ]]; then
  echo "gpu_check: libraries missing here:" >&2
  echo "$missing" >&2
  exit 2
fi
CREMA_BUILD=build-gpu exec bash scripts/gpu_tests.sh "$unpacked/fashion-mnist"
