// strata_bench: every case in f32, f32 with TF32 and bf16, compiled on its own (bench.hpp; f16,
// the precision most runs use, is bench_f16.cpp, built beside it).
#include "bench.hpp"

namespace strata_bench {

int run_f32(const Args& a, const CaseInfo& c, int batch) {
  return run_precision<DType::f32>(a, c, batch);
}

int run_tf32(const Args& a, const CaseInfo& c, int batch) {
  return run_precision<DType::tf32>(a, c, batch);
}

int run_bf16(const Args& a, const CaseInfo& c, int batch) {
  return run_precision<DType::bf16>(a, c, batch);
}

}  // namespace strata_bench
