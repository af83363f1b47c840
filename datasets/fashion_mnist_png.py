#!/usr/bin/env python3
"""Fashion-MNIST as PNG files plus Caffe list files, the input of `crema convert-imageset`.

Reads the gzipped IDX files that Debian's dataset-fashion-mnist package installs and writes

    OUT/train/<class>/NNNNN.png   (NNNNN: the image's index in the IDX file)
    OUT/test/<class>/NNNNN.png
    OUT/train.txt, OUT/test.txt   one "train/<class>/NNNNN.png label" line per image, in IDX order

so that `crema convert-imageset OUT/ OUT/train.txt DB --gray` builds an LMDB whose records come in the
IDX files' order, and an ImageData layer reads OUT/train.txt (a list) or OUT/train (an image folder:
class folders 0_tshirt_top … 9_ankle_boot sort in label order) with the IDX labels. PNGs are written with zlib and struct only (8-bit greyscale, no Pillow needed).

    python3 datasets/fashion_mnist_png.py OUT [--train-count N] [--test-count N] [--source DIR]
"""

import argparse
import gzip
import os
import struct
import sys
import zlib

# Folder names sort in label order, so that an ImageData layer reading OUT/train as an
# image folder (one sub-folder per class, classes in name order) gives the IDX labels.
CLASSES = ["0_tshirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat",
           "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]
SPLITS = {"train": "train", "test": "t10k"}  # our name -> the IDX files' prefix


def read_idx(path, expected_rank):
    """An unsigned-byte IDX file as (dims, bytes)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    rank = data[3]
    if rank != expected_rank:
        sys.exit(f"{path}: rank {rank}, expected {expected_rank}")
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    body = data[4 + 4 * rank:]
    count = 1
    for d in dims:
        count *= d
    if len(body) != count:
        sys.exit(f"{path}: holds {len(body)} values, its header promises {count}; reinstall dataset-fashion-mnist")
    return dims, body


def png_chunk(kind, payload):
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png_gray(pixels, height, width):
    """An 8-bit greyscale PNG; pixels: bytes, row-major (height, width)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # depth 8, colour type 0 (grey)
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))  # filter 0 per row
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def write_split(source, out, split, count):
    prefix = SPLITS[split]
    (n, height, width), images = read_idx(os.path.join(source, f"{prefix}-images-idx3-ubyte.gz"), 3)
    (n_labels,), labels = read_idx(os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz"), 1)
    if n != n_labels:
        sys.exit(f"{source}: {n} {split} images but {n_labels} labels")
    if count is not None:
        n = min(n, count)
    for name in CLASSES:
        os.makedirs(os.path.join(out, split, name), exist_ok=True)
    size = height * width
    lines = []
    for i in range(n):
        label = labels[i]
        rel = f"{split}/{CLASSES[label]}/{i:05d}.png"
        with open(os.path.join(out, rel), "wb") as f:
            f.write(encode_png_gray(images[i * size:(i + 1) * size], height, width))
        lines.append(f"{rel} {label}\n")
    with open(os.path.join(out, f"{split}.txt"), "w") as f:
        f.writelines(lines)
    print(f"wrote {n} {split} images and {split}.txt to {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the gzipped IDX files (default: %(default)s)")
    parser.add_argument("--train-count", type=int, default=None, help="only the first N training images")
    parser.add_argument("--test-count", type=int, default=None, help="only the first N test images")
    args = parser.parse_args()
    for flag, value in (("--train-count", args.train_count), ("--test-count", args.test_count)):
        if value is not None and value <= 0:
            parser.error(f"{flag} must be positive")
    if not os.path.isdir(args.source):
        sys.exit(f"{args.source} does not exist; install Debian's dataset-fashion-mnist (datasets/fashion_mnist.sh)")
    write_split(args.source, args.out, "train", args.train_count)
    write_split(args.source, args.out, "test", args.test_count)


if __name__ == "__main__":
    main()
