#!/usr/bin/env bash
# Conformance with real torchvision models, where a Python with torch and torchvision exists
# (PYTHON, else python3, else Debian's /usr/bin/python3); reports SKIPPED otherwise. SCRIPT (in
# this folder) writes the weights and torchvision's outputs to WORKDIR; BINARY checks Strata's
# against them. Usage: run.sh SCRIPT BINARY WORKDIR
set -euo pipefail
script="$1"
bin="$2"
work="$3"
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
"$python" "$here/$script" "$work"
"$bin" "$work"
