#!/usr/bin/env bash
# Conformance with torchvision's real ResNet-18/50, where a Python with torch and torchvision
# exists (PYTHON, else python3, else Debian's /usr/bin/python3); reports SKIPPED otherwise.
# Usage: run.sh BINARY WORKDIR
set -euo pipefail
bin="$1"
work="$2"
here="$(cd "$(dirname "$0")" && pwd)"
python=""
for p in "${PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$p" ] && "$p" -c "import torch, torchvision" >/dev/null 2>&1; then
    python="$p"
    break
  fi
done
if [ -z "$python" ]; then
  echo "SKIPPED: no Python with torch and torchvision found"
  exit 0
fi
mkdir -p "$work"
"$python" "$here/make_resnet_io.py" "$work"
"$bin" "$work"
