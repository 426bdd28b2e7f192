#!/bin/bash
source .dev/common.sh
t0=$(date +%s)
build strata_bench || exit 1
echo "build $(( $(date +%s) - t0 )) s"
run() { # name args...
  local n=$1; shift
  local s=$(date +%s)
  timeout 240 $B --precision f16 --repeats 7 "$@" > $OUT/$n.txt 2>&1
  echo "$n rc=$? $(( $(date +%s) - s ))s: $(grep -o "\"median_us\":[0-9.]*" $OUT/$n.txt | head -1) $(grep -o "\"pdl\":[a-z]*" $OUT/$n.txt | head -1) $(grep -o "\"tuning_ms\":[0-9.]*" $OUT/$n.txt | head -1)"
}
run r2h --case R2 --batch 256 --tuning heuristic --profile
run r2m --case R2 --batch 256 --tuning measured --profile
run r3h --case R3 --batch 256 --tuning heuristic --profile
run r3m --case R3 --batch 256 --tuning measured --profile
run eb256 --case EB0 --batch 256 --tuning heuristic --profile
run mv256 --case MV2 --batch 256 --tuning heuristic --profile
run eb1 --case EB0 --batch 1 --tuning heuristic --profile
run d1 --case D121 --batch 1 --tuning heuristic --profile
echo total $(( $(date +%s) - t0 )) s
