#!/usr/bin/env bash
# Packs the GPU check for a GPU machine that has the NVIDIA driver, cuBLAS and cuDNN
# but none of crema's Debian packages and no network (the device machines lent to
# development sessions): run here, then on that machine, from a copy of this tree
# that carries .gpu/,
#
#   bash scripts/gpu_bundle.sh              # here: builds build-gpu/, writes .gpu/
#   bash scripts/gpu_check.sh               # there: the GPU tests and step times
#
# build-gpu/ is a Release build for sm_80 and sm_90 without image codecs
# (-DCREMA_IMAGE_CODECS=OFF: OpenCV's imgcodecs alone needs some 140 libraries, which
# would not fit the 64 MiB that travels). .gpu/bundle.tar.xz holds its binaries and
# ctest files, every library they load except the C/C++ runtime, the driver, cuBLAS
# and cuDNN (huge; the GPU machine has its own), and a slice of Fashion-MNIST: the
# first 16,384 training and 2,000 test images, more than the GPU training tests read.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
jobs=$(nproc 2>/dev/null || echo 2)
data=/usr/share/datasets/fashion-mnist
if [[ ! -e $data/train-images-idx3-ubyte.gz ]]; then
  echo "gpu_bundle: Fashion-MNIST is not in $data (apt-get install dataset-fashion-mnist)" >&2
  exit 2
fi

cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCREMA_CUDA=ON -DCREMA_IMAGE_CODECS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="80;90" -DCREMA_WERROR=ON
cmake --build build-gpu -j"$jobs"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build-gpu/tests" "$stage/lib" "$stage/fashion-mnist"
cp build-gpu/crema "$stage/build-gpu/"
cp build-gpu/tests/crema_tests build-gpu/tests/*.cmake "$stage/build-gpu/tests/"
cp build-gpu/CTestTestfile.cmake "$stage/build-gpu/"

# Every library the binaries load, resolved here, but the C/C++ runtime (the GPU
# machine's is newer, and compatible) and the driver, cuBLAS and cuDNN (its own,
# matching its driver). cudart is small and versioned with the build: it travels.
ldd build-gpu/crema build-gpu/tests/crema_tests | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/(ld-linux[^/]*|libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libcuda|libcublas|libcublasLt|libcudnn)\.so' |
  xargs cp -L -t "$stage/lib/"

python3 - "$data" "$stage/fashion-mnist" <<'PY'
import gzip, struct, sys
src, dst = sys.argv[1], sys.argv[2]
for name, keep in [("train-images-idx3-ubyte", 16384), ("train-labels-idx1-ubyte", 16384),
                   ("t10k-images-idx3-ubyte", 2000), ("t10k-labels-idx1-ubyte", 2000)]:
    raw = gzip.open(f"{src}/{name}.gz").read()
    ndim = raw[3]
    dims = list(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))
    per = 1
    for d in dims[1:]:
        per *= d
    body = 4 + 4 * ndim
    dims[0] = keep
    out = raw[:4] + struct.pack(f">{ndim}I", *dims) + raw[body:body + keep * per]
    with gzip.open(f"{dst}/{name}.gz", "wb", compresslevel=9) as f:
        f.write(out)
PY

echo "$root" >"$stage/source_dir"
rm -rf .gpu && mkdir -p .gpu  # the bundle alone travels (gpu_check.sh unpacks beside it)
tar -C "$stage" -cf - . | xz -T"$jobs" -6 >.gpu/bundle.tar.xz
size=$(stat -c %s .gpu/bundle.tar.xz)
echo "gpu_bundle: .gpu/bundle.tar.xz, $((size / 1048576)) MiB (built for $root)"
if ((size > 48 * 1048576)); then
  echo "gpu_bundle: too large to travel with the working tree (64 MiB in all)" >&2
  exit 1
fi
