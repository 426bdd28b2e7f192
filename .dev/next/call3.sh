#!/bin/bash
source .dev/common.sh
t0=$(date +%s)
build strata_bench strata_gpu_tests || exit 1
echo "build $(( $(date +%s) - t0 )) s"
run() { # name args...
  local n=$1; shift
  local s=$(date +%s)
  timeout 120 $B --precision f16 --repeats 7 "$@" > $OUT/$n.txt 2>&1
  echo "$n rc=$? $(( $(date +%s) - s ))s: $(grep -o "\"median_us\":[0-9.]*" $OUT/$n.txt | head -1) $(grep -o "\"engine_build_ms\":[0-9.]*" $OUT/$n.txt | head -1)"
}
s=$(date +%s)
timeout 200 $T -tc="cuDNN graph convs*,lt_conv1x1's math*,programmatic dependent launches*" > $OUT/t3.txt 2>&1
echo "tests rc=$? $(( $(date +%s) - s ))s"; grep -E "ERROR|FAILED|failed|math [0-9]:" $OUT/t3.txt | head -12; tail -3 $OUT/t3.txt
run r2h --case R2 --batch 256 --tuning heuristic --profile
run r3h --case R3 --batch 256 --tuning heuristic --profile
run r3m --case R3 --batch 256 --tuning measured
DS="--force-each downsample=lt_conv1x1"
run r2h32 --case R2 --batch 32 --tuning heuristic
run r2l32 --case R2 --batch 32 --tuning heuristic $DS
run r2h64 --case R2 --batch 64 --tuning heuristic
run r2l64 --case R2 --batch 64 --tuning heuristic $DS
run r2g8 --case R2 --batch 8 --tuning heuristic --force-each "downsample=cudnn_graph math 1"
run r2h8 --case R2 --batch 8 --tuning heuristic
for n in r2h r3h; do grep "downsample" $OUT/$n.txt | grep -v "^{" | head -3; done
grep "lt_conv1x1 math" $OUT/r3m.txt | head -30
echo "bench.sh at $(( $(date +%s) - t0 )) s"
timeout $(( 590 - ($(date +%s) - t0) )) bash scripts/bench.sh --cases "R2 R3" --precisions f16 --compile-budget-s 60 --build-dir "$BD" > $OUT/bench.txt 2>&1
echo "bench rc=$?"; grep -A12 "^| case" $OUT/bench.txt | head -30; tail -5 $OUT/bench.txt
cp -r $BD/run $OUT/benchrun 2>/dev/null
echo total $(( $(date +%s) - t0 )) s
