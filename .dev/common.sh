# sourced by the device scripts
set -uo pipefail
ROOT=$(pwd)
export PATH=/usr/local/cuda/bin:$PATH
CUDNN=$(python3 -c "import nvidia.cudnn as m; print(m.__path__[0])")
export LD_LIBRARY_PATH="$CUDNN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOCTEST_ROOT="$ROOT/.deps"
BD=$ROOT/build-gpu
B=$BD/benchmarks/strata_bench
T=$BD/tests/gpu/strata_gpu_tests
build() {  # targets...
  cmake -S "$ROOT" -B "$BD" -DCMAKE_BUILD_TYPE=Release -DCUDNN_ROOT="$CUDNN" \
    -DCMAKE_PREFIX_PATH="$ROOT/.deps" -DSTRATA_BUILD_BENCHMARKS=ON -DSTRATA_BUILD_EXAMPLES=OFF \
    > /tmp/cfg.log 2>&1 || { cat /tmp/cfg.log; return 1; }
  cmake --build "$BD" -j16 --target "$@" 2>&1 | grep -E "error|warning: |Error" | head -40
  return ${PIPESTATUS[0]}
}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
