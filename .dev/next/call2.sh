#!/bin/bash
source .dev/common.sh
t0=$(date +%s)
build strata_bench strata_gpu_tests || exit 1
echo "build $(( $(date +%s) - t0 )) s"
run() { # name args...
  local n=$1; shift
  local s=$(date +%s)
  timeout 240 $B --precision f16 --repeats 7 "$@" > $OUT/$n.txt 2>&1
  echo "$n rc=$? $(( $(date +%s) - s ))s: $(grep -o "\"median_us\":[0-9.]*" $OUT/$n.txt | head -1) $(grep -o "\"pdl\":[a-z]*" $OUT/$n.txt | head -1) $(grep -o "\"engine_build_ms\":[0-9.]*" $OUT/$n.txt | head -1)"
}
s=$(date +%s)
timeout 300 $T -tc="cuDNN graph convs*,programmatic dependent launches*" > $OUT/t_graph.txt 2>&1
echo "tests rc=$? $(( $(date +%s) - s ))s"; tail -4 $OUT/t_graph.txt; grep -E "rel. error" $OUT/t_graph.txt | head -12
run r2h --case R2 --batch 256 --tuning heuristic --profile
run r2m --case R2 --batch 256 --tuning measured --profile
run r3h --case R3 --batch 256 --tuning heuristic --profile
run r3m --case R3 --batch 256 --tuning measured
DS="--force-each downsample=lt_conv1x1"
run r2h32 --case R2 --batch 32 --tuning heuristic
run r2l32 --case R2 --batch 32 --tuning heuristic $DS
run r2h256lt --case R2 --batch 256 --tuning heuristic $DS
run r2h2 --case R2 --batch 256 --tuning heuristic
for n in r2h r3h r2h32; do grep "downsample" $OUT/$n.txt | grep -v "^{" | head -3; done
echo total $(( $(date +%s) - t0 )) s
