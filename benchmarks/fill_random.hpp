#pragma once
/// Device buffers filled with deterministic pseudo-random values in [-0.5, 0.5) (the ceilings'
/// inputs: all-zero data draws less power and flatters a GEMM or a copy). Host-callable; the
/// kernel is compiled by nvcc in fill_random.cu.
#include <cuda_runtime.h>

#include <cstddef>

namespace strata_bench {

/// Element type of a buffer to fill.
enum class FillType { f32, f16, bf16 };

/// Enqueues the fill of `n` elements of type `type` at device address `p` on `stream`.
void fill_random(void* p, std::size_t n, FillType type, cudaStream_t stream);

}  // namespace strata_bench
