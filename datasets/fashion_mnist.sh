#!/usr/bin/env bash
# Installs Debian's Fashion-MNIST package when missing and checks its IDX headers.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ ! -f "$dir/train-images-idx3-ubyte.gz" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
check() {  # file, magic (hex), count
  local header
  # gzip stops early on SIGPIPE once head has its 8 bytes; that is expected.
  header=$(set +o pipefail; gzip -dc "$dir/$1" 2>/dev/null | head -c 8 | od -An -tx1 | tr -d " \n")
  local magic=${header:0:8} count=$((16#${header:8:8}))
  if [ "$magic" != "$2" ] || [ "$count" -ne "$3" ]; then
    echo "fashion_mnist: $dir/$1 is not as expected (magic $magic, $count items)" >&2
    exit 1
  fi
  echo "fashion_mnist: $1: $count items"
}
check train-images-idx3-ubyte.gz 00000803 60000
check train-labels-idx1-ubyte.gz 00000801 60000
check t10k-images-idx3-ubyte.gz 00000803 10000
check t10k-labels-idx1-ubyte.gz 00000801 10000
