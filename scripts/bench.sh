#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md in one command, on a machine with an NVIDIA GPU:
#   scripts/bench.sh [--quick] [--compile-budget-s S] [--tuning heuristic|measured]
#                    [--cases "M1 R2"] [--precisions "f16 f32+tf32"] [--batches "1"]
#                    [--build-dir DIR] [--fused-max-batch N] [--strata-args "ARGS"]
#                    [--bench-bin PATH]
# 1. finds cuDNN ($CUDNN_ROOT, else PyTorch's nvidia.cudnn package, so both sides run the same
#    cuDNN, else the CUDA install or the system) and puts its lib/ on LD_LIBRARY_PATH;
# 2. configures and builds strata_bench (Release, sm_90 unless $CUDA_ARCH says otherwise, all
#    cores); a git-ignored .deps/ folder may hold nlohmann/json for machines that lack it;
#    --bench-bin PATH runs a strata_bench built elsewhere instead (of this tree: nothing checks;
#    the results are labelled with this tree's commit unless $STRATA_COMMIT names the binary's);
# 3. measures the ceilings (device-to-device copy, cuBLAS GEMMs);
# 4. runs every case on Strata (writing the weights, inputs and outputs as safetensors files);
# 5. runs benchmarks/pytorch_bench.py on the same files: checks Strata's outputs, then times
#    PyTorch eager, CUDA graph and (unless --quick) torch.compile within a compile budget;
# 6. runs benchmarks/report.py: docs/benchmarks.md, docs/benchmarks/results.json and chart.png;
#    prints the table last.
# Raw files go to BUILD_DIR/run/; when $OUT is set, the results and the log are copied there.
# About 3 minutes with --quick on an H100, about 8 without.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
JOBS=${JOBS:-$(nproc)}
PY=${PYTHON:-python3}
QUICK=0
BUDGET=210
TUNING=measured  # TensorRT-style: time the candidate algorithms at engine construction
ONLY=""
PRECS=""  # --precisions "f16 f32+tf32": only those of the cases' precisions
BATCHES=""  # --batches "1": only the cases' rows at those batch sizes
FUSED=()  # --fused-max-batch N for strata_bench (EngineOptions::fused_max_batch); default: the engine's
BIN=""  # --bench-bin PATH: a prebuilt strata_bench (no configure, no build)
EXTRA=()  # --strata-args "--cudnn-graph --plan-check": more engine options for every Strata case
ARGS="$*"

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --compile-budget-s) BUDGET=${2:?}; shift ;;
    --tuning) TUNING=${2:?}; shift ;;
    --cases) ONLY=${2:?}; shift ;;
    --precisions) PRECS=${2:?}; shift ;;
    --batches) BATCHES=${2:?}; shift ;;
    --build-dir) BUILD=${2:?}; shift ;;
    --fused-max-batch) FUSED=(--fused-max-batch "${2:?}"); shift ;;
    --bench-bin) BIN=${2:?}; shift ;;
    # (read without -r: a backslash keeps a space in one argument, "--force-each layer1.=plane_conv\ math\ 3")
    # shellcheck disable=SC2162
    --strata-args) read -a EXTRA <<< "${2:?}"; shift ;;
    *) usage ;;
  esac
  shift
done

WORK=$BUILD/run
rm -rf "$WORK"
mkdir -p "$WORK"
LOG=$WORK/bench.log
exec > >(tee "$LOG") 2>&1
START=$(date +%s)
say() { echo "== bench.sh [$(($(date +%s) - START)) s] $*"; }

# --- 1. toolchain and cuDNN -------------------------------------------------------------------
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}
export PATH="$CUDA_HOME/bin:$PATH"
CUDNN=${CUDNN_ROOT:-}
if [ -z "$CUDNN" ]; then
  CUDNN=$("$PY" -c "import nvidia.cudnn as m; print(m.__path__[0])" 2>/dev/null || true)
fi
if [ -z "$CUDNN" ]; then
  for d in "$CUDA_HOME" /usr; do
    if [ -f "$d/include/cudnn.h" ] || [ -f "$d/include/x86_64-linux-gnu/cudnn.h" ]; then
      CUDNN=$d
      break
    fi
  done
fi
if [ -z "$CUDNN" ]; then
  echo "bench.sh: cuDNN not found (set CUDNN_ROOT)" >&2
  exit 1
fi
for d in "$CUDNN/lib" "$CUDNN/lib64"; do
  if [ -d "$d" ]; then
    export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
PREFIX=${CMAKE_PREFIX_PATH:-}
if [ -d "$ROOT/.deps" ]; then
  PREFIX="$ROOT/.deps${PREFIX:+;$PREFIX}"
fi
COMMIT=${STRATA_COMMIT:-$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if [ "$COMMIT" != unknown ] && [ -z "${STRATA_COMMIT:-}" ] &&
   [ -n "$(git -C "$ROOT" status --porcelain -- include benchmarks 2>/dev/null)" ]; then
  COMMIT="$COMMIT+uncommitted"
fi
say "cuDNN $CUDNN; commit $COMMIT; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"

# --- 2. build ---------------------------------------------------------------------------------
if [ -n "$BIN" ]; then
  say "prebuilt strata_bench: $BIN (not built here; labelled $COMMIT${STRATA_COMMIT:+, as STRATA_COMMIT says})"
  [ -x "$BIN" ] || { echo "bench.sh: --bench-bin $BIN is not an executable" >&2; exit 1; }
  BENCH=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
else
  say "configure + build strata_bench in $BUILD ($JOBS jobs)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_EXAMPLES=OFF -DSTRATA_BUILD_BENCHMARKS=ON \
    -DCUDNN_ROOT="$CUDNN" ${PREFIX:+"-DCMAKE_PREFIX_PATH=$PREFIX"} > "$WORK/configure.log" ||
    { cat "$WORK/configure.log"; exit 1; }
  cmake --build "$BUILD" --target strata_bench -j "$JOBS"
  BENCH=$BUILD/benchmarks/strata_bench
fi

# --- 3. ceilings ------------------------------------------------------------------------------
say "ceilings"
rc=0
"$BENCH" --ceilings --out-json "$WORK/ceilings.jsonl" --commit "$COMMIT" || rc=$?
if [ "$rc" = 77 ]; then
  echo "bench.sh: no CUDA device; nothing measured" >&2
  exit 77
fi
# The floor under the batch-1 figures: a graph of one empty kernel (with the same file).
"$BENCH" --launch-floor --out-json "$WORK/ceilings.jsonl" --commit "$COMMIT" || say "launch floor failed"

# --- 4. Strata's side -------------------------------------------------------------------------
# case precision batch, in the order of BENCHMARKS.md
CASES=("M1 f32 1" "M1 f16 1" "M1 bf16 1"
       "M2 f16 4096" "M2 f32 4096" "M2 bf16 4096"
       "R1 f16 1" "R1 f32 1"
       "R2 f16 256" "R2 f32 256" "R2 f32+tf32 256"
       "R3 f16 1" "R3 f16 256"
       "MV2 f16 1" "MV2 f16 256" "EB0 f16 1" "EB0 f16 256" "D121 f16 1" "D121 f16 256"
       "UN f16 1" "UN f16 256")
network() {
  case "$1" in
    M1 | M2) echo mnist_cnn ;; R3) echo resnet50 ;; MV2) echo mobilenet_v2 ;;
    EB0) echo efficientnet_b0 ;; D121) echo densenet121 ;; UN) echo unet ;; *) echo resnet18 ;;
  esac
}
in_shape() { case "$1" in M1 | M2) echo 1x28x28 ;; UN) echo 3x64x64 ;; *) echo 3x224x224 ;; esac; }
# The per-layer profiles' roofline column uses the copy ceiling and the GEMM ceiling of the
# case's precision just measured (gemm_tf32 for f32+tf32; gemm_f16 where one is missing).
HAVE_CEIL=0
if [ -s "$WORK/ceilings.jsonl" ]; then
  read -r CEIL_F16 CEIL_BF16 CEIL_F32 CEIL_TF32 CEIL_GB < <("$PY" -c '
import json, sys
c = {j["name"]: j.get("gb_per_s") or j.get("tflop_per_s") for j in map(json.loads, open(sys.argv[1]))
     if j.get("kind") == "ceiling" and j.get("status", "ok") == "ok"}
f16 = c.get("gemm_f16", 0)
print(f16, c.get("gemm_bf16") or f16, c.get("gemm_f32") or f16, c.get("gemm_tf32") or f16,
      c.get("copy_d2d", 0))' "$WORK/ceilings.jsonl" || echo "0 0 0 0 0")
  HAVE_CEIL=1
fi
ceiling_args() {  # the roofline arguments for precision $1
  if [ "$HAVE_CEIL" != 1 ]; then return; fi
  local tf=$CEIL_F16
  case "$1" in bf16) tf=$CEIL_BF16 ;; f32) tf=$CEIL_F32 ;; *+tf32) tf=$CEIL_TF32 ;; esac
  echo --ceiling-tflops "${tf:-0}" --ceiling-gbs "${CEIL_GB:-0}"
}
touch "$WORK/strata.jsonl"
for c in "${CASES[@]}"; do
  read -r id prec batch <<< "$c"
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $id "* ]]; then
    continue
  fi
  if [ -n "$PRECS" ] && [[ " $PRECS " != *" $prec "* ]]; then
    continue
  fi
  if [ -n "$BATCHES" ] && [[ " $BATCHES " != *" $batch "* ]]; then
    continue
  fi
  net=$(network "$id")
  w=$WORK/weights_$net.safetensors
  x=$WORK/input_$(in_shape "$id")_b$batch.safetensors
  if [ -f "$w" ]; then wa=(--weights "$w"); else wa=(--save-weights "$w"); fi
  if [ -f "$x" ]; then xa=(--input "$x"); else xa=(--save-input "$x"); fi
  say "strata $id $prec batch $batch"
  before=$(wc -l < "$WORK/strata.jsonl")
  rc=0
  tf=()
  read -r -a CEIL_ARGS <<< "$(ceiling_args "$prec")"
  sp=$prec
  # f32+tf32: the tf32 engine (f32 values stored NHWC, TF32 tensor cores), reported as f32 with
  # TF32 on; STRATA_TF32_NCHW=1 runs the f32 engine with EngineOptions::allow_tf32 instead.
  if [[ "$prec" == *+tf32 ]]; then
    if [ "${STRATA_TF32_NCHW:-0}" = 1 ]; then sp=f32; tf=(--tf32); else sp=tf32; fi
  fi
  timeout 300 "$BENCH" --case "$id" --precision "$sp" "${tf[@]}" --batch "$batch" "${wa[@]}" "${xa[@]}" \
    --dump-output "$WORK/output_${id}_${prec}_b$batch.safetensors" --tuning "$TUNING" \
    "${FUSED[@]}" "${EXTRA[@]}" --profile "${CEIL_ARGS[@]}" --out-json "$WORK/strata.jsonl" --commit "$COMMIT" || rc=$?
  if [ "$rc" != 0 ] && [ "$(wc -l < "$WORK/strata.jsonl")" = "$before" ]; then
    # It died without saying why (a crash or the timeout): record the case as an error.
    printf '{"kind":"timing","side":"strata","case":"%s","network":"%s","precision":"%s","batch":%s,"status":"ERROR","error":"strata_bench exited with status %s","commit":"%s"}\n' \
      "$id" "$net" "$prec" "$batch" "$rc" "$COMMIT" >> "$WORK/strata.jsonl"
  fi
done

# R2-stream: 8-bit images from page-locked memory, host to host (Engine::enqueue), then PyTorch's.
if { [ -z "$ONLY" ] || [[ " $ONLY " == *" R2-stream "* ]]; } &&
   { [ -z "$PRECS" ] || [[ " $PRECS " == *" f16 "* ]]; }; then
  say "strata R2-stream f16 batch 256"
  w=$WORK/weights_resnet18.safetensors
  if [ -f "$w" ]; then wa=(--weights "$w"); else wa=(--save-weights "$w"); fi
  timeout 300 "$BENCH" --case R2-stream --precision f16 --batch 256 "${wa[@]}" --tuning "$TUNING" \
    --out-json "$WORK/stream.jsonl" --commit "$COMMIT" || say "strata R2-stream failed"
  say "pytorch R2-stream f16 batch 256"
  "$PY" "$ROOT/benchmarks/pytorch_stream.py" --batch 256 --precision f16 \
    --out-json "$WORK/stream.jsonl" || say "pytorch_stream.py failed (status $?)"
fi

# --- 5. PyTorch's side ------------------------------------------------------------------------
say "pytorch (checks, eager, CUDA graph$([ $QUICK = 1 ] && echo '' || echo ", torch.compile within $BUDGET s"))"
PYARGS=(--strata "$WORK/strata.jsonl" --out-json "$WORK/pytorch.jsonl" --compile-budget-s "$BUDGET")
if [ $QUICK = 1 ]; then PYARGS+=(--quick); fi
"$PY" "$ROOT/benchmarks/pytorch_bench.py" "${PYARGS[@]}" || say "pytorch_bench.py failed (status $?)"

# --- 6. report --------------------------------------------------------------------------------
say "report"
"$PY" "$ROOT/benchmarks/report.py" --work "$WORK" --command "scripts/bench.sh${ARGS:+ $ARGS}" \
  > "$WORK/table.md"
say "done in $(($(date +%s) - START)) s"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  cp "$ROOT/docs/benchmarks.md" "$ROOT/docs/benchmarks/results.json" "$WORK/strata.jsonl" \
    "$WORK/pytorch.jsonl" "$WORK/ceilings.jsonl" "$WORK/stream.jsonl" "$LOG" "$OUT/" 2>/dev/null || true
  cp "$ROOT/docs/benchmarks/chart.png" "$OUT/" 2>/dev/null || true
fi
cat "$WORK/table.md"
