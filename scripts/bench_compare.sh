#!/usr/bin/env bash
# Strata against an earlier Strata, on one GPU in one run: builds strata_bench from this tree and
# from BASE (another checkout, e.g. `git worktree add /tmp/base <commit>`, or — where the copy has
# no .git, as on the device machine — a folder made beforehand with `git archive <commit> | tar -x
# -C BASE`; a BASE without .deps/ uses this tree's), runs each case on
# both — alternating, the same weights and inputs — checks that their outputs agree, and prints
# GPU time per forward and host wall latency side by side. For "behaviour and speed unchanged"
# checks of refactors; PyTorch's side is scripts/bench.sh's job.
#   scripts/bench_compare.sh BASE [--cases "M1 R2"] [--tuning measured|heuristic]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=$(cd "${1:?usage: $0 BASE [--cases \"M1 R2\"] [--tuning T]}" && pwd)
shift
ONLY=""
TUNING=measured
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) ONLY=${2:?}; shift ;;
    --tuning) TUNING=${2:?}; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
CUDNN=${CUDNN_ROOT:-$("$PY" -c "import nvidia.cudnn as m; print(m.__path__[0])" 2>/dev/null || true)}
[ -n "$CUDNN" ] || CUDNN=/usr/local/cuda
export LD_LIBRARY_PATH="$CUDNN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="/usr/local/cuda/bin:$PATH"
WORK=${WORK_DIR:-$ROOT/build-compare}
mkdir -p "$WORK"

build() {  # $1 source tree, $2 build dir
  local prefix=""
  if [ -d "$1/.deps" ]; then
    prefix="-DCMAKE_PREFIX_PATH=$1/.deps"
  elif [ -d "$ROOT/.deps" ]; then
    prefix="-DCMAKE_PREFIX_PATH=$ROOT/.deps"
  fi
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
    -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_EXAMPLES=OFF -DSTRATA_BUILD_BENCHMARKS=ON \
    -DCUDNN_ROOT="$CUDNN" $prefix > "$2.configure.log" || { cat "$2.configure.log"; exit 1; }
  cmake --build "$2" --target strata_bench -j "$(nproc)" > "$2.build.log" 2>&1 ||
    { tail -40 "$2.build.log"; exit 1; }
}
build "$BASE" "$WORK/base" &
build "$ROOT" "$WORK/new" &
wait %1 && wait %2

CASES=("M1 f32 1" "M1 f16 1" "M2 f16 4096" "R1 f16 1" "R2 f16 256" "R2 f32 256" "R3 f16 1" "R3 f16 256"
       "MV2 f16 1" "MV2 f16 256" "EB0 f16 1" "EB0 f16 256" "D121 f16 1" "D121 f16 256")
: > "$WORK/compare.jsonl"
for c in "${CASES[@]}"; do
  read -r id prec batch <<< "$c"
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $id "* ]]; then continue; fi
  w=$WORK/w_$id.safetensors; x=$WORK/x_${id}_$batch.safetensors
  sides="base new"
  for ((r = 1; r < ${ROUNDS:-1}; ++r)); do sides="$sides base new"; done  # ROUNDS=2: see the noise
  for side in $sides; do
    wa=(--weights "$w"); [ -f "$w" ] || wa=(--save-weights "$w")
    xa=(--input "$x"); [ -f "$x" ] || xa=(--save-input "$x")
    timeout 300 "$WORK/$side/benchmarks/strata_bench" --case "$id" --precision "$prec" \
      --batch "$batch" "${wa[@]}" "${xa[@]}" --tuning "$TUNING" \
      --dump-output "$WORK/out_${side}_${id}_${prec}.safetensors" --commit "$side" \
      --out-json "$WORK/compare.jsonl" > /dev/null || echo "$side $id $prec failed"
  done
  "$PY" - "$WORK/out_base_${id}_${prec}.safetensors" "$WORK/out_new_${id}_${prec}.safetensors" \
    "$id $prec b$batch" <<'PYEOF' || true
import sys
from safetensors.numpy import load_file
a = load_file(sys.argv[1])["output"].astype("float64"); b = load_file(sys.argv[2])["output"].astype("float64")
import numpy as np
d = np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)
print(f"outputs {sys.argv[3]}: " + ("equal to the bit" if np.array_equal(a, b) else f"max |new - base| / max |base| = {d:.2e}"))
PYEOF
done
"$PY" - "$WORK/compare.jsonl" <<'PYEOF'
import json, sys, collections
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j.get("kind") != "timing": continue
    k = (j["case"], j["precision"], j["batch"])
    rows[k][j["commit"]].append((j["median_us"], j["host_wall_us"]))
print(f"{'case':<18}{'base GPU us':>22}{'new GPU us':>22}{'new/base':>10}{'base wall':>12}{'new wall':>12}")
for k, v in rows.items():
    b = [t for t, _ in v["base"]]; n = [t for t, _ in v["new"]]
    bw = min(w for _, w in v["base"]) if v["base"] else 0; nw = min(w for _, w in v["new"]) if v["new"] else 0
    fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs)
    ratio = (min(n) / min(b)) if b and n else float("nan")
    print(f"{k[0]+' '+k[1]+' b'+str(k[2]):<18}{fmt(b):>22}{fmt(n):>22}{ratio:>10.3f}{bw:>12.1f}{nw:>12.1f}")
PYEOF
