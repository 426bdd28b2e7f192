// strata_bench: every case in f16, compiled on its own (bench.hpp).
#include "bench.hpp"

namespace strata_bench {

int run_f16(const Args& a, const CaseInfo& c, int batch) {
  return run_precision<DType::f16>(a, c, batch);
}

}  // namespace strata_bench
